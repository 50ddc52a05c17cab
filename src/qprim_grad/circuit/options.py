"""Options several methods share, each defined and validated in one place: the derivative
type (:class:`DerivativeType`, :func:`derivative_type_name`), the finite-difference scheme
(:func:`check_scheme`) and the difference step (:func:`check_epsilon`)."""

from __future__ import annotations

import math
from enum import Enum
from typing import Any

import numpy as np

from ..compat import peer_derivative_type_value
from ..errors import GradientMethodError

__all__ = [
    "DERIVATIVE_TYPES",
    "FINITE_DIFFERENCE_SCHEMES",
    "DerivativeType",
    "check_bool",
    "check_epsilon",
    "check_pass_manager",
    "check_scheme",
    "derivative_type_name",
]


class DerivativeType(Enum):
    """Which part of ``2 <psi|O|d psi>`` a linear-combination gradient returns.

    Interchangeable with qiskit-algorithms' and qiskit-machine-learning's ``DerivativeType``
    without importing either (:func:`qprim_grad.compat.peer_derivative_type_value`): members
    compare and hash equal to the same-named members of those two enums (in both orders, and
    they are one key in a dict), and the constructor accepts our members, theirs and the
    strings ``"real"``, ``"imag"``, ``"complex"`` (any case)::

        >>> DerivativeType("IMAG") is DerivativeType.IMAG
        True
    """

    REAL = "real"
    IMAG = "imag"
    COMPLEX = "complex"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DerivativeType):
            return self is other
        theirs = peer_derivative_type_value(other)
        return NotImplemented if theirs is None else theirs == self.value

    # Enum hashes a member by its name, as qiskit-algorithms' enum does: equal members of
    # the two enums are one dict key.
    __hash__ = Enum.__hash__

    @classmethod
    def _missing_(cls, value: object) -> DerivativeType:
        """Members of the peers' ``DerivativeType`` enums and strings in any case."""
        value = peer_derivative_type_value(value) or value
        if isinstance(value, str) and value.lower() in {member.value for member in cls}:
            return cls(value.lower())
        raise ValueError(
            f"unknown derivative type {value!r}; use DerivativeType.REAL, .IMAG or .COMPLEX "
            "(from qprim_grad or qiskit-algorithms) or 'real', 'imag', 'complex'"
        )


#: the derivative types' names, in :class:`DerivativeType` order
DERIVATIVE_TYPES: tuple[str, ...] = tuple(member.value for member in DerivativeType)


def derivative_type_name(
    value: Any, choices: tuple[str, ...] = DERIVATIVE_TYPES, what: str = ""
) -> str:
    """``"real"``, ``"imag"`` or ``"complex"`` from anything :class:`DerivativeType` accepts (a
    string in any case, our member or a peer's); a :class:`GradientMethodError` naming
    ``choices`` otherwise (``what`` qualifies the option in the message, e.g.
    ``" for a metric"``)."""
    try:
        name = DerivativeType(value).value
    except (TypeError, ValueError):
        name = None
    if name in choices:
        return str(name)
    raise GradientMethodError(
        f"unknown derivative_type {value!r}{what}; use one of {', '.join(choices)}"
    )


#: the finite-difference schemes
FINITE_DIFFERENCE_SCHEMES: tuple[str, ...] = ("central", "forward", "backward")


def check_scheme(scheme: str) -> str:
    """``scheme`` if it is a finite-difference scheme, else a :class:`GradientMethodError`."""
    if scheme not in FINITE_DIFFERENCE_SCHEMES:
        raise GradientMethodError(
            f"unknown finite-difference scheme {scheme!r}; use 'central', 'forward' or 'backward'"
        )
    return scheme


def check_epsilon(epsilon: Any, method: str = "") -> float:
    """``epsilon`` as a positive finite float, else a :class:`GradientMethodError` (naming
    ``method`` if given)."""
    prefix = f"{method}: " if method else ""
    try:
        value = float(epsilon)
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(epsilon, bool) or not math.isfinite(value) or value <= 0:
        raise GradientMethodError(f"{prefix}epsilon must be a positive number, got {epsilon!r}")
    return value


def check_bool(value: Any, name: str, who: str = "") -> bool:
    """``value`` if it is a ``bool`` (or numpy bool), else a :class:`GradientMethodError`
    naming the option (a string such as ``"False"`` is refused, not read as true)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    prefix = f"{who}: " if who else ""
    raise GradientMethodError(
        f"{prefix}{name} must be True or False, got {value!r} ({type(value).__name__})"
    )


def check_pass_manager(pass_manager: Any, who: str = "") -> Any:
    """``None`` or an object with a ``run`` method (a qiskit ``PassManager`` or
    ``StagedPassManager``), else a :class:`GradientMethodError`."""
    if pass_manager is None or callable(getattr(pass_manager, "run", None)):
        return pass_manager
    prefix = f"{who}: " if who else ""
    raise GradientMethodError(
        f"{prefix}pass_manager must be a qiskit PassManager (an object with a run() method, "
        f"e.g. generate_preset_pass_manager(...)) or None, got {pass_manager!r}"
    )
