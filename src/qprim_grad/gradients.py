"""The ``qiskit.algorithms.gradients`` API (as in qiskit-algorithms 0.4) on V2 primitives.

Every class here is a thin facade over :class:`~qprim_grad.GradientEstimator` or
:class:`~qprim_grad.GradientSampler`: it converts the old call style into one primitive
``run`` and the primitive result into an :class:`EstimatorGradientResult` /
:class:`SamplerGradientResult`. Nothing is computed here. Code written for
``qiskit.algorithms.gradients``, qiskit-algorithms or qiskit-machine-learning migrates by
changing one import; qiskit-algorithms is never imported.

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

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from numbers import Real
from typing import Any, ClassVar

import numpy as np
from qiskit.circuit import Parameter, QuantumCircuit
from qiskit.primitives import StatevectorEstimator
from qiskit.quantum_info import Pauli, SparsePauliOp
from qiskit.quantum_info.operators.base_operator import BaseOperator

from .estimator import GradientEstimator
from .job import ForwardingJob, GradientJob
from .sampler import GradientSampler

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


class DerivativeType(Enum):
    """Which part of ``2 <psi|O|d psi>`` a linear-combination gradient returns.

    Interchangeable with qiskit-algorithms' (and qiskit-machine-learning's) ``DerivativeType``
    without importing either: members compare and hash equal to the same-named members of any
    enum called ``DerivativeType`` (``DerivativeType.REAL == qiskit_algorithms.gradients.
    DerivativeType.REAL``, in both orders, and they are one key in a dict), and the
    constructor is the one normalisation every derivative-type argument goes through: it
    accepts our members, theirs and the strings ``"real"``, ``"imag"``, ``"complex"`` (any
    case)::

        >>> DerivativeType("IMAG") is DerivativeType.IMAG
        True
    """

    REAL = "real"
    IMAG = "imag"
    COMPLEX = "complex"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DerivativeType):
            return self is other
        if isinstance(other, Enum) and type(other).__name__ == "DerivativeType":
            return bool(getattr(other, "value", None) == self.value)
        return NotImplemented

    # Enum hashes a member by its name, as qiskit-algorithms' enum does: equal members of
    # the two enums are one dict key.
    __hash__ = Enum.__hash__

    @classmethod
    def _missing_(cls, value: object) -> DerivativeType:
        """Members of another ``DerivativeType`` enum and strings in any case."""
        if isinstance(value, Enum) and type(value).__name__ == "DerivativeType":
            value = value.value
        if isinstance(value, str) and value.lower() in cls._value2member_map_:
            return cls(value.lower())
        raise ValueError(
            f"unknown derivative type {value!r}; use DerivativeType.REAL, .IMAG or .COMPLEX "
            "(from qprim_grad or qiskit-algorithms) or 'real', 'imag', 'complex'"
        )


def as_derivative_type(value: Any) -> DerivativeType:
    """``value`` (our ``DerivativeType``, qiskit-algorithms' or a string) as our
    :class:`DerivativeType`; a clear ``ValueError`` for anything else."""
    return DerivativeType(value)


@dataclass(frozen=True)
class EstimatorGradientResult:
    """Gradients of expectation values: ``gradients[i]`` is a 1-D array over parameters.

    ``options`` holds the old module's run options (``{"precision": ...}``) when given.
    """

    gradients: list[np.ndarray]
    metadata: list[dict[str, Any]]
    precision: float | Sequence[float] | None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SamplerGradientResult:
    """Gradients of outcome probabilities: ``gradients[i][j]`` is ``{outcome: dp/d theta_j}``.

    ``options`` holds the old module's run options (``{"shots": ...}``) when given.
    """

    gradients: list[list[dict[int, float]]]
    metadata: list[dict[str, Any]]
    shots: int | Sequence[int] | None
    options: dict[str, Any] = field(default_factory=dict)


class GradientFacadeJob(ForwardingJob):
    """The job of a facade ``run``: wraps the primitive's :class:`~qprim_grad.GradientJob`
    and converts its result once, on first ``result()``."""

    def __init__(self, job: GradientJob, convert: Callable[[Any], Any]) -> None:
        super().__init__(job, job.job_id())
        self._convert = convert
        self._lock = threading.Lock()
        self._result: Any = None

    @property
    def primitive_job(self) -> GradientJob:
        """The gradient primitive's job (its ``inner_job_ids`` name the provider's jobs)."""
        return self._job

    def result(self) -> Any:
        with self._lock:
            if self._result is None:
                self._result = self._convert(self._job.result())
            return self._result


class _LayoutTranspiler:
    """``transpiler`` + ``transpiler_options`` as the ``pass_manager`` lin_comb expects."""

    def __init__(self, transpiler: Any, options: dict[str, Any]) -> None:
        self.transpiler = transpiler
        self.options = options

    def run(self, circuits: Any) -> Any:
        return self.transpiler.run(circuits, **self.options)


def _is_setting(value: Any) -> bool:
    """A single precision / shots value (``0`` and integers included)."""
    return value is None or (isinstance(value, Real) and not isinstance(value, bool))


class _GradientFacade:
    """What the estimator and sampler facades share: options, transpiler, run bookkeeping."""

    #: the :mod:`qprim_grad` method name this class runs (``None``: abstract).
    method: ClassVar[str | None] = None
    #: whether ``transpiler`` maps the user's circuits (``False``: the method's own).
    _transpiles_circuits: ClassVar[bool] = True
    _primitive_class: ClassVar[type]
    _result_class: ClassVar[type]
    _setting: ClassVar[str]  # "precision" or "shots"
    _result_key: ClassVar[str]  # where an inner result's metadata reports the setting
    #: options of the qprim_grad method (subclasses set them from their arguments).
    _method_kwargs: Mapping[str, Any] = {}

    def __init__(
        self,
        primitive: Any,
        setting: Any,
        transpiler: Any,
        transpiler_options: dict[str, Any] | None,
        options: Mapping[str, Any] | None,
        pass_manager: Any,
    ) -> None:
        if self.method is None:
            raise TypeError(
                f"{type(self).__name__} is abstract; use a subclass such as "
                "ParamShift...Gradient, or set the class attribute 'method' to a qprim_grad "
                "gradient method name"
            )
        if isinstance(setting, Mapping):  # old positional ``options`` (or an Options object)
            setting, options = None, {**setting, **(options or {})}
        if transpiler is not None and pass_manager is not None:
            raise ValueError("give transpiler= or pass_manager=, not both")
        self._primitive = primitive
        self._transpiler = transpiler if transpiler is not None else pass_manager
        self._transpiler_options = dict(transpiler_options or {})
        self._default = setting
        self.update_default_options(**dict(options or {}))
        self._gradient = self._build()

    # --- construction ------------------------------------------------------------------
    def _method_options(self) -> dict[str, Any]:
        """Options of the qprim_grad method."""
        return dict(self._method_kwargs)

    def _build(self) -> Any:
        options = self._method_options()
        if self._transpiler is not None and not self._transpiles_circuits:
            options["pass_manager"] = _LayoutTranspiler(self._transpiler, self._transpiler_options)
        return self._primitive_class(self._primitive, self.method, **options)

    @property
    def gradient_primitive(self) -> Any:
        """The :class:`~qprim_grad.GradientEstimator` / :class:`~qprim_grad.GradientSampler`
        every ``run`` goes through."""
        return self._gradient

    # --- old-style options ---------------------------------------------------------------
    @property
    def options(self) -> dict[str, Any]:
        """The default run options (old ``options=`` style), including the default
        precision / shots when set."""
        return {} if self._default is None else {self._setting: self._default}

    def update_default_options(self, **options: Any) -> None:
        """Update the default run options (``precision`` for an estimator gradient,
        ``shots`` for a sampler gradient)."""
        self._default = self._translate(options).get(self._setting, self._default)

    def _translate(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The old-style options, checked: only ``precision`` / ``shots`` exist on V2."""
        unknown = sorted(set(options) - {self._setting})
        if unknown:
            raise ValueError(
                f"{type(self).__name__} options {unknown} are not supported on V2 primitives; "
                f"only {self._setting!r} is. Set other options on the primitive itself."
            )
        return dict(options)

    # --- run -------------------------------------------------------------------------------
    def _run(
        self,
        circuits: Any,
        parameter_values: Any,
        parameters: Any,
        setting: Any,
        options: Mapping[str, Any],
        pubs: Callable[[list[QuantumCircuit], list[np.ndarray], list[Any]], list[Any]],
        gradients: Callable[[int, Any], Any],
    ) -> GradientFacadeJob:
        """One primitive ``run``: ``pubs(circuits, values, settings)`` builds its pubs,
        ``gradients(index, grads)`` converts the ``grads`` of result ``index``."""
        old_style = self._translate(options)  # checked even when the keyword is given
        setting = old_style.get(self._setting) if setting is None else setting
        circuits, values = self._checked(circuits, parameter_values)
        single, settings = self._settings(setting, len(circuits))
        job = self._gradient.run(pubs(circuits, values, settings), parameters=parameters)
        reported = {**self.options, **({} if setting is None else {self._setting: setting})}

        def convert(result: Any) -> Any:
            # the precision / shots to report, filled from the inner results when unset
            filled = [
                s if s is not None else r.metadata.get(self._result_key)
                for s, r in zip(settings, result)
            ]
            return self._result_class(
                [gradients(index, r.data.grads) for index, r in enumerate(result)],
                [{"parameters": r.metadata["parameters"]} for r in result],
                (filled[0] if filled else None) if single else filled,
                reported,
            )

        return GradientFacadeJob(job, convert)

    @staticmethod
    def _checked(
        circuits: Any, parameter_values: Any
    ) -> tuple[list[QuantumCircuit], list[np.ndarray]]:
        """Circuits and parameter values as lists, checked against each other."""
        single = isinstance(circuits, QuantumCircuit)
        circuits = [circuits] if single else list(circuits)
        if single and np.ndim(parameter_values) == 1:
            parameter_values = [parameter_values]
        values = [np.asarray(v, dtype=float) for v in parameter_values]
        if len(values) != len(circuits):
            raise ValueError(
                f"The number of circuits ({len(circuits)}) does not match the number of "
                f"parameter value sets ({len(values)})."
            )
        for index, (circuit, value) in enumerate(zip(circuits, values)):
            if not circuit.num_parameters:
                raise ValueError(f"The {index}-th circuit is not parameterised.")
            if value.shape != (circuit.num_parameters,):
                raise ValueError(
                    f"The number of values ({value.size}) does not match the number of "
                    f"parameters ({circuit.num_parameters}) for the {index}-th circuit."
                )
        return circuits, values

    def _settings(self, value: Any, count: int) -> tuple[bool, list[Any]]:
        """(single?, one precision / shots per circuit), run value > default."""
        if value is None:
            value = self._default
        if _is_setting(value):
            return True, [value] * count
        value = list(value)
        if len(value) != count:
            raise ValueError(
                f"{self._setting} gives {len(value)} values for {count} circuits; give one "
                "value or one per circuit"
            )
        return False, value

    def _transpiled(self, circuits: list[QuantumCircuit]) -> list[QuantumCircuit]:
        if self._transpiler is None or not self._transpiles_circuits or not circuits:
            return circuits
        mapped = self._transpiler.run(circuits, **self._transpiler_options)
        return [mapped] if isinstance(mapped, QuantumCircuit) else list(mapped)


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


def _real_gradients(grads: Any) -> np.ndarray:
    return np.real(np.asarray(grads)).astype(float)


def _complex_gradients(grads: Any) -> np.ndarray:
    return np.asarray(grads, dtype=complex)


def _outcome_gradients(grads: Any) -> list[dict[int, float]]:
    """``[{outcome_int: dp/d theta_j}, ...]`` over the parameters of one result."""
    return [dict(zip(grads.int_outcomes, row)) for row in np.real(grads.values).tolist()]


class BaseEstimatorGradient(_GradientFacade):
    """Gradients of expectation values, as ``qiskit_algorithms.gradients`` has them.

    Subclasses only name a :mod:`qprim_grad` method (class attribute ``method``) and map
    their constructor arguments to its options.

    Args:
        estimator: any V2 estimator.
        precision: default precision of the estimator runs (``None``: the estimator's).
            An old-style options mapping in this position is taken as ``options``.
        derivative_type: used by :class:`LinCombEstimatorGradient` only.
        transpiler: object with ``run(circuits, **transpiler_options)``, applied to the
            circuits that run (observables follow their layout). ``pass_manager`` is an alias.
        transpiler_options: keyword arguments of ``transpiler.run``.
        options: old-style default options: ``{"precision": p}``.
    """

    _primitive_class = GradientEstimator
    _result_class = EstimatorGradientResult
    _setting = "precision"
    _result_key = "target_precision"
    #: derivative types the method computes (others: a clear error at ``run``)
    _derivative_types: ClassVar[tuple[DerivativeType, ...]] = (DerivativeType.REAL,)

    def __init__(
        self,
        estimator: Any,
        precision: float | None = None,
        derivative_type: DerivativeType = DerivativeType.REAL,
        *,
        transpiler: Any = None,
        transpiler_options: dict[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        pass_manager: Any = None,
    ) -> None:
        self._derivative_type = derivative_type
        super().__init__(
            estimator, precision, transpiler, transpiler_options, options, pass_manager
        )

    # qiskit-algorithms' clients (VarQITE / VarQRTE and their McLachlan principles) read
    # ``gradient._estimator`` and assign ``gradient._derivative_type``: both are live here.
    @property
    def _estimator(self) -> Any:
        """The wrapped estimator (the attribute qiskit-algorithms' gradients carry)."""
        return self._primitive

    @_estimator.setter
    def _estimator(self, estimator: Any) -> None:
        self._primitive = estimator
        self._gradient = self._build()

    _derivative: DerivativeType = DerivativeType.REAL  # the stored value

    @property
    def _derivative_type(self) -> DerivativeType:
        return self._derivative

    @_derivative_type.setter
    def _derivative_type(self, derivative_type: Any) -> None:
        value = as_derivative_type(derivative_type)
        changed = value is not self._derivative
        self._derivative = value
        if changed and hasattr(self, "_gradient"):
            self._gradient = self._build()  # honoured from the next run on

    @property
    def derivative_type(self) -> DerivativeType:
        """The derivative type (real, imaginary or complex); settable, qiskit-algorithms'
        ``DerivativeType`` and strings accepted."""
        return self._derivative_type

    @derivative_type.setter
    def derivative_type(self, derivative_type: Any) -> None:
        self._derivative_type = derivative_type

    @property
    def precision(self) -> float | None:
        """Default precision of the estimator runs (``None``: the estimator's default)."""
        return self._default

    @precision.setter
    def precision(self, precision: float | None) -> None:
        self._default = precision

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
        if self._derivative_type not in self._derivative_types:
            raise ValueError(
                f"{type(self).__name__} computes {self._derivative_types[0].value} "
                f"derivatives only, derivative_type is {self._derivative_type}; use "
                "LinCombEstimatorGradient or ReverseEstimatorGradient for imaginary or "
                "complex derivatives"
            )
        if isinstance(observables, (str, BaseOperator)):
            observables = [observables]
        observables = [_observable(o) for o in observables]
        # An all-zero observable (e.g. a time-dependent Hamiltonian at t=0) has zero values
        # and gradients; qiskit's pubs reject it, so the identity runs in its place.
        zero = [_is_zero(o) for o in observables]
        observables = [
            SparsePauliOp("I" * o.num_qubits) if z else o for o, z in zip(observables, zero)
        ]

        def pubs(circuits: list[QuantumCircuit], values: list[Any], settings: list[Any]) -> list:
            if len(observables) != len(circuits):
                raise ValueError(
                    f"The number of circuits ({len(circuits)}) does not match the number of "
                    f"observables ({len(observables)})."
                )
            mapped, obs = self._transpiled(circuits), observables
            if mapped is not circuits:
                obs = [o.apply_layout(c.layout) for o, c in zip(obs, mapped)]
            return list(zip(mapped, obs, values, settings))

        as_complex = self._derivative_type is DerivativeType.COMPLEX
        convert = _complex_gradients if as_complex else _real_gradients

        def gradients(index: int, grads: Any) -> np.ndarray:
            values = convert(grads)
            return np.zeros_like(values) if zero[index] else values

        return self._run(
            circuits, parameter_values, parameters, precision, options, pubs, gradients
        )


class BaseSamplerGradient(_GradientFacade):
    """Gradients of outcome probabilities, as ``qiskit_algorithms.gradients`` has them.

    ``gradients[i][j]`` maps each integer outcome (over all classical bits, in
    ``BitArray.get_int_counts()`` order) observed for circuit ``i`` to ``dp/d theta_j``.

    Args:
        sampler: any V2 sampler.
        shots: default shots (``None``: the sampler's). An old-style options mapping in this
            position is taken as ``options``.
        transpiler: object with ``run(circuits, **transpiler_options)``, applied to the
            circuits that run. ``pass_manager`` is an alias.
        transpiler_options: keyword arguments of ``transpiler.run``.
        options: old-style default options: ``{"shots": n}``.
    """

    _primitive_class = GradientSampler
    _result_class = SamplerGradientResult
    _setting = "shots"
    _result_key = "shots"

    def __init__(
        self,
        sampler: Any,
        shots: int | None = None,
        *,
        transpiler: Any = None,
        transpiler_options: dict[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        pass_manager: Any = None,
    ) -> None:
        super().__init__(sampler, shots, transpiler, transpiler_options, options, pass_manager)

    @property
    def _sampler(self) -> Any:
        """The wrapped sampler (the attribute qiskit-algorithms' gradients carry)."""
        return self._primitive

    @_sampler.setter
    def _sampler(self, sampler: Any) -> None:
        self._primitive = sampler
        self._gradient = self._build()

    @property
    def shots(self) -> int | None:
        """Default shots of the sampler runs (``None``: the sampler's default)."""
        return self._default

    @shots.setter
    def shots(self, shots: int | None) -> None:
        self._default = shots

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


# --- the method classes: a method name and an argument mapping each ------------------------
def _check_scheme(method: str) -> str:
    if method not in ("central", "forward", "backward"):
        raise TypeError(
            f"The argument method should be central, forward, or backward: {method} is given."
        )
    return method


class ParamShiftEstimatorGradient(BaseEstimatorGradient):
    """Parameter-shift gradients of expectation values (method ``param_shift``)."""

    method = "param_shift"


class ParamShiftSamplerGradient(BaseSamplerGradient):
    """Parameter-shift gradients of outcome probabilities (method ``param_shift``)."""

    method = "param_shift"


class FiniteDiffEstimatorGradient(BaseEstimatorGradient):
    """Finite-difference gradients of expectation values (method ``finite_diff``;
    ``method=`` here is the difference scheme: central, forward or backward)."""

    method = "finite_diff"

    def __init__(
        self,
        estimator: Any,
        epsilon: float,
        precision: float | None = None,
        *,
        method: str = "central",
        transpiler: Any = None,
        transpiler_options: dict[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        pass_manager: Any = None,
    ) -> None:
        self._method_kwargs = {"epsilon": epsilon, "scheme": _check_scheme(method)}
        _GradientFacade.__init__(
            self, estimator, precision, transpiler, transpiler_options, options, pass_manager
        )


class FiniteDiffSamplerGradient(BaseSamplerGradient):
    """Finite-difference gradients of outcome probabilities (method ``finite_diff``)."""

    method = "finite_diff"

    def __init__(
        self,
        sampler: Any,
        epsilon: float,
        shots: int | None = None,
        *,
        method: str = "central",
        transpiler: Any = None,
        transpiler_options: dict[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        pass_manager: Any = None,
    ) -> None:
        self._method_kwargs = {"epsilon": epsilon, "scheme": _check_scheme(method)}
        _GradientFacade.__init__(
            self, sampler, shots, transpiler, transpiler_options, options, pass_manager
        )


class SPSAEstimatorGradient(BaseEstimatorGradient):
    """SPSA gradient estimates of expectation values (method ``spsa``); equal seeds give
    the directions qiskit-algorithms draws."""

    method = "spsa"

    def __init__(
        self,
        estimator: Any,
        epsilon: float,
        batch_size: int = 1,
        seed: int | None = None,
        precision: float | None = None,
        *,
        transpiler: Any = None,
        transpiler_options: dict[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        pass_manager: Any = None,
    ) -> None:
        self._method_kwargs = {"epsilon": epsilon, "batch_size": batch_size, "seed": seed}
        _GradientFacade.__init__(
            self, estimator, precision, transpiler, transpiler_options, options, pass_manager
        )


class SPSASamplerGradient(BaseSamplerGradient):
    """SPSA gradient estimates of outcome probabilities (method ``spsa``)."""

    method = "spsa"

    def __init__(
        self,
        sampler: Any,
        epsilon: float,
        batch_size: int = 1,
        seed: int | None = None,
        shots: int | None = None,
        *,
        transpiler: Any = None,
        transpiler_options: dict[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        pass_manager: Any = None,
    ) -> None:
        self._method_kwargs = {"epsilon": epsilon, "batch_size": batch_size, "seed": seed}
        _GradientFacade.__init__(
            self, sampler, shots, transpiler, transpiler_options, options, pass_manager
        )


class LinCombEstimatorGradient(BaseEstimatorGradient):
    """Hadamard-test gradients of expectation values (method ``lin_comb``); ``transpiler``
    maps the Hadamard-test circuits."""

    method = "lin_comb"
    _transpiles_circuits = False
    _derivative_types = tuple(DerivativeType)

    def _method_options(self) -> dict[str, Any]:
        return {"derivative_type": self._derivative_type.value}


class ReverseEstimatorGradient(BaseEstimatorGradient):
    """Exact reverse-mode (adjoint) gradients of expectation values (method ``reverse``),
    as ``qiskit_algorithms.gradients.ReverseEstimatorGradient``: no estimator argument (a
    ``StatevectorEstimator`` evaluates the values); ``estimator=`` may name another exact
    statevector estimator."""

    method = "reverse"
    _derivative_types = tuple(DerivativeType)

    def __init__(
        self,
        derivative_type: Any = DerivativeType.REAL,
        *,
        estimator: Any = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        if hasattr(derivative_type, "run") and estimator is None:  # an estimator first
            derivative_type, estimator = DerivativeType.REAL, derivative_type
        self._derivative_type = derivative_type
        _GradientFacade.__init__(
            self,
            StatevectorEstimator() if estimator is None else estimator,
            None,
            None,
            None,
            options,
            None,
        )

    def _method_options(self) -> dict[str, Any]:
        return {"derivative_type": self._derivative_type.value}


class LinCombSamplerGradient(BaseSamplerGradient):
    """Hadamard-test gradients of outcome probabilities (method ``lin_comb``)."""

    method = "lin_comb"
    _transpiles_circuits = False


# The QGT facades (qiskit-algorithms 0.4's BaseQGT, LinCombQGT, ReverseQGT, QFI) live in their
# own module; they use this module's DerivativeType and job class.
from ._qgt_facade import (  # noqa: E402
    QFI,
    BaseQGT,
    LinCombQGT,
    QFIResult,
    QGTResult,
    ReverseQGT,
)
