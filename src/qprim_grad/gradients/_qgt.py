"""qiskit-algorithms 0.4's QGT classes (``BaseQGT``, ``LinCombQGT``, ``ReverseQGT``, ``QFI``)
as thin facades over :class:`~qprim_grad.QGTEstimator`. One primitive ``run`` per facade
``run``; nothing is computed here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from qiskit.circuit import Parameter, QuantumCircuit
from qiskit.primitives import StatevectorEstimator

from ..circuit.options import check_bool
from ..qgt import QGTEstimator
from ._common import Facade, default_property, primitive_property, reported
from ._derivative_type import DerivativeType, as_derivative_type
from ._results import GradientFacadeJob, QFIResult, QGTResult

__all__ = ["BaseQGT", "LinCombQGT", "ReverseQGT", "QFI"]


class BaseQGT(Facade):
    """The quantum geometric tensor, as ``qiskit_algorithms.gradients.BaseQGT`` has it:
    ``QGT_ij = <d_i psi|d_j psi> - <d_i psi|psi><psi|d_j psi>``.

    Subclasses name a metric method (class attribute ``method``). Carries the attributes
    qiskit-algorithms' clients read or set: ``_estimator``, ``derivative_type`` (also
    ``_derivative_type``), ``precision``, ``_phase_fix``.

    Args:
        estimator: any V2 estimator.
        phase_fix: subtract the phase-fix term (default ``True``).
        derivative_type: ``DerivativeType.COMPLEX`` (default), ``REAL`` or ``IMAG`` (ours,
            qiskit-algorithms' or a string).
        precision: default precision of the estimator runs.
        transpiler: object with ``run(circuits, **transpiler_options)`` mapping the circuits
            that run (used by :class:`LinCombQGT`).
        transpiler_options: keyword arguments of ``transpiler.run``.
    """

    def __init__(
        self,
        estimator: Any,
        phase_fix: bool = True,
        derivative_type: Any = "complex",
        precision: float | None = None,
        *,
        transpiler: Any = None,
        transpiler_options: dict[str, Any] | None = None,
    ) -> None:
        if self.method is None:
            raise TypeError(f"{type(self).__name__} is abstract; use LinCombQGT or ReverseQGT")
        super().__init__(estimator, precision, transpiler, transpiler_options)
        self._phase_fix = check_bool(phase_fix, "phase_fix", type(self).__name__)
        self._type = as_derivative_type(derivative_type)
        self._built: dict[Any, QGTEstimator] = {}

    # --- attributes qiskit-algorithms' clients use ---------------------------------------
    _estimator = primitive_property("The wrapped estimator.")
    precision = default_property(
        "Default precision of the estimator runs; ``None`` leaves it to the estimator."
    )

    def _rebuild(self) -> None:
        self._built.clear()

    @property
    def derivative_type(self) -> DerivativeType:
        """The derivative type (settable; ours, qiskit-algorithms' or a string)."""
        return self._type

    @derivative_type.setter
    def derivative_type(self, derivative_type: Any) -> None:
        self._type = as_derivative_type(derivative_type)

    _derivative_type = derivative_type

    def qgt_estimator(self, derivative_type: Any = None) -> QGTEstimator:
        """The :class:`~qprim_grad.QGTEstimator` a ``run`` goes through (built once per
        derivative type)."""
        kind = self._type if derivative_type is None else as_derivative_type(derivative_type)
        if kind.value not in self._built:
            options: dict[str, Any] = {"derivative_type": kind.value, "phase_fix": self._phase_fix}
            layout = self._layout_transpiler()
            if layout is not None:
                options["pass_manager"] = layout
            self._built[kind.value] = QGTEstimator(self._primitive, self.method, **options)
        return self._built[kind.value]

    # --- run -------------------------------------------------------------------------------
    def run(
        self,
        circuits: QuantumCircuit | Sequence[QuantumCircuit],
        parameter_values: Sequence[float] | Sequence[Sequence[float]],
        parameters: Sequence[Sequence[Parameter] | None] | None = None,
        *,
        precision: float | Sequence[float] | None = None,
    ) -> GradientFacadeJob:
        """QGTs of ``circuits[i]`` at ``parameter_values[i]``; one primitive job in all."""
        return self._submit(circuits, parameter_values, parameters, precision, None)

    def _submit(
        self, circuits: Any, parameter_values: Any, parameters: Any, precision: Any, kind: Any
    ) -> GradientFacadeJob:
        circuits, values, single, settings = self._inputs(circuits, parameter_values, precision)
        if parameters is not None and len(parameters) != len(circuits):
            raise ValueError(
                f"The number of circuits ({len(circuits)}) does not match the number of the "
                f"specified parameter sets ({len(parameters)})."
            )
        pubs = [
            (circuit, "I" * circuit.num_qubits, value, setting)
            for circuit, value, setting in zip(circuits, values, settings)
        ]
        estimator = self.qgt_estimator(kind)
        derivative_type = as_derivative_type(estimator.metric.derivative_type)
        job = estimator.run(pubs, parameters=parameters)
        key = None if self.method == "reverse" else "target_precision"  # exact: reported unset

        def convert(result: Any) -> QGTResult:
            return QGTResult(
                [np.asarray(r.data.qgt) for r in result],
                derivative_type,
                [[{"parameters": list(r.metadata["parameters"])}] for r in result],
                reported(settings, single, result, key),
            )

        return GradientFacadeJob(job, convert)


class LinCombQGT(BaseQGT):
    """QGT by Hadamard tests (metric ``lin_comb``); ``transpiler`` maps its circuits."""

    method = "lin_comb"


class ReverseQGT(BaseQGT):
    """Exact QGT by the adjoint engine (metric ``reverse``), as qiskit-algorithms'
    ``ReverseQGT(phase_fix=True, derivative_type=DerivativeType.COMPLEX)``."""

    method = "reverse"

    def __init__(self, phase_fix: bool = True, derivative_type: Any = "complex") -> None:
        super().__init__(StatevectorEstimator(), phase_fix, derivative_type)


class QFI:
    """Quantum Fisher information ``4 Re QGT`` from a QGT, as qiskit-algorithms' ``QFI``.

    Args:
        qgt: a :class:`BaseQGT` (or qiskit-algorithms' QGT).
        precision: precision overriding the QGT's.
    """

    def __init__(self, qgt: Any, precision: float | None = None) -> None:
        self._qgt = qgt
        self._default = precision

    precision = default_property("Default precision; ``None`` leaves it to the QGT.")

    def run(
        self,
        circuits: QuantumCircuit | Sequence[QuantumCircuit],
        parameter_values: Sequence[float] | Sequence[Sequence[float]],
        parameters: Sequence[Sequence[Parameter] | None] | None = None,
        *,
        precision: float | Sequence[float] | None = None,
    ) -> GradientFacadeJob:
        """QFIs of ``circuits[i]`` at ``parameter_values[i]``; one primitive job in all."""
        precision = self._default if precision is None else precision
        if isinstance(self._qgt, BaseQGT):
            job = self._qgt._submit(circuits, parameter_values, parameters, precision, "real")
        else:
            job = self._foreign_real_qgt(circuits, parameter_values, parameters, precision)

        def convert(result: Any) -> QFIResult:
            return QFIResult(
                [4 * np.real(q) for q in result.qgts], result.metadata, result.precision
            )

        return GradientFacadeJob(job, convert)

    def _foreign_real_qgt(
        self, circuits: Any, parameter_values: Any, parameters: Any, precision: Any
    ) -> Any:
        """Another QGT's job, switched to the real part for this run as qiskit-algorithms
        does (and waited for, so that the switch does not outlive the run)."""
        previous = self._qgt.derivative_type
        self._qgt.derivative_type = type(previous).REAL
        try:
            job = self._qgt.run(circuits, parameter_values, parameters, precision=precision)
            job.result()
        finally:
            self._qgt.derivative_type = previous
        return job
