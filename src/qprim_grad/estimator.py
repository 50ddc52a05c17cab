"""`GradientEstimator`: a V2 estimator whose results carry gradients."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from qiskit.circuit import Parameter, QuantumCircuit
from qiskit.primitives import BaseEstimatorV2, BaseSamplerV2
from qiskit.primitives.containers import DataBin, EstimatorPubLike, PubResult
from qiskit.primitives.containers.bindings_array import BindingsArray
from qiskit.primitives.containers.estimator_pub import EstimatorPub

from .circuit.prepare import bound_values, check_unitary
from .methods.base import GradientMethod
from .methods.metric.results import metric_fields
from .pipeline.combine import combine_with_errors, nested_derivatives
from .pipeline.job import GradientJob
from .pipeline.noise_checks import warn_small_step
from .pipeline.primitive import BaseFace, GradientPrimitive, bindings, result_metadata
from .pipeline.types import Evaluation, PubTask, PubWork

__all__ = ["EstimatorFace", "GradientEstimator"]


def _is_values(field: Any) -> bool:
    """Whether a pub's second field holds parameter values rather than observables."""
    if isinstance(field, BindingsArray):
        return True
    if isinstance(field, Mapping):
        return not any(isinstance(key, str) for key in field)  # {"ZZ": 1.0}: an observable
    return _numeric(field)


def _numeric(field: Any) -> bool:
    """Whether ``field`` is a real number or an array (nested lists) of them."""
    if isinstance(field, np.ndarray):
        return field.dtype.kind in "biuf"
    if isinstance(field, (list, tuple)):
        return all(_numeric(item) for item in field)
    return isinstance(field, (int, float, np.integer, np.floating))


def _observable_free(pub: Any) -> Any:
    """An observable-free pub (``circuit``, ``(circuit,)``, ``(circuit, values)``,
    ``(circuit, None, ...)``) with the identity as its observable; other pubs unchanged."""
    if isinstance(pub, QuantumCircuit):
        pub = (pub,)
    if not isinstance(pub, (tuple, list)) or not pub or not isinstance(pub[0], QuantumCircuit):
        return pub
    circuit, rest = pub[0], list(pub[1:])
    identity = "I" * circuit.num_qubits
    if not rest:
        return (circuit, identity)
    if rest[0] is None:
        return (circuit, identity, *rest[1:])
    if _is_values(rest[0]) and len(rest) <= 2:
        return (circuit, identity, *rest)
    return pub


def _padded(shape: tuple[int, ...], ndim: int) -> tuple[int, ...]:
    return (1,) * (ndim - len(shape)) + tuple(shape)


class EstimatorPrimitive(GradientPrimitive, BaseEstimatorV2):
    """A gradient primitive that is a V2 estimator: the wrapped ``estimator`` and ``run``
    (one inner job for all pubs). :class:`GradientEstimator` and
    :class:`~qprim_grad.QGTEstimator` are the two."""

    @property
    def estimator(self) -> BaseEstimatorV2:
        """The wrapped estimator."""
        return self._primitive

    def run(
        self,
        pubs: Iterable[EstimatorPubLike],
        *,
        precision: float | None = None,
        parameters: Sequence[Parameter] | Sequence[Sequence[Parameter] | None] | None = None,
    ) -> GradientJob:
        """Estimate expectation values and what this primitive adds to them (gradients, the
        QGT) for ``pubs``; one inner job for all pubs. ``parameters``: the parameters to
        differentiate, for all pubs or per pub (``None``: all of the pub's circuit)."""
        kwargs = {} if precision is None else {"precision": precision}
        return self._submit(pubs, parameters, kwargs)


class GradientEstimator(EstimatorPrimitive):
    """A V2 estimator returning ``evs``, ``stds``, ``grads`` and ``grad_stds``.

    Every circuit a gradient needs runs on the wrapped ``estimator`` in one job per
    ``run``, so its sessions, options, twirling and mitigation apply to all of them.

    ``grads[..., j]`` is ``d<O>/d theta_j`` for the pub's shape; ``grad_stds`` propagates
    the inner ``stds`` through the method's linear combination (assuming independent
    estimates; zero for exact primitives).

    Wrapping another ``GradientEstimator`` gives second derivatives: the outer result also
    holds ``hessian`` and ``hessian_stds`` with
    ``hessian[..., i, j] = d^2 <O> / d theta_i d theta_j``, shape ``pub.shape + (P_inner, P)``
    (the inner differentiates every circuit parameter). When ``param_shift`` or
    ``lin_comb`` evaluates a rewritten circuit (shared parameters, affine expressions), the
    inner derivatives are mapped back by the chain rule (second order for non-affine
    expressions such as ``a * b``) and the shape is ``pub.shape + (P, P)``.
    ``reverse`` around a ``reverse`` gradient estimator on an exact statevector estimator
    computes the Hessian exactly by forward-over-reverse (shape ``pub.shape + (P_circuit,
    P)``). Nested estimators evaluate identical inner rows once; ``metadata["inner_rows"]``
    counts the rows sent, ``metadata["base_rows"]`` those the innermost primitive evaluated.

    A pub's circuit must be unitary up to its final measurements: a reset of a qubit in use,
    a mid-circuit measurement or classical control is refused, naming the instruction
    (:class:`~qprim_grad.GradientSampler` differentiates the outcome distribution of such
    circuits). An inner pub whose circuit has no parameters is evaluated once and broadcast
    over the pub's value rows.

    ``max_job_rows`` (alias ``max_pub_rows``) splits a large run over several inner jobs,
    submitted together; results are identical to the unsplit run.

    Args:
        estimator: any V2 estimator (or another wrapper).
        method: ``"param_shift"``, ``"finite_diff"``, ``"lin_comb"``, ``"spsa"``,
            ``"reverse"``, a plugin's name, or a method object.
        max_job_rows: split the inner work into several jobs of at most this many rows.
        metric: also return the quantum geometric tensor (``qgt``, ``qgt_stds``, ``qfi``,
            ``qfi_stds``, as :class:`~qprim_grad.QGTEstimator`), from the same inner job:
            ``"lin_comb"``, ``"reverse"``, ``"block_diag"``, ``"diag"`` or a metric object.
        metric_options: options of the metric method (``derivative_type``, ``phase_fix``,
            ``pass_manager``, ...).
        **options: the method's options (e.g. ``epsilon``, ``scheme``, ``batch_size``,
            ``seed``, ``derivative_type``, ``pass_manager``).

    Example:
        >>> from qiskit import QuantumCircuit
        >>> from qiskit.circuit import Parameter, QuantumCircuit
        >>> from qiskit.primitives import StatevectorEstimator
        >>> from qprim_grad import GradientEstimator
        >>> theta = Parameter("theta")
        >>> qc = QuantumCircuit(1)
        >>> _ = qc.ry(theta, 0)
        >>> result = GradientEstimator(StatevectorEstimator()).run([(qc, "Z", [0.5])]).result()
        >>> round(float(result[0].data.grads[0]), 6)  # d cos(theta) / d theta
        -0.479426
    """

    def __init__(
        self,
        estimator: BaseEstimatorV2,
        method: str | GradientMethod = "param_shift",
        *,
        max_job_rows: int | None = None,
        metric: Any = None,
        metric_options: dict[str, Any] | None = None,
        allocation: str = "uniform",
        **options: Any,
    ) -> None:
        GradientPrimitive.__init__(
            self,
            EstimatorFace,
            estimator,
            method,
            max_job_rows=max_job_rows,
            metric=metric,
            metric_options=metric_options,
            allocation=allocation,
            **options,
        )


class EstimatorFace(BaseFace):
    """The estimator's face of a gradient primitive: :class:`EstimatorPub` in, ``evs``,
    ``stds``, ``grads``, ``grad_stds`` (and nested or metric fields) out."""

    kind = "estimator"
    other_kind = BaseSamplerV2
    other_wrapper = "GradientSampler"

    def coerce(self, pub: Any) -> EstimatorPub:
        return EstimatorPub.coerce(pub)

    def task(self, index: int, pub: EstimatorPub, parameters: tuple[Parameter, ...]) -> PubTask:
        shape = tuple(pub.shape)
        parameter_values = pub.parameter_values
        circuit = pub.circuit
        check_unitary(circuit, f"pub {index}: {self.differentiated_by()}")
        values = bound_values(circuit, parameter_values)
        padded = _padded(parameter_values.shape, len(shape))
        values = values.reshape(padded + (circuit.num_parameters,))
        observables = pub.observables.reshape(_padded(pub.observables.shape, len(shape)))
        return PubTask(
            index=index,
            kind="estimator",
            circuit=circuit,
            values=values,
            observables=observables,
            shape=shape,
            parameters=parameters,
            inner=self.primitive,
        )

    def differentiated_by(self) -> str:
        """``method 'x'`` and/or ``metric 'y'``, for error messages."""
        names = [] if self.method.name == "none" else [f"method {self.method.name!r}"]
        if self.metric is not None:
            names.append(f"metric {self.metric.name!r}")
        return " and ".join(names)

    def inner_run(self, pubs: list[Any], **run_kwargs: Any) -> Any:
        inner = self.primitive
        if isinstance(inner, GradientEstimator) and type(inner).run is GradientEstimator.run:
            # nested: the inner gradient estimator evaluates identical rows once
            return inner.run_merged(pubs, **run_kwargs)
        return super().inner_run(pubs, **run_kwargs)

    def exact_center(self, work: PubWork, run_kwargs: dict[str, Any]) -> bool:
        # exact values only: the pub's precision (else the run's, else the inner default) is 0
        precision = work.pub.precision
        if precision is None:
            precision = run_kwargs.get("precision")
        if precision is None:
            precision = getattr(self.primitive, "default_precision", None)
        return precision == 0

    def inner_pub(self, work: PubWork, evaluation: Evaluation) -> EstimatorPub:
        observables = evaluation.observables
        if observables is None:
            assert work.task.observables is not None
            observables = work.task.observables.reshape((1,) + work.task.observables.shape)
        return EstimatorPub(
            evaluation.circuit, observables, bindings(evaluation), work.pub.precision
        )

    def result_row(self, work: PubWork, center: Any, evaluated: list[Any], meta: dict) -> Any:
        task = work.task
        evs, stds = np.asarray(center.data.evs), np.asarray(center.data.stds)
        warn_small_step(self.method, bool(np.any(stds > 0)))

        def pair(values: Any, errors: Any) -> tuple[np.ndarray, np.ndarray]:
            return np.asarray(values)[..., None], np.asarray(errors)[..., None] ** 2

        grads, grad_stds = combine_with_errors(
            work.plan,
            pair(evs[None], stds[None]),
            [pair(result.data.evs, result.data.stds) for result in evaluated],
            task.shape,
            task.num_parameters,
        )
        # around a GradientEstimator, or computed by a DirectPlan
        nested = nested_derivatives(work, center, evaluated)
        if work.metric_work is not None:  # metric=: qgt, qgt_stds, qfi, qfi_stds
            nested.update(metric_fields(work))
        data = DataBin(
            evs=evs,
            stds=stds,
            grads=grads[..., 0],
            grad_stds=grad_stds[..., 0],
            **nested,
            shape=task.shape,
        )
        return PubResult(data, metadata=result_metadata(work, center, meta))
