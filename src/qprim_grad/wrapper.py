"""The generic gradient primitive: the pipeline's phases (:mod:`.pipeline`) in order.

:class:`~qprim_grad.GradientEstimator` and :class:`~qprim_grad.GradientSampler` only say
how a pub is coerced, how an inner pub is built and what a result row holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from qiskit.circuit import Parameter
from qiskit.primitives.containers.bindings_array import BindingsArray

from .allocation import allocate
from .cache import BoundedCache
from .circuits import parameter_names
from .job import GradientJob
from .methods import resolve_method
from .methods.base import Evaluation, GradientMethod, PubTask
from .methods.metric import resolve_metric
from .noise_checks import warn_seeded_noise
from .packing import pack
from .pipeline import (
    Combination,
    InnerPubs,
    PubWork,
    Submission,
    attach_metric,
    build_tasks,
    coerce_pubs,
    lay_out,
    plan_pubs,
    submit,
)
from .pub_results import indexable_pub

#: how a run spends its shots (API.md, "Allocation within a run")
ALLOCATIONS = ("uniform", "optimal")

__all__ = ["ALLOCATIONS", "GradientPrimitive", "checked_allocation"]


class GradientPrimitive:
    """Shared machinery of the gradient primitives (not public)."""

    _kind: str = ""
    _other_kind: type | None = None  # the primitive base class this wrapper must not wrap
    _other_wrapper: str = ""
    _metric_center = False  # whether the metric's plan may replace the centre

    def __init__(
        self,
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
        self._check_primitive(primitive)
        self._max_job_rows = _checked_job_rows(max_job_rows)
        self._primitive = primitive
        self._method = resolve_method(method, options)
        self._warned_seed = False
        self._metric = self._resolve_metric(metric, metric_options)
        for checked in (self._method, self._metric):
            check = getattr(checked, "check", None)
            if check is not None:  # e.g. 'reverse' rejects a sampling estimator here
                check(primitive)

    def _check_primitive(self, primitive: Any) -> None:
        """A V2 primitive of this wrapper's kind."""
        if self._other_kind is not None and isinstance(primitive, self._other_kind):
            raise TypeError(
                f"{type(self).__name__} wraps {'an' if self._kind == 'estimator' else 'a'} "
                f"{self._kind}, got the {type(primitive).__name__}; use {self._other_wrapper} "
                "for it"
            )
        if primitive is None or not hasattr(primitive, "run"):
            raise TypeError(f"expected a V2 primitive with a run() method, got {primitive!r}")

    def _resolve_metric(self, metric: Any, metric_options: dict[str, Any] | None) -> Any:
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
        if self._kind != "estimator":
            raise TypeError(
                f"metric= needs an estimator (the QGT is a property of the state); use "
                f"GradientEstimator or QGTEstimator, not {type(self).__name__}"
            )
        return resolve_metric(metric, dict(metric_options or {}))

    @property
    def allocation(self) -> str:
        """How a run spends its shots: ``"uniform"`` or ``"optimal"``."""
        return self._allocation

    @property
    def method(self) -> GradientMethod:
        """The gradient method object."""
        return self._method

    def __getattr__(self, name: str) -> Any:
        # Attributes client code reads from a primitive (options, default_precision,
        # default_shots, mode, backend) come from the wrapped one.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._primitive, name)

    @staticmethod
    def _bindings(evaluation: Evaluation) -> BindingsArray:
        """The evaluation's parameter values, keyed by the circuit's parameter names."""
        circuit = evaluation.circuit
        names = evaluation.parameter_names
        if names is None or len(names) != circuit.num_parameters:
            names = parameter_names(circuit)
        data = {names: evaluation.values} if circuit.num_parameters else {}
        return BindingsArray(data, shape=evaluation.values.shape[:-1])

    @staticmethod
    def _metadata(work: PubWork, center: Any, meta: dict) -> dict[str, Any]:
        """The centre's own metadata, then the method's, the run's and the parameters."""
        metadata = dict(center.metadata)
        metadata.update(meta)
        metadata["parameters"] = list(work.task.parameters)
        metadata.update(work.plan.metadata)
        return metadata

    # --- hooks for the estimator / sampler ---------------------------------------------
    def _coerce(self, pub: Any) -> Any:
        raise NotImplementedError

    def _task(self, index: int, pub: Any, parameters: tuple[Parameter, ...]) -> PubTask:
        raise NotImplementedError

    def _inner_pub(self, work: PubWork, evaluation: Evaluation) -> Any:
        raise NotImplementedError

    def _inner_counts_shots(self) -> bool:
        """Whether the wrapped primitive's results carry their own ``metadata["shots"]``
        (another gradient primitive): then those counts are summed, not recounted."""
        return isinstance(self._primitive, GradientPrimitive)

    def _direct_center_ok(self, work: PubWork, run_kwargs: dict[str, Any]) -> bool:
        """Whether a plan's ``direct_center`` may replace the inner centre evaluation."""
        return False

    def _inner_run(self, pubs: list[Any], **kwargs: Any) -> Any:
        """The submit phase's call of the wrapped primitive, once per packed job, with coerced
        pubs that also index and unpack like their tuple (see docs/architecture.rst, "Inner
        pubs"). A hook: ``GradientEstimator`` hands the jobs of a nested gradient estimator
        to that estimator's own pipeline (rows merged)."""
        return self._primitive.run([indexable_pub(pub) for pub in pubs], **kwargs)

    def _pub_result(self, work: PubWork, center: Any, evaluated: list[Any], meta: dict) -> Any:
        raise NotImplementedError

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
        :mod:`qprim_grad._merge`); set by an outer gradient estimator around this one."""
        coerced = coerce_pubs(self, pubs)
        self._check_precisions(coerced, run_kwargs)
        tasks = build_tasks(self, coerced, parameters)
        works = plan_pubs(self._method, tasks, coerced)
        if not self._warned_seed:
            self._warned_seed = warn_seeded_noise(self, works, run_kwargs)
        if self._metric is not None:
            attach_metric(works, self._metric, self._metric_center)
        inner = lay_out(self, works, run_kwargs)
        broadcast = inner.broadcast  # per slot of the pubs before allocation splits them
        allocation, make_pub = None, self._slice_pub(inner)
        if self._allocation == "optimal" and self._kind == "estimator":
            allocation = allocate(self, works, inner, run_kwargs, self._sigmas)
            inner = allocation.inner
            make_pub = allocation.slice_pub(self._slice_pub(inner))
        jobs = pack(inner.pubs, inner.evaluations, self._max_job_rows, make_pub)
        submission = submit(self, jobs, inner, run_kwargs, merge_rows=merge_rows)
        meta = self._run_metadata(submission)
        combination = Combination(self, works, len(inner.pubs), submission, meta, allocation)
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

    def _slice_pub(self, inner: InnerPubs) -> Any:
        """How the packing phase builds the inner pub of a slice of an evaluation."""

        def make(slot: int, evaluation: Evaluation) -> Any:
            return self._inner_pub(inner.works[slot], evaluation)

        return make

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
