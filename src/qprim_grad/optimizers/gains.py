"""Gain sequences: the learning rate ``a_k`` and the perturbation ``c_k`` as functions of ``k``.

A gain is any object with ``at(k) -> float`` for ``k = 1, 2, ...`` (the iteration, 1-based).
The power series of Spall's SPSA is :class:`PowerSeries`; :func:`as_gain` turns every form
the ``SPSA`` constructor accepts (float, array, callable returning an iterator) into a gain.

>>> PowerSeries(0.2, 0.101).at(1)
0.2
>>> round(PowerSeries(1.0, 1.0, offset=1.0).at(1), 3)
0.5
>>> as_gain([0.3, 0.2, 0.1], "learning_rate").at(3)
0.1
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["Gain", "Constant", "Table", "PowerSeries", "FromIterator", "as_gain", "check_gains"]


@runtime_checkable
class Gain(Protocol):
    """A deterministic sequence ``k -> value`` for ``k >= 1``."""

    def at(self, k: int) -> float: ...


class _Iterable:
    """Gives a gain the iterator form ``gain()`` that qiskit-algorithms expects."""

    def at(self, k: int) -> float:  # pragma: no cover - defined by every subclass
        raise NotImplementedError

    def __call__(self) -> Iterator[float]:
        """``at(1), at(2), ...`` (as ``qiskit_algorithms`` expects from a gain callable)."""
        return map(self.at, itertools.count(1))


@dataclass(frozen=True)
class Constant(_Iterable):
    """The same value at every iteration."""

    value: float

    def at(self, k: int) -> float:
        return float(self.value)


@dataclass(frozen=True)
class PowerSeries(_Iterable):
    """``scale / (k + offset) ** power`` for ``k = 1, 2, ...``.

    With ``k`` counted from 1 this is ``a / (A + k + 1)^alpha`` (``k`` from 0) of Spall's paper.
    Instances are also callables returning an iterator, so they can be passed as
    ``learning_rate=``/``perturbation=`` to any SPSA, ours or qiskit-algorithms'.
    """

    scale: float
    power: float
    offset: float = 0.0

    def at(self, k: int) -> float:
        return float(self.scale / (k + self.offset) ** self.power)

    def to_dict(self) -> dict[str, float]:
        return {"scale": self.scale, "power": self.power, "offset": self.offset}


@dataclass(frozen=True)
class Table:
    """Values read from an array: ``values[k - 1]``."""

    values: tuple[float, ...]
    name: str = field(default="gain", compare=False)

    def at(self, k: int) -> float:
        if k > len(self.values):
            raise ValueError(
                f"Gain table has {len(self.values)} entries, iteration {k} needs more "
                f"({self.name}: give at least maxiter values)."
            )
        return float(self.values[k - 1])


@dataclass
class FromIterator:
    """Values of ``factory()``'s iterator, memoised so that ``at(k)`` is random access.

    Created afresh for every run (``factory`` is called once), so the user's callable is
    never consumed across runs; resuming at iteration ``k`` replays the first ``k`` values.
    """

    factory: Callable[[], Iterator[float]]
    name: str = "gain"
    _iterator: Iterator[float] | None = field(default=None, repr=False)
    _values: list[float] = field(default_factory=list, repr=False)

    def at(self, k: int) -> float:
        if self._iterator is None:
            self._iterator = iter(self.factory())
        while len(self._values) < k:
            try:
                self._values.append(float(next(self._iterator)))
            except StopIteration:
                raise ValueError(
                    f"{self.name}: the iterator ended after {len(self._values)} values, but "
                    f"iteration {k} needs a value; give an iterator with at least maxiter "
                    "values (or an endless one)."
                ) from None
        return self._values[k - 1]


def as_gain(spec: Any, name: str) -> Gain:
    """Turn a float, an array or a callable returning an iterator into a fresh :class:`Gain`."""
    if isinstance(spec, (Constant, PowerSeries, Table)):
        return spec
    if isinstance(spec, (int, float, np.floating, np.integer)) and not isinstance(spec, bool):
        return Constant(float(spec))
    if isinstance(spec, (list, tuple, np.ndarray)):
        return Table(tuple(float(v) for v in np.ravel(spec)), name)
    if callable(spec):
        return FromIterator(spec, name)
    raise TypeError(
        f"{name} must be a float, an array or a callable returning an iterator, "
        f"not {type(spec).__name__}."
    )


def check_gains(maxiter: int, learning_rate: Any, perturbation: Any) -> None:
    """The gain arguments of an SPSA: both or neither, tables long enough, fixed values
    finite, a perturbation non-zero (it divides the estimate)."""
    for value, name in ((learning_rate, "learning_rate"), (perturbation, "perturbation")):
        if isinstance(value, (list, tuple, np.ndarray)) and len(value) < maxiter:
            raise ValueError(f"Length of {name} is smaller than maxiter ({maxiter}).")
        _check_gain_values(value, name)
    if (learning_rate is None) != (perturbation is None):
        raise ValueError(
            "If one of learning rate or perturbation is set, both must be set "
            "(or neither, to calibrate both)."
        )


def _check_gain_values(spec: Any, name: str) -> None:
    if spec is None or callable(spec):
        return
    values = np.ravel(np.asarray(spec, dtype=float))
    bad = ~np.isfinite(values)
    if name == "perturbation":
        bad |= values == 0
    if np.any(bad):
        where = "" if np.ndim(spec) == 0 else f" (entry {int(np.argmax(bad))}, iteration "
        where += "" if not where else f"{int(np.argmax(bad)) + 1})"
        need = "finite and non-zero" if name == "perturbation" else "finite"
        raise ValueError(f"{name} must be {need}, got {values[np.argmax(bad)]!r}{where}.")
