"""What the plots share: matplotlib (imported on first use), result fields, labels, rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from qiskit.circuit import Parameter

__all__ = ["pyplot", "result_field", "parameter_labels", "pub_rows"]


def pyplot() -> Any:
    """``matplotlib.pyplot``, with a clear error naming the ``plot`` extra when missing."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "plotting needs matplotlib: python -m pip install matplotlib "
            '(the "plot" extra, qprim-grad[plot])'
        ) from exc
    return plt


def _one_pub(result: Any) -> Any:
    """The pub result of a one-pub ``PrimitiveResult``; anything else as it is."""
    pubs = getattr(result, "_pub_results", None)  # a PrimitiveResult
    if pubs is None:
        return result
    if len(pubs) != 1:
        raise ValueError(
            f"the result holds {len(pubs)} pub results: pass one of them, e.g. result[0]"
        )
    return pubs[0]


def result_field(result: Any, name: str) -> tuple[np.ndarray, Any, Any]:
    """``(array, data, metadata)`` for the field ``name`` of a pub result, a data bin or a
    one-pub ``PrimitiveResult``; ``array`` may also be given directly."""
    if isinstance(result, np.ndarray) or (
        isinstance(result, (list, tuple)) and not hasattr(result, "data")
    ):
        return np.asarray(result), None, None
    result = _one_pub(result)
    data = getattr(result, "data", result)
    metadata = getattr(result, "metadata", None)
    if not hasattr(data, name):
        raise TypeError(
            f"cannot plot {type(result).__name__}: expected an array or a result whose data "
            f"has a '{name}' field"
        )
    return np.asarray(getattr(data, name)), data, metadata


def parameter_labels(metadata: Any, count: int, labels: Sequence[str] | None) -> list[str]:
    """The names of ``count`` parameters: ``labels``, else the metadata's, else ``θ_j``."""
    if labels is not None:
        labels = [str(label) for label in labels]
        if len(labels) != count:
            raise ValueError(f"labels: expected {count} (one per parameter), got {len(labels)}")
        return labels
    params = metadata.get("parameters") if isinstance(metadata, dict) else None
    if params is not None and len(params) == count:
        return [p.name if isinstance(p, Parameter) else str(p) for p in params]
    return [f"θ_{j}" for j in range(count)]


def pub_rows(array: np.ndarray, index: Any, trailing: int) -> tuple[np.ndarray, list]:
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
