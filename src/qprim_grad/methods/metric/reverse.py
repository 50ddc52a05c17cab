"""The exact QGT on statevector estimators (``metric="reverse"``).

One forward pass per parameter row through the adjoint engine
(:meth:`~qprim_grad.methods.adjoint.AdjointProgram.state_overlaps`) gives every derivative state,
then all ``P x P`` inner products in one matrix product; nothing but the centre runs on the
inner estimator.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from qiskit.primitives import StatevectorEstimator
from qiskit.primitives.containers import PubResult

from ...circuit.options import check_bool
from ...errors import GradientMethodError
from ...pipeline.types import PubTask
from ..adjoint import AdjointProgram, observable_matrix
from ..reverse import (
    check_noiseless_precision,
    compile_task,
    exact_pub_result,
    is_exact_statevector_estimator,
)
from .base import MetricPlan, SlotTensor, normalize_metric_type

__all__ = ["ReverseMetric"]

_OTHERS = "'lin_comb', 'block_diag' or 'diag'"


def check_exact(estimator: Any, name: str = "reverse") -> None:
    """Raise ``ValueError`` naming ``reverse`` unless ``estimator`` is exact."""
    precision = getattr(getattr(estimator, "options", None), "default_precision", 0.0)
    if type(estimator).__module__.startswith("qiskit_aer") and precision:
        raise GradientMethodError(
            f"metric {name!r} needs exact expectation values; this qiskit-aer EstimatorV2 adds "
            f"noise (default_precision={precision}). Set default_precision=0 or use {_OTHERS}."
        )
    if estimator is not None and not is_exact_statevector_estimator(estimator):
        raise GradientMethodError(
            f"metric {name!r} needs an exact statevector estimator (qiskit "
            f"StatevectorEstimator, or qiskit-aer EstimatorV2 without noise); got "
            f"{type(estimator).__name__}. Use {_OTHERS}, which work with any estimator."
        )


class ReverseMetric:
    """Exact QGT by the adjoint engine (exact statevector estimators only).

    Args:
        derivative_type: ``"complex"`` (default), ``"real"`` or ``"imag"``.
        phase_fix: subtract ``<d_i psi|psi><psi|d_j psi>`` (default ``True``).
    """

    name = "reverse"

    def __init__(self, derivative_type: Any = "complex", phase_fix: bool = True) -> None:
        self.derivative_type = normalize_metric_type(derivative_type)
        self.phase_fix = check_bool(phase_fix, "phase_fix", "metric 'reverse'")

    @property
    def options(self) -> dict[str, Any]:
        return {"derivative_type": self.derivative_type, "phase_fix": self.phase_fix}

    def check(self, estimator: Any) -> None:
        """Reject an inner estimator that is not an exact statevector simulator."""
        check_exact(estimator, self.name)

    def check_precision(self, estimator: Any, precision: Any) -> None:
        """Reject a non-zero ``precision`` on qiskit-aer's ``EstimatorV2``."""
        check_noiseless_precision(estimator, precision, f"metric {self.name!r}", _OTHERS)

    def plan(self, task: PubTask) -> MetricPlan:
        if task.kind != "estimator":
            raise GradientMethodError("metric 'reverse' runs on estimator pubs only")
        self.check(task.inner)
        program = compile_task(task, "metric 'reverse': ")
        values = np.asarray(task.values, dtype=float)
        shape = values.shape[:-1]
        diff = program.columns(task.parameters)
        rows = math.prod(shape)
        keep_states = type(task.inner) is StatevectorEstimator and len(diff) > 0
        states = np.zeros((rows, 1 << program.num_qubits), dtype=complex) if keep_states else None
        # once, for the tensor and the evs
        overlaps = functools.cache(
            lambda: program.state_overlaps(values.reshape(rows, values.shape[-1]), diff, states)
        )

        def combine(results: list) -> SlotTensor:
            P = len(diff)
            if P == 0:  # nothing to differentiate: an empty tensor, no statevector needed
                return SlotTensor(np.zeros(shape + (0, 0), dtype=complex), np.zeros(shape + (0,)))
            gram, mixed = overlaps()
            # <d_p psi|psi> = conj(mixed) = i g  ->  g = Re(-i conj(mixed)) = -Im(mixed)
            means = -np.imag(mixed)
            return SlotTensor(gram.reshape(shape + (P, P)), means.reshape(shape + (P,)))

        def center() -> PubResult:
            """evs from the forward pass's states (what StatevectorEstimator computes)."""
            overlaps()
            assert states is not None
            return exact_pub_result(task, _expectation_values(task, program, states, shape))

        return MetricPlan(
            evaluations=[],
            combine=combine,
            metadata={"metric_engine": "adjoint"},
            direct_center=center if keep_states else None,
        )


def _expectation_values(
    task: PubTask, program: AdjointProgram, states: np.ndarray, shape: tuple[int, ...]
) -> np.ndarray:
    """``<psi|O|psi>`` of shape ``task.shape`` from the final states ``(rows, 2**n)`` of the
    value rows (of shape ``shape``)."""
    assert task.observables is not None
    evs = np.zeros(task.shape)
    rows_of = np.broadcast_to(np.arange(len(states)).reshape(shape), task.shape)
    observables = np.broadcast_to(
        np.arange(task.observables.size).reshape(task.observables.shape), task.shape
    )
    for index in np.ndindex(task.shape):
        op = observable_matrix(
            task.observables[np.unravel_index(observables[index], task.observables.shape)],
            program.num_qubits,
        )
        psi = states[rows_of[index]]
        evs[index] = float(np.real(np.vdot(psi, op @ psi)))
    return evs
