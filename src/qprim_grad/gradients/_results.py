"""The results of the facades' ``run`` and the job that converts to them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..pipeline.job import ForwardingJob, GradientJob

__all__ = [
    "EstimatorGradientResult",
    "SamplerGradientResult",
    "QGTResult",
    "QFIResult",
    "GradientFacadeJob",
]


@dataclass(frozen=True)
class EstimatorGradientResult:
    """Gradients of expectation values: ``gradients[i]`` is a 1-D array over parameters.

    ``options`` holds qiskit-algorithms' run options (``{"precision": ...}``) when given.
    """

    gradients: list[np.ndarray]
    metadata: list[dict[str, Any]]
    precision: float | Sequence[float] | None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SamplerGradientResult:
    """Gradients of outcome probabilities: ``gradients[i][j]`` is ``{outcome: dp/d theta_j}``.

    ``options`` holds qiskit-algorithms' run options (``{"shots": ...}``) when given.
    """

    gradients: list[list[dict[int, float]]]
    metadata: list[dict[str, Any]]
    shots: int | Sequence[int] | None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QGTResult:
    """QGTs: ``qgts[i]`` is ``(P_i, P_i)``, complex for ``DerivativeType.COMPLEX``, else real."""

    qgts: list[np.ndarray]
    derivative_type: Any
    metadata: list[dict[str, Any]] | list[list[dict[str, Any]]]
    precision: float | Sequence[float] | None


@dataclass(frozen=True)
class QFIResult:
    """QFIs: ``qfis[i] = 4 Re qgt_i``."""

    qfis: list[np.ndarray]
    metadata: Any
    precision: float | Sequence[float] | None


class GradientFacadeJob(ForwardingJob):
    """The job of a facade ``run``: wraps the primitive's :class:`~qprim_grad.GradientJob`
    and converts its result once, on first ``result()``."""

    def __init__(self, job: GradientJob, convert: Callable[[Any], Any]) -> None:
        super().__init__(job, job.job_id())
        self._convert = convert
        self._lock = threading.Lock()
        self._result: Any = None

    @property
    def primitive_job(self) -> GradientJob:
        """The gradient primitive's job (its ``inner_job_ids`` name the provider's jobs)."""
        return self._job

    def result(self) -> Any:
        with self._lock:
            if self._result is None:
                self._result = self._convert(self._job.result())
            return self._result
