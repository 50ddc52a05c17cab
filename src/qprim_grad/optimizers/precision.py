r"""Precision across iterations: which target standard error each iteration's job asks for.

``precision=`` of :class:`~.spsa.SPSA`, :class:`~.qnspsa.QNSPSA` and
:class:`~.natural.NaturalGradient` takes ``None`` (the estimator's own), a float, a callable
``iteration -> precision`` or ``"adaptive"``; :func:`as_precision_rule` turns each into a
rule with ``at(k, stats)``. A rule is pure: the adaptive one reads the run's statistics,
which the optimizer keeps in its state (``state.precision``) and updates with
:func:`update_statistics`.

**The adaptive rule.** SPSA's gradient estimate rests on the differences
:math:`d = f(x + c\Delta) - f(x - c\Delta)`; shot noise of standard error :math:`\sigma` on
each value adds noise :math:`\sqrt2\,\sigma` to :math:`d`. The rule keeps a running RMS
:math:`D` of the measured differences (exponential average of :math:`d^2` with weight
``memory``) and chooses

.. math:: \sigma_k = \mathrm{clip}\big(\texttt{fraction}\cdot D / \sqrt2,\;
          p_\min,\; p_\max\big),

so the noise of a difference stays a fixed fraction of its typical size: far from the
minimum, where differences are large, a few shots suffice; near it, where they shrink, the
precision tightens. With blocking, the comparison of the proposal's loss with the current one
must also be resolved: :math:`D` is then the smaller of the difference RMS and the RMS of the
loss changes between consecutive accepted iterates. The first iteration, before anything is
known, runs at ``p_max``. Defaults: ``fraction=0.5``, ``p_max=0.1``,
``p_min=1/sqrt(1e5)`` (about 0.0032, i.e. at most ``1e5`` shots per measurement basis),
``memory=0.8``.

Measured (real shot sampling, medians of 5 starts): the rule tightens gradually, the shots
per iteration growing about tenfold over the first 50 iterations on LiH; a higher floor
(``p_min=0.01``) made runs slower to 2 % energy error on the Heisenberg chain and LiH, the
late iterations needing the finer precision. A run's cost per iteration is bounded by
``p_min``: pass ``AdaptivePrecision(p_min=...)`` to cap it.

>>> rule = AdaptivePrecision()
>>> rule.at(1, {})
0.1
>>> stats = update_statistics({}, differences=[0.04, -0.04], memory=rule.memory)
>>> round(rule.at(2, stats), 4)
0.0141
>>> as_precision_rule(0.02).at(7, {}), as_precision_rule(None).at(7, {}) is None
(0.02, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "PrecisionRule",
    "AdaptivePrecision",
    "FixedPrecision",
    "ScheduledPrecision",
    "as_precision_rule",
    "update_statistics",
]


@runtime_checkable
class PrecisionRule(Protocol):
    """``at(k, stats)``: the precision of iteration ``k`` (``None``: the estimator's own)."""

    def at(self, k: int, stats: dict[str, float]) -> float | None: ...


def _checked(value: Any, name: str = "precision") -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number < 0:
        raise ValueError(
            f"{name}={value!r} is not a precision: give a finite number >= 0 (the target "
            "standard error of each loss value), a callable iteration -> precision, "
            "'adaptive', or None for the estimator's own."
        )
    return number


@dataclass(frozen=True)
class FixedPrecision:
    """The same precision at every iteration (``None``: the estimator's own)."""

    value: float | None = None

    def at(self, k: int, stats: dict[str, float]) -> float | None:
        return self.value


@dataclass(frozen=True)
class ScheduledPrecision:
    """``schedule(k)`` at iteration ``k`` (1-based)."""

    schedule: Callable[[int], float]

    def at(self, k: int, stats: dict[str, float]) -> float | None:
        return _checked(self.schedule(k), f"precision({k})")


@dataclass(frozen=True)
class AdaptivePrecision:
    """The adaptive rule of the module docstring."""

    fraction: float = 0.5
    p_min: float = 1 / math.sqrt(1e5)
    p_max: float = 0.1
    memory: float = 0.8

    def __post_init__(self) -> None:
        for name in ("fraction", "p_min", "p_max"):
            if not _checked(getattr(self, name), name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}.")
        if self.p_min > self.p_max:
            raise ValueError(f"p_min={self.p_min!r} exceeds p_max={self.p_max!r}.")
        if not 0 <= self.memory < 1:
            raise ValueError(f"memory must be in [0, 1), got {self.memory!r}.")

    def at(self, k: int, stats: dict[str, float]) -> float:
        scales = [stats[name] for name in ("differences", "changes") if name in stats]
        if not scales:
            return self.p_max
        rms = math.sqrt(min(scales))
        return float(np.clip(self.fraction * rms / math.sqrt(2), self.p_min, self.p_max))


def update_statistics(
    stats: dict[str, float],
    *,
    differences: Sequence[float] | np.ndarray | None = None,
    change: float | None = None,
    memory: float = 0.8,
) -> dict[str, float]:
    """New running mean squares: ``differences`` (SPSA's ``f(x+cΔ) - f(x-cΔ)``) and
    ``change`` (the loss change of an accepted step). Returns a new dictionary."""
    new = dict(stats)
    observed = {}
    if differences is not None and len(differences):
        observed["differences"] = float(np.mean(np.square(differences)))
    if change is not None and math.isfinite(change):
        observed["changes"] = float(change) ** 2
    for name, value in observed.items():
        new[name] = value if name not in new else memory * new[name] + (1 - memory) * value
    return new


def as_precision_rule(precision: Any) -> PrecisionRule:
    """The rule for a ``precision=`` argument (see the module docstring)."""
    if precision is None:
        return FixedPrecision(None)
    if isinstance(precision, str):
        if precision != "adaptive":
            raise ValueError(
                f"precision={precision!r}: the only named rule is 'adaptive' (or give a "
                "number, a callable iteration -> precision, or None)."
            )
        return AdaptivePrecision()
    if isinstance(precision, PrecisionRule):
        return precision
    if callable(precision):
        return ScheduledPrecision(precision)
    if isinstance(precision, bool):
        _checked(None)
    return FixedPrecision(_checked(precision))
