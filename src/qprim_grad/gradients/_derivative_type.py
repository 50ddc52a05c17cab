"""``DerivativeType``: which part of ``2 <psi|O|d psi>`` a gradient or QGT returns."""

from __future__ import annotations

from enum import Enum
from typing import Any

__all__ = ["DerivativeType", "as_derivative_type"]


class DerivativeType(Enum):
    """Which part of ``2 <psi|O|d psi>`` a linear-combination gradient returns.

    Interchangeable with qiskit-algorithms' (and qiskit-machine-learning's) ``DerivativeType``
    without importing either: members compare and hash equal to the same-named members of any
    enum called ``DerivativeType`` (``DerivativeType.REAL == qiskit_algorithms.gradients.
    DerivativeType.REAL``, in both orders, and they are one key in a dict), and the
    constructor is the one normalisation every derivative-type argument goes through: it
    accepts our members, theirs and the strings ``"real"``, ``"imag"``, ``"complex"`` (any
    case)::

        >>> DerivativeType("IMAG") is DerivativeType.IMAG
        True
    """

    REAL = "real"
    IMAG = "imag"
    COMPLEX = "complex"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DerivativeType):
            return self is other
        if isinstance(other, Enum) and type(other).__name__ == "DerivativeType":
            return bool(getattr(other, "value", None) == self.value)
        return NotImplemented

    # Enum hashes a member by its name, as qiskit-algorithms' enum does: equal members of
    # the two enums are one dict key.
    __hash__ = Enum.__hash__

    @classmethod
    def _missing_(cls, value: object) -> DerivativeType:
        """Members of another ``DerivativeType`` enum and strings in any case."""
        if isinstance(value, Enum) and type(value).__name__ == "DerivativeType":
            value = value.value
        if isinstance(value, str) and value.lower() in cls._value2member_map_:
            return cls(value.lower())
        raise ValueError(
            f"unknown derivative type {value!r}; use DerivativeType.REAL, .IMAG or .COMPLEX "
            "(from qprim_grad or qiskit-algorithms) or 'real', 'imag', 'complex'"
        )


def as_derivative_type(value: Any) -> DerivativeType:
    """``value`` (our ``DerivativeType``, qiskit-algorithms' or a string) as our
    :class:`DerivativeType`; a clear ``ValueError`` for anything else."""
    return DerivativeType(value)
