"""Plots of a gradient (with its error bars) and of a quantum geometric tensor."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._common import parameter_labels, pub_rows, pyplot, result_field

__all__ = ["plot_gradient", "plot_qgt"]

#: at most this many entries of a pub's shape are drawn together in one gradient plot
_MAX_SERIES = 8
_PARTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "real": np.real,
    "imag": np.imag,
    "abs": np.abs,
}
_PART_TITLES = {"real": "Re", "imag": "Im", "abs": "|·|"}


def _new_axes(figsize: tuple[float, float], **options: Any) -> Any:
    """The axes of a new figure."""
    _, ax = pyplot().subplots(figsize=figsize, **options)
    return ax


def _gradient_errors(grads: np.ndarray, data: Any, stds: Any) -> np.ndarray:
    """The error bars: ``stds``, else the result's ``grad_stds``, else zeros."""
    if grads.ndim == 0:
        raise ValueError("grads must have a parameter axis (the last one)")
    if data is not None and stds is None and hasattr(data, "grad_stds"):
        stds = data.grad_stds
    errors = np.zeros_like(grads, dtype=float) if stds is None else np.asarray(stds, dtype=float)
    if errors.shape != grads.shape:
        raise ValueError(f"stds: expected shape {grads.shape} (as grads), got {errors.shape}")
    return errors


def _offsets(count: int) -> np.ndarray:
    """x offsets of ``count`` series drawn side by side at each parameter."""
    width = 0.6 / max(count, 1)
    return (np.arange(count) - (count - 1) / 2) * width


def _series(grads: np.ndarray, errors: np.ndarray, index: Any) -> tuple[Any, Any, list]:
    """``(rows, error rows, their indices)``: the entries of the pub drawn as series."""
    rows, indices = pub_rows(np.real(grads), index, 1)
    error_rows, _ = pub_rows(errors, index, 1)
    if len(rows) > _MAX_SERIES:
        raise ValueError(
            f"the pub has {len(rows)} entries: pick one with index= (at most 8 are drawn together)"
        )
    return rows, error_rows, indices


def _draw_series(ax: Any, xs: np.ndarray, rows: Any, error_rows: Any, indices: list) -> None:
    """One series of points with error bars per entry, at the x positions ``xs[number]``."""
    for x, row, err, idx in zip(xs, rows, error_rows, indices):
        label = "grads ± grad_stds" if idx == () else f"grads{list(idx)} ± grad_stds"
        ax.errorbar(x, row, yerr=err, fmt="o", ms=4, capsize=3, label=label)


def _draw_reference(ax: Any, reference: Any, shape: tuple, index: Any, xs: np.ndarray) -> None:
    """Reference values as dark bars next to each series."""
    ref = np.asarray(reference, dtype=float)
    if ref.shape != shape:
        raise ValueError(f"reference: expected shape {shape} (as grads), got {ref.shape}")
    ref_rows, _ = pub_rows(ref, index, 1)
    for number, (x, row) in enumerate(zip(xs, ref_rows)):
        ax.plot(x, row, "_", ms=14, mew=2, color="0.2",
                label="reference" if number == 0 else None)  # fmt: skip


#: inches of figure width per parameter, the width's bounds, the room a vertical label
#: takes, and the width of one character of a label (at matplotlib's default 10 pt)
_INCH_PER_PARAMETER = 0.32
_WIDTH = (4.0, 16.0)
_INCH_PER_LABEL = 0.18
_INCH_PER_CHARACTER = 0.085


def _gradient_figsize(count: int) -> tuple[float, float]:
    """A figure wide enough for ``count`` parameters, within ``_WIDTH``."""
    low, high = _WIDTH
    return (min(high, max(low, _INCH_PER_PARAMETER * count + 2.0)), 3.5)


def _axes_width(ax: Any) -> float:
    """The width of the axes, in inches."""
    return max(float(ax.figure.get_size_inches()[0] * ax.get_position().width), 1e-9)


def _set_parameter_ticks(ax: Any, x: np.ndarray, names: list[str]) -> None:
    """Every parameter gets a tick. Labels are upright when at most 12 fit side by side,
    else vertical, and thinned to every ``step``-th when even vertical ones would overlap."""
    spacing = _axes_width(ax) / max(len(names), 1)
    longest = max((len(name) for name in names), default=0) * _INCH_PER_CHARACTER
    upright = len(names) <= 12 and longest <= 0.9 * spacing
    step = max(1, int(np.ceil(_INCH_PER_LABEL / spacing)))
    ax.set_xticks(x[::step], names[::step], rotation=0 if upright else 90)
    if step > 1:
        ax.set_xticks(x, minor=True)


def _style_gradient_axes(ax: Any, x: np.ndarray, names: list[str], title: str | None) -> None:
    ax.axhline(0.0, color="0.6", lw=0.8)
    _set_parameter_ticks(ax, x, names)
    ax.set_xlabel("parameter")
    ax.set_ylabel("gradient d⟨O⟩/dθ")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize="small")
    if title:  # wrapped to the figure's width
        columns = max(20, int((ax.figure.get_size_inches()[0] - 0.4) / _INCH_PER_CHARACTER))
        ax.set_title(textwrap.fill(title, columns), fontsize="medium")


def _gradient_title(title: str | None, metadata: Any) -> str | None:
    if title is None and isinstance(metadata, dict) and "method" in metadata:
        return f"gradient ({metadata['method']})"
    return title


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
        A new figure grows with the number of parameters (up to 16 inches wide) and keeps
        every label inside it; labels that do not fit side by side (or more than 12) are
        vertical, and every ``k``-th is shown when more would overlap.
    """
    grads, data, metadata = result_field(result, "grads")
    errors = _gradient_errors(grads, data, stds)
    names = parameter_labels(metadata, grads.shape[-1], labels)
    rows, error_rows, indices = _series(grads, errors, index)
    if ax is None:  # constrained layout: the tick labels and the axis label stay inside
        ax = _new_axes(_gradient_figsize(len(names)), layout="constrained")
    x = np.arange(len(names), dtype=float)
    xs = x + _offsets(len(rows))[:, None]  # the x positions of each series
    _draw_series(ax, xs, rows, error_rows, indices)
    if reference is not None:
        _draw_reference(ax, reference, grads.shape, index, xs)
    _style_gradient_axes(ax, x, names, _gradient_title(title, metadata))
    return ax


def _qgt_matrix(result: Any, part: str, index: Any) -> tuple[np.ndarray, tuple, Any]:
    """``(matrix, its index in the pub, metadata)``: the ``part`` of one tensor, checked."""
    if part not in _PARTS:
        raise ValueError(f"part: expected one of {sorted(_PARTS)}, got {part!r}")
    qgt, _, metadata = result_field(result, "qgt")
    if qgt.ndim < 2 or qgt.shape[-1] != qgt.shape[-2]:
        raise ValueError(f"expected a tensor of shape (..., P, P), got shape {qgt.shape}")
    rows, indices = pub_rows(qgt, index, 2)
    if len(rows) != 1:
        raise ValueError(
            f"the pub has {len(rows)} entries (shape {qgt.shape[:-2]}): pick one with index="
        )
    return _PARTS[part](rows[0]).astype(float), indices[0], metadata


def _heat_map(ax: Any, matrix: np.ndarray, names: list[str]) -> float:
    """The matrix in a colour scale symmetric around zero, with a colour bar and the
    parameter names on both axes; returns the scale's limit."""
    limit = float(np.max(np.abs(matrix))) or 1.0
    image = ax.imshow(matrix, cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.figure.colorbar(image, ax=ax, shrink=0.85)
    ticks = np.arange(len(names))
    ax.set_xticks(ticks, names, rotation=90 if len(names) > 6 else 0)
    ax.set_yticks(ticks, names)
    return limit


def _annotate_cells(ax: Any, matrix: np.ndarray, limit: float) -> None:
    """Each entry's value in its cell, white on dark cells."""
    for i, j in np.ndindex(matrix.shape):
        value = matrix[i, j]
        color = "white" if abs(value) > 0.6 * limit else "black"
        text = "0" if abs(value) < 1e-3 * limit else f"{value:.2g}"  # not -1.4e-17
        ax.text(j, i, text, ha="center", va="center", fontsize="x-small", color=color)


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
    matrix, entry, metadata = _qgt_matrix(result, part, index)
    names = parameter_labels(metadata, matrix.shape[0], labels)
    size = min(9.0, max(3.5, 0.45 * len(names) + 2.0))
    ax = _new_axes((size + 1.0, size), layout="constrained") if ax is None else ax
    limit = _heat_map(ax, matrix, names)
    if annotate or (annotate is None and len(names) <= 10):
        _annotate_cells(ax, matrix, limit)
    if title is None:
        title = f"{_PART_TITLES[part]} QGT" + ("" if entry == () else f" at {list(entry)}")
    ax.set_title(title, fontsize="medium")
    return ax
