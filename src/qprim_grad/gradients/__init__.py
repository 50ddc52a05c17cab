"""The ``qiskit.algorithms.gradients`` API (as in qiskit-algorithms 0.4) on V2 primitives.

Every class here is a thin facade over :class:`~qprim_grad.GradientEstimator` or
:class:`~qprim_grad.GradientSampler` (the QGT classes over :class:`~qprim_grad.QGTEstimator`):
it converts the qiskit-algorithms call style into one primitive ``run`` and the primitive
result into an :class:`EstimatorGradientResult` / :class:`SamplerGradientResult`. Nothing is
computed here. Code written for ``qiskit.algorithms.gradients``, qiskit-algorithms or
qiskit-machine-learning migrates by changing one import; qiskit-algorithms is never imported.

The gradient classes are data: each names a row of a table (its method, its constructor
arguments, how they map to the method's options) over one base per kind.

Example:
    >>> from qiskit import QuantumCircuit
    >>> from qiskit.circuit import Parameter
    >>> from qiskit.primitives import StatevectorEstimator
    >>> from qiskit.quantum_info import SparsePauliOp
    >>> from qprim_grad.gradients import ParamShiftEstimatorGradient
    >>> theta = Parameter("theta")
    >>> qc = QuantumCircuit(1)
    >>> _ = qc.ry(theta, 0)
    >>> gradient = ParamShiftEstimatorGradient(StatevectorEstimator())
    >>> result = gradient.run([qc], [SparsePauliOp("Z")], [[0.5]]).result()
    >>> result.gradients[0].round(6)
    array([-0.479426])
"""

from __future__ import annotations

from ._classes import (
    FiniteDiffEstimatorGradient,
    FiniteDiffSamplerGradient,
    LinCombEstimatorGradient,
    LinCombSamplerGradient,
    ParamShiftEstimatorGradient,
    ParamShiftSamplerGradient,
    ReverseEstimatorGradient,
    SPSAEstimatorGradient,
    SPSASamplerGradient,
)
from ._derivative_type import DerivativeType, as_derivative_type
from ._kinds import BaseEstimatorGradient, BaseSamplerGradient
from ._qgt import QFI, BaseQGT, LinCombQGT, ReverseQGT
from ._results import (
    EstimatorGradientResult,
    GradientFacadeJob,
    QFIResult,
    QGTResult,
    SamplerGradientResult,
)

__all__ = [
    "BaseQGT",
    "BaseEstimatorGradient",
    "BaseSamplerGradient",
    "DerivativeType",
    "EstimatorGradientResult",
    "FiniteDiffEstimatorGradient",
    "FiniteDiffSamplerGradient",
    "GradientFacadeJob",
    "LinCombEstimatorGradient",
    "LinCombSamplerGradient",
    "ParamShiftEstimatorGradient",
    "ParamShiftSamplerGradient",
    "QFI",
    "QFIResult",
    "QGTResult",
    "LinCombQGT",
    "ReverseQGT",
    "SPSAEstimatorGradient",
    "SPSASamplerGradient",
    "ReverseEstimatorGradient",
    "SamplerGradientResult",
    "as_derivative_type",
]
