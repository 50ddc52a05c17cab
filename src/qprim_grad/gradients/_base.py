"""The one base of the gradient facades: a class is a row of :mod:`._table` over it."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, ClassVar

import numpy as np
from qiskit.circuit import QuantumCircuit

from ..cache import BoundedCache
from ._common import Facade, reported
from ._derivative_type import DerivativeType
from ._results import GradientFacadeJob
from ._table import Arg, Kind, MethodSpec, bind, signature

__all__ = ["GradientFacade"]


class GradientFacade(Facade):
    """What the estimator and sampler gradient facades share: the constructor built from the
    class's row, old-style options, the transpiler and the run bookkeeping.

    A kind's base is declared with its kind (``class B(GradientFacade, kind=ESTIMATOR)``), a
    method's class with its row (``class X(B, spec=ROW)``); a class may also just name a
    :mod:`qprim_grad` method in the class attribute ``method`` (it then takes the arguments
    of its kind).
    """

    #: the kind: estimator or sampler gradient
    _kind: ClassVar[Kind]
    #: constructor arguments after the primitive (``SETTING``: the setting argument)
    _arguments: ClassVar[tuple[Arg, ...]]
    #: constructor argument -> option of the method
    _option_names: ClassVar[Mapping[str, str]] = {}
    #: whether ``transpiler`` maps the user's circuits (``False``: the method's own)
    _transpiles_circuits: ClassVar[bool] = True
    #: the derivative types the method computes (others: a clear error at ``run``)
    _derivative_types: ClassVar[tuple[DerivativeType, ...]] = (DerivativeType.REAL,)
    _constructor: ClassVar[inspect.Signature]
    __signature__: ClassVar[inspect.Signature | None]

    def __init_subclass__(
        cls, kind: Kind | None = None, spec: MethodSpec | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        if kind is not None:
            cls._kind, cls._arguments, cls._setting = kind, kind.arguments, kind.setting.name
        if spec is not None:
            cls.method = spec.method
            cls._option_names = spec.options
            cls._transpiles_circuits = spec.transpiles_circuits
            cls._derivative_types = spec.derivative_types
            cls._arguments = cls._arguments if spec.arguments is None else spec.arguments
        kind = cls._kind
        cls._constructor = signature(kind.primitive_name, cls._arguments, kind.setting)
        # what ``inspect.signature(cls)`` shows; a class with its own ``__init__``: that
        generated = cls.__init__ is GradientFacade.__init__
        cls.__signature__ = cls._constructor if generated else None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if self.method is None:
            raise TypeError(
                f"{type(self).__name__} is abstract; use a subclass such as "
                "ParamShift...Gradient, or set the class attribute 'method' to a qprim_grad "
                "gradient method name"
            )
        values = bind(type(self).__name__, self._constructor, self._arguments, args, kwargs)
        setting, options = values.pop(self._setting), dict(values.pop("options") or {})
        if isinstance(setting, Mapping):  # old positional ``options`` (or an Options object)
            options = {**setting, **options}
            setting = None
        transpiler, pass_manager = values.pop("transpiler"), values.pop("pass_manager")
        if transpiler is not None and pass_manager is not None:
            raise ValueError("give transpiler= or pass_manager=, not both")
        transpiler = transpiler if transpiler is not None else pass_manager
        primitive = values.pop(self._kind.primitive_name)
        super().__init__(primitive, setting, transpiler, values.pop("transpiler_options"))
        # the user's circuit -> its transpiled form: mapped once, as the method's own caches
        # (keyed by circuit) need the same mapped object from run to run
        self._mapped: BoundedCache[QuantumCircuit] = BoundedCache(size=64)
        self._values = values  # the method's arguments
        self.update_default_options(**options)
        self._gradient = self._build()

    # --- construction ------------------------------------------------------------------
    def _build(self) -> Any:
        values = {
            name: value.value if isinstance(value, DerivativeType) else value
            for name, value in self._values.items()
        }
        options = {  # a kind without the argument (a sampler's derivative type) leaves it out
            option: values[name] for name, option in self._option_names.items() if name in values
        }
        layout = self._layout_transpiler()
        if layout is not None and not self._transpiles_circuits:
            options["pass_manager"] = layout
        return self._kind.primitive_class(self._primitive, self.method, **options)

    def _rebuild(self) -> None:
        self._gradient = self._build()

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
        circuits, values, single, settings = self._inputs(circuits, parameter_values, setting)
        job = self._gradient.run(pubs(circuits, values, settings), parameters=parameters)
        run_options = {**self.options, **({} if setting is None else {self._setting: setting})}

        def convert(result: Any) -> Any:
            return self._kind.result_class(
                [gradients(index, r.data.grads) for index, r in enumerate(result)],
                [{"parameters": r.metadata["parameters"]} for r in result],
                reported(settings, single, result, self._kind.result_key),
                run_options,
            )

        return GradientFacadeJob(job, convert)

    def _transpiled(self, circuits: list[QuantumCircuit]) -> list[QuantumCircuit]:
        """The circuits mapped by ``transpiler``, each transpiled once while it is unchanged."""
        if self._transpiler is None or not self._transpiles_circuits or not circuits:
            return circuits
        return [self._mapped.get(id(c), c, partial(self._transpile, c)) for c in circuits]

    def _transpile(self, circuit: QuantumCircuit) -> QuantumCircuit:
        mapped = self._transpiler.run([circuit], **self._transpiler_options)
        return mapped if isinstance(mapped, QuantumCircuit) else list(mapped)[0]
