"""qiskit-algorithms 0.4's QGT classes (``BaseQGT``, ``LinCombQGT``, ``ReverseQGT``, ``QFI``
and their results) as thin facades over :class:`~qprim_grad.QGTEstimator`; exported from
:mod:`qprim_grad.gradients`. One primitive ``run`` per facade ``run``; nothing is computed
here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from qiskit.circuit import Parameter, QuantumCircuit
from qiskit.primitives import StatevectorEstimator

from .qgt import QGTEstimator

__all__ = ["BaseQGT", "LinCombQGT", "ReverseQGT", "QFI", "QGTResult", "QFIResult"]


def _gradients_module() -> Any:
    from . import gradients

    return gradients


def _derivative_type(value: Any) -> Any:
    """Our ``DerivativeType`` from ours, qiskit-algorithms' or a string."""
    return _gradients_module().as_derivative_type(value)


@dataclass(frozen=True)
class QGTResult:
    """QGTs: ``qgts[i]`` is ``(P_i, P_i)``, complex for ``DerivativeType.COMPLEX``, else real."""

    qgts: list[np.ndarray]
    derivative_type: Any
    metadata: list[dict[str, Any]] | list[list[dict[str, Any]]]
    precision: float | Sequence[float] | None


@dataclass(frozen=True)
class QFIResult:
    """QFIs: ``qfis[i] = 4 Re qgt_i``."""

    qfis: list[np.ndarray]
    metadata: Any
    precision: float | Sequence[float] | None


class BaseQGT:
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

    method: ClassVar[str | None] = None

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
        self._primitive = estimator
        self._phase_fix = bool(phase_fix)
        self._type = _derivative_type(derivative_type)
        self._precision = precision
        self._transpiler = transpiler
        self._transpiler_options = dict(transpiler_options or {})
        self._built: dict[Any, QGTEstimator] = {}

    # --- attributes qiskit-algorithms' clients use ---------------------------------------
    @property
    def _estimator(self) -> Any:
        return self._primitive

    @_estimator.setter
    def _estimator(self, estimator: Any) -> None:
        self._primitive = estimator
        self._built.clear()

    @property
    def derivative_type(self) -> Any:
        """The derivative type (settable; ours, qiskit-algorithms' or a string)."""
        return self._type

    @derivative_type.setter
    def derivative_type(self, derivative_type: Any) -> None:
        self._type = _derivative_type(derivative_type)

    _derivative_type = derivative_type

    @property
    def precision(self) -> float | None:
        """Default precision of the estimator runs (``None``: the estimator's)."""
        return self._precision

    @precision.setter
    def precision(self, precision: float | None) -> None:
        self._precision = precision

    def qgt_estimator(self, derivative_type: Any = None) -> QGTEstimator:
        """The :class:`~qprim_grad.QGTEstimator` a ``run`` goes through (built once per
        derivative type)."""
        kind = (self._type if derivative_type is None else _derivative_type(derivative_type)).value
        if kind not in self._built:
            options: dict[str, Any] = {"derivative_type": kind, "phase_fix": self._phase_fix}
            if self._transpiler is not None:
                layout = _gradients_module()._LayoutTranspiler
                options["pass_manager"] = layout(self._transpiler, self._transpiler_options)
            self._built[kind] = QGTEstimator(self._primitive, self.method, **options)
        return self._built[kind]

    # --- run -------------------------------------------------------------------------------
    def run(
        self,
        circuits: QuantumCircuit | Sequence[QuantumCircuit],
        parameter_values: Sequence[float] | Sequence[Sequence[float]],
        parameters: Sequence[Sequence[Parameter] | None] | None = None,
        *,
        precision: float | Sequence[float] | None = None,
    ) -> Any:
        """QGTs of ``circuits[i]`` at ``parameter_values[i]``; one primitive job in all."""
        return self._submit(circuits, parameter_values, parameters, precision, None)

    def _submit(
        self, circuits: Any, parameter_values: Any, parameters: Any, precision: Any, kind: Any
    ) -> Any:
        gradients = _gradients_module()
        circuits, values = gradients._GradientFacade._checked(circuits, parameter_values)
        if parameters is not None and len(parameters) != len(circuits):
            raise ValueError(
                f"The number of circuits ({len(circuits)}) does not match the number of the "
                f"specified parameter sets ({len(parameters)})."
            )
        if precision is None:
            precision = self._precision
        single = precision is None or np.ndim(precision) == 0
        settings = [precision] * len(circuits) if single else list(precision)
        if len(settings) != len(circuits):
            raise ValueError(f"precision gives {len(settings)} values for {len(circuits)} circuits")
        pubs = [
            (circuit, "I" * circuit.num_qubits, value, setting)
            for circuit, value, setting in zip(circuits, values, settings)
        ]
        estimator = self.qgt_estimator(kind)
        derivative_type = _derivative_type(estimator.metric.derivative_type)
        job = estimator.run(pubs, parameters=parameters)
        report = self.method != "reverse"

        def convert(result: Any) -> QGTResult:
            filled = [
                s if s is not None or not report else r.metadata.get("target_precision")
                for s, r in zip(settings, result)
            ]
            return QGTResult(
                [np.asarray(r.data.qgt) for r in result],
                derivative_type,
                [[{"parameters": list(r.metadata["parameters"])}] for r in result],
                (filled[0] if filled else None) if single else filled,
            )

        return gradients.GradientFacadeJob(job, convert)


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
        self._precision = precision

    @property
    def precision(self) -> float | None:
        """Default precision (``None``: the QGT's)."""
        return self._precision

    @precision.setter
    def precision(self, precision: float | None) -> None:
        self._precision = precision

    def run(
        self,
        circuits: QuantumCircuit | Sequence[QuantumCircuit],
        parameter_values: Sequence[float] | Sequence[Sequence[float]],
        parameters: Sequence[Sequence[Parameter] | None] | None = None,
        *,
        precision: float | Sequence[float] | None = None,
    ) -> Any:
        """QFIs of ``circuits[i]`` at ``parameter_values[i]``; one primitive job in all."""
        precision = self._precision if precision is None else precision
        if isinstance(self._qgt, BaseQGT):
            job = self._qgt._submit(circuits, parameter_values, parameters, precision, "real")
        else:  # another QGT: switch it to the real part for this run, as qiskit-algorithms
            previous = self._qgt.derivative_type
            self._qgt.derivative_type = type(previous).REAL
            try:
                job = self._qgt.run(circuits, parameter_values, parameters, precision=precision)
                job.result()
            finally:
                self._qgt.derivative_type = previous

        def convert(result: Any) -> QFIResult:
            return QFIResult(
                [4 * np.real(q) for q in result.qgts], result.metadata, result.precision
            )

        return _gradients_module().GradientFacadeJob(job, convert)
