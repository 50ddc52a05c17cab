"""The two kinds of gradient facade: of expectation values (estimator) and of outcome
probabilities (sampler)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from qiskit.circuit import Parameter, QuantumCircuit
from qiskit.quantum_info import Pauli, SparsePauliOp
from qiskit.quantum_info.operators.base_operator import BaseOperator

from ..estimator import GradientEstimator
from ..sampler import GradientSampler
from ._base import GradientFacade
from ._common import default_property, primitive_property
from ._derivative_type import DerivativeType, as_derivative_type
from ._results import EstimatorGradientResult, GradientFacadeJob, SamplerGradientResult
from ._table import DERIVATIVE_TYPE, PRECISION, SETTING, SHOTS, Kind

__all__ = ["BaseEstimatorGradient", "BaseSamplerGradient"]


def _observable(observable: Any) -> Any:
    if isinstance(observable, (str, Pauli, SparsePauliOp)):
        return SparsePauliOp(observable)
    if isinstance(observable, BaseOperator):
        return SparsePauliOp.from_operator(observable)
    return observable


def _is_zero(observable: Any) -> bool:
    """Whether ``observable`` is a ``SparsePauliOp`` whose terms all cancel or vanish."""
    return isinstance(observable, SparsePauliOp) and not np.any(
        np.abs(observable.simplify().coeffs) > 1e-12
    )


def _observables(observables: Any) -> tuple[list[Any], list[bool]]:
    """The observables as operators, and which of them are zero.

    An all-zero observable (e.g. a time-dependent Hamiltonian at t=0) has zero values and
    gradients; qiskit's pubs reject it, so the identity runs in its place.
    """
    if isinstance(observables, (str, BaseOperator)):
        observables = [observables]
    observables = [_observable(o) for o in observables]
    zero = [_is_zero(o) for o in observables]
    identity = [SparsePauliOp("I" * o.num_qubits) if z else o for o, z in zip(observables, zero)]
    return identity, zero


def _real_gradients(grads: Any) -> np.ndarray:
    return np.real(np.asarray(grads)).astype(float)


def _complex_gradients(grads: Any) -> np.ndarray:
    return np.asarray(grads, dtype=complex)


def _outcome_gradients(grads: Any) -> list[dict[int, float]]:
    """``{outcome: d p / d theta_j}`` per parameter ``j`` of one result."""
    return [dict(zip(grads.int_outcomes, row)) for row in np.real(grads.values).tolist()]


ESTIMATOR = Kind(
    GradientEstimator,
    EstimatorGradientResult,
    "estimator",
    PRECISION,
    "target_precision",
    (SETTING, DERIVATIVE_TYPE),
)
SAMPLER = Kind(GradientSampler, SamplerGradientResult, "sampler", SHOTS, "shots")


class BaseEstimatorGradient(GradientFacade, kind=ESTIMATOR):
    """Gradients of expectation values, as ``qiskit_algorithms.gradients`` has them.

    Subclasses name a :mod:`qprim_grad` method (a row of the table, or the class attribute
    ``method``) and map their constructor arguments to its options.

    Args:
        estimator: any V2 estimator.
        precision: default precision of the estimator runs (``None``: the estimator's).
            An old-style options mapping in this position is taken as ``options``.
        derivative_type: used by :class:`LinCombEstimatorGradient` only.
        transpiler: object with ``run(circuits, **transpiler_options)``, applied to the
            circuits that run (observables follow their layout), once per circuit until it is
            edited. ``pass_manager`` is an alias.
        transpiler_options: keyword arguments of ``transpiler.run``.
        options: old-style default options: ``{"precision": p}``.
    """

    # qiskit-algorithms' clients (VarQITE / VarQRTE and their McLachlan principles) read
    # ``gradient._estimator`` and assign ``gradient._derivative_type``: both are live here.
    _estimator = primitive_property(
        "The wrapped estimator (the attribute qiskit-algorithms' gradients carry)."
    )
    precision = default_property(
        "Default precision of the estimator runs; ``None`` leaves it to the estimator."
    )

    @property
    def _derivative_type(self) -> DerivativeType:
        """The derivative type (real, imaginary or complex); settable, qiskit-algorithms'
        ``DerivativeType`` and strings accepted."""
        return self._values.get("derivative_type", DerivativeType.REAL)

    @_derivative_type.setter
    def _derivative_type(self, derivative_type: Any) -> None:
        value = as_derivative_type(derivative_type)
        changed = value is not self._derivative_type
        self._values["derivative_type"] = value
        if changed:
            self._rebuild()  # honoured from the next run on

    derivative_type = _derivative_type

    def _translate(self, options: Mapping[str, Any]) -> dict[str, Any]:
        options = dict(options)
        if "shots" in options and "precision" not in options:  # V1 estimator option
            options["precision"] = 1.0 / np.sqrt(options.pop("shots"))
        return super()._translate(options)

    def run(
        self,
        circuits: QuantumCircuit | Sequence[QuantumCircuit],
        observables: Any,
        parameter_values: Sequence[float] | Sequence[Sequence[float]],
        parameters: Sequence[Sequence[Parameter] | None] | None = None,
        *,
        precision: float | Sequence[float] | None = None,
        **options: Any,
    ) -> GradientFacadeJob:
        """Gradients of ``<observables[i]>`` at ``parameter_values[i]``, one job in all.

        ``options`` (old style) may hold ``precision``.
        """
        self._check_derivative_type()
        observables, zero = _observables(observables)
        as_complex = self._derivative_type is DerivativeType.COMPLEX
        convert = _complex_gradients if as_complex else _real_gradients

        def pubs(circuits: list[QuantumCircuit], values: list[Any], settings: list[Any]) -> list:
            return self._pubs(circuits, observables, values, settings)

        def gradients(index: int, grads: Any) -> np.ndarray:
            values = convert(grads)
            return np.zeros_like(values) if zero[index] else values

        return self._run(
            circuits, parameter_values, parameters, precision, options, pubs, gradients
        )

    def _check_derivative_type(self) -> None:
        if self._derivative_type not in self._derivative_types:
            raise ValueError(
                f"{type(self).__name__} computes {self._derivative_types[0].value} "
                f"derivatives only, derivative_type is {self._derivative_type}; use "
                "LinCombEstimatorGradient or ReverseEstimatorGradient for imaginary or "
                "complex derivatives"
            )

    def _pubs(
        self,
        circuits: list[QuantumCircuit],
        observables: list[Any],
        values: list[Any],
        settings: list[Any],
    ) -> list:
        """The estimator pubs; observables follow the layout of transpiled circuits."""
        if len(observables) != len(circuits):
            raise ValueError(
                f"The number of circuits ({len(circuits)}) does not match the number of "
                f"observables ({len(observables)})."
            )
        mapped = self._transpiled(circuits)
        if mapped is not circuits:
            observables = [o.apply_layout(c.layout) for o, c in zip(observables, mapped)]
        return list(zip(mapped, observables, values, settings))


class BaseSamplerGradient(GradientFacade, kind=SAMPLER):
    """Gradients of outcome probabilities, as ``qiskit_algorithms.gradients`` has them.

    ``gradients[i][j]`` maps each integer outcome (over all classical bits, in
    ``BitArray.get_int_counts()`` order) observed for circuit ``i`` to ``dp/d theta_j``.

    Args:
        sampler: any V2 sampler.
        shots: default shots (``None``: the sampler's). An old-style options mapping in this
            position is taken as ``options``.
        transpiler: object with ``run(circuits, **transpiler_options)``, applied to the
            circuits that run, once per circuit until it is edited. ``pass_manager`` is an
            alias.
        transpiler_options: keyword arguments of ``transpiler.run``.
        options: old-style default options: ``{"shots": n}``.
    """

    _sampler = primitive_property(
        "The wrapped sampler (the attribute qiskit-algorithms' gradients carry)."
    )
    shots = default_property(
        "Default shots of the sampler runs; ``None`` leaves them to the sampler."
    )

    def run(
        self,
        circuits: QuantumCircuit | Sequence[QuantumCircuit],
        parameter_values: Sequence[float] | Sequence[Sequence[float]],
        parameters: Sequence[Sequence[Parameter] | None] | None = None,
        *,
        shots: int | Sequence[int] | None = None,
        **options: Any,
    ) -> GradientFacadeJob:
        """Gradients of the outcome distributions at ``parameter_values[i]``, one job in all.

        ``options`` (old style) may hold ``shots``.
        """

        def pubs(circuits: list[QuantumCircuit], values: list[Any], settings: list[Any]) -> list:
            return list(zip(self._transpiled(circuits), values, settings))

        def gradients(index: int, grads: Any) -> list[dict[int, float]]:
            return _outcome_gradients(grads)

        return self._run(circuits, parameter_values, parameters, shots, options, pubs, gradients)
