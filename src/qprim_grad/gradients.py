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
from qiskit.primitives import BasePrimitiveJob
from qiskit.providers import JobStatus
from qiskit.quantum_info import Pauli, SparsePauliOp
from qiskit.quantum_info.operators.base_operator import BaseOperator

from .estimator import GradientEstimator
from .job import GradientJob
from .sampler import GradientSampler

__all__ = [
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
    "SPSAEstimatorGradient",
    "SPSASamplerGradient",
    "SamplerGradientResult",
]


class DerivativeType(Enum):
    """Which part of ``2 <psi|O|d psi>`` a linear-combination gradient returns."""

    REAL = "real"
    IMAG = "imag"
    COMPLEX = "complex"


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


class GradientFacadeJob(BasePrimitiveJob):
    """The job of a facade ``run``: wraps the primitive's :class:`~qprim_grad.GradientJob`
    and converts its result once, on first ``result()``."""

    def __init__(self, job: GradientJob, convert: Callable[[Any], Any]) -> None:
        super().__init__(job_id=job.job_id())
        self._job = job
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

    def status(self) -> JobStatus:
        return self._job.status()

    def done(self) -> bool:
        return self._job.done()

    def running(self) -> bool:
        return self._job.running()

    def cancelled(self) -> bool:
        return self._job.cancelled()

    def in_final_state(self) -> bool:
        return self._job.in_final_state()

    def cancel(self) -> bool:
        return self._job.cancel()


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
    _primitive_class: ClassVar[type]
    _setting: ClassVar[str]  # "precision" or "shots"

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
        self._options: dict[str, Any] = {}
        self._default = setting
        self.update_default_options(**dict(options or {}))
        self._gradient = self._build()

    # --- construction ------------------------------------------------------------------
    def _method_options(self) -> dict[str, Any]:
        """Options of the qprim_grad method (subclasses map their arguments here)."""
        return {}

    def _transpiles_circuits(self) -> bool:
        """Whether ``transpiler`` maps the user's circuits (``False``: the method's own)."""
        return True

    def _build(self) -> Any:
        options = self._method_options()
        if self._transpiler is not None and not self._transpiles_circuits():
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
        out = dict(self._options)
        if self._default is not None:
            out[self._setting] = self._default
        return out

    def update_default_options(self, **options: Any) -> None:
        """Update the default run options (``precision`` for an estimator gradient,
        ``shots`` for a sampler gradient)."""
        self._options.update(self._translate(options))
        if self._setting in self._options:
            self._default = self._options.pop(self._setting)

    def _translate(self, options: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(options) - {self._setting})
        if unknown:
            raise ValueError(
                f"{type(self).__name__} options {unknown} are not supported on V2 primitives; "
                f"only {self._setting!r} is. Set other options on the primitive itself."
            )
        return dict(options)

    # --- run -------------------------------------------------------------------------------
    def _normalize(
        self, circuits: Any, parameter_values: Any, parameters: Any
    ) -> tuple[list[QuantumCircuit], list[np.ndarray], list[Any]]:
        single = isinstance(circuits, QuantumCircuit)
        circuits = [circuits] if single else list(circuits)
        if single and np.ndim(parameter_values) == 1:
            parameter_values = [parameter_values]
        values = [np.asarray(v, dtype=float) for v in parameter_values]
        if parameters is None:
            chosen: list[Any] = [c.parameters for c in circuits]
        else:
            parameters = list(parameters)
            if parameters and isinstance(parameters[0], Parameter):
                parameters = [parameters] * len(circuits)
            if len(parameters) != len(circuits):
                raise ValueError(
                    f"The number of circuits ({len(circuits)}) does not match the number of "
                    f"parameter sets ({len(parameters)})."
                )
            chosen = [c.parameters if p is None else p for c, p in zip(circuits, parameters)]
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
        return circuits, values, chosen

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
        if self._transpiler is None or not self._transpiles_circuits() or not circuits:
            return circuits
        mapped = self._transpiler.run(circuits, **self._transpiler_options)
        return [mapped] if isinstance(mapped, QuantumCircuit) else list(mapped)

    def _filled(self, single: bool, settings: list[Any], results: Any, key: str) -> Any:
        """The precision / shots to report, filled from the inner results when unset."""
        reported = [
            s if s is not None else result.metadata.get(key) for s, result in zip(settings, results)
        ]
        if single:
            return reported[0] if reported else settings[0] if settings else None
        return reported

    def _submit(
        self, pubs: list[Any], parameters: list[Any], convert: Callable[[Any], Any]
    ) -> GradientFacadeJob:
        job = self._gradient.run(pubs, parameters=[tuple(p) for p in parameters])
        return GradientFacadeJob(job, convert)


def _observable(observable: Any) -> Any:
    if isinstance(observable, (str, Pauli, SparsePauliOp)):
        return SparsePauliOp(observable)
    if isinstance(observable, BaseOperator):
        return SparsePauliOp.from_operator(observable)
    return observable


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
    _setting = "precision"

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
        self._derivative_type = DerivativeType(getattr(derivative_type, "value", derivative_type))
        super().__init__(
            estimator, precision, transpiler, transpiler_options, options, pass_manager
        )

    @property
    def derivative_type(self) -> DerivativeType:
        """The derivative type (real, imaginary or complex)."""
        return self._derivative_type

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
        run_options = self._translate(options)
        if precision is None:
            precision = run_options.pop("precision", None)
        circuits, values, chosen = self._normalize(circuits, parameter_values, parameters)
        if isinstance(observables, (str, BaseOperator)):
            observables = [observables]
        observables = [_observable(o) for o in observables]
        if len(observables) != len(circuits):
            raise ValueError(
                f"The number of circuits ({len(circuits)}) does not match the number of "
                f"observables ({len(observables)})."
            )
        single, settings = self._settings(precision, len(circuits))
        mapped = self._transpiled(circuits)
        if mapped is not circuits:
            observables = [o.apply_layout(c.layout) for o, c in zip(observables, mapped)]
        pubs = [(c, o, v, s) for c, o, v, s in zip(mapped, observables, values, settings)]
        complex_type = self._derivative_type is DerivativeType.COMPLEX and self.method == "lin_comb"
        reported_options = {
            **self.options,
            **({} if precision is None else {"precision": precision}),
        }

        def convert(result: Any) -> EstimatorGradientResult:
            gradients = [
                np.asarray(r.data.grads, dtype=complex)
                if complex_type
                else np.real(np.asarray(r.data.grads)).astype(float)
                for r in result
            ]
            return EstimatorGradientResult(
                gradients=gradients,
                metadata=[{"parameters": p} for p in chosen],
                precision=self._filled(single, settings, result, "target_precision"),
                options=reported_options,
            )

        return self._submit(pubs, chosen, convert)


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
    _setting = "shots"

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
        run_options = self._translate(options)
        if shots is None:
            shots = run_options.pop("shots", None)
        circuits, values, chosen = self._normalize(circuits, parameter_values, parameters)
        single, settings = self._settings(shots, len(circuits))
        mapped = self._transpiled(circuits)
        pubs = [(c, v, s) for c, v, s in zip(mapped, values, settings)]
        reported_options = {**self.options, **({} if shots is None else {"shots": shots})}

        def convert(result: Any) -> SamplerGradientResult:
            gradients = []
            for r in result:
                grads = r.data.grads
                outcomes = grads.int_outcomes
                rows = np.real(grads.values).tolist()
                gradients.append([dict(zip(outcomes, row)) for row in rows])
            return SamplerGradientResult(
                gradients=gradients,
                metadata=[{"parameters": p} for p in chosen],
                shots=self._filled(single, settings, result, "shots"),
                options=reported_options,
            )

        return self._submit(pubs, chosen, convert)


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
        self._epsilon, self._scheme = epsilon, _check_scheme(method)
        super().__init__(
            estimator,
            precision,
            transpiler=transpiler,
            transpiler_options=transpiler_options,
            options=options,
            pass_manager=pass_manager,
        )

    def _method_options(self) -> dict[str, Any]:
        return {"epsilon": self._epsilon, "scheme": self._scheme}


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
        self._epsilon, self._scheme = epsilon, _check_scheme(method)
        super().__init__(
            sampler,
            shots,
            transpiler=transpiler,
            transpiler_options=transpiler_options,
            options=options,
            pass_manager=pass_manager,
        )

    _method_options = FiniteDiffEstimatorGradient._method_options


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
        self._spsa = {"epsilon": epsilon, "batch_size": batch_size, "seed": seed}
        super().__init__(
            estimator,
            precision,
            transpiler=transpiler,
            transpiler_options=transpiler_options,
            options=options,
            pass_manager=pass_manager,
        )

    def _method_options(self) -> dict[str, Any]:
        return dict(self._spsa)


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
        self._spsa = {"epsilon": epsilon, "batch_size": batch_size, "seed": seed}
        super().__init__(
            sampler,
            shots,
            transpiler=transpiler,
            transpiler_options=transpiler_options,
            options=options,
            pass_manager=pass_manager,
        )

    _method_options = SPSAEstimatorGradient._method_options


class LinCombEstimatorGradient(BaseEstimatorGradient):
    """Hadamard-test gradients of expectation values (method ``lin_comb``); ``transpiler``
    maps the Hadamard-test circuits."""

    method = "lin_comb"

    def _method_options(self) -> dict[str, Any]:
        return {"derivative_type": self._derivative_type.value}

    def _transpiles_circuits(self) -> bool:
        return False

    @BaseEstimatorGradient.derivative_type.setter  # type: ignore[attr-defined]
    def derivative_type(self, derivative_type: DerivativeType) -> None:
        self._derivative_type = DerivativeType(getattr(derivative_type, "value", derivative_type))
        self._gradient = self._build()


class LinCombSamplerGradient(BaseSamplerGradient):
    """Hadamard-test gradients of outcome probabilities (method ``lin_comb``)."""

    method = "lin_comb"

    _transpiles_circuits = LinCombEstimatorGradient._transpiles_circuits
