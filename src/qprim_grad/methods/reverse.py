"""Reverse-mode (adjoint) differentiation on an exact statevector.

``method="reverse"`` computes ``<psi(theta)|O|d psi(theta)>`` with one forward and one
backward pass over the statevector (see :mod:`qprim_grad.methods.adjoint`): no shifted
circuits; its plan is a :class:`~qprim_grad.pipeline.types.DirectPlan`. On qiskit's
``StatevectorEstimator`` at precision 0 the ``evs`` are taken from the forward pass's state
(the direct result's ``center``, equal to the estimator's own to rounding) and no circuit is
sent; otherwise the inner primitive evaluates the centre (``evs``, ``stds`` as it gives
them). It applies only where the inner estimator is an exact statevector simulator;
elsewhere use a sampling-friendly method.
Around a ``reverse`` gradient estimator it gives exact Hessians by forward-over-reverse
(:mod:`qprim_grad.methods.adjoint.hessian`).

``derivative_type`` follows ``lin_comb`` and qiskit-algorithms: ``real`` is ``d<O>/d theta =
2 Re<psi|O|d psi>``, ``imag`` is ``2 Im<psi|O|d psi>`` and ``complex`` is
``2 <psi|O|d psi>``, with every gate differentiated as an SU(d) gate (gate and global phases
do not enter the imaginary part).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from qiskit.primitives import StatevectorEstimator
from qiskit.primitives.containers import DataBin, PubResult

from ..circuit.options import derivative_type_name
from ..errors import GradientMethodError
from ..pipeline.types import Direct, DirectPlan, PubTask
from .adjoint import AdjointError, AdjointProgram, compile_circuit, hessian, observable_matrix
from .backends import aer_estimator
from .shift import evaluation_circuit

__all__ = ["Reverse", "check_noiseless_precision", "is_exact_statevector_estimator"]

_OTHER_METHODS = "param_shift, finite_diff, spsa or lin_comb"


def is_exact_statevector_estimator(estimator: Any) -> bool:
    """Whether ``estimator`` computes ideal statevector expectation values.

    True for qiskit's ``StatevectorEstimator`` and for qiskit-aer's ``EstimatorV2`` without a
    noise model (its expectation values are then exact; ``precision`` only adds Gaussian
    noise to ``evs``).
    """
    if isinstance(estimator, StatevectorEstimator):
        return True
    if aer_estimator(estimator) is None:
        return False
    options = estimator.options
    backend = getattr(estimator, "_backend", None)
    backend_options = getattr(backend, "options", None)
    noise = [
        options.backend_options.get("noise_model"),
        options.run_options.get("noise_model"),
        getattr(backend_options, "noise_model", None),
    ]
    method = options.backend_options.get("method", getattr(backend_options, "method", None))
    return all(n is None for n in noise) and method != "extended_stabilizer"


def check_noiseless_precision(estimator: Any, precision: Any, what: str, others: str) -> None:
    """A :class:`GradientMethodError` naming ``what`` if ``estimator`` is qiskit-aer's
    ``EstimatorV2`` and ``precision`` (its ``default_precision`` or a run's or pub's
    ``precision``) is not zero: its ``evs`` then carry noise that exact derivatives do not."""
    if aer_estimator(estimator) is None or precision is None or not float(precision):
        return
    raise GradientMethodError(
        f"{what} needs exact expectation values; qiskit-aer's EstimatorV2 at "
        f"precision={precision} adds noise to them. Use precision=0 (and "
        f"default_precision=0), or {others}, which work with any estimator."
    )


class Reverse:
    """Exact adjoint gradients on exact statevector estimators.

    Args:
        derivative_type: ``"real"`` (``d<O>/d theta``, default), ``"imag"`` or ``"complex"``
            (or a qiskit-algorithms ``DerivativeType``).
    """

    name = "reverse"

    def __init__(self, derivative_type: Any = "real") -> None:
        self.derivative_type = derivative_type_name(derivative_type)

    @property
    def options(self) -> dict[str, Any]:
        return {"derivative_type": self.derivative_type}

    def check(self, estimator: Any) -> None:
        """Reject qiskit-aer's ``EstimatorV2`` with a non-zero ``default_precision``."""
        precision = getattr(getattr(estimator, "options", None), "default_precision", 0.0)
        self.check_precision(estimator, precision)

    def check_precision(self, estimator: Any, precision: Any) -> None:
        """Reject a non-zero ``precision`` on qiskit-aer's ``EstimatorV2``."""
        check_noiseless_precision(estimator, precision, "method='reverse'", _OTHER_METHODS)

    def plan(self, task: PubTask) -> DirectPlan:
        """Compute the gradients directly; the wrapper evaluates at most the centre."""
        if task.kind != "estimator":
            raise GradientMethodError(
                f"method='reverse' differentiates expectation values only (pub {task.index} "
                f"is a sampler pub); use {_OTHER_METHODS} for sampler gradients"
            )
        if _reverse_gradient_estimator(task.inner):
            return self._hessian_plan(task)
        if not is_exact_statevector_estimator(task.inner):
            raise GradientMethodError(
                f"method='reverse' needs an exact statevector estimator (qiskit "
                f"StatevectorEstimator, or qiskit-aer EstimatorV2 without a noise model); got "
                f"{type(task.inner).__name__}. Use {_OTHER_METHODS}, which work with any "
                f"estimator."
            )
        program = compile_task(task)
        part = {"real": np.real, "imag": np.imag}.get(self.derivative_type, np.asarray)
        # On qiskit's StatevectorEstimator at precision 0 the evs come from the forward
        # pass's state (what that estimator computes, to rounding), and no centre pub is
        # sent. qiskit-aer mis-simulates some parameterised gates (cry, crz, cp, ...): on
        # other exact estimators the evs come from the same circuit with those gates
        # through their definitions.
        center = None
        if not isinstance(task.inner, StatevectorEstimator):
            center = evaluation_circuit(task, self.name)[1]

        def compute() -> Direct:
            evs, grads = self._evaluate(program, task)
            return Direct(2.0 * part(grads), center=exact_pub_result(task, np.real(evs)))

        return DirectPlan(
            compute,
            center=center,
            exact_center=type(task.inner) is StatevectorEstimator,
            metadata={"gradient_engine": "adjoint"},
        )

    def _hessian_plan(self, task: PubTask) -> DirectPlan:
        """Around a ``GradientEstimator(exact estimator, method="reverse")``: the inner
        gradients and their derivatives (``hessian``) by forward-over-reverse, no circuit
        sent to the inner primitive at precision 0."""
        inner_method = task.inner.method
        if self.derivative_type != "real" or inner_method.derivative_type != "real":
            raise GradientMethodError(
                "method='reverse' around a reverse GradientEstimator gives real second "
                "derivatives: use derivative_type='real' for both"
            )
        program = compile_task(task)
        if not program.affine:
            raise GradientMethodError(
                f"pub {task.index}: the reverse Hessian needs gate arguments affine in the "
                f"parameters; use method='param_shift' or 'finite_diff' around the inner one"
            )
        columns = program.columns(task.parameters)

        def compute() -> Direct:
            evs, grads, hessian = _hessians(program, task)
            center = exact_pub_result(task, evs, grads=grads, grad_stds=np.zeros_like(grads))
            fields = {"hessian": hessian, "hessian_stds": np.zeros_like(hessian)}
            # d<O>/dθ_j for the outer parameters: the Hessian's row sums are not it, the
            # gradient is, so take it from the inner gradient's columns
            return Direct(_columns(grads, columns), center=center, fields=fields)

        return DirectPlan(
            compute,
            exact_center=type(task.inner.estimator) is StatevectorEstimator,
            metadata={"gradient_engine": "adjoint", "hessian_engine": "forward-over-reverse"},
        )

    def _evaluate(self, program: Any, task: PubTask) -> tuple[np.ndarray, np.ndarray]:
        """``<psi|O|psi>`` of shape ``task.shape`` and ``<psi|O|d psi>`` of shape
        ``task.shape + (P,)``, one forward and one backward pass per value row."""
        observables = task.observables
        if observables is None:
            raise GradientMethodError("method='reverse' needs the pub's observables")
        shape = task.shape
        values = np.asarray(task.values, dtype=float)
        if not math.prod(shape) or not math.prod(values.shape[:-1]):  # a pub without rows
            return (
                np.zeros(shape, dtype=complex),
                np.zeros(shape + (len(task.parameters),), dtype=complex),
            )
        values_shape = values.shape[:-1]
        # Each entry of the pub is (value row, observable column): the values are repeated
        # along the axes where they have length 1, so every row meets as many observables.
        spread = tuple(s if v == 1 else 1 for v, s in zip(values_shape, shape, strict=True))
        row_of = _broadcast_index(values_shape, shape)
        column = _broadcast_index(spread, shape)
        obs: np.ndarray = np.empty(observables.shape, dtype=object)
        for index in np.ndindex(observables.shape):
            obs[index] = observable_matrix(observables[index], program.num_qubits)
        per_row: np.ndarray = np.empty((math.prod(values_shape), math.prod(spread)), dtype=object)
        per_row[row_of, column] = np.broadcast_to(obs, shape).ravel()
        diff = program.columns(task.parameters)
        flat_values = values.reshape(len(per_row), values.shape[-1])
        evs, grads = program.evaluate(flat_values, per_row, diff)  # (R, M), (R, M, P)
        return (
            evs[row_of, column].reshape(shape),
            grads[row_of, column].reshape(shape + (len(diff),)),
        )


def compile_task(task: PubTask, what: str = "") -> AdjointProgram:
    """The task's circuit compiled for the adjoint engine (a :class:`GradientMethodError`
    naming the pub and ``what`` if it cannot be)."""
    try:
        return compile_circuit(task.circuit)
    except AdjointError as exc:
        raise GradientMethodError(f"pub {task.index}: {what}{exc}") from exc


def exact_pub_result(task: PubTask, evs: np.ndarray, **fields: np.ndarray) -> PubResult:
    """A centre result computed exactly here: ``evs`` with zero ``stds``, precision 0."""
    data = DataBin(evs=evs, stds=np.zeros_like(evs), **fields, shape=task.shape)
    metadata = {"target_precision": 0.0, "circuit_metadata": task.circuit.metadata}
    return PubResult(data, metadata=metadata)


def _reverse_gradient_estimator(inner: Any) -> bool:
    """Whether ``inner`` is a gradient estimator with ``method="reverse"`` on an exact
    statevector estimator (then an outer ``reverse`` gives exact second derivatives)."""
    method = getattr(inner, "method", None)
    base = getattr(inner, "estimator", None)
    return (
        isinstance(method, Reverse)
        and base is not None
        and hasattr(inner, "run")
        and is_exact_statevector_estimator(base)
    )


def _columns(values: np.ndarray, columns: list[int]) -> np.ndarray:
    """``values[..., columns]`` with zeros where a column is ``-1``."""
    out = np.zeros(values.shape[:-1] + (len(columns),))
    for j, c in enumerate(columns):
        if c >= 0:
            out[..., j] = values[..., c]
    return out


def _hessians(program: Any, task: PubTask) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``evs`` ``S``, the gradient over every circuit parameter ``S + (Pc,)`` and the Hessian
    ``S + (Pc, P)`` (rows: circuit parameters, columns: ``task.parameters``)."""
    observables = task.observables
    assert observables is not None
    shape = task.shape
    values = np.asarray(task.values, dtype=float)
    values = np.broadcast_to(values, shape + values.shape[-1:])
    obs = np.broadcast_to(observables, shape)
    rows = list(range(len(program.parameters)))
    columns = program.columns(task.parameters)
    evs = np.zeros(shape)
    grads = np.zeros(shape + (len(rows),))
    hess = np.zeros(shape + (len(rows), len(columns)))
    for index in np.ndindex(shape):
        op = observable_matrix(obs[index], program.num_qubits)
        evs[index], grads[index], hess[index] = hessian(program, values[index], op, rows, columns)
    return evs, grads, hess


def _broadcast_index(dims: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    """For each entry of ``shape`` (flat), its flat index in ``dims`` broadcast to ``shape``."""
    return np.broadcast_to(np.arange(math.prod(dims)).reshape(dims), shape).ravel()
