"""The phases of a gradient run, in order (see docs/architecture.rst, "The pipeline"):

coerce pubs -> build tasks -> plan -> lay out inner pubs -> pack into jobs (:mod:`.packing`)
-> submit -> combine (:class:`~.combination.Combination`, run when the job's result is
asked for).

Each phase asks the face (:class:`Face`: the estimator, the sampler or the QGT estimator)
only what differs between them: how a pub is coerced, what an inner pub looks like, how it
is run and what a result row holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, cast

import numpy as np
from qiskit.circuit import Parameter
from qiskit.primitives.containers import PubResult
from qiskit.primitives.containers.bindings_array import BindingsArray
from qiskit.primitives.containers.estimator_pub import EstimatorPub

from ..methods.base import GradientMethod
from . import merge
from .job import InnerJob
from .packing import Piece, num_rows
from .params import binding_hint, check_finite, normalize_parameters
from .types import DirectPlan, Evaluation, MetricLike, MetricWork, PubTask, PubWork

__all__ = [
    "Face",
    "InnerPubs",
    "Submission",
    "coerce_pubs",
    "build_tasks",
    "plan_pubs",
    "attach_metric",
    "direct_center",
    "lay_out",
    "submit",
]


class Face(Protocol):
    """What differs between the estimator, the sampler and the QGT estimator: the object a
    :class:`~qprim_grad.pipeline.primitive.GradientPrimitive` is composed with, asked by
    each phase (e.g. :class:`qprim_grad.estimator.EstimatorFace`)."""

    #: "estimator" or "sampler"
    kind: str
    #: the wrapped primitive
    primitive: Any
    #: whether a metric's plan may replace the gradient plan's centre (the QGT estimator)
    metric_center: bool

    def coerce(self, pub: Any) -> Any:
        """The user's pub-like as a coerced pub (``ValueError``/``TypeError`` if invalid)."""
        ...

    def task(self, index: int, pub: Any, parameters: tuple[Parameter, ...]) -> PubTask:
        """The coerced pub as the method sees it."""
        ...

    def inner_pub(self, work: PubWork, evaluation: Evaluation) -> Any:
        """The inner primitive's pub of one evaluation."""
        ...

    def exact_center(self, work: PubWork, run_kwargs: dict[str, Any]) -> bool:
        """Whether a plan's directly computed centre may replace the inner one."""
        ...

    def inner_run(self, pubs: list[Any], **run_kwargs: Any) -> Any:
        """One call of the inner primitive (one packed job)."""
        ...

    def inner_counts_shots(self) -> bool:
        """Whether the inner results carry their own shot counts (a nested gradient)."""
        ...

    def result_row(
        self, work: PubWork, center: Any, evaluated: list[Any], meta: dict[str, Any]
    ) -> Any:
        """The result of one user pub from its centre and evaluated inner results."""
        ...


# --- coerce, tasks, plan ---------------------------------------------------------------


def coerce_pubs(face: Face, pubs: Iterable[Any]) -> list[Any]:
    """The user's pub-likes coerced by the face, the pub's index in every error."""
    coerced = []
    for index, pub in enumerate(pubs):
        try:
            coerced.append(face.coerce(pub))
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"pub {index}: {exc}{binding_hint(pub, exc)}") from exc
    return coerced


def build_tasks(face: Face, coerced: list[Any], parameters: Any) -> list[PubTask]:
    """One checked :class:`PubTask` per pub, with the parameters it differentiates."""
    chosen = normalize_parameters(parameters, [pub.circuit for pub in coerced])
    return [
        check_finite(face.task(index, pub, params))
        for index, (pub, params) in enumerate(zip(coerced, chosen))
    ]


def plan_pubs(method: GradientMethod, tasks: list[PubTask], coerced: list[Any]) -> list[PubWork]:
    """The gradient method's plan for every pub."""
    return [PubWork(task, pub, method.plan(task)) for task, pub in zip(tasks, coerced)]


def attach_metric(
    works: list[PubWork], metric: MetricLike, may_replace_center: bool
) -> list[PubWork]:
    """The works with the metric's plan for every pub; where allowed (the QGT estimator) its
    centre evaluation replaces the gradient plan's."""
    attached = []
    for work in works:
        metric_plan = metric.plan(work.task)
        plan = work.plan
        if may_replace_center and plan.center is None and metric_plan.center is not None:
            plan = replace(plan, center=metric_plan.center)
        attached.append(replace(work, plan=plan, metric_work=MetricWork(metric, metric_plan)))
    return attached


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


def lay_out(
    face: Face, works: list[PubWork], run_kwargs: dict[str, Any]
) -> tuple[InnerPubs, list[PubWork]]:
    """Centres first, in pub order (a seeded inner primitive then returns for them exactly
    what it returns for the user's pubs alone), then every evaluation, then the metric's; the
    works with their slots."""
    inner = InnerPubs()
    centers = [_add_center(face, inner, work, run_kwargs) for work in works]
    evaluations = [_add_evaluations(face, inner, work, work.plan.evaluations) for work in works]
    metrics = [_add_metric(face, inner, work, run_kwargs) for work in works]
    laid = [
        replace(work, center_slot=center, eval_slots=tuple(evaluated), metric_work=metric)
        for work, center, evaluated, metric in zip(works, centers, evaluations, metrics)
    ]
    return inner, laid


def _add_center(face: Face, inner: InnerPubs, work: PubWork, run_kwargs: dict[str, Any]) -> int:
    """The centre's inner pub appended (an estimator pub of a circuit without parameters
    once, its result broadcast back); its slot (``-1``: the plan computes the centre)."""
    if _center_is_direct(face, work, run_kwargs):
        return -1
    evaluation = work.plan.center
    pub = work.pub if evaluation is None else face.inner_pub(work, evaluation)
    once = _constant_pub(pub) if work.task.kind == "estimator" else None
    slot = inner.add(work, pub if once is None else once, None)
    if once is not None:
        inner.broadcast[slot] = tuple(pub.shape)
    return slot


def _add_metric(
    face: Face, inner: InnerPubs, work: PubWork, run_kwargs: dict[str, Any]
) -> MetricWork | None:
    """The metric's evaluations appended (none where the plan computes them itself, exact
    values only); the metric work with their slots."""
    metric = work.metric_work
    if metric is None:
        return None
    direct = metric.plan.direct is not None and face.exact_center(work, run_kwargs)
    evaluations = () if direct else metric.plan.evaluations
    slots = _add_evaluations(face, inner, work, evaluations)
    return replace(metric, slots=tuple(slots), direct=direct)


def _add_evaluations(
    face: Face, inner: InnerPubs, work: PubWork, evaluations: Iterable[Evaluation]
) -> list[int]:
    """The inner pubs of a pub's evaluations appended (an estimator evaluation whose
    circuit has no parameters once, its result broadcast back); their slots."""
    slots = []
    for evaluation in evaluations:
        sent = constant_once(evaluation) if work.task.kind == "estimator" else evaluation
        pub = face.inner_pub(work, sent)
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


def direct_center(face: Face, work: PubWork) -> Callable[[], PubResult] | None:
    """The centre's result computed without the inner primitive that ``work`` offers: its
    :class:`DirectPlan`'s, else (where the face lets the metric give the centre, the QGT
    estimator) the metric plan's; ``None`` if neither gives one. Used only where
    :meth:`Face.exact_center` allows it."""
    metric = work.metric_work
    if metric is not None and not face.metric_center:
        return None
    plan = work.plan
    if isinstance(plan, DirectPlan) and plan.exact_center:
        return plan.computed_center
    return None if metric is None else metric.plan.direct_center


def _center_is_direct(face: Face, work: PubWork, run_kwargs: dict[str, Any]) -> bool:
    """Whether a directly computed centre (:func:`direct_center`) replaces the inner one."""
    return direct_center(face, work) is not None and face.exact_center(work, run_kwargs)


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
    (:mod:`.merge`)."""
    jobs = [job for job in jobs if job]
    inner_jobs = []
    rows_sent = 0
    sent_pubs = []
    for job in jobs:
        pieces = [piece.pub for piece in job]
        if merge_rows:
            sent, layout = merge.merge_rows(pieces)
            rows = sum(num_rows(pub) for pub in sent)
            submitted = merge.MergedJob(face.inner_run(sent, **run_kwargs), pieces, layout, rows)
            first = {slot: index for index, (slot, _) in reversed(list(enumerate(layout)))}
            sent_pubs.append([(pub, first[slot]) for slot, pub in enumerate(sent)])
        else:
            rows = sum(num_rows(pub) for pub in pieces)
            submitted = face.inner_run(pieces, **run_kwargs)
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
            return cast("float | int | None", run_kwargs[key])
    for name in ("default_precision", "default_shots"):
        value = getattr(face.primitive, name, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
    return None
