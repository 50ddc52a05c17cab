"""How an :class:`~.protocol.AskData` is evaluated: the I/O the driver delegates.

* :class:`LossEvaluator` — ``x_fun`` through a batched loss (one job: ``run_batch`` when the
  loss has it, which also reports shots and takes a precision; else ``batch``), or through
  a plain callable in qiskit-algorithms' call groups (``max_evals_grouped``).
* :class:`FidelityEvaluator` — ``x_fidelity`` through a QN-SPSA fidelity: one sampler job for
  all pairs when it has ``submit`` (:meth:`~.qnspsa.QNSPSA.get_fidelity`), submitted before
  the loss job so both run together; else one call per pair or per chunk.
* :class:`MetricEvaluator` — the natural gradient's ``x_jac``/``x_metric`` (with the loss at
  the same point): one ``GradientEstimator`` job with a metric.

Each returns a :class:`~.protocol.TellData` with the values, the jobs and the shots.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import CorrelatedNoiseWarning
from ..methods.backends import aer_estimator
from ._warn import warn_user
from .batching import evaluate_batch, evaluate_grouped, is_batched, num_calls, single_value
from .protocol import AskData, TellData

__all__ = [
    "LossEvaluator",
    "FidelityEvaluator",
    "MetricEvaluator",
    "check_precision_support",
    "warn_frozen_noise",
]


def _shots_of(result: Any) -> int:
    """``shots`` of a loss batch or a primitive result's metadata (0 if not reported)."""
    shots = getattr(result, "shots", None)
    if shots is None:
        shots = getattr(result, "metadata", {}).get("shots", 0)
    return int(shots or 0)


def check_precision_support(fun: Any, precision: Any, name: str) -> None:
    """A precision other than ``None`` needs a loss that takes one (``run_batch``)."""
    if precision is None or callable(getattr(fun, "run_batch", None)):
        return
    raise TypeError(
        f"{name}(precision={precision!r}) needs a loss that accepts a precision, such as "
        f"EstimatorLoss(estimator, circuit, observable); {type(fun).__name__} does not (it has "
        "no run_batch). Drop precision= or wrap the estimator in an EstimatorLoss."
    )


def warn_frozen_noise(fun: Any, name: str) -> None:
    """Warn when the loss runs on a seeded qiskit-aer ``EstimatorV2`` with noise: every job
    then draws the same noise, so the run sees frozen, not fresh, shot noise."""
    estimator = getattr(fun, "estimator", None)
    aer = aer_estimator(getattr(estimator, "estimator", estimator))
    if aer is None:
        return
    seed = aer.options.run_options.get("seed_simulator")
    default = getattr(aer.options, "default_precision", 0.0) or 0.0
    precision = getattr(fun, "precision", None)
    noisy = (precision if precision is not None else default) > 0
    if seed is not None and noisy:
        warn_user(
            f"qiskit-aer's EstimatorV2 with seed_simulator={seed!r} draws the same noise for "
            f"every job of equal shape: {name}'s iterations would all see the same (frozen) "
            "shot noise instead of fresh noise. Drop seed_simulator for an optimizer run "
            "(seed the optimizer with seed= instead).",
            CorrelatedNoiseWarning,
        )


class LossEvaluator:
    """Evaluates ``x_fun`` (see the module docstring)."""

    def __init__(self, fun: Any, max_evals_grouped: int | None = None) -> None:
        self.fun = fun
        self.batched = is_batched(fun)
        self.max_evals_grouped = max_evals_grouped

    def values(self, ask: AskData) -> tuple[np.ndarray, int, int]:
        """``(values, jobs, shots)`` at ``ask.x_fun``."""
        points = np.asarray(ask.x_fun, dtype=float)
        run_batch = getattr(self.fun, "run_batch", None)
        if self.batched and callable(run_batch):
            batch = run_batch(points, precision=ask.precision)
            values = np.asarray(batch.values, dtype=float).reshape(-1)
            return values, int(getattr(batch, "jobs", 1)), _shots_of(batch)
        if self.batched:
            return evaluate_batch(self.fun, points), 1, 0
        grouped = self.max_evals_grouped
        groups = ask.groups or (len(points),)
        found: list[float] = []
        jobs, start = 0, 0
        for size in groups:
            found += evaluate_grouped(self.fun, points[start : start + size], grouped)
            jobs += num_calls(size, grouped)
            start += size
        return np.asarray(found, dtype=float), jobs, 0

    def evaluate(self, ask: AskData) -> TellData:
        if ask.x_fun is None:
            return TellData(jobs=0)
        values, jobs, shots = self.values(ask)
        return TellData(eval_fun=values, jobs=jobs, shots=shots)


class FidelityEvaluator:
    """Evaluates ``x_fidelity`` beside the loss (see the module docstring)."""

    def __init__(
        self, loss: LossEvaluator, fidelity: Callable[..., Any], max_evals_grouped: int | None
    ) -> None:
        self.loss = loss
        self.fidelity = fidelity
        self.max_evals_grouped = max_evals_grouped
        self.batched = loss.batched

    def _start(self, pairs: np.ndarray, groups: tuple[int, ...]) -> tuple[Any, int]:
        """Start the fidelities of ``pairs``; a waiter returning ``(values, shots)``."""
        xs, ys = pairs[:, 0], pairs[:, 1]
        submit = getattr(self.fidelity, "submit", None)
        if callable(submit):
            job = submit(xs, ys)
            return (lambda: (job.result(), int(getattr(job, "shots", 0) or 0))), 1
        grouped = self.max_evals_grouped
        values: list[float] = []
        calls, start = 0, 0
        for size in groups:
            gx, gy = xs[start : start + size], ys[start : start + size]
            start += size
            if grouped is None or grouped <= 1:
                values += [_one_fidelity(self.fidelity(a, b)) for a, b in zip(gx, gy)]
                calls += size
                continue
            n = num_calls(size, grouped)
            for cx, cy in zip(np.array_split(gx, n), np.array_split(gy, n)):
                values += [float(np.real(v)) for v in np.ravel(np.asarray(self.fidelity(cx, cy)))]
            calls += n
        result = np.asarray(values, dtype=float)
        return (lambda: (result, 0)), calls

    def evaluate(self, ask: AskData) -> TellData:
        waiter, fidelity_jobs = None, 0
        if ask.x_fidelity is not None:
            pairs = np.asarray(ask.x_fidelity, dtype=float)
            waiter, fidelity_jobs = self._start(pairs, ask.fidelity_groups or (len(pairs),))
        told = self.loss.evaluate(ask)
        if waiter is None:
            return told
        fidelities, shots = waiter()
        return TellData(
            eval_fun=told.eval_fun,
            eval_fidelity=np.asarray(fidelities, dtype=float).reshape(-1),
            jobs=told.jobs,
            fidelity_jobs=fidelity_jobs,
            shots=told.shots + shots,
        )


def _one_fidelity(value: Any) -> float:
    return single_value(value, "The fidelity returned {} values for one pair of points.")


class MetricEvaluator:
    """Loss, gradient and metric at one point from one job of ``estimator`` (a
    ``GradientEstimator`` with a metric); the loss alone through ``loss`` otherwise."""

    def __init__(self, loss: Any, estimator: Any) -> None:
        self.loss = loss
        self.estimator = estimator
        self.values = LossEvaluator(loss)

    def evaluate(self, ask: AskData) -> TellData:
        if ask.x_jac is None:
            return self.values.evaluate(ask)
        loss = self.loss
        x = np.asarray(ask.x_jac, dtype=float)
        precision = ask.precision if ask.precision is not None else loss.precision
        pub = (loss.circuit, loss.observable, x)
        result = self.estimator.run([pub], precision=precision).result()
        data = result[0].data
        for field in ("grads", "qgt"):
            if not hasattr(data, field):
                raise TypeError(
                    f"{type(self.estimator).__name__} returned no {field!r}; NaturalGradient "
                    "needs an estimator with gradient and metric (GradientEstimator(..., "
                    "metric=...))."
                )
        p = loss.num_parameters
        return TellData(
            eval_fun=np.asarray(data.evs, dtype=float).reshape(1),
            eval_jac=np.asarray(data.grads, dtype=float).reshape(p),
            eval_metric=np.real(np.asarray(data.qgt)).reshape(p, p),
            jobs=1,
            shots=_shots_of(result),
        )
