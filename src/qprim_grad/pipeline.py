"""The phases of a gradient run, in order (see docs/architecture.rst, "The pipeline"):

coerce pubs -> build tasks -> plan -> lay out inner pubs -> pack into jobs (:mod:`.packing`)
-> submit -> combine (:class:`Combination`, run when the job's result is asked for).

Each phase asks the face (:class:`Face`: the estimator, the sampler or the QGT estimator)
only what differs between them: how a pub is coerced, what an inner pub looks like, how it
is run and what a result row holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
from qiskit.circuit import Parameter
from qiskit.primitives import PrimitiveResult
from qiskit.primitives.containers.bindings_array import BindingsArray
from qiskit.primitives.containers.estimator_pub import EstimatorPub

from . import _merge
from .errors import GradientJobError
from .job import InnerJob
from .methods.base import Evaluation, GradientMethod, Plan, PubTask
from .packing import Piece, check_result_count, num_rows
from .params import binding_hint, check_finite, normalize_parameters
from .pub_results import broadcast_pub_result, concatenate_pub_results, reshape_pub_result
from .shots import pub_shots

__all__ = [
    "Face",
    "PubWork",
    "InnerPubs",
    "Submission",
    "Combination",
    "coerce_pubs",
    "build_tasks",
    "plan_pubs",
    "attach_metric",
    "lay_out",
    "submit",
]


@dataclass
class PubWork:
    """One pub on its way through a run: its task and plan(s), and where its inner pubs sit
    in the run's flat list of inner pubs (filled in by :func:`lay_out`)."""

    task: PubTask
    pub: Any  # the coerced user pub
    plan: Plan
    center_slot: int = -1  # -1: the plan computes the centre itself
    eval_slots: list[int] = field(default_factory=list)
    # the metric family (QGTEstimator, GradientEstimator(..., metric=...))
    metric: Any = None
    metric_plan: Any = None
    metric_slots: list[int] = field(default_factory=list)
    metric_results: list[Any] = field(default_factory=list)  # filled in by Combination
    metric_direct: bool = False  # the metric plan computes its evaluations itself


class Face(Protocol):
    """What the pipeline asks of a gradient primitive (see :class:`~.wrapper.GradientPrimitive`)."""

    _metric_center: bool
    _primitive: Any

    def _inner_counts_shots(self) -> bool: ...

    def _coerce(self, pub: Any) -> Any: ...

    def _task(self, index: int, pub: Any, parameters: tuple[Parameter, ...]) -> PubTask: ...

    def _inner_pub(self, work: PubWork, evaluation: Evaluation) -> Any: ...

    def _direct_center_ok(self, work: PubWork, run_kwargs: dict[str, Any]) -> bool: ...

    def _inner_run(self, pubs: list[Any], **kwargs: Any) -> Any: ...

    def _pub_result(self, work: PubWork, center: Any, evaluated: list[Any], meta: dict) -> Any: ...


# --- coerce, tasks, plan ---------------------------------------------------------------


def coerce_pubs(face: Face, pubs: Iterable[Any]) -> list[Any]:
    """The user's pub-likes coerced by the face, the pub's index in every error."""
    coerced = []
    for index, pub in enumerate(pubs):
        try:
            coerced.append(face._coerce(pub))
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"pub {index}: {exc}{binding_hint(pub, exc)}") from exc
    return coerced


def build_tasks(face: Face, coerced: list[Any], parameters: Any) -> list[PubTask]:
    """One checked :class:`PubTask` per pub, with the parameters it differentiates."""
    chosen = normalize_parameters(parameters, [pub.circuit for pub in coerced])
    return [
        check_finite(face._task(index, pub, params))
        for index, (pub, params) in enumerate(zip(coerced, chosen))
    ]


def plan_pubs(method: GradientMethod, tasks: list[PubTask], coerced: list[Any]) -> list[PubWork]:
    """The gradient method's plan for every pub."""
    return [PubWork(task, pub, method.plan(task)) for task, pub in zip(tasks, coerced)]


def attach_metric(works: list[PubWork], metric: Any, may_replace_center: bool) -> None:
    """The metric's plan for every pub; where allowed (the QGT estimator) its centre replaces
    the gradient plan's."""
    for work in works:
        work.metric = metric
        work.metric_plan = metric.plan(work.task)
        if may_replace_center:
            work.plan = _with_metric_center(work.plan, work.metric_plan)


def _with_metric_center(plan: Plan, metric_plan: Any) -> Plan:
    center = plan.center if plan.center is not None else metric_plan.center
    direct_center = plan.direct_center
    if direct_center is None:
        direct_center = metric_plan.direct_center
    return replace(plan, center=center, direct_center=direct_center)


# --- lay out -----------------------------------------------------------------------------


@dataclass
class InnerPubs:
    """The run's inner pubs in one flat list, each with the pub and evaluation it serves
    (``None`` for a centre)."""

    pubs: list[Any] = field(default_factory=list)
    works: list[PubWork] = field(default_factory=list)
    evaluations: list[Evaluation | None] = field(default_factory=list)
    #: slot -> the shape its result is broadcast to (an evaluation sent once, see
    #: :func:`constant_once`)
    broadcast: dict[int, tuple[int, ...]] = field(default_factory=dict)

    def add(self, work: PubWork, pub: Any, evaluation: Evaluation | None) -> int:
        """Append an inner pub; its slot."""
        self.pubs.append(pub)
        self.works.append(work)
        self.evaluations.append(evaluation)
        return len(self.pubs) - 1


def lay_out(face: Face, works: list[PubWork], run_kwargs: dict[str, Any]) -> InnerPubs:
    """Centres first, in pub order (a seeded inner primitive then returns for them exactly
    what it returns for the user's pubs alone), then every evaluation, then the metric's."""
    inner = InnerPubs()
    for work in works:
        if not _center_is_direct(face, work, run_kwargs):
            evaluation = work.plan.center
            pub = work.pub if evaluation is None else face._inner_pub(work, evaluation)
            once = _constant_pub(pub) if work.task.kind == "estimator" else None
            work.center_slot = inner.add(work, pub if once is None else once, None)
            if once is not None:
                inner.broadcast[work.center_slot] = tuple(pub.shape)
    for work in works:
        work.eval_slots.extend(_add_evaluations(face, inner, work, work.plan.evaluations))
    for work in works:
        if work.metric_plan is not None:
            work.metric_direct = _metric_is_direct(face, work, run_kwargs)
            evaluations = () if work.metric_direct else work.metric_plan.evaluations
            work.metric_slots.extend(_add_evaluations(face, inner, work, evaluations))
    return inner


def _add_evaluations(
    face: Face, inner: InnerPubs, work: PubWork, evaluations: Iterable[Evaluation]
) -> list[int]:
    """The inner pubs of a pub's evaluations appended (an estimator evaluation whose
    circuit has no parameters once, its result broadcast back); their slots."""
    slots = []
    for evaluation in evaluations:
        sent = constant_once(evaluation) if work.task.kind == "estimator" else evaluation
        pub = face._inner_pub(work, sent)
        slot = inner.add(work, pub, sent)
        if sent is not evaluation:
            inner.broadcast[slot] = np.broadcast_shapes(
                tuple(pub.shape), evaluation.values.shape[:-1]
            )
        slots.append(slot)
    return slots


def _constant_pub(pub: Any) -> Any:
    """An estimator pub of a circuit without parameters with several (identical) rows of
    values as the pub with one row (its result is broadcast back), else ``None``."""
    bindings = pub.parameter_values
    if pub.circuit.num_parameters or all(n == 1 for n in bindings.shape):
        return None
    one = BindingsArray(shape=(1,) * len(bindings.shape))
    return EstimatorPub(pub.circuit, pub.observables, one, pub.precision)


def constant_once(evaluation: Evaluation) -> Evaluation:
    """``evaluation`` with one row of values if its circuit has no parameters (every row
    would give the same value: it is evaluated once and broadcast), else itself."""
    values = evaluation.values
    if evaluation.circuit.num_parameters or all(n == 1 for n in values.shape[:-1]):
        return evaluation
    return replace(evaluation, values=np.zeros((1,) * (values.ndim - 1) + (0,)))


def _metric_is_direct(face: Face, work: PubWork, run_kwargs: dict[str, Any]) -> bool:
    """Whether the metric plan computes its evaluations itself (exact values only)."""
    return work.metric_plan.direct is not None and face._direct_center_ok(work, run_kwargs)


def _center_is_direct(face: Face, work: PubWork, run_kwargs: dict[str, Any]) -> bool:
    """Whether the plan's ``direct_center`` replaces the inner centre evaluation."""
    return (
        work.plan.direct_center is not None
        and (work.metric_plan is None or face._metric_center)
        and face._direct_center_ok(work, run_kwargs)
    )


# --- submit ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    """The packed jobs, the inner jobs they were sent as, and the rows sent; per job the
    pubs actually sent, each with the index of a result carrying its metadata (merged rows
    are sent once), and the precision or shots a pub without its own was sent with."""

    jobs: list[list[Piece]]
    inner_jobs: list[InnerJob]
    rows_sent: int
    sent: list[list[tuple[Any, int]]] = field(default_factory=list)
    default: float | int | None = None


def submit(
    face: Face,
    jobs: list[list[Piece]],
    inner: InnerPubs,
    run_kwargs: dict[str, Any],
    *,
    merge_rows: bool = False,
) -> Submission:
    """One inner ``run`` per packed job (none for a job without pubs: every value computed
    directly); with ``merge_rows`` identical rows of a job are evaluated once
    (:mod:`._merge`)."""
    jobs = [job for job in jobs if job]
    inner_jobs = []
    rows_sent = 0
    sent_pubs = []
    for job in jobs:
        pieces = [piece.pub for piece in job]
        if merge_rows:
            sent, layout = _merge.merge_rows(pieces)
            rows = sum(num_rows(pub) for pub in sent)
            submitted = _merge.MergedJob(face._inner_run(sent, **run_kwargs), pieces, layout, rows)
            first = {slot: index for index, (slot, _) in reversed(list(enumerate(layout)))}
            sent_pubs.append([(pub, first[slot]) for slot, pub in enumerate(sent)])
        else:
            rows = sum(num_rows(pub) for pub in pieces)
            submitted = face._inner_run(pieces, **run_kwargs)
            sent_pubs.append([(pub, index) for index, pub in enumerate(pieces)])
        rows_sent += rows
        served = tuple(sorted({inner.works[piece.slot].task.index for piece in job}))
        inner_jobs.append(InnerJob(submitted, served))
    return Submission(jobs, inner_jobs, rows_sent, sent_pubs, _sent_default(face, run_kwargs))


def _sent_default(face: Face, run_kwargs: dict[str, Any]) -> float | int | None:
    """The precision (estimator) or shots (sampler) of a pub that sets none: the run's,
    else the wrapped primitive's default."""
    for key in ("precision", "shots"):
        if run_kwargs.get(key) is not None:
            return run_kwargs[key]
    for name in ("default_precision", "default_shots"):
        value = getattr(face._primitive, name, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
    return None


# --- combine -----------------------------------------------------------------------------


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
        #: slot -> shape of the evaluations sent once (see :func:`constant_once`)
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
        nested = self.face._inner_counts_shots()
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
        center = self.center(work, flat)
        work.metric_results = [flat[i] for i in work.metric_slots]
        try:
            return self.face._pub_result(
                work, center, [flat[i] for i in work.eval_slots], self.meta
            )
        except Exception as exc:
            raise GradientJobError(
                f"pub {work.task.index}: could not combine the inner results into "
                f"gradients: {type(exc).__name__}: {exc}"
            ) from exc

    @staticmethod
    def center(work: PubWork, flat: list[Any]) -> Any:
        """The centre's result: computed by the plan, or the inner one (a replacement
        centre's one-point axis dropped)."""
        if work.center_slot < 0:
            return work.plan.resolve_direct_center()
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
    return np.diff(cumulative, prepend=0).tolist()
