"""The chain rule from the user's parameters to gate arguments ("slots").

A :class:`PreparedCircuit` (made by :func:`qprim_grad.circuit.prepare.prepare_circuit`) lists
the gate arguments that depend on the differentiated parameters. This module maps parameter
values to those arguments and differentiates the map: exactly and once per circuit when every
argument is affine in the parameters (a sparse matrix and an offset, :func:`affine_form`), else by
evaluating the expressions' derivatives at every row of values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from qiskit.circuit import Parameter, ParameterExpression, QuantumCircuit
from scipy import sparse

__all__ = [
    "Slot",
    "PreparedCircuit",
    "affine_form",
    "affine_jacobian",
    "bound_real",
    "evaluate_slots",
    "prepared_values",
    "slot_curvature",
    "slot_jacobian",
]


@dataclass(frozen=True)
class Slot:
    """One gate argument that depends on differentiated parameters."""

    instruction: int  # index into PreparedCircuit.circuit.data
    argument: int  # index into the gate's params
    expression: ParameterExpression  # in terms of the user's circuit parameters
    parameter: Parameter  # the parameter carrying this argument in the prepared circuit
    gate: str  # the gate's name


@dataclass(frozen=True, eq=False)
class PreparedCircuit:
    """The circuit a method evaluates and how user parameter values map onto it.

    ``offset + values @ affine.T`` gives the slot angles from the user's values (when every
    slot is affine); ``carry`` says which user value each other circuit parameter takes.
    """

    original: QuantumCircuit
    circuit: QuantumCircuit
    slots: tuple[Slot, ...]
    parameters: tuple[Parameter, ...]  # differentiated, in output order
    slot_columns: np.ndarray  # column of each slot's parameter in circuit.parameters
    carry: np.ndarray  # (P_eval,) source column in original values, or -1 for slots
    affine: sparse.csr_array | None  # (G, P_orig) coefficient of each user parameter per slot
    offset: np.ndarray | None  # (G,)
    rewritten: bool
    parameter_names: tuple[str, ...]  # names of circuit.parameters, in order

    @property
    def num_slots(self) -> int:
        return len(self.slots)


def affine_form(
    expressions: Sequence[ParameterExpression], position: dict[Parameter, int]
) -> tuple[sparse.csr_array | None, np.ndarray | None]:
    """``(A, b)`` with ``expressions = A @ values + b`` (``A`` sparse, columns by
    ``position``), or ``(None, None)`` if some expression is not affine."""
    rows, columns, coefficients = [], [], []
    offset = np.zeros(len(expressions))
    for g, expr in enumerate(expressions):
        if isinstance(expr, Parameter):
            rows.append(g)
            columns.append(position[expr])
            coefficients.append(1.0)
            continue
        zeros = {}
        for param in expr.parameters:
            derivative = expr.gradient(param)
            if isinstance(derivative, ParameterExpression):
                return None, None
            rows.append(g)
            columns.append(position[param])
            coefficients.append(float(np.real(derivative)))
            zeros[param] = 0.0
        offset[g] = float(np.real(complex(expr.bind(zeros).numeric())))
    affine = sparse.csr_array(
        (coefficients, (rows, columns)), shape=(len(expressions), len(position))
    )
    return affine, offset


def _bindings(prepared: PreparedCircuit, flat: np.ndarray) -> list[dict[Parameter, float]]:
    """One ``{parameter: value}`` per row of ``flat`` (columns: the user's parameters)."""
    params = list(prepared.original.parameters)
    return [dict(zip(params, vals)) for vals in flat]


def bound_real(expr: Any, bindings: list[dict[Parameter, float]]) -> np.ndarray:
    """A real number or expression evaluated under every binding."""
    if not isinstance(expr, ParameterExpression):
        return np.full(len(bindings), float(np.real(expr)))
    out = np.empty(len(bindings))
    for row, binding in enumerate(bindings):
        bound = expr.bind({p: binding[p] for p in expr.parameters})
        out[row] = float(np.real(complex(bound.numeric())))
    return out


def evaluate_slots(prepared: PreparedCircuit, values: np.ndarray) -> np.ndarray:
    """Slot angles for user parameter values of shape ``S + (P_orig,)`` -> ``S + (G,)``."""
    flat = values.reshape(-1, values.shape[-1])
    if prepared.affine is not None:
        slots = np.asarray((prepared.affine @ flat.T).T) + prepared.offset
        return slots.reshape(values.shape[:-1] + (prepared.num_slots,))
    bindings = _bindings(prepared, flat)
    out = np.empty((flat.shape[0], prepared.num_slots))
    for g, slot in enumerate(prepared.slots):
        out[:, g] = bound_real(slot.expression, bindings)
    return out.reshape(values.shape[:-1] + (prepared.num_slots,))


def slot_jacobian(prepared: PreparedCircuit, values: np.ndarray) -> Any:
    """``d slot_g / d theta_j``: a sparse ``(G, P)`` matrix when every slot is affine in the
    parameters (computed once per prepared circuit), else a dense ``S + (G, P)`` array."""
    if prepared.affine is not None:
        return affine_jacobian(prepared)
    flat = values.reshape(-1, values.shape[-1])
    bindings = _bindings(prepared, flat)
    out = np.zeros((flat.shape[0], prepared.num_slots, len(prepared.parameters)))
    for g, slot in enumerate(prepared.slots):
        expr = slot.expression
        for j, param in enumerate(prepared.parameters):
            if param in expr.parameters:
                out[:, g, j] = bound_real(expr.gradient(param), bindings)
    return out.reshape(values.shape[:-1] + out.shape[1:])


# Keyed by prepared circuit (identity): a fixed matrix per circuit, bounded like the
# preparation cache it follows.
@lru_cache(maxsize=256)
def affine_jacobian(prepared: PreparedCircuit) -> sparse.csr_array:
    """``d slot / d theta`` as a sparse ``(G, P)`` matrix for an affine prepared circuit
    (computed once per prepared circuit)."""
    position = {p: i for i, p in enumerate(prepared.original.parameters)}
    columns = [position[p] for p in prepared.parameters]
    assert prepared.affine is not None
    return sparse.csr_array(prepared.affine[:, columns])  # type: ignore[index]


def slot_curvature(prepared: PreparedCircuit, values: np.ndarray) -> np.ndarray:
    """``d^2 slot_g / d theta_i d theta_j``, a dense ``S + (G, P, P)`` array (zero for
    affine arguments)."""
    flat = values.reshape(-1, values.shape[-1])
    bindings = _bindings(prepared, flat)
    diff = prepared.parameters
    out = np.zeros((flat.shape[0], prepared.num_slots, len(diff), len(diff)))
    for g, slot in enumerate(prepared.slots):
        expr = slot.expression
        for i, first in enumerate(diff):
            if first not in expr.parameters:
                continue
            derivative = expr.gradient(first)
            if not isinstance(derivative, ParameterExpression):
                continue
            for j, second in enumerate(diff):
                if second in derivative.parameters:
                    out[:, g, i, j] = bound_real(derivative.gradient(second), bindings)
    return out.reshape(values.shape[:-1] + out.shape[1:])


def prepared_values(prepared: PreparedCircuit, values: np.ndarray) -> np.ndarray:
    """Values for ``prepared.circuit`` from user values ``S + (P_orig,)``."""
    out = np.empty(values.shape[:-1] + (len(prepared.carry),))
    carried = prepared.carry >= 0
    out[..., carried] = values[..., prepared.carry[carried]]
    if prepared.rewritten:
        out[..., prepared.slot_columns] = evaluate_slots(prepared, values)
    return out
