"""Plots of gradients, quantum geometric tensors and SPSA runs (needs the ``plot`` extra:
``pip install "qprim-grad[plot]"``).

* :func:`plot_gradient` draws ``grads`` with their ``grad_stds`` as error bars, one point
  per parameter (optionally next to reference values);
* :func:`plot_qgt` draws a quantum geometric tensor (a ``qgt`` result field or an array) as
  a heat map;
* :func:`plot_history` draws what :class:`~qprim_grad.optimizers.SPSA` records in
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

    A gradient with its error bars:

    >>> from qiskit.circuit.library import real_amplitudes
    >>> from qiskit.primitives import StatevectorEstimator
    >>> from qprim_grad import GradientEstimator
    >>> from qprim_grad.plotting import plot_gradient
    >>> ansatz = real_amplitudes(2, reps=1)
    >>> pub_result = GradientEstimator(StatevectorEstimator()).run(
    ...     [(ansatz, "ZZ", [0.1, 0.2, 0.3, 0.4])]).result()[0]
    >>> ax = plot_gradient(pub_result)
    >>> [label.get_text() for label in ax.get_xticklabels()]
    ['θ[0]', 'θ[1]', 'θ[2]', 'θ[3]']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from qiskit.circuit import Parameter

from .optimizers.gains import PowerSeries
from .optimizers.state import SPSAHistory, SPSAState

__all__ = ["plot_gradient", "plot_qgt", "plot_history", "history_of"]


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
            f"{history.nfev[-1]} loss evaluations"
        )
    if title:
        loss_ax.set_title(title, fontsize="medium")
    return loss_ax, step_ax


# ---- gradients and quantum geometric tensors ------------------------------------------------


def _field(result: Any, name: str) -> tuple[np.ndarray, Any, Any]:
    """``(array, data, metadata)`` for the field ``name`` of a pub result, a data bin or a
    one-pub ``PrimitiveResult``; ``array`` may also be given directly."""
    if isinstance(result, np.ndarray) or (
        isinstance(result, (list, tuple)) and not hasattr(result, "data")
    ):
        return np.asarray(result), None, None
    pubs = getattr(result, "_pub_results", None)  # a PrimitiveResult
    if pubs is not None:
        if len(pubs) != 1:
            raise ValueError(
                f"the result holds {len(pubs)} pub results: pass one of them, e.g. result[0]"
            )
        result = pubs[0]
    data = getattr(result, "data", result)
    metadata = getattr(result, "metadata", None)
    if not hasattr(data, name):
        raise TypeError(
            f"cannot plot {type(result).__name__}: expected an array or a result whose data "
            f"has a '{name}' field"
        )
    return np.asarray(getattr(data, name)), data, metadata


def _parameter_labels(metadata: Any, count: int, labels: Sequence[str] | None) -> list[str]:
    if labels is not None:
        labels = [str(label) for label in labels]
        if len(labels) != count:
            raise ValueError(f"labels: expected {count} (one per parameter), got {len(labels)}")
        return labels
    params = metadata.get("parameters") if isinstance(metadata, dict) else None
    if params is not None and len(params) == count:
        return [p.name if isinstance(p, Parameter) else str(p) for p in params]
    return [f"θ_{j}" for j in range(count)]


def _rows(array: np.ndarray, index: Any, trailing: int) -> tuple[np.ndarray, list]:
    """Rows of ``array`` over its pub shape (all but the ``trailing`` last axes), with their
    indices; ``index`` picks one."""
    shape = array.shape[: array.ndim - trailing]
    if index is not None:
        index = index if isinstance(index, tuple) else (index,)
        try:
            return array[index][None], [index]
        except IndexError as exc:
            raise IndexError(f"index {index} is out of range for a pub of shape {shape}") from exc
    indices = list(np.ndindex(shape))
    return array.reshape((len(indices),) + array.shape[array.ndim - trailing :]), indices


def plot_gradient(
    result: Any,
    ax: Any = None,
    *,
    stds: Any = None,
    index: Any = None,
    labels: Sequence[str] | None = None,
    reference: Any = None,
    title: str | None = None,
) -> Any:
    """Draw a gradient: ``grads[j]`` with ``grad_stds[j]`` error bars for each parameter ``j``.

    Args:
        result: a pub result of :class:`~qprim_grad.GradientEstimator` (or its ``data``, or
            a one-pub ``PrimitiveResult``), or an array of gradients (then ``stds`` gives
            the error bars).
        ax: the matplotlib ``Axes`` to draw on (default: a new figure).
        stds: standard errors when ``result`` is an array.
        index: which entry of the pub's shape to draw (default: every entry, one series
            each, for at most 8 entries).
        labels: the parameter names on the x axis (default: the result's ``parameters``
            metadata, else ``θ_j``).
        reference: values to draw next to the gradient (e.g. an exact gradient), same shape.
        title: title of the axes.

    Returns:
        The ``Axes``. The error bars are ±1 standard error; on exact primitives they are zero.
    """
    grads, data, metadata = _field(result, "grads")
    if grads.ndim == 0:
        raise ValueError("grads must have a parameter axis (the last one)")
    if data is not None and stds is None and hasattr(data, "grad_stds"):
        stds = data.grad_stds
    errors = np.zeros_like(grads, dtype=float) if stds is None else np.asarray(stds, dtype=float)
    if errors.shape != grads.shape:
        raise ValueError(f"stds: expected shape {grads.shape} (as grads), got {errors.shape}")
    num_params = grads.shape[-1]
    names = _parameter_labels(metadata, num_params, labels)
    rows, indices = _rows(np.real(grads), index, 1)
    error_rows, _ = _rows(errors, index, 1)
    if len(rows) > 8:
        raise ValueError(
            f"the pub has {len(rows)} entries: pick one with index= (at most 8 are drawn together)"
        )
    if ax is None:
        _, ax = _pyplot().subplots(figsize=(max(4.0, 0.5 * num_params + 2.0), 3.5))
    x = np.arange(num_params, dtype=float)
    width = 0.6 / max(len(rows), 1)
    for number, (row, err, idx) in enumerate(zip(rows, error_rows, indices)):
        offset = (number - (len(rows) - 1) / 2) * width
        label = "grads ± grad_stds" if idx == () else f"grads{list(idx)} ± grad_stds"
        ax.errorbar(x + offset, row, yerr=err, fmt="o", ms=4, capsize=3, label=label)
    if reference is not None:
        ref = np.asarray(reference, dtype=float)
        if ref.shape != grads.shape:
            raise ValueError(f"reference: expected shape {grads.shape} (as grads), got {ref.shape}")
        ref_rows, _ = _rows(ref, index, 1)
        for number, row in enumerate(ref_rows):
            offset = (number - (len(rows) - 1) / 2) * width
            ax.plot(x + offset, row, "_", ms=14, mew=2, color="0.2",
                    label="reference" if number == 0 else None)  # fmt: skip
    ax.axhline(0.0, color="0.6", lw=0.8)
    ax.set_xticks(x, names, rotation=0 if num_params <= 12 else 90)
    ax.set_xlabel("parameter")
    ax.set_ylabel("gradient d⟨O⟩/dθ")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize="small")
    if title is None and isinstance(metadata, dict) and "method" in metadata:
        title = f"gradient ({metadata['method']})"
    if title:
        ax.set_title(title, fontsize="medium")
    return ax


def plot_qgt(
    result: Any,
    ax: Any = None,
    *,
    part: str = "real",
    index: Any = None,
    labels: Sequence[str] | None = None,
    annotate: bool | None = None,
    title: str | None = None,
) -> Any:
    """Draw a quantum geometric tensor as a heat map (rows and columns: parameters).

    Args:
        result: a result of :class:`~qprim_grad.QGTEstimator` or of a
            :class:`~qprim_grad.GradientEstimator` with ``metric=`` (a pub result, its
            ``data`` or a one-pub ``PrimitiveResult``: its ``qgt`` field), or an array of
            shape ``(..., P, P)``.
        ax: the matplotlib ``Axes`` to draw on (default: a new figure).
        part: ``"real"`` (the Fubini–Study metric, what natural gradients use), ``"imag"``
            (the Berry curvature) or ``"abs"`` of a complex tensor.
        index: which entry of the pub's shape to draw (needed when there are several).
        labels: the parameter names (default: the result's ``parameters`` metadata, else
            ``θ_j``).
        annotate: write each entry's value in its cell (default: for at most 10 parameters).
        title: title of the axes.

    Returns:
        The ``Axes``; the colour scale is symmetric around zero, with a colour bar.
    """
    parts: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "real": np.real,
        "imag": np.imag,
        "abs": np.abs,
    }
    if part not in parts:
        raise ValueError(f"part: expected one of {sorted(parts)}, got {part!r}")
    qgt, _, metadata = _field(result, "qgt")
    if qgt.ndim < 2 or qgt.shape[-1] != qgt.shape[-2]:
        raise ValueError(f"expected a tensor of shape (..., P, P), got shape {qgt.shape}")
    rows, indices = _rows(qgt, index, 2)
    if len(rows) != 1:
        raise ValueError(
            f"the pub has {len(rows)} entries (shape {qgt.shape[:-2]}): pick one with index="
        )
    matrix = parts[part](rows[0]).astype(float)
    num_params = matrix.shape[0]
    names = _parameter_labels(metadata, num_params, labels)
    if ax is None:
        size = min(9.0, max(3.5, 0.45 * num_params + 2.0))
        _, ax = _pyplot().subplots(figsize=(size + 1.0, size), layout="constrained")
    limit = float(np.max(np.abs(matrix))) or 1.0
    image = ax.imshow(matrix, cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.figure.colorbar(image, ax=ax, shrink=0.85)
    ticks = np.arange(num_params)
    ax.set_xticks(ticks, names, rotation=90 if num_params > 6 else 0)
    ax.set_yticks(ticks, names)
    if annotate or (annotate is None and num_params <= 10):
        for i, j in np.ndindex(matrix.shape):
            value = matrix[i, j]
            color = "white" if abs(value) > 0.6 * limit else "black"
            text = "0" if abs(value) < 1e-3 * limit else f"{value:.2g}"  # not -1.4e-17
            ax.text(j, i, text, ha="center", va="center", fontsize="x-small",
                    color=color)  # fmt: skip
    if title is None:
        what = {"real": "Re", "imag": "Im", "abs": "|·|"}[part]
        title = f"{what} QGT" + ("" if indices[0] == () else f" at {list(indices[0])}")
    ax.set_title(title, fontsize="medium")
    return ax
