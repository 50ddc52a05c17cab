"""What one SPSA iteration passes between its pure steps (:mod:`.spsa_steps`):
the directions, the plan of a batched job, the estimate from the losses, a decided step.
All frozen values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .steps import estimate, perturbation_points

__all__ = ["BatchPlan", "Directions", "Estimate", "Step"]


@dataclass(frozen=True)
class Directions:
    """The random directions of iteration ``k`` and its perturbation ``eps``."""

    k: int
    eps: float
    first: np.ndarray
    second: np.ndarray | None

    @property
    def count(self) -> int:
        return int(self.first.shape[0])

    def row(self, i: int) -> Directions:
        """The ``i``-th resampling alone."""
        second = None if self.second is None else self.second[i : i + 1]
        return Directions(self.k, self.eps, self.first[i : i + 1], second)

    def around(self, center: np.ndarray, hessian_points: bool = True) -> np.ndarray:
        """The perturbation points around ``center`` (with 2-SPSA's if ``hessian_points``)."""
        second = self.second if hessian_points else None
        return perturbation_points(center, self.eps, self.first, second)

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "eps": self.eps, "first": self.first, "second": self.second}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Directions:
        second = data["second"]
        second = None if second is None else np.asarray(second, dtype=float)
        return cls(int(data["k"]), float(data["eps"]), np.asarray(data["first"]), second)


@dataclass(frozen=True)
class Estimate:
    """What the losses at the perturbations say: mean value, gradient, Hessian sample."""

    value: float
    gradient: np.ndarray
    hessian: np.ndarray | None

    @classmethod
    def of(cls, values: np.ndarray, directions: Directions) -> Estimate:
        """From the losses at ``directions.around(centre)`` (SPSA's, 2-SPSA's estimates)."""
        d = directions
        return cls(*estimate(values, d.eps, d.first, d.second))


@dataclass(frozen=True)
class Step:
    """A proposed step once decided: what callback, history, log and termination checker get."""

    k: int
    x: np.ndarray
    fx: float
    size: float
    accepted: bool


@dataclass(frozen=True)
class BatchPlan:
    """The points of one batched SPSA job, in order: centre | final-point options | repeats |
    perturbations around the candidate | (``branches == 2``) perturbations around the
    current iterate, used if the candidate is rejected."""

    k: int
    gradient_now: bool
    num_finals: int
    repeats: int
    directions: Directions | None
    branch_size: int
    branches: int
    rng: dict[str, Any]

    def perturbation_values(self, values: np.ndarray, branch: int = 0) -> np.ndarray:
        start = 1 + self.num_finals + self.repeats + branch * self.branch_size
        return values[start : start + self.branch_size]
