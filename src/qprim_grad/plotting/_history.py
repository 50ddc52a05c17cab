"""The plot of an optimizer run: loss and step sizes per iteration (or against shots)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..optimizers.gains import PowerSeries
from ..optimizers.state import History, RunState
from ._common import pyplot

__all__ = ["history_of", "plot_history"]


def history_of(run: Any) -> tuple[History, RunState | None]:
    """The history (and the state, if known) of an optimizer result, state or history.

    ``run`` is what ``minimize`` of :class:`~qprim_grad.optimizers.SPSA`,
    :class:`~qprim_grad.optimizers.QNSPSA` or :class:`~qprim_grad.optimizers.NaturalGradient`
    returns, a state (e.g. loaded from a checkpoint) or a history.
    """
    if isinstance(run, History):
        return run, None
    if isinstance(run, RunState):
        return run.history, run
    history = getattr(run, "history", None)
    if not isinstance(history, History):
        raise TypeError(
            f"cannot plot {type(run).__name__}: expected an SPSA result (or any optimizer "
            "result with .history), an SPSAState / NaturalGradientState or an SPSAHistory"
        )
    state = getattr(run, "state", None)
    return history, state if isinstance(state, RunState) else None


@dataclass(frozen=True)
class _Series:
    """The recorded history as arrays over the proposed steps."""

    iteration: np.ndarray
    loss: np.ndarray
    step: np.ndarray
    accepted: np.ndarray

    @classmethod
    def of(cls, history: History, x: str = "iteration") -> _Series:
        if x not in ("iteration", "shots", "jobs"):
            raise ValueError(f"x={x!r}: plot against 'iteration', 'shots' or 'jobs'.")
        return cls(
            np.asarray(getattr(history, x), dtype=float),
            np.asarray(history.loss, dtype=float),
            np.asarray(history.stepsize, dtype=float),
            np.asarray(history.accepted, dtype=bool),
        )


def _axes(ax: Any) -> tuple[Any, Any, bool]:
    """``(loss_ax, step_ax, twin?)`` for the ``ax`` argument of :func:`plot_history`."""
    if ax is None:
        _, (loss_ax, step_ax) = pyplot().subplots(
            2, 1, sharex=True, figsize=(7.0, 5.0), height_ratios=(2, 1), layout="constrained"
        )
        return loss_ax, step_ax, False
    if isinstance(ax, (Sequence, np.ndarray)):
        axes = list(np.ravel(np.asarray(ax, dtype=object)))
        if len(axes) != 2:
            raise ValueError(f"ax: expected one Axes or two (loss, step size), got {len(axes)}")
        return axes[0], axes[1], False
    return ax, ax.twinx(), True


def _shade_calibration(loss_ax: Any, step_ax: Any, twin: bool) -> None:
    """The band left of iteration 1 that marks the calibration job."""
    for axis in (loss_ax,) if twin else (loss_ax, step_ax):
        axis.axvspan(-0.5, 0.5, color="0.88", zorder=0)
    loss_ax.text(
        0.0, 0.5, "calibration", rotation=90, ha="center", va="center",
        transform=loss_ax.get_xaxis_transform(), color="0.35", fontsize="small",
    )  # fmt: skip


def _draw_loss(loss_ax: Any, series: _Series) -> None:
    """Accepted steps as dots joined by a line, rejected ones as red crosses."""
    it, loss, ok = series.iteration, series.loss, series.accepted
    loss_ax.plot(it[ok], loss[ok], "o-", ms=3.5, color="C0", label="accepted")
    if not ok.all():
        loss_ax.plot(it[~ok], loss[~ok], "x", ms=6, color="C3", label="rejected")
    loss_ax.set_ylabel("loss")
    loss_ax.grid(alpha=0.3)
    loss_ax.legend(loc="upper right", fontsize="small")


def _draw_steps(
    step_ax: Any, series: _Series, gain: PowerSeries | None, twin: bool, x: str
) -> None:
    """Step lengths, rejected ones crossed, and the calibrated learning rate dashed."""
    it, step, ok = series.iteration, series.step, series.accepted
    step_ax.plot(it, step, ".-", ms=3, color="C1", label="step length")
    if not ok.all():
        step_ax.plot(it[~ok], step[~ok], "x", ms=6, color="C3")
    if gain is not None and len(it) and x == "iteration":
        ks = np.arange(1, int(it.max()) + 1)
        step_ax.plot(
            ks, [gain.at(int(k)) for k in ks], "--", color="0.4", label="learning rate $a_k$"
        )
    step_ax.set_ylabel("step size")
    step_ax.set_xlabel({"iteration": "iteration", "shots": "shots", "jobs": "jobs"}[x])
    if not twin:
        step_ax.grid(alpha=0.3)
    step_ax.legend(loc="center right", fontsize="small")


def _default_title(history: History, state: RunState | None) -> str | None:
    """Names the optimizer; counts loss and fidelity evaluations, estimator and sampler jobs
    and shots apart."""
    if not len(history):
        return None
    name = (state.optimizer if state is not None else None) or "Optimizer"
    iterations = int(max(history.iteration))
    if state is None:
        return f"{name}: {iterations} iterations, {history.jobs[-1]} jobs"
    fidelity = int(getattr(state, "fidelity_nfev", 0))
    parts = [f"{iterations} iterations", f"{state.nfev - fidelity} loss evaluations"]
    if fidelity:
        parts.append(f"{fidelity} fidelity evaluations")
    jobs = f"{state.jobs} jobs"
    if getattr(state, "fidelity_jobs", 0):
        jobs = f"{state.jobs} estimator + {state.fidelity_jobs} sampler jobs"  # type: ignore[attr-defined]
    parts.append(jobs)
    if state.shots:
        parts.append(f"{state.shots:,} shots")
    return f"{name}: " + ", ".join(parts)


def _mark_resumes(loss_ax: Any, history: History, series: _Series, x: str) -> None:
    """A dotted line after each iteration a run was resumed from."""
    for k in history.resumed_at:
        rows = [i for i, it in enumerate(history.iteration) if it <= k]
        where = float(k) if x == "iteration" else (series.iteration[rows[-1]] if rows else 0.0)
        loss_ax.axvline(where, ls=":", color="0.3", lw=1)
        loss_ax.text(
            where, 0.98, " resumed", rotation=90, va="top", ha="left", fontsize="small",
            transform=loss_ax.get_xaxis_transform(), color="0.3",
        )  # fmt: skip


def plot_history(
    run: Any, ax: Any = None, *, title: str | None = None, x: str = "iteration"
) -> tuple[Any, Any]:
    """Draw the loss and step sizes of an optimizer run (SPSA, QN-SPSA, natural gradient).

    Args:
        run: an optimizer result, a state (:class:`~qprim_grad.optimizers.SPSAState`,
            :class:`~qprim_grad.optimizers.NaturalGradientState`) or a history.
        ax: ``None`` (a new figure with a loss panel above a step-size panel), a pair of
            matplotlib ``Axes`` ``(loss_ax, step_ax)``, or one ``Axes`` (step sizes then go on
            a twin y-axis).
        title: title of the loss panel (default: the optimizer's name, iterations, loss and
            fidelity evaluations, estimator and sampler jobs, shots).
        x: plot against ``"iteration"`` (default), ``"shots"`` (the shots spent when the
            step was decided) or ``"jobs"``.

    Returns:
        ``(loss_ax, step_ax)``.

    The loss is the value measured at each proposed point: accepted steps are dots joined by
    a line, steps that blocking rejected are red crosses. The shaded band left of iteration 1
    marks the calibration job (present when ``learning_rate`` and ``perturbation`` were not
    given); the calibrated learning rate ``a_k`` is drawn dashed on the step-size panel. A
    dotted line marks each point a run was resumed from.
    """
    history, state = history_of(run)
    series = _Series.of(history, x)
    loss_ax, step_ax, twin = _axes(ax)
    gains = getattr(state, "gains", None)
    if gains is not None and x == "iteration":
        _shade_calibration(loss_ax, step_ax, twin)
    _draw_loss(loss_ax, series)
    gain = None if gains is None else PowerSeries(**gains["learning_rate"])
    _draw_steps(step_ax, series, gain, twin, x)
    _mark_resumes(loss_ax, history, series, x)
    title = _default_title(history, state) if title is None else title
    if title:
        loss_ax.set_title(title, fontsize="medium")
    return loss_ax, step_ax
