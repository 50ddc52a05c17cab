"""The last phase of a gradient run (see docs/architecture.rst, "The pipeline"): the inner
results regrouped per inner pub, their shots counted, then one result per user pub."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

import numpy as np
from qiskit.primitives import PrimitiveResult

from ..errors import GradientJobError
from ..shots import pub_shots
from .packing import check_result_count
from .phases import Face, Submission, direct_center
from .results import broadcast_pub_result, concatenate_pub_results, reshape_pub_result
from .types import PubWork

__all__ = ["Combination"]


class Combination:
    """The last phase, run by :class:`~.job.GradientJob` once every inner job is done:
    inner results regrouped per inner pub, then one result per user pub from the face."""

    def __init__(
        self,
        face: Face,
        works: list[PubWork],
        num_inner_pubs: int,
        submission: Submission,
        meta: dict[str, Any],
        allocation: Any = None,
    ) -> None:
        self.face = face
        self.works = works
        self.num_inner_pubs = num_inner_pubs
        self.submission = submission
        self.meta = meta
        #: slot -> shape of the evaluations sent once (see :func:`.phases.constant_once`)
        self.broadcast: dict[int, tuple[int, ...]] = {}
        self.allocation = allocation  # folds split measurement groups back (allocation.py)

    def __call__(self, results: list[Any]) -> PrimitiveResult:
        flat = self.regroup(results)
        per_slot, total = self.shots(results)
        if self.allocation is not None:
            flat = self.allocation.fold(flat)
            per_slot = self.allocation.fold_counts(per_slot)
        pub_results = [self.pub_result(work, flat) for work in self.works]
        for work, pub_result in zip(self.works, pub_results):
            slots = [work.center_slot, *work.eval_slots, *work.metric_slots]
            pub_result.metadata["pub_shots"] = int(sum(per_slot[s] for s in slots if s >= 0))
        return PrimitiveResult(pub_results, metadata={**self.metadata(results), "shots": total})

    def shots(self, results: list[Any]) -> tuple[list[int], int]:
        """The shots of each inner pub (its pieces summed) and of the whole run
        (:mod:`.shots`; around a gradient primitive, the counts its results carry). The
        run's go to ``metadata["shots"]``, each pub's share to its ``metadata["pub_shots"]``
        (its ``metadata["shots"]`` stays the inner primitive's, as for any V2 result)."""
        per_slot = [0] * self.num_inner_pubs
        total = 0
        nested = self.face.inner_counts_shots()
        submission = self.submission
        for job, sent, result in zip(submission.jobs, submission.sent, results):
            pieces = [_shots_of(p.pub, r, submission, nested) for p, r in zip(job, result)]
            if nested:
                job_total = int((getattr(result, "metadata", None) or {}).get("shots", 0))
            else:
                job_total = sum(_shots_of(pub, result[i], submission, False) for pub, i in sent)
            for piece, shots in zip(job, _shares(pieces, job_total)):
                per_slot[piece.slot] += shots
            total += job_total
        return per_slot, total

    def regroup(self, results: list[Any]) -> list[Any]:
        """One pub result per inner pub, its split pieces concatenated."""
        parts: list[list[Any]] = [[] for _ in range(self.num_inner_pubs)]
        jobs, inner_jobs = self.submission.jobs, self.submission.inner_jobs
        for number, (job, inner, result) in enumerate(zip(jobs, inner_jobs, results)):
            check_result_count(result, len(job), inner.job_id, inner.pubs, number, len(jobs))
            for piece, pub_result in zip(job, result):
                parts[piece.slot].append(pub_result)
        flat = [concatenate_pub_results(group) for group in parts]
        for slot, shape in self.broadcast.items():
            flat[slot] = broadcast_pub_result(flat[slot], shape)
        return flat

    def pub_result(self, work: PubWork, flat: list[Any]) -> Any:
        """The face's result for one user pub."""
        if work.metric_work is not None:
            results = tuple(flat[i] for i in work.metric_work.slots)
            work = replace(work, metric_work=replace(work.metric_work, results=results))
        try:
            center = self.center(work, flat)
            return self.face.result_row(work, center, [flat[i] for i in work.eval_slots], self.meta)
        except Exception as exc:
            raise GradientJobError(
                f"pub {work.task.index}: could not combine the inner results into "
                f"gradients: {type(exc).__name__}: {exc}"
            ) from exc

    def center(self, work: PubWork, flat: list[Any]) -> Any:
        """The centre's result: computed without the inner primitive
        (:func:`.phases.direct_center`), or the inner one (a replacement centre's one-point
        axis dropped)."""
        if work.center_slot < 0:
            computed = direct_center(self.face, work)
            assert computed is not None  # laid out without a centre pub only then
            return computed()
        center = flat[work.center_slot]
        if work.plan.center is not None:
            center = reshape_pub_result(center, work.task.shape)
        return center

    def metadata(self, results: list[Any]) -> dict[str, Any]:
        """The run's metadata, the inner results' and the rows the innermost primitive
        evaluated (through nested gradient estimators)."""
        inner_metadata = [dict(getattr(result, "metadata", {}) or {}) for result in results]
        nested = [m.get("base_rows") for m in inner_metadata]
        base_rows = self.submission.rows_sent
        if nested and all(isinstance(n, int) for n in nested):
            base_rows = sum(int(n) for n in nested if n is not None)
        extra = {"base_rows": base_rows}
        return {"version": 2, **self.meta, **extra, "inner_metadata": inner_metadata}


def _shots_of(pub: Any, pub_result: Any, submission: Submission, nested: bool) -> int:
    """One inner pub's shots: counted, or (from a gradient primitive) as its result says."""
    if nested:
        return int((getattr(pub_result, "metadata", None) or {}).get("pub_shots", 0))
    return pub_shots(pub, pub_result, submission.default)


def _shares(pieces: list[int], total: int) -> list[int]:
    """The pieces' counts scaled to sum to the job's ``total`` (rows sent once for several
    pieces are shared between them), rounded so that they still sum to it."""
    requested = sum(pieces)
    if requested == total or requested == 0:
        return pieces
    cumulative = np.rint(np.cumsum(pieces) * (total / requested)).astype(int)
    return cast("list[int]", np.diff(cumulative, prepend=0).tolist())
