"""The gradient classes of ``qiskit_algorithms.gradients``: each one is a row of
:mod:`._table` (method, constructor arguments, option mapping) over its kind."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qiskit.primitives import StatevectorEstimator

from ._derivative_type import DerivativeType
from ._kinds import BaseEstimatorGradient, BaseSamplerGradient
from ._table import FINITE_DIFF, LIN_COMB, PARAM_SHIFT, REVERSE, SPSA

__all__ = [
    "ParamShiftEstimatorGradient",
    "ParamShiftSamplerGradient",
    "FiniteDiffEstimatorGradient",
    "FiniteDiffSamplerGradient",
    "SPSAEstimatorGradient",
    "SPSASamplerGradient",
    "LinCombEstimatorGradient",
    "LinCombSamplerGradient",
    "ReverseEstimatorGradient",
]


class ParamShiftEstimatorGradient(BaseEstimatorGradient, spec=PARAM_SHIFT):
    """Parameter-shift gradients of expectation values (method ``param_shift``)."""


class ParamShiftSamplerGradient(BaseSamplerGradient, spec=PARAM_SHIFT):
    """Parameter-shift gradients of outcome probabilities (method ``param_shift``)."""


class FiniteDiffEstimatorGradient(BaseEstimatorGradient, spec=FINITE_DIFF):
    """Finite-difference gradients of expectation values (method ``finite_diff``;
    ``method=`` here is the difference scheme: central, forward or backward)."""


class FiniteDiffSamplerGradient(BaseSamplerGradient, spec=FINITE_DIFF):
    """Finite-difference gradients of outcome probabilities (method ``finite_diff``)."""


class SPSAEstimatorGradient(BaseEstimatorGradient, spec=SPSA):
    """SPSA gradient estimates of expectation values (method ``spsa``); equal seeds give
    the directions qiskit-algorithms draws."""


class SPSASamplerGradient(BaseSamplerGradient, spec=SPSA):
    """SPSA gradient estimates of outcome probabilities (method ``spsa``)."""


class LinCombEstimatorGradient(BaseEstimatorGradient, spec=LIN_COMB):
    """Hadamard-test gradients of expectation values (method ``lin_comb``); ``transpiler``
    maps the Hadamard-test circuits."""


class LinCombSamplerGradient(BaseSamplerGradient, spec=LIN_COMB):
    """Hadamard-test gradients of outcome probabilities (method ``lin_comb``)."""


class ReverseEstimatorGradient(BaseEstimatorGradient, spec=REVERSE):
    """Exact reverse-mode (adjoint) gradients of expectation values (method ``reverse``),
    as ``qiskit_algorithms.gradients.ReverseEstimatorGradient``: no estimator argument (a
    ``StatevectorEstimator`` evaluates the values); ``estimator=`` may name another exact
    statevector estimator."""

    def __init__(
        self,
        derivative_type: Any = DerivativeType.REAL,
        *,
        estimator: Any = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        if hasattr(derivative_type, "run") and estimator is None:  # an estimator first
            derivative_type, estimator = DerivativeType.REAL, derivative_type
        estimator = StatevectorEstimator() if estimator is None else estimator
        super().__init__(estimator, None, derivative_type, options=options)
