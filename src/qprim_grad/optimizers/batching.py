"""Batched losses (``__call__(x) -> float`` and ``batch(X) -> array``) and the evaluation
of a loss at many points: one ``batch`` call, or qiskit-algorithms' grouped calls.

>>> import numpy as np
>>> square = batched(lambda X: np.sum(np.atleast_2d(X) ** 2, axis=1))
>>> evaluate(square, np.ones((2, 3)), None).tolist(), num_calls(5, 2)
([3.0, 3.0], 3)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, cast, runtime_checkable

import numpy as np

__all__ = [
    "BatchedLoss",
    "batched",
    "is_batched",
    "evaluate_grouped",
    "evaluate_batch",
    "evaluate",
    "num_calls",
    "single_value",
]


@runtime_checkable
class BatchedLoss(Protocol):
    """A loss that evaluates many points at once (for a primitive-backed loss: in one job)."""

    def __call__(self, x: np.ndarray) -> float: ...

    def batch(self, points: np.ndarray) -> np.ndarray: ...


def is_batched(fun: Any) -> bool:
    """Whether ``fun`` has a callable ``batch`` method."""
    return callable(getattr(fun, "batch", None))


def single_value(
    value: Any, message: str = "The loss returned {} values where one was expected."
) -> float:
    """The real part of the one value in ``value``; else a ``ValueError`` with ``message``
    (its ``{}`` is the number of values)."""
    array = np.asarray(value)
    if array.size != 1:
        raise ValueError(message.format(array.size))
    return float(np.real(array.reshape(-1)[0]))


class _Batched:
    """See :func:`batched`."""

    def __init__(self, fun: Callable[[np.ndarray], Any], args: tuple = ()) -> None:
        self.fun = fun
        self.args = args

    def __call__(self, x: np.ndarray) -> float:
        return single_value(self.fun(np.asarray(x, dtype=float), *self.args))

    def batch(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(self.fun(np.asarray(points, dtype=float), *self.args), dtype=float)


def batched(fun: Callable[..., Any], args: tuple = ()) -> BatchedLoss:
    """Mark a vectorised function (``fun(X)`` for ``X`` of shape ``(k, n)`` returns ``k``
    values) as a batched loss, so SPSA evaluates each iteration in one call."""
    if is_batched(fun) and not args:
        return cast(BatchedLoss, fun)
    return _Batched(fun, args)


def evaluate_batch(fun: Any, points: np.ndarray) -> np.ndarray:
    """``fun.batch(points)`` as a flat float array, checked against the number of points."""
    values = np.asarray(fun.batch(points), dtype=np.float64).reshape(-1)
    if values.size != len(points):
        raise ValueError(f"loss.batch returned {values.size} values for {len(points)} points.")
    return values


def num_calls(num_points: int, max_evals_grouped: int | None) -> int:
    """How many calls :func:`evaluate_grouped` makes for ``num_points`` points."""
    if max_evals_grouped is None or max_evals_grouped <= 1:
        return num_points
    return -(-num_points // max_evals_grouped)


def evaluate_grouped(
    fun: Callable[[Any], Any], points: np.ndarray, max_evals_grouped: int | None
) -> list[float]:
    """Evaluate a plain callable at ``points`` like qiskit-algorithms does: one point per call,
    or chunks of at most ``max_evals_grouped`` points passed as a 2-D array."""
    points = np.asarray(points, dtype=float)
    if max_evals_grouped is None or max_evals_grouped <= 1:
        return [single_value(fun(point)) for point in points]
    values: list[float] = []
    for chunk in np.array_split(points, num_calls(len(points), max_evals_grouped)):
        values += [float(np.real(v)) for v in np.ravel(np.asarray(fun(chunk)))]
    return values


def evaluate(fun: Any, points: np.ndarray, max_evals_grouped: int | None) -> np.ndarray:
    """The loss at ``points``: one ``batch`` call for a batched loss, else
    :func:`evaluate_grouped`."""
    if is_batched(fun):
        return evaluate_batch(fun, points)
    return np.asarray(evaluate_grouped(fun, points, max_evals_grouped))
