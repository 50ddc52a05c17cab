"""Parameter handling: which parameters each pub differentiates, finite values, and hints
naming unbound parameters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
from qiskit.circuit import Parameter, QuantumCircuit

from .types import PubTask

__all__ = ["normalize_parameters", "check_finite", "binding_hint"]


def normalize_parameters(
    parameters: Any, circuits: Sequence[QuantumCircuit]
) -> list[tuple[Parameter, ...]]:
    """One tuple of differentiated parameters per pub (default: ``circuit.parameters``)."""
    if parameters is None:
        return [tuple(c.parameters) for c in circuits]
    parameters = list(parameters)
    per_pub = bool(parameters) and not isinstance(parameters[0], Parameter)
    if per_pub and len(parameters) != len(circuits):
        raise ValueError(
            f"parameters= gives {len(parameters)} sequences for {len(circuits)} pubs; give one "
            "sequence of Parameters for all pubs or one per pub"
        )
    chosen = parameters if per_pub else [parameters] * len(circuits)
    return [
        _pub_parameters(index, circuit, params)
        for index, (circuit, params) in enumerate(zip(circuits, chosen))
    ]


def _pub_parameters(index: int, circuit: QuantumCircuit, params: Any) -> tuple[Parameter, ...]:
    """One pub's choice checked: Parameters of its circuit, none twice (``None``: all)."""
    if params is None:
        return tuple(circuit.parameters)
    params = tuple(params)
    present = set(circuit.parameters)
    for param in params:
        if not isinstance(param, Parameter):
            raise TypeError(
                f"pub {index}: parameters= must hold qiskit Parameter objects, got {param!r}"
            )
        if param not in present:
            raise ValueError(
                f"pub {index}: parameter {param.name!r} is not a parameter of the circuit "
                f"(its parameters: {[p.name for p in circuit.parameters]})"
            )
    if len(set(params)) != len(params):
        raise ValueError(f"pub {index}: parameters= lists a parameter twice")
    return cast("tuple[Any, ...]", params)


def check_finite(task: PubTask) -> PubTask:
    """Reject NaN and infinite parameter values, naming the pub and the parameter."""
    values = task.values
    if values.size and not np.isfinite(values).all():
        bad = ~np.isfinite(values.reshape(-1, values.shape[-1])).all(axis=0)
        names = [p.name for p, b in zip(task.circuit.parameters, bad) if b]
        raise ValueError(
            f"pub {task.index}: parameter values must be finite; got NaN or infinity for "
            f"parameter(s) {names}"
        )
    return task


def binding_hint(pub: Any, exc: Exception) -> str:
    """Name the unbound parameters when a pub's values do not cover its circuit."""
    message = str(exc)
    if not isinstance(pub, (tuple, list)) or (
        "number of parameters" not in message and "last dimension" not in message
    ):
        return ""
    names = [p.name for p in getattr(pub[0], "parameters", [])]
    given = _bound_names(pub[1:])
    missing = [name for name in names if name not in given]
    if given and missing:
        return f" Unbound parameters: {missing}."
    return f" The circuit's parameters, in order: {names}."


def _bound_names(items: Sequence[Any]) -> set[str]:
    """The parameter names the dicts among a pub's items bind (keys may be tuples)."""
    given: set[str] = set()
    for item in items:
        if not isinstance(item, dict):
            continue
        for key in item:
            keys = key if isinstance(key, tuple) else (key,)
            given.update(str(getattr(k, "name", k)) for k in keys)
    return given
