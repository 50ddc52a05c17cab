"""Identical rows of a job's estimator pubs evaluated once.

In a nested shift plan (``param_shift`` around ``param_shift``) the inner primitive is asked
for ``θ + s_i + s_j`` and ``θ + s_j + s_i``, for ``θ + s_i - s_i = θ`` next to the centre, and
so on: about half of the ``(2A + 1)^2`` rows are repeats. :func:`merge_rows` groups the pubs
of one job that share circuit, precision and a single observable, keeps each distinct
parameter row once (rows equal to 12 decimals count as equal), and returns a job whose
``result()`` hands every original pub its rows back. A shared row is one estimate, so
errors propagated from it to several derivatives are correlated.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from qiskit.primitives import PrimitiveResult
from qiskit.primitives.containers import DataBin, PubResult
from qiskit.primitives.containers.bindings_array import BindingsArray
from qiskit.primitives.containers.estimator_pub import EstimatorPub

from ..circuit.prepare import parameter_names
from .job import ForwardingJob, job_id_of

__all__ = ["MergedJob", "merge_rows"]

_DECIMALS = 12


def _rows(pub: EstimatorPub) -> int:
    return math.prod(pub.shape)


def merge_rows(pubs: list[Any]) -> tuple[list[Any], list[tuple[int, np.ndarray | None]]]:
    """``(pubs to send, per original pub: (index of the pub sent for it, row map))``.

    A pub is merged with others when its observables array holds one observable; its rows
    (the parameter rows, broadcast to the pub's shape) become rows of a merged pub of shape
    ``(U,)`` and the row map says which; a pub sent as it is has row map ``None``.
    """
    merged: dict[int, tuple[int, np.ndarray]] = {}  # pub -> (group number, rows)
    group_pubs: list[EstimatorPub] = []
    for members in _groups(pubs):
        group_pub, row_maps = _merge_group([pubs[i] for i in members])
        for i, rows in zip(members, row_maps, strict=True):
            merged[i] = (len(group_pubs), rows)
        group_pubs.append(group_pub)
    return _in_order(pubs, merged, group_pubs)


def _groups(pubs: list[Any]) -> list[list[int]]:
    """Indices of the pubs that share circuit, precision and their one observable (groups of
    two or more)."""
    groups: dict[Any, list[int]] = {}
    for i, pub in enumerate(pubs):
        if isinstance(pub, EstimatorPub) and pub.observables.size == 1:
            obs = pub.observables.ravel()[0]
            key = (id(pub.circuit), pub.precision, tuple(sorted(obs.items())))
            groups.setdefault(key, []).append(i)
    return [members for members in groups.values() if len(members) >= 2]


def _merge_group(members: list[EstimatorPub]) -> tuple[EstimatorPub, list[np.ndarray]]:
    """One pub of the group's distinct rows, and each member's row map into it."""
    first = members[0]
    circuit = first.circuit
    blocks = []
    for pub in members:
        values = pub.parameter_values.as_array(circuit.parameters)
        values = np.broadcast_to(values, pub.shape + (circuit.num_parameters,))
        blocks.append(values.reshape(-1, circuit.num_parameters))
    stacked = np.concatenate(blocks)
    _, unique_rows, inverse = np.unique(
        np.round(stacked, _DECIMALS), axis=0, return_index=True, return_inverse=True
    )
    inverse = inverse.ravel()
    unique = stacked[unique_rows]
    bindings = BindingsArray({parameter_names(circuit): unique}, shape=(len(unique),))
    group_pub = EstimatorPub(circuit, first.observables.reshape(()), bindings, first.precision)
    ends = np.cumsum([len(block) for block in blocks])
    return group_pub, np.split(inverse, ends[:-1])


def _in_order(
    pubs: list[Any], merged: dict[int, tuple[int, np.ndarray]], group_pubs: list[EstimatorPub]
) -> tuple[list[Any], list[tuple[int, np.ndarray | None]]]:
    """The pubs to send in the original order, a merged pub where first needed."""
    out: list[Any] = []
    layout: list[tuple[int, np.ndarray | None]] = []
    placed: dict[int, int] = {}
    for i, pub in enumerate(pubs):
        if i not in merged:
            layout.append((len(out), None))
            out.append(pub)
            continue
        number, rows = merged[i]
        if number not in placed:
            placed[number] = len(out)
            out.append(group_pubs[number])
        layout.append((placed[number], rows))
    return out, layout


class MergedJob(ForwardingJob):
    """The job of merged pubs, whose result holds one pub result per original pub."""

    def __init__(
        self,
        job: Any,
        originals: list[Any],
        layout: list[tuple[int, np.ndarray | None]],
        rows_sent: int,
    ) -> None:
        super().__init__(job, job_id_of(job))
        self._originals = originals
        self._layout = layout
        self.rows_sent = rows_sent
        self.rows_requested = sum(_rows(p) for p in originals)

    def result(self) -> PrimitiveResult:
        result = self._job.result()
        out = []
        for pub, (slot, rows) in zip(self._originals, self._layout, strict=True):
            part = result[slot]
            if rows is None:
                out.append(part)
                continue
            fields = {
                name: np.asarray(getattr(part.data, name))[rows].reshape(pub.shape)
                for name in ("evs", "stds")
            }
            out.append(PubResult(DataBin(**fields, shape=pub.shape), metadata=part.metadata))
        metadata = dict(getattr(result, "metadata", {}) or {})
        metadata.update(rows_requested=self.rows_requested, rows_sent=self.rows_sent)
        return PrimitiveResult(out, metadata=metadata)
