"""The packing phase: inner pubs grouped into jobs of at most ``max_job_rows`` rows, and the
check that each job returned one result per pub it was sent."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..errors import GradientJobError
from .types import Evaluation

__all__ = ["Piece", "pack", "slice_evaluation", "check_result_count", "num_rows"]


@dataclass(frozen=True)
class Piece:
    """One inner pub of a packed job: all of an inner pub, or a slice of its points."""

    slot: int  # index into the flat inner-pub list
    pub: Any
    rows: int


def num_rows(pub: Any) -> int:
    """The number of rows (points times observables) a pub asks the primitive for."""
    return int(np.prod(pub.shape, dtype=int))


class _Packer:
    """Fills jobs in order, opening a new one when a piece would overflow the cap."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.jobs: list[list[Piece]] = [[]]
        self.fill = 0

    def add(self, piece: Piece) -> None:
        if self.jobs[-1] and self.fill + piece.rows > self.limit:
            self.jobs.append([])
            self.fill = 0
        self.jobs[-1].append(piece)
        self.fill += piece.rows

    def add_cut(
        self,
        slot: int,
        evaluation: Evaluation,
        shape: tuple[int, ...],
        make_pub: Callable[..., Any],
    ) -> None:
        """An evaluation cut along its points axis, its first piece filling the open job."""
        per_point = max(int(np.prod(shape, dtype=int)) // shape[0], 1)
        start = 0
        while start < shape[0]:
            room = (self.limit - self.fill) // per_point
            step = room if room >= 1 else max(1, self.limit // per_point)
            piece = make_pub(slice_evaluation(evaluation, start, start + step))
            self.add(Piece(slot, piece, num_rows(piece)))
            start += step


def pack(
    inner_pubs: list[Any],
    evaluations: list[Evaluation | None],
    limit: int | None,
    make_pub: Callable[[int, Evaluation], Any],
) -> list[list[Piece]]:
    """Inner pubs grouped into jobs of at most ``limit`` rows, greedily in order.

    ``evaluations[slot]`` is the evaluation inner pub ``slot`` was built from (``None`` for a
    centre); ``make_pub(slot, evaluation)`` builds the inner pub of a slice of it. An
    evaluation that does not fit is cut along its leading (points) axis, its first piece
    filling the job being packed; a centre pub is never cut (one larger than the cap gets
    a job of its own).
    """
    if limit is None:
        return [[Piece(slot, pub, 0) for slot, pub in enumerate(inner_pubs)]]
    packer = _Packer(limit)
    for slot, (pub, evaluation) in enumerate(zip(inner_pubs, evaluations)):
        shape = tuple(pub.shape)
        rows = num_rows(pub)
        if rows <= limit or evaluation is None or not shape:
            packer.add(Piece(slot, pub, rows))
        else:
            packer.add_cut(slot, evaluation, shape, lambda e, s=slot: make_pub(s, e))
    return packer.jobs


def slice_evaluation(evaluation: Evaluation, start: int, stop: int) -> Evaluation:
    """Points ``start:stop`` of an evaluation (axes of length one broadcast and are kept)."""

    def cut(array: Any) -> Any:
        return array if array.shape[0] == 1 else array[start:stop]

    observables = evaluation.observables
    if observables is not None and observables.ndim:
        observables = cut(observables)
    return replace(
        evaluation,
        values=cut(np.asarray(evaluation.values)),
        observables=observables,
        weights=None,
    )


def check_result_count(
    result: Any, expected: int, job_id: str, pubs: tuple[int, ...], number: int, num_jobs: int
) -> None:
    """An inner job must return one pub result per submitted pub."""
    try:
        got = len(result)
    except TypeError:
        got = None
    if got != expected:
        raise GradientJobError(
            f"inner job {job_id} (part {number + 1} of {num_jobs}) returned "
            f"{'a result without a length' if got is None else f'{got} pub results'}; expected "
            f"{expected} (one per submitted pub)",
            failed=[(job_id, pubs)],
        )
