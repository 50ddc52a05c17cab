"""The shot arithmetic of ``allocation="optimal"`` (:mod:`.allocation`): the target
precision, each unit's weight in the result entries, Neyman shares rounded onto the shot
grid, and the per-shot deviations pooled over runs. Pure functions of arrays and plans."""

from __future__ import annotations

import math
from typing import Any, cast

import numpy as np

from ..methods.metric.base import to_parameters
from .combine import combine_plan
from .types import PubWork

__all__ = [
    "MIN_SHOTS",
    "POOLED_RUNS",
    "GRID_RATIO",
    "grid_shots",
    "precision_for",
    "target_precision",
    "check_follows_precision",
    "neyman_shots",
    "entry_weights",
    "pooled",
]

#: the fewest shots per basis a unit gets (fewer make its reported standard error unreliable)
MIN_SHOTS = 32
#: the learned true deviations average the variances of this many runs
POOLED_RUNS = 16
#: shot counts are rounded up to ``ceil(GRID_RATIO**k)``
GRID_RATIO = 2.0**0.25


def grid_shots(shots: np.ndarray) -> np.ndarray:
    """``shots`` rounded up onto the grid ``ceil(GRID_RATIO**k)``, at least :data:`MIN_SHOTS`.

    >>> grid_shots(np.array([1.0, 100.0, 1000.0])).tolist()
    [32, 108, 1024]
    """
    shots = np.maximum(np.asarray(shots, dtype=float), MIN_SHOTS)
    k = np.ceil(np.log(shots) / np.log(GRID_RATIO) - 1e-9)
    grid = np.ceil(GRID_RATIO**k - 1e-6)
    return cast(
        np.ndarray, np.where(grid < shots, np.ceil(GRID_RATIO ** (k + 1)), grid).astype(int)
    )


def precision_for(shots: int) -> float:
    """A precision ``p`` with ``ceil(1 / p**2) == shots`` (as estimators compute shots)."""
    precision = 1.0 / math.sqrt(shots)
    while math.ceil(1.0 / precision**2) > shots:
        precision = float(np.nextafter(precision, np.inf))
    return precision


def target_precision(primitive: Any, pub: Any, run_kwargs: dict[str, Any]) -> float | None:
    """The pub's precision, else the run's, else the estimator's default (``None``: unknown)."""
    for given in (pub.precision, run_kwargs.get("precision")):
        if given is not None:
            return float(given)
    value: Any = getattr(primitive, "default_precision", None)
    if not _is_number(value):
        options = getattr(primitive, "options", None)
        value = getattr(options, "default_precision", None)
        if options is not None and hasattr(options, "default_precision") and not _is_number(value):
            value = 1 / 64  # IBM Runtime's default when unset
    return float(value) if _is_number(value) else None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_follows_precision(primitive: Any) -> None:
    """A ``ValueError`` if the estimator's shots do not follow the precision it is sent
    (``options.default_shots`` set, as IBM Runtime's estimators allow)."""
    face = getattr(primitive, "face", None)
    if face is not None:
        check_follows_precision(face.primitive)  # a gradient primitive around an estimator
    shots = getattr(getattr(primitive, "options", None), "default_shots", None)
    if _is_number(shots):
        raise ValueError(
            f"allocation='optimal' sets each inner pub's shots through its precision, but "
            f"{type(primitive).__name__} has options.default_shots={shots}, which fixes the "
            "shots whatever the precision; unset it (estimator.options.default_shots = None) "
            "and give the target as precision=, or use allocation='uniform'"
        )


def neyman_shots(
    weights: np.ndarray, reported: np.ndarray, spread: np.ndarray, cost: np.ndarray, target: float
) -> np.ndarray:
    """Shots per unit (rows of ``weights``, its weight in each result entry): in proportion
    to ``W spread / sqrt(cost)``, scaled so that every entry's reported variance
    ``sum W**2 reported**2 / n`` is at most ``target**2``, rounded up onto the grid.

    >>> neyman_shots(np.array([[1.0], [1.0]]), np.ones(2), np.ones(2), np.ones(2), 0.1).tolist()
    [216, 216]
    """
    root_cost = np.sqrt(cost)
    ratio = np.divide(reported**2, spread, out=np.zeros_like(reported), where=spread > 0)
    totals = np.sum(weights * (ratio * root_cost)[:, None], axis=0)  # per entry
    need = weights * (spread / root_cost)[:, None] * totals[None, :] / target**2
    return grid_shots(np.max(need, axis=1))


def pooled(old: float | None, runs: int, new: float | None) -> tuple[float | None, int]:
    """The per-shot deviation pooled over runs: the root of the mean variance of the last
    :data:`POOLED_RUNS` runs (an exponential average once that many are in), and the runs
    pooled. The allocation's shares then follow the deviation typical of the circuit's
    points, not the last point's, which a run at another point does not share.

    >>> pooled(None, 0, 2.0), pooled(2.0, 1, 0.0)
    ((2.0, 1), (1.4142135623730951, 2))
    """
    if new is None:
        return old, runs
    if old is None or runs <= 0:
        return float(new), 1
    weight = 1.0 / min(runs + 1, POOLED_RUNS)
    return math.sqrt((1 - weight) * old**2 + weight * new**2), runs + 1


def entry_weights(work: PubWork, shapes: dict[int, tuple[int, ...]]) -> dict[int, np.ndarray]:
    """Per inner slot of the pub, its weight in each result entry: ``evs`` (the centre: 1),
    each ``grads`` column and each ``qgt`` entry (the largest over the pub's rows)."""
    task, plan = work.task, work.plan
    shape = task.shape
    P = task.num_parameters
    slots = ([work.center_slot] if work.center_slot >= 0 else []) + list(work.eval_slots)
    metric_slots = list(work.metric_slots)
    num_metric = P * P if metric_slots else 0
    out: dict[int, np.ndarray] = {}
    for slot in slots + metric_slots:
        out[slot] = np.zeros(1 + P + num_metric)
    if work.center_slot >= 0:
        out[work.center_slot][0] = 1.0
    if P and (plan.evaluations or plan.center_weights is not None):
        ones = [np.ones((e.num_points,) + shape + (1,)) for e in plan.evaluations]
        zeros = [np.zeros_like(o) for o in ones]
        center = np.zeros((1,) + shape + (1,))
        for index, slot in enumerate(work.eval_slots):
            probe = zeros[:index] + [ones[index]] + zeros[index + 1 :]
            out[slot][1 : 1 + P] = _largest(
                combine_plan(plan, center, probe, shape, P, variances=True)
            )
        if work.center_slot >= 0 and plan.center_weights is not None:
            variance = combine_plan(plan, center + 1.0, zeros, shape, P, variances=True)
            out[work.center_slot][1 : 1 + P] = _largest(variance)
    if metric_slots:
        for index, slot in enumerate(metric_slots):
            out[slot][1 + P :] = _metric_weights(work, shapes, index)
    return out


def _largest(variance: np.ndarray) -> np.ndarray:
    """``sqrt`` of the largest variance over the pub's rows, per parameter: ``S + (P, 1)``."""
    flat = np.asarray(np.real(variance)).reshape(-1, variance.shape[-2])
    return (
        cast(np.ndarray, np.sqrt(np.max(flat, axis=0)))
        if flat.size
        else np.zeros(variance.shape[-2])
    )


def _metric_weights(work: PubWork, shapes: dict[int, tuple[int, ...]], index: int) -> np.ndarray:
    """A metric evaluation's weight in each ``qgt`` entry: the first-order variance of the
    entries with unit variance on that evaluation (values at their largest magnitude, 1)."""
    plan, metric = work.metric_plan, work.metric
    metric_shapes = [shapes[slot] for slot in work.metric_slots]
    results = [
        (np.ones(s), np.ones(s) if i == index else np.zeros(s)) for i, s in enumerate(metric_shapes)
    ]
    _, var_re, var_im = to_parameters(plan.combine(results), plan.jacobian, metric.phase_fix)
    P = work.task.num_parameters
    var = {"real": var_re, "imag": var_im}.get(metric.derivative_type, var_re + var_im)
    flat = np.asarray(var).reshape(-1, P * P)
    return cast(np.ndarray, np.sqrt(np.max(flat, axis=0)))
