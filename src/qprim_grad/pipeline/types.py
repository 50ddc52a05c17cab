"""The pipeline's value types: a coerced pub as a method sees it (:class:`PubTask`), the
points a method asks to evaluate (:class:`Evaluation`), its plan, and one pub on its way
through a run (:class:`PubWork`).

A method's plan is one of two kinds (:data:`MethodPlan`): a :class:`Plan` (evaluations and
their combination) or a :class:`DirectPlan` (derivatives computed without the inner
primitive, which evaluates at most the centre).

A :class:`Plan` lists the extra evaluations the inner primitive must run and the linear map
(``weights``) that turns their results into derivatives. The generic primitive adds the
unshifted pub itself as evaluation ``0`` (the *centre*), sends every evaluation of every pub
in one inner job, and combines::

    grads[..., j] = sum_e sum_k weights_e[k, ..., j] * values_e[k, ...]

``values_e`` are expectation values (estimator) or outcome probabilities (sampler); the
same map applied to variances gives the standard errors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, Literal, Protocol, TypeAlias

import numpy as np
from qiskit.circuit import Parameter, QuantumCircuit
from qiskit.primitives.containers import ObservablesArray, PubResult

__all__ = [
    "PubTask",
    "Evaluation",
    "ArgumentMap",
    "Plan",
    "Direct",
    "DirectPlan",
    "MethodPlan",
    "MetricLike",
    "MetricPlanLike",
    "MetricWork",
    "PubWork",
]


@dataclass(frozen=True)
class PubTask:
    """One coerced pub, as a method sees it.

    Attributes:
        index: position of the pub in the ``run`` call (for error messages).
        kind: ``"estimator"`` or ``"sampler"``.
        circuit: the user's circuit, unchanged.
        values: parameter values, shape ``values_shape + (circuit.num_parameters,)`` in
            ``circuit.parameters`` order; ``values_shape`` is left-padded with ones to
            ``len(shape)`` dimensions.
        observables: estimator only: the pub's observables, reshaped to ``len(shape)`` dims.
        shape: the pub's broadcast shape.
        parameters: the parameters to differentiate, in output order.
        inner: the wrapped primitive (methods that only work on some primitives check it).
    """

    index: int
    kind: Literal["estimator", "sampler"]
    circuit: QuantumCircuit
    values: np.ndarray
    observables: ObservablesArray | None
    shape: tuple[int, ...]
    parameters: tuple[Parameter, ...]
    inner: Any = None

    @property
    def num_parameters(self) -> int:
        return len(self.parameters)


@dataclass(frozen=True)
class Evaluation:
    """Points (or circuits) the inner primitive evaluates, and how they enter the gradient.

    Attributes:
        circuit: circuit to run (the user's circuit, or a derived one).
        values: parameter values of shape ``(K, *values_shape, circuit.num_parameters)``.
        weights: combination weights (``None`` for a replacement centre), a sparse
            ``(K, num_diff_params)`` matrix or an array ``(K, *w_shape, num_diff_params)`` with
            ``w_shape`` broadcastable to the pub shape. May be complex.
        observables: estimator only: observables broadcastable with ``(K, *shape)``; ``None``
            means the pub's own observables.
        aux_register: sampler only: name of a one-bit register whose outcome signs the
            probabilities (``p(x, 0) - p(x, 1)``), as in a Hadamard test.
        parameter_names: the names of ``circuit.parameters`` in order, when the method
            already knows them for a circuit of its own (else computed by the wrapper).
    """

    circuit: QuantumCircuit
    values: np.ndarray
    weights: Any = None
    observables: ObservablesArray | None = None
    aux_register: str | None = None
    parameter_names: tuple[str, ...] | None = None

    @property
    def num_points(self) -> int:
        return int(self.values.shape[0])


@dataclass(frozen=True)
class ArgumentMap:
    """How the gate arguments of a rewritten circuit depend on the user's parameters: the
    circuit carries each differentiated gate argument ("slot") as its own parameter.

    Lets an outer wrapper map an inner gradient estimator's derivatives over the slots back
    to the user's parameters (the chain rule, second order where ``curvature`` is given).

    Attributes:
        parameters: the slot parameters ``G``, in the order of the Jacobian's rows.
        jacobian: ``d argument / d theta``: a sparse ``(G, P)`` matrix (arguments affine in
            the parameters) or a dense ``S + (G, P)`` array at the pub's values.
        curvature: for arguments that are not affine in the parameters, a callable giving
            ``d^2 argument / d theta_i d theta_j``, ``S + (G, P, P)``, at the pub's values
            (called only when an outer wrapper asks for second derivatives).
    """

    parameters: tuple[Parameter, ...]
    jacobian: Any
    curvature: Callable[[], np.ndarray] | None = None


@dataclass(frozen=True)
class Plan:
    """What a method needs evaluated for one pub, and how to combine it (an immutable value:
    derive a changed plan with :func:`dataclasses.replace`). The other kind of plan is
    :class:`DirectPlan`: derivatives computed without the inner primitive.

    Attributes:
        evaluations: extra evaluations (the centre is always evaluated by the wrapper).
        center: an equivalent evaluation (``K = 1``) to use as the centre instead of the
            user's pub, e.g. a rewritten circuit that the inner primitive handles correctly.
        center_weights: weights ``(1, *w_shape, P)`` applied to the centre values, or ``None``.
        metadata: per-pub metadata the method wants reported.
        arguments: when the evaluated circuits carry each differentiated gate argument as
            its own parameter, how those arguments depend on the user's parameters
            (:class:`ArgumentMap`); ``None`` when the circuits carry the user's parameters.
    """

    evaluations: list[Evaluation] = field(default_factory=list)
    center: Evaluation | None = None
    center_weights: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    arguments: ArgumentMap | None = None


@dataclass(frozen=True)
class Direct:
    """What a :class:`DirectPlan` computes.

    Attributes:
        grads: the derivatives, shape ``shape + (P,)`` (``shape + (P, M)`` over a sampler's
            ``M`` outcomes); their standard errors are zero.
        center: the centre's result (a ``PubResult`` with ``evs`` and ``stds``) exactly as
            the inner primitive would give it, or ``None``.
        fields: further result fields (e.g. ``hessian``, ``hessian_stds``).
    """

    grads: np.ndarray
    center: PubResult | None = None
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DirectPlan:
    """A plan whose derivatives are computed without the inner primitive (e.g. ``reverse``):
    the inner primitive evaluates at most the centre, and ``compute`` gives the rest.

    ``compute`` runs when the job's result is combined (so ``run`` returns at once), once
    per plan (:attr:`result`).

    Attributes:
        compute: a callable returning the :class:`Direct` result.
        center: an equivalent evaluation (``K = 1``) the inner primitive runs as the centre
            instead of the user's pub.
        exact_center: whether ``compute`` gives the centre's result; the wrapper then sends
            no centre pub where the pub's precision is zero (estimators only).
        metadata: per-pub metadata the method wants reported.
    """

    compute: Callable[[], Direct]
    center: Evaluation | None = None
    exact_center: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)

    #: a direct plan sends no evaluations but the centre, and weighs no values
    evaluations: ClassVar[tuple[Evaluation, ...]] = ()
    center_weights: ClassVar[None] = None

    @cached_property
    def result(self) -> Direct:
        """``compute()``, called once."""
        return self.compute()

    def computed_center(self) -> PubResult:
        """The centre's result that ``compute`` gives (a ``ValueError`` if it gives none
        although ``exact_center`` says it does)."""
        center = self.result.center
        if center is None:
            raise ValueError(
                "the method's DirectPlan has exact_center=True, but its compute() returned a "
                "Direct result with center=None; return the centre's PubResult or set "
                "exact_center=False"
            )
        return center


#: what a gradient method's ``plan`` returns: evaluations with their combination, or a
#: direct result
MethodPlan: TypeAlias = Plan | DirectPlan


class MetricPlanLike(Protocol):
    """A metric method's plan for one pub, as the pipeline reads it (the metric family's
    :class:`~qprim_grad.methods.metric.MetricPlan`)."""

    @property
    def evaluations(self) -> Sequence[Evaluation]:
        """Inner pubs to run, in the run's job."""
        ...

    @property
    def combine(self) -> Callable[[list[tuple[np.ndarray, np.ndarray]]], Any]:
        """``[(evs, variances) per evaluation] -> SlotTensor``."""
        ...

    @property
    def jacobian(self) -> Any:
        """``d slot / d theta`` (``None``: the slots are the parameters)."""
        ...

    @property
    def center(self) -> Evaluation | None:
        """An evaluation to use as the centre when the metric runs alone."""
        ...

    @property
    def direct(self) -> Callable[[], list[tuple[np.ndarray, np.ndarray]]] | None:
        """The evaluations' ``(evs, variances)`` computed without the inner primitive."""
        ...

    @property
    def direct_center(self) -> Callable[[], PubResult] | None:
        """The centre's result computed without the inner primitive."""
        ...


class MetricLike(Protocol):
    """A metric method, as the pipeline uses it (the metric family's
    :class:`~qprim_grad.methods.metric.MetricMethod`)."""

    @property
    def name(self) -> str: ...

    @property
    def derivative_type(self) -> str: ...

    @property
    def phase_fix(self) -> bool: ...

    @property
    def options(self) -> dict[str, Any]: ...

    def plan(self, task: PubTask) -> MetricPlanLike: ...


@dataclass(frozen=True)
class MetricWork:
    """The metric's part of one pub's work (:class:`~qprim_grad.QGTEstimator`,
    ``GradientEstimator(..., metric=...)``).

    Attributes:
        method: the metric method.
        plan: its plan for this pub.
        slots: the inner pubs of the plan's evaluations (set by the lay-out phase).
        direct: whether the plan's evaluations are computed without the inner primitive
            (``plan.direct``, where the pub's precision is zero; set by the lay-out phase).
        results: the inner results of ``slots`` (set when the job's result is combined).
    """

    method: MetricLike
    plan: MetricPlanLike
    slots: tuple[int, ...] = ()
    direct: bool = False
    results: tuple[PubResult, ...] = ()


@dataclass(frozen=True)
class PubWork:
    """One pub on its way through a run (an immutable value: each phase derives the next one
    with :func:`dataclasses.replace`): its task and plan(s), and where its inner pubs sit in
    the run's flat list of inner pubs (set by the lay-out phase).

    Attributes:
        task: the coerced pub as the method sees it.
        pub: the coerced user pub.
        plan: the gradient method's plan.
        center_slot: the centre's inner pub (``-1``: computed without the inner primitive).
        eval_slots: the inner pubs of ``plan.evaluations``, in order.
        metric_work: the metric's part, or ``None`` without a metric.
    """

    task: PubTask
    pub: Any
    plan: MethodPlan
    center_slot: int = -1
    eval_slots: tuple[int, ...] = ()
    metric_work: MetricWork | None = None

    @property
    def metric_slots(self) -> tuple[int, ...]:
        """The inner pubs of the metric's evaluations (none without a metric)."""
        return () if self.metric_work is None else self.metric_work.slots

    @property
    def metric(self) -> MetricLike:
        """The metric method (a ``ValueError`` without a metric)."""
        return self._metric_work().method

    @property
    def metric_plan(self) -> MetricPlanLike:
        """The metric's plan (a ``ValueError`` without a metric)."""
        return self._metric_work().plan

    def _metric_work(self) -> MetricWork:
        if self.metric_work is None:
            raise ValueError(f"pub {self.task.index} has no metric")
        return self.metric_work
