"""What one SPSA iteration passes between its pure steps (:mod:`.schedule`) and the runner:
the directions, the plan of a batched job, the estimate from the losses, a decided step.
All frozen values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .steps import estimate, perturbation_points

__all__ = ["BatchPlan", "Center", "Directions", "Estimate", "Step"]


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
    """The points of one batched job: centre | final-point options | repeats | perturbations."""

    k: int
    gradient_now: bool
    center: np.ndarray
    num_finals: int
    repeats: int
    directions: Directions | None
    points: np.ndarray
    rng: dict[str, Any]

    @property
    def where(self) -> str:
        return f"iteration {self.k}" if self.gradient_now else "final evaluation"

    def perturbation_values(self, values: np.ndarray) -> np.ndarray:
        return values[1 + self.num_finals + self.repeats :]


@dataclass(frozen=True)
class Center:
    """What the centre value of a batched job decided."""

    step: Step | None
    accepted: bool
    final_value: float | None
