"""The generic gradient primitive: coerce pubs, plan, submit one inner job, combine.

:class:`~qprim_grad.GradientEstimator` and :class:`~qprim_grad.GradientSampler` only say
how a pub is coerced, how an inner pub is built and what a result row holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from qiskit.circuit import Parameter
from qiskit.primitives import PrimitiveResult
from qiskit.primitives.containers.bindings_array import BindingsArray

from . import _merge
from .circuits import parameter_names
from .combine import (
    linear_combination,
)
from .errors import CorrelatedNoiseWarning, SmallStepWarning
from .job import GradientJob, GradientJobError, InnerJob
from .methods import resolve_method
from .methods.base import Evaluation, GradientMethod, Plan, PubTask
from .methods.metric import resolve_metric
from .noise_checks import warn_seeded_noise
from .params import _binding_hint, _check_finite, normalize_parameters
from .pub_results import (
    concatenate_pub_results,
    indexable_pub,
    pub_tuple,
    reshape_pub_result,
)

#: ``linear_combination``, ``normalize_parameters`` and the warnings stay importable from here
__all__ = [
    "CorrelatedNoiseWarning",
    "GradientPrimitive",
    "SmallStepWarning",
    "linear_combination",
    "normalize_parameters",
]


@dataclass
class _PubWork:
    task: PubTask
    pub: Any  # the coerced user pub
    plan: Plan
    center_slot: int = -1  # index into the flat inner-pub list
    eval_slots: list[int] = field(default_factory=list)
    # the metric family (QGTEstimator, GradientEstimator(..., metric=...))
    metric: Any = None
    metric_plan: Any = None
    metric_slots: list[int] = field(default_factory=list)
    metric_results: list[Any] = field(default_factory=list)
    metric_direct: bool = False  # the metric plan computes its evaluations itself


class GradientPrimitive:
    """Shared machinery of the gradient primitives (not public)."""

    _kind: str = ""
    _other_kind: type | None = None  # the primitive base class this wrapper must not wrap
    _other_wrapper: str = ""
    _metric_centre = False  # whether the metric's plan may replace the centre

    def __init__(
        self,
        primitive: Any,
        method: str | GradientMethod = "param_shift",
        *,
        max_job_rows: int | None = None,
        metric: Any = None,
        metric_options: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        alias = options.pop("max_pub_rows", None)
        if alias is not None:
            if max_job_rows is not None and alias != max_job_rows:
                raise ValueError("give max_job_rows or its alias max_pub_rows, not both")
            max_job_rows = alias
        if self._other_kind is not None and isinstance(primitive, self._other_kind):
            raise TypeError(
                f"{type(self).__name__} wraps {'an' if self._kind == 'estimator' else 'a'} "
                f"{self._kind}, got the {type(primitive).__name__}; use {self._other_wrapper} "
                "for it"
            )
        if primitive is None or not hasattr(primitive, "run"):
            raise TypeError(f"expected a V2 primitive with a run() method, got {primitive!r}")
        if max_job_rows is not None and (int(max_job_rows) != max_job_rows or max_job_rows < 1):
            raise ValueError(f"max_job_rows must be a positive integer, got {max_job_rows!r}")
        self._primitive = primitive
        self._method = resolve_method(method, options)
        self._max_job_rows = max_job_rows
        self._warned_seed = False
        if metric is None and metric_options:
            raise ValueError("metric_options were given without metric=")
        if metric is not None and self._kind != "estimator":
            raise TypeError(
                f"metric= needs an estimator (the QGT is a property of the state); use "
                f"GradientEstimator or QGTEstimator, not {type(self).__name__}"
            )
        self._metric = (
            None if metric is None else resolve_metric(metric, dict(metric_options or {}))
        )
        check = getattr(self._metric, "check", None)
        if check is not None:  # e.g. 'reverse' rejects a sampling estimator here
            check(primitive)

    @property
    def method(self) -> GradientMethod:
        """The gradient method object."""
        return self._method

    def __getattr__(self, name: str) -> Any:
        # Attributes old code reads from a primitive (options, default_precision,
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
    def _metadata(work: _PubWork, center: Any, meta: dict) -> dict[str, Any]:
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

    def _inner_pub(self, work: _PubWork, evaluation: Evaluation) -> Any:
        raise NotImplementedError

    #: how inner pubs are sent (see docs/migration.rst, "Inner pubs"): ``"indexable"``
    #: (default: coerced pubs that also index and unpack like their tuple), ``"pub"`` (plain
    #: ``EstimatorPub`` / ``SamplerPub``) or ``"tuple"`` (plain tuples, re-coerced inside).
    _inner_pub_form: str = "indexable"

    def _direct_center_ok(self, work: _PubWork, run_kwargs: dict[str, Any]) -> bool:
        """Whether a plan's ``direct_center`` may replace the inner centre evaluation."""
        return False

    def _inner_run(self, pubs: list[Any], **kwargs: Any) -> Any:
        form = {"indexable": indexable_pub, "tuple": pub_tuple}.get(self._inner_pub_form)
        if form is not None:
            pubs = [form(pub) for pub in pubs]
        return self._primitive.run(pubs, **kwargs)

    def _pub_result(self, work: _PubWork, center: Any, evaluated: list[Any], meta: dict) -> Any:
        raise NotImplementedError

    # --- the generic run -----------------------------------------------------------------
    def _submit(
        self,
        pubs: Iterable[Any],
        parameters: Any,
        run_kwargs: dict[str, Any],
        *,
        merge_rows: bool = False,
    ) -> GradientJob:
        """``merge_rows``: evaluate identical rows of each inner job once (see
        :mod:`qprim_grad._merge`); set by an outer gradient estimator around this one."""
        coerced = []
        for index, pub in enumerate(pubs):
            try:
                coerced.append(self._coerce(pub))
            except (ValueError, TypeError) as exc:
                raise type(exc)(f"pub {index}: {exc}{_binding_hint(pub, exc)}") from exc
        diff = normalize_parameters(parameters, [p.circuit for p in coerced])
        tasks = [
            _check_finite(self._task(index, pub, params))
            for index, (pub, params) in enumerate(zip(coerced, diff))
        ]
        works = [_PubWork(task, pub, self._method.plan(task)) for task, pub in zip(tasks, coerced)]
        if not self._warned_seed:
            self._warned_seed = warn_seeded_noise(self, works, run_kwargs)
        if self._metric is not None:
            for work in works:
                work.metric = self._metric
                work.metric_plan = self._metric.plan(work.task)
                center = work.metric_plan.center
                if self._metric_centre and center is not None and work.plan.center is None:
                    work.plan.center = center
                if self._metric_centre and work.plan.direct_center is None:
                    work.plan.direct_center = work.metric_plan.direct_center
        # The centres first, in pub order: a seeded inner primitive then returns for them
        # exactly what it returns for the user's pubs alone.
        inner_pubs: list[Any] = []
        sources: list[tuple[_PubWork, Evaluation | None]] = []
        for work in works:
            if (
                work.plan.direct_center is not None
                and (work.metric_plan is None or self._metric_centre)
                and self._direct_center_ok(work, run_kwargs)
            ):
                continue  # the method computes the centre itself (center_slot stays -1)
            center = work.pub if work.plan.center is None else None
            if center is None:
                center = self._inner_pub(work, work.plan.center)  # type: ignore[arg-type]
            work.center_slot = len(inner_pubs)
            inner_pubs.append(center)
            sources.append((work, None))
        for work in works:
            for evaluation in work.plan.evaluations:
                work.eval_slots.append(len(inner_pubs))
                inner_pubs.append(self._inner_pub(work, evaluation))
                sources.append((work, evaluation))
        for work in works:
            plan = work.metric_plan
            if plan is not None and plan.direct is not None:
                work.metric_direct = self._direct_center_ok(work, run_kwargs)
            for evaluation in () if plan is None or work.metric_direct else plan.evaluations:
                work.metric_slots.append(len(inner_pubs))
                inner_pubs.append(self._inner_pub(work, evaluation))
                sources.append((work, evaluation))

        jobs = self._pack(inner_pubs, sources)
        inner_jobs = []
        rows_sent = 0
        for job in jobs:
            pieces = [piece.pub for piece in job]
            if merge_rows:
                sent, layout = _merge.merge_rows(pieces)
                rows = sum(int(np.prod(p.shape, dtype=int)) for p in sent)
                submitted = _merge.MergedJob(
                    self._inner_run(sent, **run_kwargs), pieces, layout, rows
                )
            else:
                rows = sum(int(np.prod(p.shape, dtype=int)) for p in pieces)
                submitted = self._inner_run(pieces, **run_kwargs)
            rows_sent += rows
            served = tuple(sorted({sources[piece.slot][0].task.index for piece in job}))
            inner_jobs.append(InnerJob(submitted, served))
        meta = {
            "method": self._method.name,
            "method_options": dict(self._method.options),
            "inner_job_ids": [inner.job_id for inner in inner_jobs],
            "inner_rows": rows_sent,
        }
        if self._metric is not None:
            meta["metric"] = self._metric.name
            meta["metric_options"] = dict(self._metric.options)

        def finish(results: list[Any]) -> Any:
            parts: list[list[Any]] = [[] for _ in inner_pubs]
            for number, (job, inner, result) in enumerate(zip(jobs, inner_jobs, results)):
                _check_result_count(result, len(job), inner, number, len(jobs))
                for piece, pub_result in zip(job, result):
                    parts[piece.slot].append(pub_result)
            flat = [concatenate_pub_results(group) for group in parts]
            pub_results = []
            for work in works:
                if work.center_slot < 0:
                    center = work.plan.resolved_direct_center()
                else:
                    center = flat[work.center_slot]
                if work.center_slot >= 0 and work.plan.center is not None:  # drop its 1-point axis
                    center = reshape_pub_result(center, work.task.shape)
                work.metric_results = [flat[i] for i in work.metric_slots]
                try:
                    pub_results.append(
                        self._pub_result(work, center, [flat[i] for i in work.eval_slots], meta)
                    )
                except Exception as exc:
                    raise GradientJobError(
                        f"pub {work.task.index}: could not combine the inner results into "
                        f"gradients: {type(exc).__name__}: {exc}"
                    ) from exc
            inner_metadata = [dict(getattr(result, "metadata", {}) or {}) for result in results]
            # rows the innermost primitive evaluated (through nested gradient estimators)
            nested = [m.get("base_rows") for m in inner_metadata]
            base_rows = rows_sent
            if nested and all(isinstance(n, int) for n in nested):
                base_rows = sum(int(n) for n in nested if n is not None)
            extra = {"base_rows": base_rows}
            return PrimitiveResult(
                pub_results,
                metadata={"version": 2, **meta, **extra, "inner_metadata": inner_metadata},
            )

        return GradientJob(inner_jobs, finish, **meta)

    def _pack(
        self, inner_pubs: list[Any], sources: list[tuple[_PubWork, Evaluation | None]]
    ) -> list[list[_Piece]]:
        """Inner pubs grouped into jobs of at most ``max_job_rows`` rows, greedily in order.
        An evaluation that does not fit is cut along its leading (points) axis, its first
        piece filling the job being packed; a centre pub is never cut (one larger than the
        cap gets a job of its own)."""
        limit = self._max_job_rows
        if limit is None:
            return [[_Piece(slot, pub, 0) for slot, pub in enumerate(inner_pubs)]]
        jobs: list[list[_Piece]] = [[]]
        fill = 0

        def add(piece: _Piece) -> None:
            nonlocal fill
            if jobs[-1] and fill + piece.rows > limit:
                jobs.append([])
                fill = 0
            jobs[-1].append(piece)
            fill += piece.rows

        for slot, (pub, (work, evaluation)) in enumerate(zip(inner_pubs, sources)):
            shape = tuple(pub.shape)
            rows = int(np.prod(shape, dtype=int))
            if rows <= limit or evaluation is None or not shape:
                add(_Piece(slot, pub, rows))
                continue
            per_point = max(rows // shape[0], 1)
            start = 0
            while start < shape[0]:
                room = (limit - fill) // per_point
                step = room if room >= 1 else max(1, limit // per_point)
                piece = self._inner_pub(work, _slice_evaluation(evaluation, start, start + step))
                add(_Piece(slot, piece, int(np.prod(piece.shape, dtype=int))))
                start += step
        return jobs


def _check_result_count(
    result: Any, expected: int, inner: InnerJob, number: int, num_jobs: int
) -> None:
    """An inner job must return one pub result per submitted pub."""
    try:
        got = len(result)
    except TypeError:
        got = None
    if got != expected:
        raise GradientJobError(
            f"inner job {inner.job_id} (part {number + 1} of {num_jobs}) returned "
            f"{'a result without a length' if got is None else f'{got} pub results'}; expected "
            f"{expected} (one per submitted pub)",
            failed=[(inner.job_id, inner.pubs)],
        )


@dataclass(frozen=True)
class _Piece:
    slot: int  # index into the flat inner-pub list
    pub: Any
    rows: int


def _slice_evaluation(evaluation: Evaluation, start: int, stop: int) -> Evaluation:
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
