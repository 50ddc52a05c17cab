"""``DerivativeType``: which part of ``2 <psi|O|d psi>`` a gradient or QGT returns (the one
enum of :mod:`qprim_grad.circuit.options`, under its seed-compatible name)."""

from __future__ import annotations

from typing import Any

from ..circuit.options import DerivativeType

__all__ = ["DerivativeType", "as_derivative_type"]


def as_derivative_type(value: Any) -> DerivativeType:
    """``value`` (our ``DerivativeType``, qiskit-algorithms' or a string) as our
    :class:`DerivativeType`; a clear ``ValueError`` for anything else."""
    return DerivativeType(value)
