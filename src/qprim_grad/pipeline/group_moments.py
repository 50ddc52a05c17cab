"""A measurement group's first two moments from one pub: the pub measuring ``O`` and
``O**2`` for each group observable ``O`` (``O**2`` is diagonal in the same basis: no extra
circuit, the same shots), and what they give on an estimator that samples real shots: the
spread of the per-shot value of ``O`` and the standard error it implies.

>>> from qiskit.primitives.containers import DataBin, PubResult
>>> data = DataBin(evs=np.array([[0.5, 1.0]]), stds=np.array([[0.9, 0.9]]), shape=(1,))
>>> float(measured_stds(PubResult(data, metadata={"shots": 4}), None)[0])
0.5
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qiskit.primitives.containers import ObservablesArray
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.quantum_info import SparsePauliOp

from ..cache import BoundedCache
from ..shots import _reported_shots, shots_per_basis

__all__ = ["measured_stds", "moment_variance", "square", "with_squares"]


def with_squares(pub: EstimatorPub, precision: float | None = None) -> EstimatorPub:
    """The pub measuring ``[O, O**2]`` for each of its observables ``O`` (a trailing axis of
    length 2; the parameter values get a trailing axis of length 1)."""
    flat = pub.observables.ravel().tolist()
    array = np.empty((len(flat), 2), dtype=object)
    for index, observable in enumerate(flat):
        array[index, 0] = observable
        array[index, 1] = square(tuple(sorted(observable.items())))
    stacked = ObservablesArray.coerce(array.reshape(pub.observables.shape + (2,)))
    bindings = pub.parameter_values.reshape(tuple(pub.parameter_values.shape) + (1,))
    return EstimatorPub(pub.circuit, stacked, bindings, precision, validate=False)


#: ``O**2`` of a group observable, keyed by its terms (content: served by key alone)
_SQUARES: BoundedCache[dict[str, float]] = BoundedCache(size=1024)


def square(items: tuple[tuple[str, float], ...]) -> dict[str, float]:
    """``O**2`` of ``O = sum c_k P_k`` (qubit-wise commuting terms: real coefficients),
    computed once per observable's terms (a copy: the caller may keep it)."""
    return dict(_SQUARES.get(("square", items), None, lambda: _build_square(items)))


def _build_square(items: tuple[tuple[str, float], ...]) -> dict[str, float]:
    operator = SparsePauliOp.from_list(list(items))
    product = (operator @ operator).simplify(atol=1e-12)
    labels = product.paulis.to_labels()
    terms = {label: float(np.real(c)) for label, c in zip(labels, product.coeffs)}
    return terms or {"I" * operator.num_qubits: 0.0}


def moment_variance(result: Any) -> np.ndarray:
    """Per row of a ``with_squares`` pub's result: ``max(<O**2> - <O>**2, 0)``, the (plug-in)
    variance of the per-shot value of ``O`` where the shots are real."""
    evs = np.asarray(result.data.evs, dtype=float)
    return np.asarray(np.maximum(evs[..., 1] - evs[..., 0] ** 2, 0.0))


def measured_stds(result: Any, precision: float | None) -> np.ndarray:
    """A ``with_squares`` pub's standard errors of ``O``: where the estimator reports real
    shots (``n >= 2`` per basis), from the measured spread of each row,
    ``sqrt(moment_variance / (n - 1))`` (the sample variance of the per-shot value over
    ``n``); else the estimator's own."""
    stds = np.asarray(result.data.stds, dtype=float)[..., 0]
    metadata = result.metadata or {}
    if _reported_shots(metadata) is None:
        return stds
    shots = shots_per_basis(metadata, precision)
    if shots < 2:
        return stds
    return np.asarray(np.sqrt(moment_variance(result) / (shots - 1)))
