"""The generic gradient primitive: coerce pubs, plan, submit one inner job, combine.

:class:`~qprim_grad.GradientEstimator` and :class:`~qprim_grad.GradientSampler` only say
how a pub is coerced, how an inner pub is built and what a result row holds.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from qiskit.circuit import Parameter, QuantumCircuit
from qiskit.primitives import PrimitiveResult
from qiskit.primitives.containers import BitArray, DataBin
from scipy import sparse

from .job import GradientJob, GradientJobError, InnerJob
from .methods import resolve_method
from .methods.base import Evaluation, GradientMethod, Plan, PubTask

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
    center_slot: int  # index into the flat inner-pub list
    eval_slots: list[int]


class GradientPrimitive:
    """Shared machinery of the gradient primitives (not public)."""

    _kind: str = ""

    def __init__(
        self,
        primitive: Any,
        method: str | GradientMethod = "param_shift",
        *,
        max_job_rows: int | None = None,
        **options: Any,
    ) -> None:
        alias = options.pop("max_pub_rows", None)
        if alias is not None:
            if max_job_rows is not None and alias != max_job_rows:
                raise ValueError("give max_job_rows or its alias max_pub_rows, not both")
            max_job_rows = alias
        if primitive is None or not hasattr(primitive, "run"):
            raise TypeError(f"expected a V2 primitive with a run() method, got {primitive!r}")
        if max_job_rows is not None and (int(max_job_rows) != max_job_rows or max_job_rows < 1):
            raise ValueError(f"max_job_rows must be a positive integer, got {max_job_rows!r}")
        self._primitive = primitive
        self._method = resolve_method(method, options)
        self._max_job_rows = max_job_rows

    @property
    def method(self) -> GradientMethod:
        """The gradient method object."""
        return self._method

    # --- hooks for the estimator / sampler ---------------------------------------------
    def _coerce(self, pub: Any) -> Any:
        raise NotImplementedError

    def _task(self, index: int, pub: Any, parameters: tuple[Parameter, ...]) -> PubTask:
        raise NotImplementedError

    def _inner_pub(self, work: _PubWork, evaluation: Evaluation) -> Any:
        raise NotImplementedError

    def _inner_run(self, pubs: list[Any], **kwargs: Any) -> Any:
        return self._primitive.run(pubs, **kwargs)

    def _pub_result(self, work: _PubWork, center: Any, evaluated: list[Any], meta: dict) -> Any:
        raise NotImplementedError

    # --- the generic run -----------------------------------------------------------------
    def _submit(
        self, pubs: Iterable[Any], parameters: Any, run_kwargs: dict[str, Any]
    ) -> GradientJob:
        coerced = []
        for index, pub in enumerate(pubs):
            try:
                coerced.append(self._coerce(pub))
            except (ValueError, TypeError) as exc:
                raise type(exc)(f"pub {index}: {exc}{_binding_hint(pub, exc)}") from exc
        diff = normalize_parameters(parameters, [p.circuit for p in coerced])
        works: list[_PubWork] = []
        inner_pubs: list[Any] = []
        owners: list[int] = []
        # The centres first, in pub order: a seeded inner primitive then returns for them
        # exactly what it returns for the user's pubs alone.
        for index, (pub, params) in enumerate(zip(coerced, diff)):
            task = self._task(index, pub, params)
            plan = self._method.plan(task)
            work = _PubWork(task, pub, plan, -1, [])
            center = pub if plan.center is None else self._inner_pub(work, plan.center)
            work.center_slot = len(inner_pubs)
            inner_pubs.append(center)
            owners.append(index)
            works.append(work)
        for work in works:
            for evaluation in work.plan.evaluations:
                work.eval_slots.append(len(inner_pubs))
                inner_pubs.append(self._inner_pub(work, evaluation))
                owners.append(work.task.index)

        pieces = self._pieces(works, inner_pubs)
        chunks = self._chunks([piece.rows for piece in pieces])
        inner_jobs = []
        for chunk in chunks:
            job = self._inner_run([pieces[i].pub for i in chunk], **run_kwargs)
            served = tuple(sorted({owners[pieces[i].slot] for i in chunk}))
            inner_jobs.append(InnerJob(job, served))
        meta = {
            "method": self._method.name,
            "method_options": dict(self._method.options),
            "inner_job_ids": [inner.job_id for inner in inner_jobs],
        }

        def finish(results: list[Any]) -> Any:
            parts: list[list[Any]] = [[] for _ in inner_pubs]
            for chunk, result in zip(chunks, results):
                for position, pub_result in zip(chunk, result):
                    parts[pieces[position].slot].append(pub_result)
            flat = [concatenate_pub_results(group) for group in parts]
            pub_results = []
            for work in works:
                try:
                    pub_results.append(
                        self._pub_result(
                            work,
                            flat[work.center_slot],
                            [flat[i] for i in work.eval_slots],
                            meta,
                        )
                    )
                except Exception as exc:
                    raise GradientJobError(
                        f"pub {work.task.index}: could not combine the inner results into "
                        f"gradients: {type(exc).__name__}: {exc}"
                    ) from exc
            inner_metadata = [dict(getattr(result, "metadata", {}) or {}) for result in results]
            return PrimitiveResult(
                pub_results, metadata={"version": 2, **meta, "inner_metadata": inner_metadata}
            )

        return GradientJob(inner_jobs, finish, **meta)

    def _pieces(self, works: list[_PubWork], inner_pubs: list[Any]) -> list[_Piece]:
        """Inner pubs as submitted: an evaluation larger than ``max_job_rows`` is cut along
        its leading (points) axis into pieces that fit; the centre pub is never cut."""
        evaluation_of: dict[int, Evaluation] = {}
        for work in works:
            for slot, evaluation in zip(work.eval_slots, work.plan.evaluations):
                evaluation_of[slot] = evaluation
        owner_of = {slot: work for work in works for slot in work.eval_slots}
        limit = self._max_job_rows
        pieces: list[_Piece] = []
        fill = 0  # rows in the job being filled (mirrors the greedy packing of _chunks)

        def add(piece: _Piece) -> None:
            nonlocal fill
            if limit is not None and fill and fill + piece.rows > limit:
                fill = 0
            fill += piece.rows
            pieces.append(piece)

        for slot, pub in enumerate(inner_pubs):
            shape = pub_shape(pub)
            rows = int(np.prod(shape, dtype=int))
            if limit is None or rows <= limit or slot not in evaluation_of or not shape:
                add(_Piece(slot, pub, rows))
                continue
            per_point = max(int(np.prod(shape[1:], dtype=int)), 1)
            evaluation = evaluation_of[slot]
            start = 0
            while start < shape[0]:
                room = (limit - fill) // per_point  # first fill the job being packed
                step = room if room >= 1 else max(1, limit // per_point)
                part = _slice_evaluation(evaluation, start, start + step)
                piece_pub = self._inner_pub(owner_of[slot], part)
                add(_Piece(slot, piece_pub, int(np.prod(pub_shape(piece_pub), dtype=int))))
                start += step
        return pieces

    def _chunks(self, rows: list[int]) -> list[list[int]]:
        """Group consecutive pieces (given their row counts) into inner jobs of at most
        ``max_job_rows`` rows (a single larger piece gets a job of its own)."""
        if self._max_job_rows is None:
            return [list(range(len(rows)))]
        chunks: list[list[int]] = [[]]
        total = 0
        for position, size in enumerate(rows):
            if chunks[-1] and total + size > self._max_job_rows:
                chunks.append([])
                total = 0
            chunks[-1].append(position)
            total += size
        return chunks


class SmallStepWarning(UserWarning):
    """A difference step too small for the inner primitive's shot noise."""


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
        weights=np.zeros((0,)),
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
        elif np.ndim(values[0]) == 0:
            fields[name] = values[0]
        else:
            fields[name] = np.concatenate([np.asarray(v) for v in values], axis=0)
    shape = (sum(part.data.shape[0] for part in parts),) + tuple(first.data.shape[1:])
    metadata = dict(first.metadata)
    metadata["pieces"] = len(parts)
    return type(first)(DataBin(**fields, shape=shape), metadata=metadata)


def pub_shape(pub: Any) -> tuple[int, ...]:
    """Shape of a coerced pub, or of a tuple pub ``(circuit, [observables,] values, ...)``."""
    shape = getattr(pub, "shape", None)
    if shape is not None:
        return tuple(shape)
    return tuple(np.shape(pub[-2] if len(pub) >= 3 else ()))[:-1]


def combine_plan(
    plan: Plan,
    center: np.ndarray,
    evaluated: list[np.ndarray],
    shape: tuple[int, ...],
    *,
    variances: bool = False,
) -> np.ndarray:
    """Gradients ``S + (P, M)`` from centre values ``(1,) + S + (M,)`` and evaluation values
    ``(K,) + S + (M,)``; with ``variances=True`` the inputs are variances and the weights
    are squared (independent estimates)."""
    outcomes = center.shape[-1]
    num = next(
        (np.shape(e.weights)[-1] for e in plan.evaluations),
        None if plan.center_weights is None else np.shape(plan.center_weights)[-1],
    )
    if num is None and isinstance(plan.direct_grads, np.ndarray):
        num = plan.direct_grads.shape[-1]
    total = np.zeros(shape + (num or 0, outcomes))
    pairs = [(e.weights, v) for e, v in zip(plan.evaluations, evaluated)]
    if plan.center_weights is not None:
        pairs.append((plan.center_weights, center))
    for weights, values in pairs:
        total = total + linear_combination(values, square(weights) if variances else weights)
    return total


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
      (``H = J^T d^2E/d phi^2 J``): shape ``pub.shape + (P, P)``.
    * Otherwise (non-affine expressions on a rewritten circuit, direct gradients): ``{}``.
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
    if inner_parameters[0] == expected:
        columns, jacobian = list(range(len(expected))), None
    elif plan.parameter_map is not None:
        position = {p: i for i, p in enumerate(inner_parameters[0])}
        slots, jacobian = plan.parameter_map
        if any(p not in position for p in slots):
            return {}
        columns = [position[p] for p in slots]
    else:
        return {}
    width = len(inner_parameters[0])

    def field(result: Any, name: str) -> np.ndarray:
        values = np.asarray(getattr(result.data, name, np.zeros(result.data.shape + (width,))))
        return values[..., columns]

    centre_values = field(center, "grads").reshape((1,) + full + (len(columns),))
    centre_var = field(center, "grad_stds").reshape((1,) + full + (len(columns),)) ** 2
    means = [field(result, "grads") for result in evaluated]
    variances = [field(result, "grad_stds") ** 2 for result in evaluated]
    hessian = combine_plan(plan, centre_values, means, full)  # S + (P, columns)
    variance = combine_plan(plan, centre_var, variances, full, variances=True)
    shape = full + (task.num_parameters, len(columns))
    hessian = np.broadcast_to(hessian, shape)
    variance = np.broadcast_to(np.real(variance), shape)
    if jacobian is not None:  # columns are gate arguments: map them to the parameters
        dense = jacobian.toarray()
        hessian = hessian @ dense
        variance = variance @ dense**2
    return {
        "hessian": np.array(np.swapaxes(hessian, -1, -2)),
        "hessian_stds": np.sqrt(np.swapaxes(variance, -1, -2)),
    }
