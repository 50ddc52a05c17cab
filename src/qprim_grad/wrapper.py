"""The generic gradient primitive: coerce pubs, plan, submit one inner job, combine.

:class:`~qprim_grad.GradientEstimator` and :class:`~qprim_grad.GradientSampler` only say
how a pub is coerced, how an inner pub is built and what a result row holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from qiskit.circuit import Parameter, QuantumCircuit
from scipy import sparse

from .job import GradientJob, InnerJob
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
    return np.sum(values[..., None, :] * weights[..., :, None], axis=0)


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
                raise type(exc)(f"pub {index}: {exc}") from exc
        diff = normalize_parameters(parameters, [p.circuit for p in coerced])
        works: list[_PubWork] = []
        inner_pubs: list[Any] = []
        owners: list[int] = []
        for index, (pub, params) in enumerate(zip(coerced, diff)):
            task = self._task(index, pub, params)
            plan = self._method.plan(task)
            work = _PubWork(task, pub, plan, -1, [])
            center = pub if plan.center is None else self._inner_pub(work, plan.center)
            work.center_slot = len(inner_pubs)
            inner_pubs.append(center)
            owners.append(index)
            for evaluation in plan.evaluations:
                work.eval_slots.append(len(inner_pubs))
                inner_pubs.append(self._inner_pub(work, evaluation))
                owners.append(index)
            works.append(work)

        inner_jobs = []
        for chunk in self._chunks(inner_pubs):
            job = self._inner_run([inner_pubs[i] for i in chunk], **run_kwargs)
            inner_jobs.append(InnerJob(job, tuple(sorted({owners[i] for i in chunk}))))
        chunks = list(self._chunks(inner_pubs))

        def finish(results: list[Any]) -> Any:
            flat: list[Any] = [None] * len(inner_pubs)
            for chunk, result in zip(chunks, results):
                for position, pub_result in zip(chunk, result):
                    flat[position] = pub_result
            meta = {
                "method": self._method.name,
                "method_options": dict(self._method.options),
                "inner_job_ids": [inner.job_id for inner in inner_jobs],
            }
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
                    raise RuntimeError(
                        f"pub {work.task.index}: could not combine the inner results into "
                        f"gradients: {exc}"
                    ) from exc
            from qiskit.primitives import PrimitiveResult

            return PrimitiveResult(pub_results, metadata={"version": 2, **meta})

        return GradientJob(inner_jobs, finish)

    def _chunks(self, inner_pubs: list[Any]) -> list[list[int]]:
        if self._max_job_rows is None:
            return [list(range(len(inner_pubs)))]
        chunks: list[list[int]] = [[]]
        rows = 0
        for position, pub in enumerate(inner_pubs):
            size = int(np.prod(pub_shape(pub)))
            if chunks[-1] and rows + size > self._max_job_rows:
                chunks.append([])
                rows = 0
            chunks[-1].append(position)
            rows += size
        return chunks


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
