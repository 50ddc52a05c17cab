"""Counting the shots a pub asks for, as IBM Runtime counts them.

* Estimator pub: parameter sets x measurement bases x shots per basis. The bases are the
  qubit-wise commuting groups of the terms of all of the pub's observables together
  (``SparsePauliOp.group_commuting(qubit_wise=True)``); the shots per basis are what the
  inner pub result reports in its metadata (``shots``, or ``executor.shots`` for
  qiskit-ibm-runtime's executor primitives), else ``ceil(1 / precision**2)`` of the
  precision it reports (``target_precision``) or was sent. Precision zero (an exact
  primitive) costs nothing.
* Sampler pub: parameter sets x shots (from the pub result's metadata, else its bit arrays,
  else the shots it was sent with); an exact distribution costs nothing.

Example:
    >>> from qiskit import QuantumCircuit
    >>> from qiskit.primitives.containers.estimator_pub import EstimatorPub
    >>> pub = EstimatorPub.coerce((QuantumCircuit(2), ["ZZ", "ZI", "XX"]))
    >>> num_bases(pub.observables)  # {ZZ, ZI} and {XX}
    2
    >>> estimator_pub_shots(pub, {"target_precision": 0.05})  # 1 set x 2 bases x 400
    800
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from qiskit.primitives.containers import BitArray, ObservablesArray
from qiskit.quantum_info import PauliList, SparsePauliOp

from .cache import BoundedCache

__all__ = [
    "num_bases",
    "measurement_groups",
    "shots_for_precision",
    "shots_per_basis",
    "parameter_sets",
    "estimator_pub_shots",
    "sampler_pub_shots",
    "pub_shots",
]

#: the groups of a set of Pauli labels, keyed by the labels (content: served by key alone)
_GROUPS: BoundedCache[tuple[tuple[str, ...], ...]] = BoundedCache(size=256)


def shots_for_precision(precision: float) -> int:
    """``ceil(1 / precision**2)`` (as qiskit's ``BackendEstimatorV2`` and IBM Runtime
    compute it); zero for precision zero."""
    if precision == 0:
        return 0
    return int(math.ceil(1.0 / float(precision) ** 2))


def _labels(observables: ObservablesArray) -> tuple[str, ...]:
    """The distinct Pauli labels of every observable of the array, sorted."""
    labels: set[str] = set()
    for observable in observables.ravel().tolist():
        labels.update(observable.keys())
    return tuple(sorted(labels))


def measurement_groups(labels: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """The qubit-wise commuting groups of the Pauli ``labels`` (cached by content)."""

    def build() -> tuple[tuple[str, ...], ...]:
        if not labels:
            return ()
        operator = SparsePauliOp(PauliList(list(labels)))
        groups = operator.group_commuting(qubit_wise=True)
        return tuple(tuple(group.paulis.to_labels()) for group in groups)

    return _GROUPS.get(("qwc", labels), None, build)


def num_bases(observables: ObservablesArray) -> int:
    """The number of measurement bases of all of ``observables`` together."""
    return len(measurement_groups(_labels(observables)))


def parameter_sets(pub: Any) -> int:
    """The number of parameter sets (bindings) of a coerced pub."""
    return int(np.prod(pub.parameter_values.shape, dtype=int))


def shots_per_basis(metadata: Mapping[str, Any], precision: float | None = None) -> int:
    """The shots per basis an estimator pub result reports, else those its precision
    implies (the reported ``target_precision``, else ``precision``; none: zero)."""
    shots = _reported_shots(metadata)
    if shots is not None:
        return shots
    reported = metadata.get("target_precision")
    if reported is not None:
        precision = reported
    return 0 if precision is None else shots_for_precision(precision)


def _reported_shots(metadata: Mapping[str, Any]) -> int | None:
    """``metadata["shots"]`` or ``metadata["executor"]["shots"]`` if an integer."""
    shots = metadata.get("shots")
    if shots is None:
        executor = metadata.get("executor")
        if isinstance(executor, Mapping):
            shots = executor.get("shots")
    if isinstance(shots, (int, np.integer)) and not isinstance(shots, bool):
        return int(shots)
    return None


def estimator_pub_shots(
    pub: Any, metadata: Mapping[str, Any], precision: float | None = None
) -> int:
    """Shots of an estimator pub: parameter sets x bases x shots per basis."""
    per_basis = shots_per_basis(metadata, precision)
    if per_basis == 0:
        return 0
    return parameter_sets(pub) * num_bases(pub.observables) * per_basis


def sampler_pub_shots(pub: Any, pub_result: Any, shots: int | None = None) -> int:
    """Shots of a sampler pub: parameter sets x shots (reported, else counted in its bit
    arrays, else ``shots``); zero for an exact distribution."""
    metadata = getattr(pub_result, "metadata", None) or {}
    per_set = _reported_shots(metadata)
    if per_set is None:
        data = getattr(pub_result, "data", None)
        arrays = [v for v in (data.values() if data is not None else ()) if isinstance(v, BitArray)]
        if arrays:
            per_set = int(arrays[0].num_shots)
        elif data is not None and len(data):
            per_set = 0  # exact probabilities: no shots
        else:
            per_set = int(shots or 0)
    return parameter_sets(pub) * per_set


def pub_shots(pub: Any, pub_result: Any, default: float | int | None = None) -> int:
    """The shots of one inner pub sent with its result: an estimator pub (``default``: the
    precision it was sent with) or a sampler pub (``default``: the shots)."""
    if hasattr(pub, "observables"):
        precision = pub.precision if pub.precision is not None else default
        return estimator_pub_shots(pub, getattr(pub_result, "metadata", None) or {}, precision)
    shots = pub.shots if pub.shots is not None else default
    return sampler_pub_shots(pub, pub_result, None if shots is None else int(shots))
