"""Pub-result surgery (concatenating split pieces, reshaping) and the form of inner pubs
(coerced pubs that also index like their tuples)."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
from qiskit.primitives.containers import BitArray, DataBin, EstimatorPub, SamplerPub

__all__ = [
    "concatenate_pub_results",
    "broadcast_pub_result",
    "reshape_pub_result",
    "object_array",
    "pub_tuple",
    "IndexableEstimatorPub",
    "IndexableSamplerPub",
    "indexable_pub",
]


def concatenate_pub_results(parts: list[Any]) -> Any:
    """One pub result from results of consecutive slices along the leading axis."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    fields = {
        name: _concatenate_field([getattr(part.data, name) for part in parts])
        for name in first.data.keys()
    }
    shape = (sum(part.data.shape[0] for part in parts),) + tuple(first.data.shape[1:])
    metadata = dict(first.metadata)
    metadata["pieces"] = len(parts)
    return type(first)(DataBin(**fields, shape=shape), metadata=metadata)


def _concatenate_field(values: list[Any]) -> Any:
    """One data field of consecutive slices joined along the leading axis (a 0-d field is
    the same in every slice)."""
    if isinstance(values[0], BitArray):
        return BitArray.concatenate(values, axis=0)
    if not isinstance(values[0], np.ndarray) and hasattr(values[0], "get_probabilities"):
        return np.concatenate([object_array(v) for v in values], axis=0)
    if np.ndim(values[0]) == 0:
        return values[0]
    return np.concatenate([np.asarray(v) for v in values], axis=0)


def broadcast_pub_result(result: Any, shape: tuple[int, ...]) -> Any:
    """An estimator pub result with its array fields broadcast to ``shape`` (plus their own
    trailing axes): the result of a pub evaluated once for many identical rows."""
    ndim = result.data.ndim
    fields = {}
    for name, value in result.data.items():
        array = np.asarray(value)
        fields[name] = np.array(np.broadcast_to(array, shape + array.shape[ndim:]))
    return type(result)(DataBin(**fields, shape=shape), metadata=result.metadata)


def reshape_pub_result(result: Any, shape: tuple[int, ...]) -> Any:
    """The same pub result with every data field reshaped to ``shape`` (plus its own
    trailing axes), e.g. to drop the one-point axis of a replacement centre."""
    fields = {}
    for name, value in result.data.items():
        if not hasattr(value, "reshape"):  # an exact-probability container (no reshape)
            if tuple(value.shape) == (1,) + shape:
                fields[name] = value[0]  # drop the one-point axis, keeping its type
            else:
                array = object_array(value).reshape(shape)
                fields[name] = array[()] if not shape else array
            continue
        tail = () if isinstance(value, BitArray) else np.shape(value)[result.data.ndim :]
        fields[name] = value.reshape(shape + tail)
    return type(result)(DataBin(**fields, shape=shape), metadata=result.metadata)


def object_array(value: Any) -> np.ndarray:
    """A container indexed like an array (exact-probability registers) as an object array
    of its elements (an object array is returned as it is)."""
    if isinstance(value, np.ndarray):
        return value
    shape = tuple(value.shape)
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(shape):
        out[index] = value[index] if shape else value
    return out


def pub_tuple(pub: EstimatorPub | SamplerPub) -> tuple[Any, ...]:
    """A coerced pub as the plain tuple it coerces from: ``(circuit, observables,
    parameter_values, precision)`` / ``(circuit, parameter_values, shots)``; the values are a
    numpy array over ``circuit.parameters`` (last axis) with the pub's shape in front."""
    circuit = pub.circuit
    bindings = pub.parameter_values
    values = bindings.as_array(circuit.parameters) if circuit.num_parameters else None
    if values is None:  # keep the shape of a parameterless pub's bindings
        values = np.zeros(tuple(bindings.shape) + (0,))
    if isinstance(pub, EstimatorPub):
        return (circuit, pub.observables, values, pub.precision)
    return (circuit, values, pub.shots)


class _TupleLike:
    """A coerced pub that also indexes, unpacks and has a ``len`` like the tuple it
    coerces from (:func:`pub_tuple`), for primitive wrappers written for tuples."""

    __slots__ = ()

    def __len__(self) -> int:
        return 4 if isinstance(self, EstimatorPub) else 3

    def __getitem__(self, index: Any) -> Any:
        return pub_tuple(cast(Any, self))[index]

    def __iter__(self) -> Any:
        return iter(pub_tuple(cast(Any, self)))


class IndexableEstimatorPub(_TupleLike, EstimatorPub):  # type: ignore[misc]
    """An ``EstimatorPub`` that is also ``(circuit, observables, values, precision)``."""

    __slots__ = ()


class IndexableSamplerPub(_TupleLike, SamplerPub):  # type: ignore[misc]
    """A ``SamplerPub`` that is also ``(circuit, values, shots)``."""

    __slots__ = ()


def indexable_pub(pub: Any) -> Any:
    """``pub`` as an :class:`IndexableEstimatorPub` / :class:`IndexableSamplerPub` (no
    re-validation: the pub was coerced and checked already)."""
    if isinstance(pub, _TupleLike):
        return pub
    if isinstance(pub, EstimatorPub):
        return IndexableEstimatorPub(
            pub.circuit, pub.observables, pub.parameter_values, pub.precision, validate=False
        )
    if isinstance(pub, SamplerPub):
        return IndexableSamplerPub(pub.circuit, pub.parameter_values, pub.shots, validate=False)
    return pub
