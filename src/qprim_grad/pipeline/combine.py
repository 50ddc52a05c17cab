"""The combination phase: inner results -> derivatives and their standard errors (the same
linear map on values and on variances), and second derivatives of nested gradient estimators."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from scipy import sparse

from .types import ArgumentMap, DirectPlan, MethodPlan, Plan, PubTask, PubWork

__all__ = [
    "linear_combination",
    "combine_plan",
    "combine_with_errors",
    "square",
    "nested_derivatives",
]


def linear_combination(values: np.ndarray, weights: Any) -> np.ndarray:
    """``sum_k weights[k, ..., j] * values[k, ..., m]`` -> shape ``S + (P, M)``.

    ``values`` has shape ``(K,) + S + (M,)``; ``weights`` is a sparse ``(K, P)`` matrix or a
    dense array ``(K,) + w + (P,)`` with ``w`` broadcastable to ``S``.
    """
    num_points = values.shape[0]
    shape = values.shape[1:-1]
    outcomes = values.shape[-1]
    if sparse.issparse(weights):
        flat = values.reshape(num_points, -1).T  # (S*M, K)
        combined = (
            np.asarray(weights.T @ flat.T).T if flat.size else np.zeros((0, weights.shape[1]))
        )
        combined = combined.reshape(shape + (outcomes, weights.shape[1]))
        return np.swapaxes(combined, -1, -2)
    weights = np.asarray(weights)
    # (*S, M, K) @ (*w, K, P) -> (*S, M, P): a batched matrix product over the points
    combined = np.moveaxis(values, 0, -1) @ np.moveaxis(weights, 0, -2)
    return np.swapaxes(combined, -1, -2)


def combine_plan(
    plan: MethodPlan,
    center: np.ndarray,
    evaluated: list[np.ndarray],
    shape: tuple[int, ...],
    width: int,
    *,
    variances: bool = False,
) -> np.ndarray:
    """Gradients ``S + (width, M)`` from centre values ``(1,) + S + (M,)`` and evaluation
    values ``(K,) + S + (M,)``; with ``variances=True`` the inputs are variances and the
    weights are squared (independent estimates). A :class:`DirectPlan` weighs no values
    (zeros)."""
    total = np.zeros(shape + (width, center.shape[-1]))
    pairs = [(e.weights, v) for e, v in zip(plan.evaluations, evaluated)]
    if plan.center_weights is not None:
        pairs.append((plan.center_weights, center))
    for weights, values in pairs:
        total = total + linear_combination(values, square(weights) if variances else weights)
    return total


def combine_with_errors(
    plan: MethodPlan,
    center: tuple[np.ndarray, np.ndarray],
    evaluated: list[tuple[np.ndarray, np.ndarray]],
    shape: tuple[int, ...],
    width: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(derivatives, standard errors), each ``S + (width, M)``, from (values, variances)
    pairs of the centre ``(1,) + S + (M,)`` and of each evaluation ``(K,) + S + (M,)``; for a
    :class:`DirectPlan`, its computed derivatives with zero standard errors."""
    grads = combine_plan(plan, center[0], [v for v, _ in evaluated], shape, width)
    variance = combine_plan(
        plan, center[1], [var for _, var in evaluated], shape, width, variances=True
    )
    if isinstance(plan, DirectPlan):
        grads = grads + _direct_grads(plan.result.grads, grads.shape)
    return grads, np.sqrt(np.maximum(np.real(variance), 0.0))


def _direct_grads(grads: Any, shape: tuple[int, ...]) -> np.ndarray:
    """A direct plan's derivatives in the combination's ``shape`` (``S + (P, M)``)."""
    grads = np.asarray(grads)
    if grads.size != int(np.prod(shape)):
        expected = shape[:-1] if shape[-1] == 1 else shape
        raise ValueError(
            f"the method's DirectPlan computed grads of shape {grads.shape}; expected "
            f"{expected}: the pub's shape, one column per differentiated parameter (and the "
            "outcomes of a sampler pub)"
        )
    return np.reshape(grads, shape)


def square(weights: Any) -> Any:
    """Element-wise ``|w|^2`` of dense or sparse weights."""
    if sparse.issparse(weights):
        return abs(weights).power(2)
    return np.abs(np.asarray(weights)) ** 2


def nested_derivatives(work: PubWork, center: Any, evaluated: list[Any]) -> dict[str, Any]:
    """Derivatives of the inner result's ``grads`` when the wrapped primitive is itself a
    gradient estimator: ``hessian`` (and ``hessian_stds``).

    * When the inner results differentiate the user's circuit parameters: shape
      ``pub.shape + (P_inner, P)``, ``hessian[..., i, j] = d grads_inner[..., i] / d theta_j``.
    * When the method evaluated a rewritten circuit (shared parameters, affine
      expressions), the inner derivatives are mapped back through the chain rule
      (``H = J^T d^2E/d phi^2 J``, plus ``sum_g dE/d phi_g d^2 phi_g/d theta^2`` for
      non-affine expressions): shape ``pub.shape + (P, P)``.
    * A :class:`DirectPlan`: the fields it computed (e.g. ``reverse`` around a ``reverse``
      gradient estimator: ``hessian`` by forward-over-reverse).
    * Otherwise (an inner estimator of other parameters): ``{}``.
    """
    plan = work.plan
    if isinstance(plan, DirectPlan):
        return dict(plan.result.fields)
    inner_parameters = _inner_parameters(center, evaluated)
    if inner_parameters is None:
        return {}
    columns = _InnerColumns.of(plan.arguments, work.task, inner_parameters)
    if columns is None:
        return {}
    return _second_derivatives(plan, work.task, center, evaluated, columns)


def _inner_parameters(center: Any, evaluated: list[Any]) -> list[Any] | None:
    """The parameters every inner result differentiates (``None`` if there are no inner
    gradients to differentiate, or the results disagree)."""
    inner_grads = getattr(center.data, "grads", None)
    if inner_grads is None or not isinstance(inner_grads, np.ndarray):
        return None
    inner_parameters = [result.metadata.get("parameters") for result in [center, *evaluated]]
    if any(params != inner_parameters[0] or params is None for params in inner_parameters):
        return None
    return cast("list[Any] | None", inner_parameters[0])


@dataclass(frozen=True)
class _InnerColumns:
    """Which columns of the inner ``grads`` to differentiate, and how they map to the
    user's parameters (``jacobian``, ``curvature``: ``None`` when they are the parameters)."""

    width: int
    columns: list[int]
    jacobian: Any = None
    curvature: Any = None

    @classmethod
    def of(
        cls, arguments: ArgumentMap | None, task: PubTask, inner_parameters: list[Any]
    ) -> _InnerColumns | None:
        """The columns when the inner results differentiate the circuit's parameters, or
        the slot parameters of the plan's :class:`ArgumentMap`; else ``None``."""
        expected = list(task.circuit.parameters)
        width = len(inner_parameters)
        if inner_parameters == expected:
            return cls(width, list(range(len(expected))))
        if arguments is None:
            return None
        position = {p: i for i, p in enumerate(inner_parameters)}
        if any(p not in position for p in arguments.parameters):
            return None
        curvature = None if arguments.curvature is None else arguments.curvature()
        columns = [position[p] for p in arguments.parameters]
        return cls(width, columns, arguments.jacobian, curvature)

    def pair(self, result: Any) -> tuple[np.ndarray, np.ndarray]:
        """(the chosen columns of ``grads``, their variances) of one inner result."""
        return self.field(result, "grads"), self.field(result, "grad_stds") ** 2

    def field(self, result: Any, name: str) -> np.ndarray:
        zeros = np.zeros(result.data.shape + (self.width,))
        return np.asarray(getattr(result.data, name, zeros))[..., self.columns]


def _second_derivatives(
    plan: Plan, task: PubTask, center: Any, evaluated: list[Any], inner: _InnerColumns
) -> dict[str, np.ndarray]:
    """The plan's combination applied to the inner gradients, mapped to the parameters."""
    center_mean, center_var = inner.pair(center)
    hessian, stds = combine_with_errors(
        plan,
        (center_mean[None], center_var[None]),
        [inner.pair(result) for result in evaluated],
        task.shape,
        task.num_parameters,
    )  # S + (P, columns)
    variance = stds**2
    if inner.jacobian is not None:  # columns are gate arguments: map them to the parameters
        jacobian = inner.jacobian
        dense = jacobian.toarray() if sparse.issparse(jacobian) else np.asarray(jacobian)
        hessian = hessian @ dense
        variance = variance @ dense**2
    if inner.curvature is not None:  # + sum_g dE/d phi_g d^2 phi_g / d theta_i d theta_j
        curvature = inner.curvature
        hessian = hessian + np.einsum("...g,...gij->...ji", center_mean, curvature)
        variance = variance + np.einsum("...g,...gij->...ji", center_var, curvature**2)
    return {
        "hessian": np.array(np.swapaxes(hessian, -1, -2)),
        "hessian_stds": np.sqrt(np.swapaxes(variance, -1, -2)),
    }
