"""Optimizer results (qiskit-algorithms' ``OptimizerResult`` when installed, else ours with the
same fields) and support levels."""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from ..compat import peer_optimizer_result

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
    """A qiskit-algorithms ``OptimizerResult`` when that package is installed
    (:func:`qprim_grad.compat.peer_optimizer_result`), else ours; extra fields (``history``,
    ``state``, ``jobs``) are set as attributes."""
    result: Any = (peer_optimizer_result() or OptimizerResult)()
    for name, value in fields.items():
        setattr(result, name, value)
    return result
