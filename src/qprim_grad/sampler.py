"""`GradientSampler`: a V2 sampler whose results carry derivatives of the outcome
distribution, and :class:`SamplerGradients`, their sparse container."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from qiskit.circuit import Parameter
from qiskit.primitives import BaseEstimatorV2, BaseSamplerV2
from qiskit.primitives.containers import DataBin, SamplerPubLike, SamplerPubResult
from qiskit.primitives.containers.sampler_pub import SamplerPub

from .circuit.prepare import bound_values
from .methods.base import GradientMethod
from .pipeline.combine import combine_with_errors
from .pipeline.distributions import bitstrings, distribution
from .pipeline.job import GradientJob
from .pipeline.noise_checks import warn_small_step
from .pipeline.primitive import BaseFace, GradientPrimitive, bindings, result_metadata
from .pipeline.types import Evaluation, PubTask, PubWork

__all__ = ["GradientSampler", "SamplerFace", "SamplerGradients"]


class SamplerGradients:
    """Derivatives of outcome probabilities, stored sparsely over the observed outcomes.

    ``values`` has shape ``shape + (len(outcomes),)`` where ``shape`` is the pub's shape
    followed by the number of differentiated parameters. Indexing with a full index gives
    a ``{bitstring: derivative}`` dict (bitstrings over all classical bits, as in
    ``BitArray.get_counts()``); a partial index gives a smaller ``SamplerGradients``.
    :meth:`to_dense` gives ``shape + (2**num_bits,)``.
    """

    def __init__(self, values: np.ndarray, outcomes: Sequence[str], num_bits: int) -> None:
        self.values = np.asarray(values)
        self.outcomes = list(outcomes)
        self.num_bits = int(num_bits)
        if self.values.shape[-1:] != (len(self.outcomes),):
            raise ValueError("values must end with one entry per outcome")

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.values.shape[:-1])

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def int_outcomes(self) -> list[int]:
        """The outcomes as integers (``int(bitstring, 2)``)."""
        return [int(bits, 2) if bits else 0 for bits in self.outcomes]

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d SamplerGradients")
        return self.shape[0]

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, index: Any) -> Any:
        sliced = self.values[index if isinstance(index, tuple) else (index,)]
        if sliced.ndim == 1:
            return dict(zip(self.outcomes, sliced.tolist()))
        return SamplerGradients(sliced, self.outcomes, self.num_bits)

    def to_dense(self) -> np.ndarray:
        """Dense array ``shape + (2**num_bits,)`` indexed by the integer outcome."""
        if self.num_bits > 26:
            raise ValueError(
                f"a dense array over {self.num_bits} classical bits would need 2**"
                f"{self.num_bits} entries per derivative; use the sparse form"
            )
        dense = np.zeros(self.shape + (2**self.num_bits,), dtype=self.values.dtype)
        dense[..., self.int_outcomes] = self.values
        return dense

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        dense = self.to_dense()
        return dense if dtype is None else dense.astype(dtype)

    def to_dicts(self) -> Any:
        """Nested lists (over ``shape``) of ``{bitstring: derivative}`` dicts."""
        if self.ndim == 1:
            return [self[i] for i in range(self.shape[0])]
        if self.ndim == 0:
            return dict(zip(self.outcomes, self.values.tolist()))
        return [self[i].to_dicts() for i in range(self.shape[0])]

    def __repr__(self) -> str:
        return (
            f"SamplerGradients(shape={self.shape}, num_bits={self.num_bits}, "
            f"num_outcomes={len(self.outcomes)})"
        )


class GradientSampler(GradientPrimitive, BaseSamplerV2):
    """A V2 sampler returning the inner sampler's registers plus ``grads``/``grad_stds``.

    ``data`` holds the wrapped sampler's register fields sampled at the unshifted values,
    ``grads`` (a :class:`SamplerGradients` of shape ``pub.shape + (num_params,)``: for each
    index and parameter, ``{bitstring: dp/d theta}``) and ``grad_stds`` (multinomial shot
    noise propagated through the method's combination). One inner job per ``run``.

    Example:
        >>> from qiskit import QuantumCircuit
        >>> from qiskit.circuit import Parameter
        >>> from qiskit.primitives import StatevectorSampler
        >>> from qprim_grad import GradientSampler
        >>> theta = Parameter("theta")
        >>> qc = QuantumCircuit(1)
        >>> _ = qc.ry(theta, 0)
        >>> _ = qc.measure_all()
        >>> sampler = GradientSampler(StatevectorSampler(seed=1))
        >>> result = sampler.run([(qc, [0.5])], shots=4000).result()
        >>> sorted(result[0].data.grads[0])  # d p(x) / d theta for x in {0, 1}
        ['0', '1']
    """

    def __init__(
        self,
        sampler: BaseSamplerV2,
        method: str | GradientMethod = "param_shift",
        *,
        max_job_rows: int | None = None,
        **options: Any,
    ) -> None:
        GradientPrimitive.__init__(
            self, SamplerFace, sampler, method, max_job_rows=max_job_rows, **options
        )

    @property
    def sampler(self) -> BaseSamplerV2:
        """The wrapped sampler."""
        return self._primitive

    def run(
        self,
        pubs: Iterable[SamplerPubLike],
        *,
        shots: int | None = None,
        parameters: Sequence[Parameter] | Sequence[Sequence[Parameter] | None] | None = None,
    ) -> GradientJob:
        """Sample and differentiate the outcome distribution; one inner job for all pubs."""
        if shots is not None and (int(shots) != shots or shots <= 0):
            raise ValueError(f"shots must be a positive integer, got {shots!r}")
        kwargs = {} if shots is None else {"shots": int(shots)}
        return self._submit(pubs, parameters, kwargs)


class SamplerFace(BaseFace):
    """The sampler's face of a gradient primitive: :class:`SamplerPub` in, the registers
    sampled at the centre plus ``grads`` and ``grad_stds`` (:class:`SamplerGradients`) out."""

    kind = "sampler"
    other_kind = BaseEstimatorV2
    other_wrapper = "GradientEstimator"

    def coerce(self, pub: Any) -> SamplerPub:
        coerced = SamplerPub.coerce(pub)
        if coerced.shots is not None and coerced.shots <= 0:
            raise ValueError(f"shots must be a positive integer, got {coerced.shots}")
        circuit = coerced.circuit
        if not circuit.cregs or "measure" not in circuit.count_ops():
            raise ValueError(
                "the circuit has no measurements into classical registers; a sampler gradient "
                "differentiates the distribution of measured bits (add measure_all())"
            )
        return coerced

    def task(self, index: int, pub: SamplerPub, parameters: tuple[Parameter, ...]) -> PubTask:
        circuit = pub.circuit
        values = bound_values(circuit, pub.parameter_values)
        return PubTask(
            index=index,
            kind="sampler",
            circuit=circuit,
            values=values,
            observables=None,
            shape=tuple(pub.shape),
            parameters=parameters,
            inner=self.primitive,
        )

    def inner_pub(self, work: PubWork, evaluation: Evaluation) -> SamplerPub:
        return SamplerPub(evaluation.circuit, bindings(evaluation), work.pub.shots)

    def result_row(self, work: PubWork, center: Any, evaluated: list[Any], meta: dict) -> Any:
        task, plan = work.task, work.plan
        registers = [register.name for register in task.circuit.cregs]
        num_bits = sum(register.size for register in task.circuit.cregs)
        center_dist = distribution(center, registers, None, num_bits)
        dists = [
            distribution(result, registers, evaluation.aux_register, num_bits)
            for evaluation, result in zip(plan.evaluations, evaluated)
        ]
        warn_small_step(self.method, noisy=not all(d.exact for d in [center_dist, *dists]))
        everything = [center_dist.outcome_keys()] + [d.outcome_keys() for d in dists]
        outcomes = np.unique(np.concatenate(everything))
        center_p, center_var = center_dist.frequencies(outcomes)
        grads, grad_stds = combine_with_errors(
            plan,
            (center_p[None], center_var[None]),
            [d.frequencies(outcomes) for d in dists],
            task.shape,
            task.num_parameters,
        )
        labels = bitstrings(outcomes, num_bits)
        data = DataBin(
            **dict(center.data.items()),
            grads=SamplerGradients(grads, labels, num_bits),
            grad_stds=SamplerGradients(grad_stds, labels, num_bits),
            shape=task.shape,
        )
        return SamplerPubResult(data, metadata=result_metadata(work, center, meta))
