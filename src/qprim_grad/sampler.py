"""`GradientSampler`: a V2 sampler whose results carry derivatives of the outcome
distribution, and :class:`SamplerGradients`, their sparse container."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from qiskit.circuit import Parameter
from qiskit.primitives import BaseEstimatorV2, BaseSamplerV2
from qiskit.primitives.containers import BitArray, DataBin, SamplerPubLike, SamplerPubResult
from qiskit.primitives.containers.sampler_pub import SamplerPub

from .circuits import bound_values
from .combine import combine_with_errors
from .job import GradientJob
from .methods.base import Evaluation, GradientMethod, PubTask
from .noise_checks import warn_small_step
from .pub_results import object_array
from .wrapper import GradientPrimitive, _PubWork

__all__ = ["GradientSampler", "SamplerGradients"]


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


def _keys(bits: BitArray) -> np.ndarray:
    """One key per shot whose order is the outcome's integer order: ``uint64`` for up to
    64 bits, else a fixed-width big-endian byte string."""
    array = np.ascontiguousarray(bits.array)
    num_bytes = array.shape[-1]
    if num_bytes <= 8:
        padded = np.zeros(array.shape[:-1] + (8,), dtype=np.uint8)
        padded[..., 8 - num_bytes :] = array
        return padded.view(">u8")[..., 0].astype(np.uint64)
    return array.view(np.dtype((np.void, num_bytes)))[..., 0]


def _joined_keys(arrays: list[BitArray]) -> np.ndarray:
    """Keys over the concatenation of registers (first register = least significant)."""
    if len(arrays) == 1:
        return _keys(arrays[0])
    if sum(bits.num_bits for bits in arrays) > 64:
        return _keys(BitArray.concatenate_bits(arrays))
    total = np.zeros(arrays[0].array.shape[:-1], dtype=np.uint64)
    offset = 0
    for bits in arrays:
        total |= _keys(bits) << np.uint64(offset)
        offset += bits.num_bits
    return total


def _bitstrings(keys: np.ndarray, num_bits: int) -> list[str]:
    if keys.dtype == np.uint64:
        if not len(keys) or not num_bits:
            return ["" for _ in keys]
        shifts = np.arange(num_bits - 1, -1, -1, dtype=np.uint64)
        bits = (keys[:, None] >> shifts) & np.uint64(1)
        chars = np.where(bits == 1, "1", "0")  # (M, num_bits) of one-character strings
        return chars.view(f"<U{num_bits}")[:, 0].tolist()
    raw = np.frombuffer(keys.tobytes(), dtype=np.uint8).reshape(len(keys), -1)
    unpacked = np.unpackbits(raw, axis=1)[:, raw.shape[1] * 8 - num_bits :]
    return ["".join(row) for row in np.where(unpacked == 1, "1", "0")]


class _Distribution:
    """Per-row outcome frequencies of one inner result over a shared outcome list."""

    def __init__(self, keys: np.ndarray, sign: np.ndarray | None) -> None:
        self.keys = keys  # (K, *S, shots)
        self.sign = sign

    exact = False

    def outcome_keys(self) -> np.ndarray:
        """Every observed outcome key (with repetitions)."""
        return self.keys.ravel()

    def frequencies(self, outcomes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(signed or plain probabilities, their variance), each ``(K, *S, M)``."""
        rows = int(np.prod(self.keys.shape[:-1]))
        shots = self.keys.shape[-1]
        size = len(outcomes)
        index = np.searchsorted(outcomes, self.keys).reshape(rows, shots)
        flat = (np.arange(rows)[:, None] * size + index).ravel()
        shape = self.keys.shape[:-1] + (size,)
        plain = np.bincount(flat, minlength=rows * size).reshape(shape) / shots
        if self.sign is None:
            return plain, plain * (1.0 - plain) / shots
        signed = np.bincount(flat, weights=self.sign.ravel(), minlength=rows * size)
        signed = signed.reshape(shape) / shots
        return signed, (plain - signed**2) / shots


def _bitstring_keys(bitstrings: Sequence[str], num_bits: int) -> np.ndarray:
    """The keys :func:`_keys` gives, from bitstrings of ``num_bits`` bits."""
    if num_bits <= 64:
        return np.array([int(b, 2) if b else 0 for b in bitstrings], dtype=np.uint64)
    width = -(-num_bits // 8)
    raw = b"".join(int(b, 2).to_bytes(width, "big") for b in bitstrings)
    return np.frombuffer(raw, dtype=np.dtype((np.void, width)))


def is_exact_register(value: Any) -> bool:
    """Whether a result field holds exact probabilities rather than shots: an object with
    ``get_probabilities()`` (e.g. qiskit-machine-learning's ``ExactProbArray`` /
    ``ExactProbNDArray``), or an object array of such (after a split job)."""
    if isinstance(value, BitArray):
        return False
    if isinstance(value, np.ndarray):
        return value.dtype == object and all(is_exact_register(v) for v in value.flat)
    return callable(getattr(value, "get_probabilities", None))


class _ExactDistribution:
    """Exact outcome probabilities of one inner result (no shot noise)."""

    exact = True

    def __init__(self, fields: list[Any], aux_field: Any | None, num_bits: int) -> None:
        columns = [object_array(f) for f in fields + ([] if aux_field is None else [aux_field])]
        shape = columns[0].shape
        rows: list[dict[str, float]] = []
        signed_rows: list[dict[str, float]] = []
        for index in np.ndindex(shape):
            items: list[Any] = [column[index] for column in columns]
            joint = items[0] if len(items) == 1 else _concatenate(items)
            plain: dict[str, float] = {}
            signed: dict[str, float] = {}
            for bits, p in joint.get_probabilities().items():
                head, tail = bits[: len(bits) - num_bits], bits[len(bits) - num_bits :]
                plain[tail] = plain.get(tail, 0.0) + p
                if aux_field is not None:  # the auxiliary register is the leftmost bits
                    sign = -1.0 if head[-1] == "1" else 1.0
                    signed[tail] = signed.get(tail, 0.0) + sign * p
            rows.append(plain)
            signed_rows.append(signed)
        labels = sorted({b for row in rows for b in row})
        self.keys = _bitstring_keys(labels, num_bits)
        order = np.argsort(self.keys, kind="stable")
        self.keys = self.keys[order]
        position = {labels[i]: j for j, i in enumerate(order)}
        self.plain = np.zeros((len(rows), len(labels)))
        self.signed = None if aux_field is None else np.zeros_like(self.plain)
        for r, (row, signed_row) in enumerate(zip(rows, signed_rows)):
            for bits, p in row.items():
                self.plain[r, position[bits]] = p
            if self.signed is not None:
                for bits, p in signed_row.items():
                    self.signed[r, position[bits]] = p
        self.shape = shape

    def outcome_keys(self) -> np.ndarray:
        return self.keys

    def frequencies(self, outcomes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(exact signed or plain probabilities, zero variance), each ``(K, *S, M)``."""
        out = np.zeros(self.shape + (len(outcomes),))
        source = self.plain if self.signed is None else self.signed
        out.reshape(-1, len(outcomes))[:, np.searchsorted(outcomes, self.keys)] = source
        return out, np.zeros_like(out)


def _concatenate(items: list[Any]) -> Any:
    """Exact containers of several registers joined (first = least significant), as
    ``BitArray.concatenate_bits`` joins bits."""
    join = getattr(type(items[0]), "concatenate_bits", None)
    if join is None:
        raise TypeError(
            f"the sampler returned {type(items[0]).__name__} registers without "
            "concatenate_bits(); cannot form the joint distribution of several registers"
        )
    return join(items)


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

    _kind = "sampler"
    _other_kind = BaseEstimatorV2
    _other_wrapper = "GradientEstimator"

    def __init__(
        self,
        sampler: BaseSamplerV2,
        method: str | GradientMethod = "param_shift",
        *,
        max_job_rows: int | None = None,
        **options: Any,
    ) -> None:
        GradientPrimitive.__init__(self, sampler, method, max_job_rows=max_job_rows, **options)

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

    def _coerce(self, pub: Any) -> SamplerPub:
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

    def _task(self, index: int, pub: SamplerPub, parameters: tuple[Parameter, ...]) -> PubTask:
        circuit = pub.circuit
        bindings = pub.parameter_values
        values = bound_values(circuit, bindings)
        return PubTask(
            index=index,
            kind="sampler",
            circuit=circuit,
            values=values,
            observables=None,
            shape=tuple(pub.shape),
            parameters=parameters,
            inner=self._primitive,
        )

    def _inner_pub(self, work: _PubWork, evaluation: Evaluation) -> SamplerPub:
        return SamplerPub(evaluation.circuit, self._bindings(evaluation), work.pub.shots)

    def _distribution(
        self, result: Any, registers: list[str], aux: str | None, num_bits: int
    ) -> _Distribution | _ExactDistribution:
        arrays = [getattr(result.data, name) for name in registers]
        aux_field = None if aux is None else getattr(result.data, aux)
        fields = arrays + ([] if aux_field is None else [aux_field])
        if all(is_exact_register(f) for f in fields):
            return _ExactDistribution(arrays, aux_field, num_bits)
        for name, value in zip(registers + [aux], fields):
            if not isinstance(value, BitArray):
                raise TypeError(
                    f"register {name!r} of the inner sampler's result is a "
                    f"{type(value).__module__}.{type(value).__name__}; GradientSampler reads "
                    "BitArray registers (sampled) or exact-probability containers with "
                    "get_probabilities() (e.g. qiskit-machine-learning's ExactProbArray)"
                )
        sign = None
        if aux is not None:
            aux_bits = getattr(result.data, aux).array[..., -1] & 1
            sign = 1.0 - 2.0 * aux_bits
        return _Distribution(_joined_keys(arrays), sign)

    def _pub_result(self, work: _PubWork, center: Any, evaluated: list[Any], meta: dict) -> Any:
        task, plan = work.task, work.plan
        registers = [register.name for register in task.circuit.cregs]
        num_bits = sum(register.size for register in task.circuit.cregs)
        center_dist = self._distribution(center, registers, None, num_bits)
        dists = [
            self._distribution(result, registers, evaluation.aux_register, num_bits)
            for evaluation, result in zip(plan.evaluations, evaluated)
        ]
        warn_small_step(self._method, noisy=not all(d.exact for d in [center_dist, *dists]))
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
        labels = _bitstrings(outcomes, num_bits)
        data = DataBin(
            **dict(center.data.items()),
            grads=SamplerGradients(grads, labels, num_bits),
            grad_stds=SamplerGradients(grad_stds, labels, num_bits),
            shape=task.shape,
        )
        return SamplerPubResult(data, metadata=self._metadata(work, center, meta))
