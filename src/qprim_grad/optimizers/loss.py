"""Loss functions backed by a V2 estimator: one primitive job per call or per batch.

An :class:`EstimatorLoss` is a *batched loss* (:mod:`.batching`): ``__call__(x) -> float`` and
``batch(X) -> array``; SPSA sends all of an iteration's points through one ``batch`` call.

>>> import numpy as np
>>> from qiskit.circuit.library import real_amplitudes
>>> from qiskit.primitives import StatevectorEstimator
>>> circuit = real_amplitudes(2, reps=1)
>>> loss = EstimatorLoss(StatevectorEstimator(), circuit, "ZZ")
>>> round(loss(np.zeros(4)), 6)
1.0
>>> loss.batch(np.zeros((3, 4))).shape
(3,)
>>> run = loss.run_batch(np.zeros((2, 4)), precision=0.05)  # values, stds, shots, jobs
>>> run.values.shape, run.shots, run.jobs  # 2 points x 1 basis x 400 shots
((2,), 800, 1)
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from qiskit.circuit import QuantumCircuit
from qiskit.primitives import ObservablesArray
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.quantum_info import SparsePauliOp

from ..estimator import GradientEstimator
from ..pipeline.primitive import GradientPrimitive, checked_allocation
from ..shots import estimator_pub_shots

__all__ = ["EstimatorLoss", "LossBatch", "LossGradient"]


@dataclass(frozen=True)
class LossBatch:
    """The loss at ``k`` points from one job: ``values`` and ``stds`` (shape ``(k,)``), the
    ``shots`` that job asked for and the number of ``jobs`` (one)."""

    values: np.ndarray
    stds: np.ndarray
    shots: int
    jobs: int


@dataclass(frozen=True)
class LossGradient:
    """The loss and its gradient at one point from one job: ``value`` and ``std``,
    ``grads`` and ``grad_stds`` (shape ``(num_parameters,)``), ``shots`` and ``jobs``."""

    value: float
    std: float
    grads: np.ndarray
    grad_stds: np.ndarray
    shots: int
    jobs: int


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
        allocation: ``"uniform"`` or ``"optimal"`` (see :class:`qprim_grad.GradientEstimator`):
            how the gradient estimator of :meth:`run_gradient` spends its shots; with
            ``"optimal"`` values too are estimated group by group at the fewest shots. Default:
            the given ``GradientEstimator``'s own, else ``"uniform"``.

    ``loss(x)`` runs one pub with one parameter row; ``loss.batch(X)`` one pub with ``k`` rows
    (one job); :meth:`run_batch` and :meth:`run_gradient` say also the standard errors and
    the shots spent; :attr:`shots` and :attr:`jobs` count everything the loss ran.
    ``loss.gradient(x)`` / ``loss.value_and_gradient(x)`` need an estimator whose results
    carry ``grads`` (a ``GradientEstimator``), and are then usable as ``jac``.
    """

    def __init__(
        self,
        estimator: Any,
        circuit: QuantumCircuit,
        observable: Any,
        *,
        precision: float | None = None,
        allocation: str | None = None,
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
        self.allocation = _loss_allocation(estimator, allocation)
        # fixed for the loss' life: coerced once, not at every call
        self._observables = ObservablesArray.coerce(observable)
        # values only: skip a GradientEstimator's gradient points, ask its wrapped estimator
        self._value_estimator = (
            estimator.estimator if isinstance(estimator, GradientEstimator) else estimator
        )
        self._gradient_estimator: GradientEstimator | None = None
        self._lock = threading.Lock()
        self._shots = 0
        self._jobs = 0

    def __repr__(self) -> str:
        return (
            f"EstimatorLoss({type(self.estimator).__name__}, {self.circuit.name!r}, "
            f"{self.num_parameters} parameters)"
        )

    @property
    def shots(self) -> int:
        """The shots of every job this loss has run."""
        return self._shots

    @property
    def jobs(self) -> int:
        """The number of jobs this loss has run."""
        return self._jobs

    def _count(self, shots: int) -> None:
        with self._lock:
            self._shots += int(shots)
            self._jobs += 1

    def _rows(self, points: Any) -> np.ndarray:
        rows = np.asarray(points, dtype=float)
        if rows.shape[-1:] != (self.num_parameters,):
            raise ValueError(
                f"Expected points with {self.num_parameters} parameter values, got shape "
                f"{rows.shape}."
            )
        return rows

    def _precision(self, precision: float | None) -> float | None:
        return self.precision if precision is None else precision

    def gradient_estimator(self) -> GradientEstimator:
        """The gradient estimator of :meth:`run_gradient`: the loss' estimator if it is one,
        else ``GradientEstimator(estimator, "param_shift", allocation=...)`` (built once)."""
        if isinstance(self.estimator, GradientEstimator):
            return self.estimator
        if self._gradient_estimator is None:
            self._gradient_estimator = GradientEstimator(
                self.estimator, "param_shift", allocation=self.allocation
            )
        return self._gradient_estimator

    def run_batch(
        self, points: Sequence[Sequence[float]] | np.ndarray, *, precision: float | None = None
    ) -> LossBatch:
        """The loss and its standard error at ``k`` points, shape ``(k, num_parameters)``
        → ``(k,)``, and the shots spent (one job; ``precision`` overrides the loss')."""
        rows = self._rows(points).reshape(-1, self.num_parameters)
        pub = (self.circuit, self._observables, rows)
        precision = self._precision(precision)
        if self.allocation == "optimal":  # values only, group by group: no parameters
            estimator: Any = self.gradient_estimator()
            job = estimator.run([pub], precision=precision, parameters=[])
        else:
            estimator = self._value_estimator
            job = estimator.run([pub], precision=precision)
        result = job.result()
        shots = _shots_of(estimator, pub, result, precision)
        self._count(shots)
        data = result[0].data
        values = np.asarray(data.evs, dtype=float).reshape(len(rows))
        stds = np.asarray(getattr(data, "stds", np.zeros(len(rows))), dtype=float)
        return LossBatch(values, stds.reshape(len(rows)), shots, 1)

    def run_gradient(
        self, x: Sequence[float] | np.ndarray, *, precision: float | None = None
    ) -> LossGradient:
        """The loss, its gradient and their standard errors at ``x`` from one job of
        :meth:`gradient_estimator`, and the shots spent."""
        row = self._rows(x).reshape(self.num_parameters)
        pub = (self.circuit, self._observables, row)
        precision = self._precision(precision)
        result = self.gradient_estimator().run([pub], precision=precision).result()
        shots = int(result.metadata["shots"])
        self._count(shots)
        data = result[0].data
        return LossGradient(
            value=float(np.asarray(data.evs).reshape(())),
            std=float(np.asarray(data.stds).reshape(())),
            grads=np.asarray(data.grads, dtype=float).reshape(self.num_parameters),
            grad_stds=np.asarray(data.grad_stds, dtype=float).reshape(self.num_parameters),
            shots=shots,
            jobs=1,
        )

    def _run(self, values: np.ndarray, with_gradient: bool) -> Any:
        pub = (self.circuit, self._observables, values)
        estimator = self.estimator if with_gradient else self._value_estimator
        result = estimator.run([pub], precision=self.precision).result()
        self._count(_shots_of(estimator, pub, result, self.precision))
        return result[0].data

    def __call__(self, x: Sequence[float] | np.ndarray) -> float:
        """The loss at one point (one job)."""
        return float(self.run_batch(self._rows(x).reshape(1, -1)).values[0])

    def batch(self, points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
        """The loss at ``k`` points, shape ``(k, num_parameters)`` → ``(k,)`` (one job)."""
        return self.run_batch(points).values

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


def _loss_allocation(estimator: Any, allocation: str | None) -> str:
    """The loss' allocation: the given one (checked), else a gradient estimator's own, else
    ``"uniform"``; a given one must agree with a given gradient estimator's."""
    own = (
        getattr(estimator, "allocation", None) if isinstance(estimator, GradientEstimator) else None
    )
    if allocation is None:
        return own or "uniform"
    allocation = checked_allocation(allocation)
    if own is not None and own != allocation:
        raise ValueError(
            f"allocation={allocation!r} disagrees with the GradientEstimator's "
            f"allocation={own!r}; set it on the GradientEstimator (or leave it out here)"
        )
    return allocation


def _shots_of(estimator: Any, pub: tuple, result: Any, precision: float | None) -> int:
    """The shots of a one-pub result: its own count (a gradient primitive's), else counted
    by the rule of :mod:`qprim_grad.shots`."""
    metadata = getattr(result, "metadata", None) or {}
    if isinstance(estimator, GradientPrimitive):
        return int(metadata.get("shots", 0))
    if precision is None:
        precision = getattr(estimator, "default_precision", None)
    return estimator_pub_shots(EstimatorPub.coerce(pub), result[0].metadata, precision)
