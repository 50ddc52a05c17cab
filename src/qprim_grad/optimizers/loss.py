"""Loss functions backed by a V2 estimator: one primitive job per call or per batch.

A *batched loss* is anything with ``__call__(x) -> float`` and ``batch(X) -> array``
(:class:`BatchedLoss`); SPSA sends all of an iteration's points through one ``batch`` call.

>>> import numpy as np
>>> from qiskit.circuit.library import real_amplitudes
>>> from qiskit.primitives import StatevectorEstimator
>>> circuit = real_amplitudes(2, reps=1)
>>> loss = EstimatorLoss(StatevectorEstimator(), circuit, "ZZ")
>>> round(loss(np.zeros(4)), 6)
1.0
>>> loss.batch(np.zeros((3, 4))).shape
(3,)
>>> square = batched(lambda X: np.sum(np.atleast_2d(X) ** 2, axis=1))
>>> square.batch(np.ones((2, 3))).tolist(), square(np.ones(3))
([3.0, 3.0], 3.0)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, cast, runtime_checkable

import numpy as np
from qiskit.circuit import QuantumCircuit
from qiskit.primitives import ObservablesArray
from qiskit.quantum_info import SparsePauliOp

from ..estimator import GradientEstimator

__all__ = [
    "BatchedLoss",
    "EstimatorLoss",
    "batched",
    "is_batched",
    "evaluate_grouped",
    "evaluate_batch",
    "evaluate",
    "num_calls",
]


@runtime_checkable
class BatchedLoss(Protocol):
    """A loss that evaluates many points at once (for a primitive-backed loss: in one job)."""

    def __call__(self, x: np.ndarray) -> float: ...

    def batch(self, points: np.ndarray) -> np.ndarray: ...


def is_batched(fun: Any) -> bool:
    """Whether ``fun`` has a callable ``batch`` method."""
    return callable(getattr(fun, "batch", None))


def _scalar(value: Any) -> float:
    array = np.asarray(value)
    if array.size != 1:
        raise ValueError(f"The loss returned {array.size} values where one was expected.")
    return float(np.real(array.reshape(-1)[0]))


class _Batched:
    """See :func:`batched`."""

    def __init__(self, fun: Callable[[np.ndarray], Any], args: tuple = ()) -> None:
        self.fun = fun
        self.args = args

    def __call__(self, x: np.ndarray) -> float:
        return _scalar(self.fun(np.asarray(x, dtype=float), *self.args))

    def batch(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(self.fun(np.asarray(points, dtype=float), *self.args), dtype=float)


def batched(fun: Callable[..., Any], args: tuple = ()) -> BatchedLoss:
    """Mark a vectorised function (``fun(X)`` for ``X`` of shape ``(k, n)`` returns ``k``
    values) as a batched loss, so SPSA evaluates each iteration in one call."""
    if is_batched(fun) and not args:
        return cast(BatchedLoss, fun)
    return _Batched(fun, args)


def evaluate_batch(fun: Any, points: np.ndarray) -> np.ndarray:
    """``fun.batch(points)`` as a flat float array, checked against the number of points."""
    values = np.asarray(fun.batch(points), dtype=np.float64).reshape(-1)
    if values.size != len(points):
        raise ValueError(f"loss.batch returned {values.size} values for {len(points)} points.")
    return values


def num_calls(num_points: int, max_evals_grouped: int | None) -> int:
    """How many calls :func:`evaluate_grouped` makes for ``num_points`` points."""
    if max_evals_grouped is None or max_evals_grouped <= 1:
        return num_points
    return -(-num_points // max_evals_grouped)


def evaluate_grouped(
    fun: Callable[[Any], Any], points: np.ndarray, max_evals_grouped: int | None
) -> list[float]:
    """Evaluate a plain callable at ``points`` like qiskit-algorithms does: one point per call,
    or chunks of at most ``max_evals_grouped`` points passed as a 2-D array."""
    points = np.asarray(points, dtype=float)
    if max_evals_grouped is None or max_evals_grouped <= 1:
        return [_scalar(fun(point)) for point in points]
    values: list[float] = []
    for chunk in np.array_split(points, num_calls(len(points), max_evals_grouped)):
        values += [float(np.real(v)) for v in np.ravel(np.asarray(fun(chunk)))]
    return values


def evaluate(fun: Any, points: np.ndarray, max_evals_grouped: int | None) -> np.ndarray:
    """The loss at ``points``: one ``batch`` call for a batched loss, else
    :func:`evaluate_grouped`."""
    if is_batched(fun):
        return evaluate_batch(fun, points)
    return np.asarray(evaluate_grouped(fun, points, max_evals_grouped))


class EstimatorLoss:
    """The expectation value ``<ψ(x)|O|ψ(x)>`` as a loss; one estimator job per call.

    Args:
        estimator: any V2 estimator (``StatevectorEstimator``, qiskit-aer's ``EstimatorV2``,
            qiskit-ibm-runtime's ``executor_estimator.Estimator`` in any mode, …) or a
            :class:`qprim_grad.GradientEstimator`.
        circuit: the parametrized circuit (an ISA circuit for hardware).
        observable: anything ``SparsePauliOp`` accepts. If the circuit has a layout (it was
            transpiled) and the observable is narrower, the layout is applied to it.
        precision: passed to every ``estimator.run``.

    ``loss(x)`` runs one pub with one parameter row; ``loss.batch(X)`` one pub with ``k`` rows
    (one job); ``loss.gradient(x)`` / ``loss.value_and_gradient(x)`` need an estimator whose
    results carry ``grads`` (a ``GradientEstimator``), and are then usable as ``jac``.
    """

    def __init__(
        self,
        estimator: Any,
        circuit: QuantumCircuit,
        observable: Any,
        *,
        precision: float | None = None,
    ) -> None:
        if not isinstance(observable, SparsePauliOp):
            observable = SparsePauliOp(observable)
        if circuit.layout is not None and observable.num_qubits != circuit.num_qubits:
            observable = observable.apply_layout(circuit.layout)
        if observable.num_qubits != circuit.num_qubits:
            raise ValueError(
                f"The observable acts on {observable.num_qubits} qubits, the circuit has "
                f"{circuit.num_qubits}; transpile both consistently (or set circuit.layout)."
            )
        self.estimator = estimator
        self.circuit = circuit
        self.observable = observable
        self.precision = precision
        self.num_parameters = circuit.num_parameters
        # fixed for the loss' life: coerced once, not at every call
        self._observables = ObservablesArray.coerce(observable)
        # values only: skip a GradientEstimator's gradient points, ask its wrapped estimator
        self._value_estimator = (
            estimator.estimator if isinstance(estimator, GradientEstimator) else estimator
        )

    def __repr__(self) -> str:
        return (
            f"EstimatorLoss({type(self.estimator).__name__}, {self.circuit.name!r}, "
            f"{self.num_parameters} parameters)"
        )

    def _rows(self, points: Any) -> np.ndarray:
        rows = np.asarray(points, dtype=float)
        if rows.shape[-1:] != (self.num_parameters,):
            raise ValueError(
                f"Expected points with {self.num_parameters} parameter values, got shape "
                f"{rows.shape}."
            )
        return rows

    def _run(self, values: np.ndarray, with_gradient: bool) -> Any:
        pub = (self.circuit, self._observables, values)
        estimator = self.estimator if with_gradient else self._value_estimator
        return estimator.run([pub], precision=self.precision).result()[0].data

    def __call__(self, x: Sequence[float] | np.ndarray) -> float:
        """The loss at one point (one job)."""
        return float(np.asarray(self._run(self._rows(x), False).evs).reshape(()))

    def batch(self, points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
        """The loss at ``k`` points, shape ``(k, num_parameters)`` → ``(k,)`` (one job)."""
        rows = self._rows(points).reshape(-1, self.num_parameters)
        return np.asarray(self._run(rows, False).evs, dtype=float).reshape(len(rows))

    def value_and_gradient(self, x: Sequence[float] | np.ndarray) -> tuple[float, np.ndarray]:
        """Loss and gradient at ``x`` from one job of a gradient-capable estimator."""
        data = self._run(self._rows(x), True)
        if not hasattr(data, "grads"):
            raise TypeError(
                f"{type(self.estimator).__name__} returns no gradients; wrap it: "
                "EstimatorLoss(GradientEstimator(estimator), circuit, observable)."
            )
        value = float(np.asarray(data.evs).reshape(()))
        return value, np.asarray(data.grads, dtype=float).reshape(self.num_parameters)

    def gradient(self, x: Sequence[float] | np.ndarray) -> np.ndarray:
        """The gradient at ``x`` (one job); usable as ``jac=``."""
        return self.value_and_gradient(x)[1]
