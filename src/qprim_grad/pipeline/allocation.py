"""``allocation="optimal"``: the fewest shots that give every result entry its target error.

A phase between lay-out and packing. With a pub's precision ``eps`` (the pub's, else the
run's, else the estimator's default) as the target standard error of each result entry
(``evs``, ``grads``; ``qgt`` for the metric), every estimator inner pub of the run is split
into its qubit-wise commuting measurement groups, and each (inner pub ``u``, group) unit
gets its own precision ``1 / sqrt(n_u)``:

* an entry ``j`` receives ``Var_j = sum_u W_uj**2 s_u**2 / n_u`` where ``W_uj`` is the unit's
  weight in the entry (``sqrt`` of the sum of its squared combination weights over the
  unit's points, the largest over the pub's rows) and ``s_u`` the per-shot standard
  deviation behind the group's reported standard error;
* Neyman allocation with the unit's cost ``c_u`` (its parameter sets): shots in proportion
  to ``W_uj t_u / sqrt(c_u)``, ``t_u`` the group's true per-shot deviation, scaled so that
  the reported variance of every entry is at most ``eps**2``:
  ``n_u = W_uj t_u / sqrt(c_u) * sum_u' W_u'j s_u'**2 sqrt(c_u') / t_u' / eps**2`` (with
  ``t = s``: ``Var_j = eps**2`` at the fewest shots); a unit feeding several entries takes
  the largest;
* shot counts are rounded up onto a geometric grid (ratio ``2**(1/4)``, at least
  :data:`MIN_SHOTS`) so that a job holds few distinct precisions.

A unit measures its group's part ``O`` of the observable and ``O**2`` (diagonal in the same
basis: no extra circuit). On an estimator that reports real shots (``n`` per basis), the
unit's standard error at each row is the measured spread: ``sqrt(max(<O**2> - <O>**2, 0) /
(n - 1))``, the root of the sample variance of the per-shot value of ``O`` (``n / (n - 1)``
times ``<O**2> - <O>**2``) over ``n``. It counts the covariances of the group's terms, which
qiskit's ``BackendEstimatorV2`` leaves out of its own stds (it adds the terms' deviations),
so the reported errors are the sampling errors. On other estimators (and with ``n < 2``)
the unit's standard errors are the estimator's.

``s_u`` and ``t_u`` are learned: after each run ``stds * sqrt(shots per basis)`` (the
estimator's, the largest over the unit's rows) and, on estimators that report real shots,
``sqrt(<O**2> - <O>**2)`` (the root mean square over the unit's rows) are kept per (circuit,
group observable) in a bounded cache of the gradient primitive and used by its next runs
(``t`` kept between a quarter of the estimator's deviation and all of it, and pooled: the
mean variance of the last :data:`POOLED_RUNS` runs, so that the shares follow the circuit's
typical point rather than the last one). Where the measured spread is the reported error,
``s = t``: every entry gets the target error at the circuit's typical point, and a point
whose groups spread more than the typical one gets a proportionally larger reported error.
Elsewhere ``s`` is the estimator's reported deviation and ``t = s``. Before any is known
both are bounded by ``sum |c_k|`` over the group's non-identity terms: each shot measures
every term as ``+-1``, so one shot's estimate ``sum c_k s_k`` has standard deviation at most
``sum |c_k| std(s_k) <= sum |c_k|``; the target is then met with room to spare. The group
results are summed back into one result per inner pub (values added, variances added: the
groups are measured independently) and propagated as for ``"uniform"``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from qiskit.primitives.containers import DataBin, ObservablesArray, PubResult
from qiskit.primitives.containers.estimator_pub import EstimatorPub

from ..cache import BoundedCache
from ..shots import (
    _labels,
    _reported_shots,
    measurement_groups,
    parameter_sets,
    shots_per_basis,
)
from .group_moments import measured_stds, moment_variance, with_squares
from .phases import InnerPubs
from .shot_shares import (
    GRID_RATIO,
    MIN_SHOTS,
    POOLED_RUNS,
    check_follows_precision,
    entry_weights,
    grid_shots,
    neyman_shots,
    pooled,
    precision_for,
    target_precision,
)
from .types import Evaluation, PubWork

__all__ = [
    "MIN_SHOTS",
    "POOLED_RUNS",
    "GRID_RATIO",
    "Allocation",
    "allocate",
    "grid_shots",
    "precision_for",
    "pooled",
    "target_precision",
]


@dataclass
class _Unit:
    """One (inner pub, measurement group) of an allocated pub."""

    origin: int  # slot of the inner pub it measures a group of
    pub: EstimatorPub  # the inner pub with the group's observables (precision set later)
    evaluation: Evaluation | None
    key: Hashable
    bound: float  # the per-shot standard deviation the estimator reports (else its bound)
    offset: np.ndarray | None  # identity placeholders to subtract (entries without terms)
    weights: np.ndarray = field(default_factory=lambda: np.zeros(0))
    shots: int = 0
    spread: float = -1.0  # the true per-shot standard deviation (-1: unknown, use bound)


@dataclass
class Allocation:
    """The expanded inner pubs of a run and how their results fold back."""

    inner: InnerPubs  # the pubs sent: units, and the inner pubs left as they were
    origin: list[int]  # the original slot of each sent pub
    units: dict[int, _Unit]  # sent slot -> its unit (allocated pubs only)
    num_original: int
    sigmas: BoundedCache[list[Any]]

    def slice_pub(self, make: Callable[[int, Evaluation], Any]) -> Callable[[int, Any], Any]:
        """The packing phase's pub builder for a slice of a sent pub (its unit's precision)."""

        def build(slot: int, evaluation: Evaluation) -> Any:
            pub = make(slot, evaluation)
            unit = self.units.get(slot)
            if unit is None:
                return pub
            return with_squares(pub, unit.pub.precision)

        return build

    def fold(self, flat: list[Any]) -> list[Any]:
        """One result per original inner pub: its groups' values and variances summed; the
        per-shot deviations learned on the way."""
        self._learn(flat)
        parts: list[list[tuple[int, Any]]] = [[] for _ in range(self.num_original)]
        for slot, result in enumerate(flat):
            parts[self.origin[slot]].append((slot, result))
        return [self._folded(group) for group in parts]

    def fold_counts(self, counts: list[int]) -> list[int]:
        """Per-sent-pub counts summed per original inner pub."""
        out = [0] * self.num_original
        for slot, count in enumerate(counts):
            out[self.origin[slot]] += count
        return out

    def _folded(self, group: list[tuple[int, Any]]) -> Any:
        if len(group) == 1 and group[0][0] not in self.units:
            return group[0][1]
        evs: Any = 0.0
        var: Any = 0.0
        for slot, result in group:
            unit = self.units[slot]
            values = np.asarray(result.data.evs, dtype=float)[..., 0]
            if unit.offset is not None:
                values = values - unit.offset
            evs = evs + values
            var = var + measured_stds(result, unit.pub.precision) ** 2
        evs_array = np.asarray(evs)
        metadata = dict(group[0][1].metadata)
        metadata.pop("shots", None)
        metadata.pop("target_precision", None)
        metadata["group_shots"] = [self.units[slot].shots for slot, _ in group]
        data = DataBin(evs=evs_array, stds=np.sqrt(var), shape=evs_array.shape)
        return PubResult(data, metadata=metadata)

    def _learn(self, flat: list[Any]) -> None:
        """Per (circuit, group): the largest per-shot deviation the estimator reported
        (``stds * sqrt(shots per basis)``: the guarantee) and, where it reports real shots,
        the root mean square of ``sqrt(<O**2> - <O>**2)`` over the rows (the shape: mean
        squared errors add up the rows' variances)."""
        learned: dict[Hashable, tuple[Any, float, float | None]] = {}
        for slot, unit in self.units.items():
            result = flat[slot]
            stds = np.asarray(result.data.stds, dtype=float)[..., 0]
            metadata = result.metadata or {}
            per_basis = shots_per_basis(metadata, unit.pub.precision)
            if not per_basis or not stds.size:
                continue
            reported = float(np.max(stds)) * math.sqrt(per_basis)
            spread = None
            if _reported_shots(metadata) is not None:  # real shots: the sample variance
                spread = math.sqrt(float(np.mean(moment_variance(result))))
            previous = learned.get(unit.key)
            if previous is not None:
                reported = max(reported, previous[1])
                if spread is not None and previous[2] is not None:
                    spread = max(spread, previous[2])
            learned[unit.key] = (unit.pub.circuit, reported, spread)
        for key, (circuit, reported, spread) in learned.items():
            entry = self.sigmas.get(key, circuit, lambda: [None, None, 0])
            entry[:] = [reported, *pooled(entry[1], entry[2], spread)]


def allocate(
    face: Any,
    works: list[PubWork],
    inner: InnerPubs,
    run_kwargs: dict[str, Any],
    sigmas: BoundedCache[list[Any]],
) -> Allocation:
    """The run's inner pubs with every allocated pub split into (group, precision) units."""
    primitive = face.primitive
    targets = {id(work): target_precision(primitive, work.pub, run_kwargs) for work in works}
    if any(target for target in targets.values()):
        check_follows_precision(primitive)
    units_of: dict[int, list[_Unit]] = {}
    for work in works:
        target = targets[id(work)]
        if not target:  # exact (precision 0) or unknown: as "uniform"
            continue
        work_units = _work_units(work, inner, sigmas)
        _neyman(work_units, target)
        for unit in work_units:
            units_of.setdefault(unit.origin, []).append(unit)
    sent = InnerPubs()
    origin: list[int] = []
    units: dict[int, _Unit] = {}
    for slot, (pub, work, evaluation) in enumerate(zip(inner.pubs, inner.works, inner.evaluations)):
        if slot not in units_of:
            sent.add(work, pub, evaluation)
            origin.append(slot)
        for piece in units_of.get(slot, []):
            units[sent.add(work, piece.pub, piece.evaluation)] = piece
            origin.append(slot)
    return Allocation(sent, origin, units, len(inner.pubs), sigmas)


def _work_units(work: PubWork, inner: InnerPubs, sigmas: BoundedCache[list[Any]]) -> list[_Unit]:
    """The (inner pub, group) units of one pub, with their weights in its result entries."""
    shapes = {slot: tuple(pub.shape) for slot, pub in enumerate(inner.pubs)}
    weights = entry_weights(work, shapes)
    units = []
    for slot, unit_weights in weights.items():
        pub = inner.pubs[slot]
        for unit in _split(slot, pub, inner.evaluations[slot], sigmas):
            unit.weights = unit_weights
            units.append(unit)
    return units


def _split(slot: int, pub: EstimatorPub, evaluation: Evaluation | None, sigmas: Any) -> list[Any]:
    """One unit per measurement group of the pub's observables. A unit measures the group's
    part ``O`` of each observable and ``O**2`` (diagonal in the same basis: no extra
    circuit), on a trailing axis of length 2, so that the group's true per-shot variance
    ``<O**2> - <O>**2`` can be learned."""
    observables = pub.observables
    flat = observables.ravel().tolist()
    identity = "I" * observables.num_qubits
    units = []
    for group in measurement_groups(_labels(observables)):
        members = set(group)
        parts = [{k: v for k, v in obs.items() if k in members} for obs in flat]
        empty = np.array([not part for part in parts])
        parts = [part or {identity: 1.0} for part in parts]
        array = np.empty(len(parts), dtype=object)
        array[:] = parts
        sub = ObservablesArray.coerce(array.reshape(observables.shape))
        bound = max(
            (sum(abs(c) for k, c in part.items() if k != identity) for part in parts),
            default=0.0,
        )
        key = ("sigma", id(pub.circuit), tuple(tuple(sorted(p.items())) for p in parts))
        offset = empty.reshape(observables.shape).astype(float) if empty.any() else None
        sent = with_squares(EstimatorPub(pub.circuit, sub, pub.parameter_values, None))
        sub_evaluation = None
        if evaluation is not None:
            sub_evaluation = _with_observables(evaluation, sub)
        unit = _Unit(slot, sent, sub_evaluation, key, float(bound), offset)
        reported, spread, _ = sigmas.get(key, pub.circuit, lambda: [None, None, 0])
        if reported is not None:
            unit.bound = min(float(reported), float(bound)) if bound else float(reported)
        if spread is not None:  # never below a quarter of the reported one (noisy estimate)
            unit.spread = float(np.clip(spread, unit.bound / 4, unit.bound))
        units.append(unit)
    return units


def _with_observables(evaluation: Evaluation, observables: ObservablesArray) -> Evaluation:
    return replace(evaluation, observables=observables)


def _neyman(units: list[_Unit], target: float) -> None:
    """Each unit's shots and precision (module docstring): shots in proportion to
    ``W t / sqrt(c)``, scaled so that every entry's variance ``sum W**2 s**2 / n`` is at
    most ``target**2``, with ``s = t``: the learned true deviation where it is known (the
    reported error is then the measured spread), else the reported deviation or its bound."""
    if not units:
        return
    weights = np.stack([u.weights for u in units])  # (U, entries)
    # a learned spread comes from real shots, whose measured spread is the reported error
    spread = np.array([u.spread if u.spread >= 0 else u.bound for u in units])
    reported = spread
    cost = np.array([float(parameter_sets(u.pub)) for u in units])
    shots = neyman_shots(weights, reported, spread, cost, target)
    for unit, count in zip(units, shots):
        unit.shots = int(count)
        pub = unit.pub
        unit.pub = EstimatorPub(
            pub.circuit,
            pub.observables,
            pub.parameter_values,
            precision_for(int(count)),
            validate=False,
        )
