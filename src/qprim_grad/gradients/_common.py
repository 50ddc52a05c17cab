"""What the gradient and QGT facades share: the primitive they wrap, the default precision /
shots, the transpiler, and the checks and bookkeeping of a ``run``."""

from __future__ import annotations

from numbers import Real
from typing import Any, ClassVar

import numpy as np
from qiskit.circuit import QuantumCircuit

__all__ = ["Facade", "LayoutTranspiler", "checked_inputs", "per_circuit", "reported"]


class LayoutTranspiler:
    """``transpiler`` + ``transpiler_options`` as the ``pass_manager`` a method expects."""

    def __init__(self, transpiler: Any, options: dict[str, Any]) -> None:
        self.transpiler = transpiler
        self.options = options

    def run(self, circuits: Any) -> Any:
        return self.transpiler.run(circuits, **self.options)


def checked_inputs(
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


def _is_setting(value: Any) -> bool:
    """A single precision / shots value (``0`` and integers included)."""
    if isinstance(value, np.ndarray):
        return value.ndim == 0
    return value is None or (isinstance(value, Real) and not isinstance(value, bool))


def per_circuit(name: str, value: Any, count: int) -> tuple[bool, list[Any]]:
    """``(single?, one value per circuit)`` of the precision / shots ``name``."""
    if _is_setting(value):
        return True, [value] * count
    value = list(value)
    if len(value) != count:
        raise ValueError(
            f"{name} gives {len(value)} values for {count} circuits; give one value or one per "
            "circuit"
        )
    return False, value


def reported(settings: list[Any], single: bool, result: Any, key: str | None) -> Any:
    """The precision / shots a facade result reports: the run's settings, those left unset
    filled from the inner results' metadata ``key`` (``None``: left unset)."""
    filled = [
        s if s is not None or key is None else r.metadata.get(key) for s, r in zip(settings, result)
    ]
    if single:
        return filled[0] if filled else None
    return filled


def _get_primitive(facade: Facade) -> Any:
    return facade._primitive


def _set_primitive(facade: Facade, primitive: Any) -> None:
    facade._primitive = primitive
    facade._rebuild()


def _get_default(facade: Facade) -> Any:
    return facade._default


def _set_default(facade: Facade, value: Any) -> None:
    facade._default = value


def primitive_property(doc: str) -> Any:
    """The wrapped primitive under the name qiskit-algorithms' classes give it (``_estimator``,
    ``_sampler``); assigning it rebuilds what runs."""
    return property(_get_primitive, _set_primitive, doc=doc)


def default_property(doc: str) -> Any:
    """The default precision / shots of the runs, settable."""
    return property(_get_default, _set_default, doc=doc)


class Facade:
    """A facade over one of our primitives: the wrapped primitive, the default precision /
    shots of its runs and the transpiler mapping its circuits."""

    #: the :mod:`qprim_grad` method name this class runs (``None``: abstract).
    method: ClassVar[str | None] = None
    #: name of the per-run setting (``"precision"`` or ``"shots"``)
    _setting: ClassVar[str] = "precision"

    def __init__(
        self, primitive: Any, default: Any, transpiler: Any, transpiler_options: Any
    ) -> None:
        self._primitive = primitive
        self._default = default
        self._transpiler = transpiler
        self._transpiler_options = dict(transpiler_options or {})

    def _rebuild(self) -> None:
        """Called when the wrapped primitive or the method's options change."""

    def _layout_transpiler(self) -> LayoutTranspiler | None:
        """The transpiler as a method's ``pass_manager`` (``None``: none given)."""
        if self._transpiler is None:
            return None
        return LayoutTranspiler(self._transpiler, self._transpiler_options)

    def _inputs(
        self, circuits: Any, parameter_values: Any, setting: Any
    ) -> tuple[list[QuantumCircuit], list[np.ndarray], bool, list[Any]]:
        """``(circuits, values, single?, settings)`` of a run, checked; an unset run setting
        is the default."""
        circuits, values = checked_inputs(circuits, parameter_values)
        setting = self._default if setting is None else setting
        single, settings = per_circuit(self._setting, setting, len(circuits))
        return circuits, values, single, settings
