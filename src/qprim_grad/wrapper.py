"""The generic gradient primitive: coerce pubs, plan, submit one inner job, combine.

:class:`~qprim_grad.GradientEstimator` and :class:`~qprim_grad.GradientSampler` only say
how a pub is coerced, how an inner pub is built and what a result row holds.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from qiskit.circuit import Parameter, QuantumCircuit
from qiskit.primitives import PrimitiveResult
from qiskit.primitives.containers import BitArray, DataBin, EstimatorPub, SamplerPub
from qiskit.primitives.containers.bindings_array import BindingsArray
from scipy import sparse

from . import _merge
from .circuits import parameter_names
from .errors import CorrelatedNoiseWarning, SmallStepWarning
from .job import GradientJob, GradientJobError, InnerJob
from .methods import resolve_method
from .methods.base import Evaluation, GradientMethod, Plan, PubTask
from .methods.metric import resolve_metric

__all__ = ["GradientPrimitive", "linear_combination", "normalize_parameters"]


def linear_combination(values: np.ndarray, weights: Any) -> np.ndarray:
    """``sum_k weights[k, ..., j] * values[k, ..., m]`` -> shape ``S + (P, M)``.

    ``values`` has shape ``(K,) + S + (M,)``; ``weights`` is a sparse ``(K, P)`` matrix or a
    dense array ``(K,) + w + (P,)`` with ``w`` broadcastable to ``S``.
    """
    num_points = values.shape[0]
    shape = values.shape[1:-1]
    outcomes = values.shape[-1]
    if sparse.issparse(weights):
        flat = values.reshape(num_points, -1).T  # (S*M, K)
        combined = (
            np.asarray(weights.T @ flat.T).T if flat.size else np.zeros((0, weights.shape[1]))
        )
        combined = combined.reshape(shape + (outcomes, weights.shape[1]))
        return np.swapaxes(combined, -1, -2)
    weights = np.asarray(weights)
    # (*S, M, K) @ (*w, K, P) -> (*S, M, P): a batched matrix product over the points
    combined = np.moveaxis(values, 0, -1) @ np.moveaxis(weights, 0, -2)
    return np.swapaxes(combined, -1, -2)


def normalize_parameters(
    parameters: Any, circuits: Sequence[QuantumCircuit]
) -> list[tuple[Parameter, ...]]:
    """One tuple of differentiated parameters per pub (default: ``circuit.parameters``)."""
    if parameters is None:
        return [tuple(c.parameters) for c in circuits]
    parameters = list(parameters)
    per_pub = bool(parameters) and not isinstance(parameters[0], Parameter)
    if per_pub and len(parameters) != len(circuits):
        raise ValueError(
            f"parameters= gives {len(parameters)} sequences for {len(circuits)} pubs; give one "
            "sequence of Parameters for all pubs or one per pub"
        )
    chosen = parameters if per_pub else [parameters] * len(circuits)
    out = []
    for index, (circuit, params) in enumerate(zip(circuits, chosen)):
        if params is None:
            out.append(tuple(circuit.parameters))
            continue
        params = tuple(params)
        present = set(circuit.parameters)
        for param in params:
            if not isinstance(param, Parameter):
                raise TypeError(
                    f"pub {index}: parameters= must hold qiskit Parameter objects, got {param!r}"
                )
            if param not in present:
                raise ValueError(
                    f"pub {index}: parameter {param.name!r} is not a parameter of the circuit "
                    f"(its parameters: {[p.name for p in circuit.parameters]})"
                )
        if len(set(params)) != len(params):
            raise ValueError(f"pub {index}: parameters= lists a parameter twice")
        out.append(params)
    return out


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


def _check_finite(task: PubTask) -> PubTask:
    """Reject NaN and infinite parameter values, naming the pub and the parameter."""
    values = task.values
    if values.size and not np.isfinite(values).all():
        bad = ~np.isfinite(values.reshape(-1, values.shape[-1])).all(axis=0)
        names = [p.name for p, b in zip(task.circuit.parameters, bad) if b]
        raise ValueError(
            f"pub {task.index}: parameter values must be finite; got NaN or infinity for "
            f"parameter(s) {names}"
        )
    return task


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


def _aer_estimator_seed(primitive: Any) -> Any:
    """``seed_simulator`` of a qiskit-aer ``EstimatorV2`` (``None`` if not one or unseeded)."""
    module = type(primitive).__module__
    if not module.startswith("qiskit_aer"):
        return None
    try:
        from qiskit_aer.primitives import EstimatorV2 as AerEstimatorV2
    except ImportError:  # pragma: no cover - aer is optional
        return None
    if not isinstance(primitive, AerEstimatorV2):
        return None
    return primitive.options.run_options.get("seed_simulator")


def warn_seeded_noise(wrapper: Any, works: list[_PubWork], run_kwargs: dict[str, Any]) -> bool:
    """Warn (true: once per wrapper) when a seeded qiskit-aer ``EstimatorV2`` would give
    correlated noise to the pubs one gradient combines.

    qiskit-aer draws the Gaussian noise of ``precision > 0`` from a generator seeded with
    ``seed_simulator`` afresh for every pub, so pubs of equal shape get identical noise.
    ``lin_comb`` (one pub per Hadamard test) and forward/backward ``finite_diff`` (centre and
    shifted pub) then combine correlated estimates.
    """
    seed = _aer_estimator_seed(wrapper._primitive)
    if seed is None:
        return False
    default = getattr(wrapper._primitive.options, "default_precision", 0.0) or 0.0
    run_precision = run_kwargs.get("precision")
    for work in works:
        plan = work.plan
        combined = sum(e.weights is not None for e in plan.evaluations)
        combined += plan.center_weights is not None
        precision = work.pub.precision
        if precision is None:
            precision = run_precision if run_precision is not None else default
        if combined >= 2 and precision > 0:
            warnings.warn(
                f"qiskit-aer's EstimatorV2 with seed_simulator={seed!r} draws the same noise "
                f"for every pub of equal shape; method {wrapper._method.name!r} combines "
                f"{combined} pubs into each gradient of pub {work.task.index}, so their noise "
                "is correlated and grad_stds (which assume independent estimates) can be off "
                "by about sqrt(2) or hide a real error. Drop seed_simulator, or use "
                "'param_shift', 'spsa' or central 'finite_diff' (one pub per gradient).",
                CorrelatedNoiseWarning,
                stacklevel=4,
            )
            return True
    return False


def warn_small_step(method: Any, noisy: bool) -> None:
    """Warn when a finite-difference-like method runs with a tiny ``epsilon`` on a noisy
    primitive: the gradient's error then grows like ``std / epsilon``."""
    epsilon = getattr(method, "epsilon", None)
    if noisy and isinstance(epsilon, float) and epsilon < 1e-3:
        warnings.warn(
            f"method {method.name!r} with epsilon={epsilon:g} on a shot-based primitive: the "
            f"gradient's standard error grows like std/epsilon (see grad_stds); use an "
            f"epsilon of about 0.01-0.2, or method='param_shift'",
            SmallStepWarning,
            stacklevel=4,
        )


def _binding_hint(pub: Any, exc: Exception) -> str:
    """Name the unbound parameters when a pub's values do not cover its circuit."""
    message = str(exc)
    if not isinstance(pub, (tuple, list)) or (
        "number of parameters" not in message and "last dimension" not in message
    ):
        return ""
    circuit = pub[0]
    names = [p.name for p in getattr(circuit, "parameters", [])]
    given: set[str] = set()
    for item in pub[1:]:
        if isinstance(item, dict):
            for key in item:
                keys = key if isinstance(key, tuple) else (key,)
                given.update(str(getattr(k, "name", k)) for k in keys)
    missing = [name for name in names if name not in given]
    if given and missing:
        return f" Unbound parameters: {missing}."
    return f" The circuit's parameters, in order: {names}."


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


def concatenate_pub_results(parts: list[Any]) -> Any:
    """One pub result from results of consecutive slices along the leading axis."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    fields = {}
    for name in first.data.keys():
        values = [getattr(part.data, name) for part in parts]
        if isinstance(values[0], BitArray):
            fields[name] = BitArray.concatenate(values, axis=0)
        elif not isinstance(values[0], np.ndarray) and hasattr(values[0], "get_probabilities"):
            fields[name] = np.concatenate([object_array(v) for v in values], axis=0)
        elif np.ndim(values[0]) == 0:
            fields[name] = values[0]
        else:
            fields[name] = np.concatenate([np.asarray(v) for v in values], axis=0)
    shape = (sum(part.data.shape[0] for part in parts),) + tuple(first.data.shape[1:])
    metadata = dict(first.metadata)
    metadata["pieces"] = len(parts)
    return type(first)(DataBin(**fields, shape=shape), metadata=metadata)


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
        return pub_tuple(self)[index]  # type: ignore[arg-type]

    def __iter__(self) -> Any:
        return iter(pub_tuple(self))  # type: ignore[arg-type]


class IndexableEstimatorPub(_TupleLike, EstimatorPub):
    """An ``EstimatorPub`` that is also ``(circuit, observables, values, precision)``."""

    __slots__ = ()


class IndexableSamplerPub(_TupleLike, SamplerPub):
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


def combine_plan(
    plan: Plan,
    center: np.ndarray,
    evaluated: list[np.ndarray],
    shape: tuple[int, ...],
    width: int,
    *,
    variances: bool = False,
) -> np.ndarray:
    """Gradients ``S + (width, M)`` from centre values ``(1,) + S + (M,)`` and evaluation
    values ``(K,) + S + (M,)``; with ``variances=True`` the inputs are variances and the
    weights are squared (independent estimates)."""
    total = np.zeros(shape + (width, center.shape[-1]))
    pairs = [(e.weights, v) for e, v in zip(plan.evaluations, evaluated)]
    if plan.center_weights is not None:
        pairs.append((plan.center_weights, center))
    for weights, values in pairs:
        total = total + linear_combination(values, square(weights) if variances else weights)
    return total


def combine_with_errors(
    plan: Plan,
    center: tuple[np.ndarray, np.ndarray],
    evaluated: list[tuple[np.ndarray, np.ndarray]],
    shape: tuple[int, ...],
    width: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(derivatives, standard errors), each ``S + (width, M)``, from (values, variances)
    pairs of the centre ``(1,) + S + (M,)`` and of each evaluation ``(K,) + S + (M,)``;
    the plan's direct derivatives are added."""
    grads = combine_plan(plan, center[0], [v for v, _ in evaluated], shape, width)
    variance = combine_plan(
        plan, center[1], [var for _, var in evaluated], shape, width, variances=True
    )
    direct = plan.resolved_direct_grads()
    if direct is not None:
        grads = grads + np.reshape(direct, grads.shape)
    return grads, np.sqrt(np.maximum(np.real(variance), 0.0))


def square(weights: Any) -> Any:
    """Element-wise ``|w|^2`` of dense or sparse weights."""
    if sparse.issparse(weights):
        return abs(weights).power(2)
    return np.abs(np.asarray(weights)) ** 2


def nested_derivatives(work: _PubWork, center: Any, evaluated: list[Any]) -> dict[str, Any]:
    """Derivatives of the inner result's ``grads`` when the wrapped primitive is itself a
    gradient estimator: ``hessian`` (and ``hessian_stds``).

    * When the inner results differentiate the user's circuit parameters: shape
      ``pub.shape + (P_inner, P)``, ``hessian[..., i, j] = d grads_inner[..., i] / d theta_j``.
    * When the method evaluated a rewritten circuit (shared parameters, affine
      expressions), the inner derivatives are mapped back through the chain rule
      (``H = J^T d^2E/d phi^2 J``, plus ``sum_g dE/d phi_g d^2 phi_g/d theta^2`` for
      non-affine expressions): shape ``pub.shape + (P, P)``.
    * Otherwise (direct gradients, an inner estimator of other parameters): ``{}``.
    """
    task, plan = work.task, work.plan
    inner_grads = getattr(center.data, "grads", None)
    if inner_grads is None or not isinstance(inner_grads, np.ndarray):
        return {}
    if plan.direct_grads is not None:
        return {}
    results = [center, *evaluated]
    inner_parameters = [result.metadata.get("parameters") for result in results]
    if any(params != inner_parameters[0] or params is None for params in inner_parameters):
        return {}
    full = task.shape
    expected = list(task.circuit.parameters)
    curvature = None
    if inner_parameters[0] == expected:
        columns, jacobian = list(range(len(expected))), None
    elif plan.parameter_map is not None or plan.chain_rule is not None:
        position = {p: i for i, p in enumerate(inner_parameters[0])}
        if plan.parameter_map is not None:
            slots, jacobian = plan.parameter_map
        else:
            assert plan.chain_rule is not None
            slots, jacobian, curvature = plan.chain_rule()
        if any(p not in position for p in slots):
            return {}
        columns = [position[p] for p in slots]
    else:
        return {}
    width = len(inner_parameters[0])

    def field(result: Any, name: str) -> np.ndarray:
        values = np.asarray(getattr(result.data, name, np.zeros(result.data.shape + (width,))))
        return values[..., columns]

    def pair(result: Any) -> tuple[np.ndarray, np.ndarray]:
        return field(result, "grads"), field(result, "grad_stds") ** 2

    centre_mean, centre_var = pair(center)
    hessian, stds = combine_with_errors(
        plan,
        (centre_mean[None], centre_var[None]),
        [pair(result) for result in evaluated],
        full,
        task.num_parameters,
    )  # S + (P, columns)
    variance = stds**2
    if jacobian is not None:  # columns are gate arguments: map them to the parameters
        dense = jacobian.toarray() if sparse.issparse(jacobian) else np.asarray(jacobian)
        hessian = hessian @ dense
        variance = variance @ dense**2
    if curvature is not None:  # + sum_g dE/d phi_g d^2 phi_g / d theta_i d theta_j
        hessian = hessian + np.einsum("...g,...gij->...ji", centre_mean, curvature)
        variance = variance + np.einsum("...g,...gij->...ji", centre_var, curvature**2)
    return {
        "hessian": np.array(np.swapaxes(hessian, -1, -2)),
        "hessian_stds": np.sqrt(np.swapaxes(variance, -1, -2)),
    }
