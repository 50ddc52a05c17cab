"""Shift rules as data.

A :class:`ShiftRule` is a frozen record of shifts ``s_k`` and coefficients ``c_k`` such that
``f'(x) = sum_k c_k f(x + s_k)`` for every function ``f`` that is a trigonometric
polynomial with the rule's frequencies. Gates map to the frequencies of each of their
arguments (:data:`GATE_FREQUENCIES`, derived from the gate table
:data:`qprim_grad.circuit.gates.GATES`); rules follow from frequencies by a small cached linear
solve, so a new gate is one row of that table.

Example:
    >>> from qprim_grad.rules import rule_for_gate
    >>> rule = rule_for_gate("rx")[0]
    >>> [round(s, 4) for s in rule.shifts], rule.coefficients
    ([1.5708, -1.5708], (0.5, -0.5))
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .circuit.gates import GATE_FREQUENCIES
from .circuit.options import check_scheme

__all__ = [
    "ShiftRule",
    "GATE_FREQUENCIES",
    "rule_for_frequencies",
    "rule_for_gate",
    "finite_difference_rule",
]


@dataclass(frozen=True)
class ShiftRule:
    """``f'(x) = sum_k coefficients[k] * f(x + shifts[k])`` (``0`` in ``shifts`` = centre)."""

    shifts: tuple[float, ...]
    coefficients: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.shifts) != len(self.coefficients):
            raise ValueError("a shift rule needs one coefficient per shift")

    @property
    def num_terms(self) -> int:
        return len(self.shifts)


@lru_cache(maxsize=256)
def rule_for_frequencies(frequencies: tuple[float, ...]) -> ShiftRule:
    """The exact antisymmetric rule with ``2R`` terms for ``R`` distinct frequencies.

    Shifts are ``+-(2m - 1) pi / (2 R w)`` (``w`` the smallest frequency); the coefficients
    solve ``sum_m 2 c_m sin(w_r s_m) = w_r`` for every frequency ``w_r``.
    """
    freqs = tuple(sorted({float(f) for f in frequencies if f > 0}))
    if not freqs:
        return ShiftRule((), ())
    num = len(freqs)
    base = freqs[0]
    positive = np.array([(2 * m - 1) * np.pi / (2 * num * base) for m in range(1, num + 1)])
    system = 2.0 * np.sin(np.outer(freqs, positive))
    half = np.linalg.solve(system, np.array(freqs))
    half = np.where(np.abs(half) < 1e-15, 0.0, half)
    shifts = tuple(float(s) for pair in zip(positive, -positive) for s in pair)
    coefficients = tuple(float(c) for value in half for c in (value, -value))
    return ShiftRule(shifts, coefficients)


def rule_for_gate(name: str) -> tuple[ShiftRule, ...] | None:
    """One rule per gate argument, or ``None`` if the gate has no table entry."""
    frequencies = GATE_FREQUENCIES.get(name)
    if frequencies is None:
        return None
    return tuple(rule_for_frequencies(f) for f in frequencies)


def finite_difference_rule(scheme: str, epsilon: float) -> ShiftRule:
    """First-order finite differences; ``scheme`` is central, forward or backward."""
    check_scheme(scheme)
    if scheme == "central":
        return ShiftRule((epsilon, -epsilon), (0.5 / epsilon, -0.5 / epsilon))
    if scheme == "forward":
        return ShiftRule((epsilon, 0.0), (1.0 / epsilon, -1.0 / epsilon))
    return ShiftRule((0.0, -epsilon), (1.0 / epsilon, -1.0 / epsilon))
