"""Plots of an SPSA run (needs the ``plot`` extra: ``pip install "qprim-grad[plot]"``).

:func:`plot_history` draws what :class:`~qprim_grad.optimizers.SPSA` records in
``result.history``: the loss measured at every proposed point (accepted steps as dots,
steps rejected by blocking as crosses), the length of every step, and — when the gains
were calibrated — the calibration job before the first iteration together with the
calibrated learning rate ``a_k``.

matplotlib is imported when a plot is drawn, never at ``import qprim_grad``.

Example:
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from qprim_grad.optimizers import SPSA, batched
    >>> from qprim_grad.plotting import plot_history
    >>> loss = batched(lambda X: np.sum(np.atleast_2d(X) ** 2, axis=1))
    >>> result = SPSA(maxiter=15, seed=1).minimize(loss, [1.0, -0.5])
    >>> loss_ax, step_ax = plot_history(result)
    >>> loss_ax.get_ylabel(), step_ax.get_xlabel()
    ('loss', 'iteration')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .optimizers.gains import PowerSeries
from .optimizers.state import SPSAHistory, SPSAState

__all__ = ["plot_history", "history_of"]


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            'plotting needs matplotlib; install it with: pip install "qprim-grad[plot]"'
        ) from exc
    return plt


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


def _axes(ax: Any) -> tuple[Any, Any, bool]:
    if ax is None:
        plt = _pyplot()
        _, (loss_ax, step_ax) = plt.subplots(
            2, 1, sharex=True, figsize=(7.0, 5.0), height_ratios=(2, 1), layout="constrained"
        )
        return loss_ax, step_ax, False
    if isinstance(ax, (Sequence, np.ndarray)):
        axes = list(np.ravel(np.asarray(ax, dtype=object)))
        if len(axes) != 2:
            raise ValueError(f"ax: expected one Axes or two (loss, step size), got {len(axes)}")
        return axes[0], axes[1], False
    return ax, ax.twinx(), True


def plot_history(run: Any, ax: Any = None, *, title: str | None = None) -> tuple[Any, Any]:
    """Draw the loss and step sizes of an SPSA run.

    Args:
        run: an SPSA result, an :class:`~qprim_grad.optimizers.SPSAState` or an
            :class:`~qprim_grad.optimizers.SPSAHistory`.
        ax: ``None`` (a new figure with a loss panel above a step-size panel), a pair of
            matplotlib ``Axes`` ``(loss_ax, step_ax)``, or one ``Axes`` (step sizes then go on
            a twin y-axis).
        title: title of the loss panel (default: iterations, jobs and circuit evaluations).

    Returns:
        ``(loss_ax, step_ax)``.

    The loss is the value measured at each proposed point: accepted steps are dots joined by
    a line, steps that blocking rejected are red crosses. The shaded band left of iteration 1
    marks the calibration job (present when ``learning_rate`` and ``perturbation`` were not
    given); the calibrated learning rate ``a_k`` is drawn dashed on the step-size panel.
    """
    history, state = history_of(run)
    loss_ax, step_ax, twin = _axes(ax)
    iteration = np.asarray(history.iteration, dtype=float)
    loss = np.asarray(history.loss, dtype=float)
    step = np.asarray(history.stepsize, dtype=float)
    accepted = np.asarray(history.accepted, dtype=bool)

    calibrated = state is not None and state.gains is not None
    if calibrated:
        for axis in (loss_ax,) if twin else (loss_ax, step_ax):
            axis.axvspan(-0.5, 0.5, color="0.88", zorder=0)
        loss_ax.text(
            0.0, 0.5, "calibration", rotation=90, ha="center", va="center",
            transform=loss_ax.get_xaxis_transform(), color="0.35", fontsize="small",
        )  # fmt: skip

    loss_ax.plot(iteration[accepted], loss[accepted], "o-", ms=3.5, color="C0", label="accepted")
    if not accepted.all():
        loss_ax.plot(iteration[~accepted], loss[~accepted], "x", ms=6, color="C3", label="rejected")
    loss_ax.set_ylabel("loss")
    loss_ax.grid(alpha=0.3)
    loss_ax.legend(loc="upper right", fontsize="small")

    step_ax.plot(iteration, step, ".-", ms=3, color="C1", label="step length")
    if not accepted.all():
        step_ax.plot(iteration[~accepted], step[~accepted], "x", ms=6, color="C3")
    if calibrated and len(iteration):
        assert state is not None and state.gains is not None
        gain = PowerSeries(**state.gains["learning_rate"])
        ks = np.arange(1, int(iteration.max()) + 1)
        step_ax.plot(
            ks, [gain.at(int(k)) for k in ks], "--", color="0.4", label="learning rate $a_k$"
        )
    step_ax.set_ylabel("step size")
    step_ax.set_xlabel("iteration")
    if not twin:
        step_ax.grid(alpha=0.3)
    step_ax.legend(loc="center right", fontsize="small")

    if title is None and len(history):
        title = (
            f"SPSA: {int(iteration.max())} iterations, {history.jobs[-1]} jobs, "
            f"{history.nfev[-1]} circuit evaluations"
        )
    if title:
        loss_ax.set_title(title, fontsize="medium")
    return loss_ax, step_ax
