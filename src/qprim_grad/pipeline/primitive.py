"""The generic gradient primitive: the pipeline's phases (:mod:`.phases`) in order.

A :class:`GradientPrimitive` is composed with a face (:class:`Face`: the estimator's, the
sampler's or the QGT estimator's), which says how a pub is coerced, how an inner pub is built
and run and what a result row holds. :class:`BaseFace` holds what the faces share.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from qiskit.circuit import Parameter
from qiskit.primitives.containers.bindings_array import BindingsArray

from ..cache import BoundedCache
from ..circuit.prepare import parameter_names
from ..methods import resolve_method
from ..methods.base import GradientMethod
from ..methods.metric import resolve_metric
from .allocation import allocate
from .combination import Combination
from .job import GradientJob
from .noise_checks import warn_seeded_noise
from .packing import pack
from .phases import (
    Face,
    Submission,
    attach_metric,
    build_tasks,
    coerce_pubs,
    lay_out,
    plan_pubs,
    submit,
)
from .results import indexable_pub
from .types import Evaluation, MetricLike, PubTask, PubWork

#: how a run spends its shots (API.md, "Allocation within a run")
ALLOCATIONS = ("uniform", "optimal")

__all__ = [
    "ALLOCATIONS",
    "FORWARDED",
    "BaseFace",
    "GradientPrimitive",
    "bindings",
    "checked_allocation",
    "result_metadata",
]

#: attributes of the wrapped primitive that a gradient primitive answers for it (what
#: qiskit-algorithms and qiskit-machine-learning clients and IBM Runtime users read)
FORWARDED = frozenset({"options", "default_precision", "default_shots", "mode", "backend"})


class BaseFace(ABC):
    """What the faces share: the wrapped primitive, the method and metric they serve, and
    the default inner run (see :class:`~qprim_grad.pipeline.phases.Face`)."""

    #: "estimator" or "sampler"
    kind: str = ""
    #: the primitive base class this face must not wrap, and the face's class that wraps it
    other_kind: type | None = None
    other_wrapper: str = ""
    metric_center = False

    def __init__(
        self, primitive: Any, method: GradientMethod, metric: MetricLike | None = None
    ) -> None:
        self.primitive = primitive
        self.method = method
        self.metric = metric

    @abstractmethod
    def coerce(self, pub: Any) -> Any:
        """The user's pub-like as a coerced pub."""

    @abstractmethod
    def task(self, index: int, pub: Any, parameters: tuple[Parameter, ...]) -> PubTask:
        """The coerced pub as the method sees it."""

    @abstractmethod
    def inner_pub(self, work: PubWork, evaluation: Evaluation) -> Any:
        """The inner primitive's pub of one evaluation."""

    @abstractmethod
    def result_row(
        self, work: PubWork, center: Any, evaluated: list[Any], meta: dict[str, Any]
    ) -> Any:
        """The result of one user pub."""

    def inner_counts_shots(self) -> bool:
        """Whether the wrapped primitive's results carry their own ``metadata["shots"]``
        (another gradient primitive): then those counts are summed, not recounted."""
        return isinstance(self.primitive, GradientPrimitive)

    def exact_center(self, work: PubWork, run_kwargs: dict[str, Any]) -> bool:
        """Whether a centre computed without the inner primitive
        (:func:`~qprim_grad.pipeline.phases.direct_center`) may replace the inner one."""
        return False

    def inner_run(self, pubs: list[Any], **run_kwargs: Any) -> Any:
        """The submit phase's call of the wrapped primitive, once per packed job, with coerced
        pubs that also index and unpack like their tuple (see docs/architecture.rst, "Inner
        pubs")."""
        return self.primitive.run([indexable_pub(pub) for pub in pubs], **run_kwargs)


class GradientPrimitive:
    """The generic gradient primitive, composed with a face (not public: the public classes
    are :class:`~qprim_grad.GradientEstimator`, :class:`~qprim_grad.GradientSampler` and
    :class:`~qprim_grad.QGTEstimator`)."""

    def __init__(
        self,
        face_type: type[BaseFace],
        primitive: Any,
        method: str | GradientMethod = "param_shift",
        *,
        max_job_rows: int | None = None,
        metric: Any = None,
        metric_options: dict[str, Any] | None = None,
        allocation: str = "uniform",
        **options: Any,
    ) -> None:
        self._allocation = checked_allocation(allocation)
        self._sigmas: BoundedCache[list[Any]] = BoundedCache(size=256)  # learned
        max_job_rows = _aliased(max_job_rows, options.pop("max_pub_rows", None))  # API.md's alias
        self._check_primitive(face_type, primitive)
        self._max_job_rows = _checked_job_rows(max_job_rows)
        self._primitive = primitive
        self._method = resolve_method(method, options)
        self._warned_seed = False
        self._metric = self._resolve_metric(face_type, metric, metric_options)
        for checked in (self._method, self._metric):
            check = getattr(checked, "check", None)
            if check is not None:  # e.g. 'reverse' rejects a sampling estimator here
                check(primitive)
        #: the face this primitive is composed with
        self.face: BaseFace = face_type(primitive, self._method, self._metric)

    def _check_primitive(self, face_type: type[BaseFace], primitive: Any) -> None:
        """A V2 primitive of this wrapper's kind."""
        kind = face_type.kind
        if face_type.other_kind is not None and isinstance(primitive, face_type.other_kind):
            raise TypeError(
                f"{type(self).__name__} wraps {'an' if kind == 'estimator' else 'a'} "
                f"{kind}, got the {type(primitive).__name__}; use {face_type.other_wrapper} "
                "for it"
            )
        if primitive is None or not hasattr(primitive, "run"):
            raise TypeError(f"expected a V2 primitive with a run() method, got {primitive!r}")

    def _resolve_metric(
        self, face_type: type[BaseFace], metric: Any, metric_options: dict[str, Any] | None
    ) -> MetricLike | None:
        """The metric method object (``None`` without ``metric=``)."""
        if metric_options is not None and not isinstance(metric_options, dict):
            raise TypeError(
                f"metric_options must be a dict of the metric method's options (e.g. "
                f"{{'phase_fix': True}}), got {metric_options!r}"
            )
        if metric is None and metric_options:
            raise ValueError("metric_options were given without metric=")
        if metric is None:
            return None
        if face_type.kind != "estimator":
            raise TypeError(
                f"metric= needs an estimator (the QGT is a property of the state); use "
                f"GradientEstimator or QGTEstimator, not {type(self).__name__}"
            )
        resolved: MetricLike = resolve_metric(metric, dict(metric_options or {}))
        return resolved

    @property
    def allocation(self) -> str:
        """How a run spends its shots: ``"uniform"`` or ``"optimal"``."""
        return self._allocation

    @property
    def method(self) -> GradientMethod:
        """The gradient method object."""
        return self._method

    def __getattr__(self, name: str) -> Any:
        # the attributes of FORWARDED come from the wrapped primitive; no other
        if name in FORWARDED and "_primitive" in self.__dict__:
            return getattr(self._primitive, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def run_merged(self, pubs: Iterable[Any], **run_kwargs: Any) -> GradientJob:
        """Run coerced pubs for an outer gradient estimator around this one: identical rows of
        each inner job are evaluated once (see :mod:`qprim_grad.pipeline.merge`)."""
        return self._submit(pubs, None, run_kwargs, merge_rows=True)

    # --- the generic run: the pipeline's phases ---------------------------------------------
    def _submit(
        self,
        pubs: Iterable[Any],
        parameters: Any,
        run_kwargs: dict[str, Any],
        *,
        merge_rows: bool = False,
    ) -> GradientJob:
        """coerce -> tasks -> plan -> lay out -> pack -> submit; the returned job combines.

        ``merge_rows``: evaluate identical rows of each inner job once (see
        :mod:`qprim_grad.pipeline.merge`)."""
        face = self.face
        coerced = coerce_pubs(face, pubs)
        self._check_precisions(coerced, run_kwargs)
        tasks = build_tasks(face, coerced, parameters)
        works = plan_pubs(self._method, tasks, coerced)
        if not self._warned_seed:
            self._warned_seed = warn_seeded_noise(self._primitive, self._method, works, run_kwargs)
        if self._metric is not None:
            works = attach_metric(works, self._metric, face.metric_center)
        inner, works = lay_out(face, works, run_kwargs)
        broadcast = inner.broadcast  # per slot of the pubs before allocation splits them
        allocation = None
        make_pub: Callable[[int, Evaluation], Any] = partial(inner_pub_at, face, inner.works)
        if self._allocation == "optimal" and face.kind == "estimator":
            allocation = allocate(face, works, inner, run_kwargs, self._sigmas)
            inner = allocation.inner
            make_pub = allocation.slice_pub(partial(inner_pub_at, face, inner.works))
        jobs = pack(inner.pubs, inner.evaluations, self._max_job_rows, make_pub)
        submission = submit(face, jobs, inner, run_kwargs, merge_rows=merge_rows)
        meta = self._run_metadata(submission)
        combination = Combination(face, works, len(inner.pubs), submission, meta, allocation)
        combination.broadcast = broadcast
        return GradientJob(submission.inner_jobs, combination, **meta)

    def _check_precisions(self, coerced: list[Any], run_kwargs: dict[str, Any]) -> None:
        """Methods that need exact values (``reverse``) refuse a run's or pub's non-zero
        ``precision`` on a sampling simulator."""
        run_precision = run_kwargs.get("precision")
        precisions = {getattr(pub, "precision", None) for pub in coerced}
        precisions = {run_precision if p is None else p for p in precisions}
        checks = [getattr(m, "check_precision", None) for m in (self._method, self._metric)]
        for check in [c for c in checks if c is not None]:
            for precision in precisions - {None}:
                check(self._primitive, precision)

    def _run_metadata(self, submission: Submission) -> dict[str, Any]:
        """The method (and metric), the inner job ids and the rows sent."""
        meta = {
            "method": self._method.name,
            "method_options": dict(self._method.options),
            "inner_job_ids": [inner.job_id for inner in submission.inner_jobs],
            "inner_rows": submission.rows_sent,
            "allocation": self._allocation,
        }
        if self._metric is not None:
            meta["metric"] = self._metric.name
            meta["metric_options"] = dict(self._metric.options)
        return meta


def inner_pub_at(face: Face, works: list[PubWork], slot: int, evaluation: Evaluation) -> Any:
    """The inner pub of (a slice of) an evaluation at ``slot`` (for the packing phase)."""
    return face.inner_pub(works[slot], evaluation)


def bindings(evaluation: Evaluation) -> BindingsArray:
    """The evaluation's parameter values, keyed by the circuit's parameter names."""
    circuit = evaluation.circuit
    names = evaluation.parameter_names
    if names is None or len(names) != circuit.num_parameters:
        names = parameter_names(circuit)
    data = {names: evaluation.values} if circuit.num_parameters else {}
    return BindingsArray(data, shape=evaluation.values.shape[:-1])


def result_metadata(work: PubWork, center: Any, meta: dict[str, Any]) -> dict[str, Any]:
    """A result row's metadata: the centre's own, then the run's, the parameters and the
    method's."""
    metadata = dict(center.metadata)
    metadata.update(meta)
    metadata["parameters"] = list(work.task.parameters)
    metadata.update(work.plan.metadata)
    return metadata


def checked_allocation(allocation: Any) -> str:
    """``allocation``: one of :data:`ALLOCATIONS`."""
    if not isinstance(allocation, str) or allocation not in ALLOCATIONS:
        raise ValueError(
            f"allocation must be 'uniform' (every inner pub at the run's precision) or "
            f"'optimal' (the fewest shots giving each result entry that precision), got "
            f"{allocation!r}"
        )
    return allocation


def _aliased(max_job_rows: int | None, alias: int | None) -> int | None:
    """``max_job_rows`` or its alias ``max_pub_rows``, not two different values."""
    if alias is None:
        return max_job_rows
    if max_job_rows is not None and alias != max_job_rows:
        raise ValueError("give max_job_rows or its alias max_pub_rows, not both")
    return alias


def _checked_job_rows(max_job_rows: int | None) -> int | None:
    """``max_job_rows``: ``None`` or a positive integer."""
    if max_job_rows is not None and (
        isinstance(max_job_rows, bool) or int(max_job_rows) != max_job_rows or max_job_rows < 1
    ):
        raise ValueError(f"max_job_rows must be a positive integer, got {max_job_rows!r}")
    return max_job_rows
