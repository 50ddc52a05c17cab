"""Result object and support levels, compatible with qiskit-algorithms without importing it
at import time."""

from __future__ import annotations

import sys
from enum import IntEnum
from typing import Any

__all__ = ["OptimizerSupportLevel", "OptimizerResult", "make_result"]


class OptimizerSupportLevel(IntEnum):
    """Same members and values as ``qiskit_algorithms.optimizers.OptimizerSupportLevel``."""

    not_supported = 0
    ignored = 1
    supported = 2
    required = 3


class OptimizerResult:
    """Minimal stand-in for ``qiskit_algorithms.optimizers.OptimizerResult``."""

    def __init__(self) -> None:
        self.x: Any = None
        self.fun: float | None = None
        self.jac: Any = None
        self.nfev: int | None = None
        self.njev: int | None = None
        self.nit: int | None = None

    def __repr__(self) -> str:
        return f"OptimizerResult(fun={self.fun}, nfev={self.nfev}, nit={self.nit}, x={self.x})"


def make_result(**fields: Any) -> Any:
    """A qiskit-algorithms ``OptimizerResult`` if that package is in use (already imported,
    so that a plain run never pays for importing it), else ours; extra fields (``history``,
    ``state``, ``jobs``) are set as attributes."""
    result: Any = OptimizerResult()
    if "qiskit_algorithms" in sys.modules:
        try:
            from qiskit_algorithms.optimizers import OptimizerResult as QAResult

            result = QAResult()
        except ImportError:  # pragma: no cover - broken installation
            pass
    for name, value in fields.items():
        setattr(result, name, value)
    return result
