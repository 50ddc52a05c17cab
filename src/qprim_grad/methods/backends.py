"""What the package needs to know about optional simulator packages, asked in one place."""

from __future__ import annotations

from typing import Any

__all__ = ["aer_estimator"]


def aer_estimator(primitive: Any) -> Any | None:
    """``primitive`` if it is qiskit-aer's ``EstimatorV2`` (with qiskit-aer installed), else
    ``None``. qiskit-aer is imported only for primitives that come from it."""
    if not type(primitive).__module__.startswith("qiskit_aer"):
        return None
    try:
        from qiskit_aer.primitives import EstimatorV2 as AerEstimatorV2
    except ImportError:  # pragma: no cover - aer is optional
        return None
    return primitive if isinstance(primitive, AerEstimatorV2) else None
