"""The plot of an SPSA run: loss and step sizes per iteration."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..optimizers.gains import PowerSeries
from ..optimizers.state import SPSAHistory, SPSAState
from ._common import pyplot

__all__ = ["history_of", "plot_history"]


def history_of(run: Any) -> tuple[SPSAHistory, SPSAState | None]:
    """The history (and the state, if known) of an SPSA result, state or history.

    ``run`` is what :meth:`SPSA.minimize <qprim_grad.optimizers.SPSA.minimize>` returns, an
    :class:`~qprim_grad.optimizers.SPSAState` (e.g. loaded from a checkpoint) or an
    :class:`~qprim_grad.optimizers.SPSAHistory`.
    """
    if isinstance(run, SPSAHistory):
        return run, None
    if isinstance(run, SPSAState):
        return run.history, run
    history = getattr(run, "history", None)
    if not isinstance(history, SPSAHistory):
        raise TypeError(
            f"cannot plot {type(run).__name__}: expected an SPSA result (with .history), an "
            "SPSAState or an SPSAHistory"
        )
    state = getattr(run, "state", None)
    return history, state if isinstance(state, SPSAState) else None


@dataclass(frozen=True)
class _Series:
    """The recorded history as arrays over the proposed steps."""

    iteration: np.ndarray
    loss: np.ndarray
    step: np.ndarray
    accepted: np.ndarray

    @classmethod
    def of(cls, history: SPSAHistory) -> _Series:
        return cls(
            np.asarray(history.iteration, dtype=float),
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


def _draw_steps(step_ax: Any, series: _Series, gain: PowerSeries | None, twin: bool) -> None:
    """Step lengths, rejected ones crossed, and the calibrated learning rate dashed."""
    it, step, ok = series.iteration, series.step, series.accepted
    step_ax.plot(it, step, ".-", ms=3, color="C1", label="step length")
    if not ok.all():
        step_ax.plot(it[~ok], step[~ok], "x", ms=6, color="C3")
    if gain is not None and len(it):
        ks = np.arange(1, int(it.max()) + 1)
        step_ax.plot(
            ks, [gain.at(int(k)) for k in ks], "--", color="0.4", label="learning rate $a_k$"
        )
    step_ax.set_ylabel("step size")
    step_ax.set_xlabel("iteration")
    if not twin:
        step_ax.grid(alpha=0.3)
    step_ax.legend(loc="center right", fontsize="small")


def _default_title(history: SPSAHistory, series: _Series) -> str | None:
    if not len(history):
        return None
    return (
        f"SPSA: {int(series.iteration.max())} iterations, {history.jobs[-1]} jobs, "
        f"{history.nfev[-1]} loss evaluations"
    )


def plot_history(run: Any, ax: Any = None, *, title: str | None = None) -> tuple[Any, Any]:
    """Draw the loss and step sizes of an SPSA run.

    Args:
        run: an SPSA result, an :class:`~qprim_grad.optimizers.SPSAState` or an
            :class:`~qprim_grad.optimizers.SPSAHistory`.
        ax: ``None`` (a new figure with a loss panel above a step-size panel), a pair of
            matplotlib ``Axes`` ``(loss_ax, step_ax)``, or one ``Axes`` (step sizes then go on
            a twin y-axis).
        title: title of the loss panel (default: iterations, jobs and loss evaluations).

    Returns:
        ``(loss_ax, step_ax)``.

    The loss is the value measured at each proposed point: accepted steps are dots joined by
    a line, steps that blocking rejected are red crosses. The shaded band left of iteration 1
    marks the calibration job (present when ``learning_rate`` and ``perturbation`` were not
    given); the calibrated learning rate ``a_k`` is drawn dashed on the step-size panel.
    """
    history, state = history_of(run)
    loss_ax, step_ax, twin = _axes(ax)
    series = _Series.of(history)
    gains = None if state is None else state.gains
    if gains is not None:
        _shade_calibration(loss_ax, step_ax, twin)
    _draw_loss(loss_ax, series)
    gain = None if gains is None else PowerSeries(**gains["learning_rate"])
    _draw_steps(step_ax, series, gain, twin)
    title = _default_title(history, series) if title is None else title
    if title:
        loss_ax.set_title(title, fontsize="medium")
    return loss_ax, step_ax
