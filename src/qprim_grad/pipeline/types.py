"""The pipeline's value types: a coerced pub as a method sees it (:class:`PubTask`), the
points a method asks to evaluate (:class:`Evaluation`), its :class:`Plan`, and one pub on its
way through a run (:class:`PubWork`).

A plan lists the extra evaluations the inner primitive must run and the linear map
(``weights``) that turns their results into derivatives. The generic primitive adds the
unshifted pub itself as evaluation ``0`` (the *centre*), sends every evaluation of every pub
in one inner job, and combines::

    grads[..., j] = sum_e sum_k weights_e[k, ..., j] * values_e[k, ...]

``values_e`` are expectation values (estimator) or outcome probabilities (sampler); the
same map applied to variances gives the standard errors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np
from qiskit.circuit import Parameter, QuantumCircuit
from qiskit.primitives.containers import ObservablesArray

__all__ = ["PubTask", "Evaluation", "Plan", "PubWork"]


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
class Plan:
    """What a method needs evaluated for one pub, and how to combine it (an immutable value:
    derive a changed plan with :func:`dataclasses.replace`).

    Attributes:
        evaluations: extra evaluations (the centre is always evaluated by the wrapper).
        center: an equivalent evaluation (``K = 1``) to use as the centre instead of the
            user's pub, e.g. a rewritten circuit that the inner primitive handles correctly.
        center_weights: weights ``(1, *w_shape, P)`` applied to the centre values, or ``None``.
        direct_grads: derivatives computed without the inner primitive (e.g. ``reverse``),
            shape ``shape + (P,)``, added to the combination; may be a callable, evaluated
            when the job's result is combined (so ``run`` returns at once).
        metadata: per-pub metadata the method wants reported.
        direct_center: the centre's result (a ``PubResult`` with ``evs`` and ``stds``, or a
            callable returning it) computed without the inner primitive, exactly as the inner
            primitive would give it; the wrapper then sends no centre pub (estimators only,
            and only where the pub's precision is zero).
        direct_fields: further result fields the method computed itself (e.g. ``hessian``),
            a dict or a callable returning one, evaluated when the result is combined.
        parameter_map: when the evaluated circuits carry each differentiated gate argument
            as its own parameter: those parameters and the constant (sparse) Jacobian
            ``d argument / d theta`` of shape ``(G, P)``. Lets an outer wrapper map an inner
            gradient estimator's derivatives back to the user's parameters.
        chain_rule: as ``parameter_map`` for arguments that are not affine in the
            parameters: a callable returning those parameters, the Jacobian
            ``S + (G, P)`` and the curvature ``d^2 argument / d theta_i d theta_j``
            ``S + (G, P, P)`` at the pub's values (the second-order chain rule).
    """

    evaluations: list[Evaluation] = field(default_factory=list)
    center: Evaluation | None = None
    center_weights: np.ndarray | None = None
    direct_grads: np.ndarray | Callable[[], np.ndarray] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    parameter_map: tuple[tuple[Parameter, ...], Any] | None = None
    chain_rule: Callable[[], tuple[tuple[Parameter, ...], Any, Any]] | None = None
    direct_center: Any = None
    direct_fields: Any = None

    def resolve_direct_grads(self) -> np.ndarray | None:
        """``direct_grads``, calling it if it is a callable (the plan is left as it is: the
        pipeline resolves each direct value once per result and passes it along)."""
        return cast("np.ndarray | None", _called(self.direct_grads))

    def resolve_direct_center(self) -> Any:
        """``direct_center``, calling it if it is a callable."""
        return _called(self.direct_center)

    def resolve_direct_fields(self) -> dict[str, Any]:
        """``direct_fields`` (empty if none), calling it if it is a callable."""
        return dict(_called(self.direct_fields) or {})


def _called(value: Any) -> Any:
    """A lazily given value: the callable's result, or the value itself."""
    return value() if callable(value) else value


@dataclass(frozen=True)
class PubWork:
    """One pub on its way through a run (an immutable value: each phase derives the next one
    with :func:`dataclasses.replace`): its task and plan(s), and where its inner pubs sit in
    the run's flat list of inner pubs (set by the lay-out phase).

    Attributes:
        task: the coerced pub as the method sees it.
        pub: the coerced user pub.
        plan: the gradient method's plan.
        center_slot: the centre's inner pub (``-1``: the plan computes the centre itself).
        eval_slots: the inner pubs of ``plan.evaluations``, in order.
        metric: the metric method (``QGTEstimator``, ``GradientEstimator(..., metric=...)``).
        metric_plan: the metric's plan for this pub.
        metric_slots: the inner pubs of the metric's evaluations.
        metric_results: their results (set when the job's result is combined).
        metric_direct: whether the metric plan computes its evaluations itself.
    """

    task: PubTask
    pub: Any
    plan: Plan
    center_slot: int = -1
    eval_slots: tuple[int, ...] = ()
    metric: Any = None
    metric_plan: Any = None
    metric_slots: tuple[int, ...] = ()
    metric_results: tuple[Any, ...] = ()
    metric_direct: bool = False
