"""Per-circuit preparation, cached: which gate arguments ("slots") depend on the
differentiated parameters, and the chain-rule map from parameters to slot angles.

A method that moves gate arguments independently (parameter shift, linear combination)
needs every differentiated gate argument to be its own circuit parameter. When a circuit
already has that form — each differentiated parameter is the bare argument of exactly one
supported gate — the user's circuit is used unchanged. Otherwise a copy is made with the
same gates, qubits, registers and layout in which each such argument is a fresh parameter
(and gates outside the method's table are replaced by their definitions).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from qiskit.circuit import (
    CircuitInstruction,
    ControlFlowOp,
    Parameter,
    ParameterExpression,
    ParameterVector,
    QuantumCircuit,
)
from scipy import sparse

from .errors import GradientMethodError

__all__ = ["Slot", "PreparedCircuit", "prepare_circuit", "evaluate_slots", "slot_jacobian"]

Decomposer = Callable[[CircuitInstruction], QuantumCircuit]

#: Parameterised gates that qiskit-aer (<= 0.18.2) simulates wrongly when it binds the
#: values itself; every method evaluates them through their definitions instead.
REWRITTEN_GATES = frozenset({"crx", "cry", "crz", "cp", "mcphase", "cu1", "cu3"})


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

    ``offset + values @ affine.T`` gives the prepared circuit's parameter values from the
    user's (when every slot is affine); ``jacobian`` is ``d slot / d diff-parameter``.
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

    @property
    def num_slots(self) -> int:
        return len(self.slots)


def _depends_on(value: object, diff: frozenset[Parameter]) -> bool:
    if isinstance(value, Parameter):
        return value in diff
    return isinstance(value, ParameterExpression) and not diff.isdisjoint(value.parameters)


def _gate_label(op) -> str:
    return f"'{op.name}'"


def _walk(
    instructions: Sequence[CircuitInstruction],
    diff: frozenset[Parameter],
    supported: Collection[str],
    decompositions: Mapping[str, Decomposer],
    method: str,
    out: list[CircuitInstruction],
    slots_out: list[tuple[int, int, ParameterExpression, str]],
) -> bool:
    """Append ``instructions`` to ``out`` (decomposing unsupported differentiated gates)
    and their differentiated arguments to ``slots_out``; true if anything was decomposed."""
    decomposed = False
    for instruction in instructions:
        op = instruction.operation
        if isinstance(op, ControlFlowOp):
            inner = set().union(*(block.parameters for block in op.blocks))
            if not diff.isdisjoint(inner):
                raise GradientMethodError(
                    f"method {method!r} cannot differentiate parameters inside the control-flow "
                    f"operation {_gate_label(op)}; use method='finite_diff' or method='spsa'"
                )
            out.append(instruction)
            continue
        arguments = [i for i, p in enumerate(op.params) if _depends_on(p, diff)]
        parameterized = op.name in REWRITTEN_GATES and any(
            isinstance(p, ParameterExpression) for p in op.params
        )
        if not arguments and not parameterized:
            out.append(instruction)
            continue
        if op.name in supported and not parameterized:
            for argument in arguments:
                slots_out.append((len(out), argument, op.params[argument], op.name))
            out.append(instruction)
            continue
        definition = None
        if op.name in decompositions:
            definition = decompositions[op.name](instruction)
        elif getattr(op, "definition", None) is not None:
            definition = op.definition
        if definition is None:
            raise GradientMethodError(
                f"method {method!r} cannot differentiate gate {_gate_label(op)} (no shift rule "
                f"and no definition to decompose); try method='finite_diff' or method='spsa'"
            )
        qubit_map = dict(zip(definition.qubits, instruction.qubits))
        clbit_map = dict(zip(definition.clbits, instruction.clbits))
        mapped = [
            CircuitInstruction(
                sub.operation,
                tuple(qubit_map[q] for q in sub.qubits),
                tuple(clbit_map[c] for c in sub.clbits),
            )
            for sub in definition.data
        ]
        _walk(mapped, diff, supported, decompositions, method, out, slots_out)
        decomposed = True
    return decomposed


def _build(
    circuit: QuantumCircuit,
    parameters: tuple[Parameter, ...],
    supported: Collection[str],
    decompositions: Mapping[str, Decomposer],
    method: str,
) -> PreparedCircuit:
    diff = frozenset(parameters)
    instructions: list[CircuitInstruction] = []
    found: list[tuple[int, int, ParameterExpression, str]] = []
    decomposed = _walk(circuit.data, diff, supported, decompositions, method, instructions, found)

    expressions = [expr for _, _, expr, _ in found]
    bare = all(isinstance(e, Parameter) for e in expressions)
    if not decomposed and bare and len(set(expressions)) == len(expressions):
        prepared_circuit = circuit
        slot_params = [e for e in expressions]  # type: ignore[misc]
        rewritten = False
    else:
        vector = ParameterVector("_qpg_slot", len(found))
        prepared_circuit = circuit.copy_empty_like()
        slot_params = list(vector)
        by_instruction: dict[int, list[tuple[int, Parameter]]] = {}
        for (index, argument, _, _), fresh in zip(found, vector):
            by_instruction.setdefault(index, []).append((argument, fresh))
        for index, instruction in enumerate(instructions):
            if index in by_instruction:
                op = instruction.operation.copy()
                params = list(op.params)
                for argument, fresh in by_instruction[index]:
                    params[argument] = fresh
                op.params = params
                instruction = instruction.replace(operation=op)
            prepared_circuit._append(instruction)
        rewritten = True

    slots = tuple(
        Slot(index, argument, expr, fresh, gate)
        for (index, argument, expr, gate), fresh in zip(found, slot_params)
    )
    eval_params = list(prepared_circuit.parameters)
    position = {p: i for i, p in enumerate(eval_params)}
    original_position = {p: i for i, p in enumerate(circuit.parameters)}
    slot_columns = np.array([position[s.parameter] for s in slots], dtype=int)
    slot_set = {s.parameter for s in slots} if rewritten else set()
    carry = np.array(
        [-1 if p in slot_set else original_position[p] for p in eval_params], dtype=int
    )
    affine, offset = _affine_form(expressions, original_position)
    return PreparedCircuit(
        original=circuit,
        circuit=prepared_circuit,
        slots=slots,
        parameters=parameters,
        slot_columns=slot_columns,
        carry=carry,
        affine=affine,
        offset=offset,
        rewritten=rewritten,
    )


def _affine_form(
    expressions: Sequence[ParameterExpression], position: dict[Parameter, int]
) -> tuple[sparse.csr_array | None, np.ndarray | None]:
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


def evaluate_slots(prepared: PreparedCircuit, values: np.ndarray) -> np.ndarray:
    """Slot angles for user parameter values of shape ``S + (P_orig,)`` -> ``S + (G,)``."""
    if prepared.affine is not None:
        flat = values.reshape(-1, values.shape[-1])
        slots = np.asarray((prepared.affine @ flat.T).T) + prepared.offset
        return slots.reshape(values.shape[:-1] + (prepared.num_slots,))
    params = list(prepared.original.parameters)
    flat = values.reshape(-1, values.shape[-1])
    out = np.empty((flat.shape[0], prepared.num_slots))
    for row, vals in enumerate(flat):
        binding = dict(zip(params, vals))
        for g, slot in enumerate(prepared.slots):
            expr = slot.expression
            bound = expr.bind({p: binding[p] for p in expr.parameters})
            out[row, g] = float(np.real(complex(bound.numeric())))
    return out.reshape(values.shape[:-1] + (prepared.num_slots,))


def slot_jacobian(prepared: PreparedCircuit, values: np.ndarray) -> Any:
    """``d slot_g / d theta_j``: a sparse ``(G, P)`` matrix when every slot is affine in the
    parameters (computed once per prepared circuit), else a dense ``S + (G, P)`` array."""
    if prepared.affine is not None:
        return affine_jacobian(prepared)
    params = list(prepared.original.parameters)
    flat = values.reshape(-1, values.shape[-1])
    out = np.zeros((flat.shape[0], prepared.num_slots, len(prepared.parameters)))
    for g, slot in enumerate(prepared.slots):
        expr = slot.expression
        for j, param in enumerate(prepared.parameters):
            if param not in expr.parameters:
                continue
            derivative = expr.gradient(param)
            if not isinstance(derivative, ParameterExpression):
                out[:, g, j] = float(np.real(derivative))
                continue
            for row, vals in enumerate(flat):
                binding = dict(zip(params, vals))
                bound = derivative.bind({p: binding[p] for p in derivative.parameters})
                out[row, g, j] = float(np.real(complex(bound.numeric())))
    return out.reshape(values.shape[:-1] + out.shape[1:])


@lru_cache(maxsize=256)
def affine_jacobian(prepared: PreparedCircuit) -> sparse.csr_array:
    """``d slot / d theta`` as a sparse ``(G, P)`` matrix for an affine prepared circuit
    (computed once per prepared circuit)."""
    position = {p: i for i, p in enumerate(prepared.original.parameters)}
    columns = [position[p] for p in prepared.parameters]
    assert prepared.affine is not None
    return sparse.csr_array(prepared.affine[:, columns])  # type: ignore[index]


def parameter_map(prepared: PreparedCircuit) -> tuple[tuple[Parameter, ...], Any] | None:
    """For a rewritten circuit with affine arguments: its slot parameters and the constant
    Jacobian ``d slot / d theta`` (see :attr:`~qprim_grad.methods.base.Plan.parameter_map`)."""
    if not prepared.rewritten or prepared.affine is None:
        return None
    return tuple(slot.parameter for slot in prepared.slots), affine_jacobian(prepared)


def _bound_real(expr: Any, params: list[Parameter], flat: np.ndarray) -> np.ndarray:
    """A real number or expression evaluated on every row of ``flat`` (columns ``params``)."""
    if not isinstance(expr, ParameterExpression):
        return np.full(flat.shape[0], float(np.real(expr)))
    out = np.empty(flat.shape[0])
    for row, vals in enumerate(flat):
        binding = dict(zip(params, vals))
        bound = expr.bind({p: binding[p] for p in expr.parameters})
        out[row] = float(np.real(complex(bound.numeric())))
    return out


def slot_curvature(prepared: PreparedCircuit, values: np.ndarray) -> np.ndarray:
    """``d^2 slot_g / d theta_i d theta_j``, a dense ``S + (G, P, P)`` array (zero for
    affine arguments)."""
    params = list(prepared.original.parameters)
    flat = values.reshape(-1, values.shape[-1])
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
                    out[:, g, i, j] = _bound_real(derivative.gradient(second), params, flat)
    return out.reshape(values.shape[:-1] + out.shape[1:])


def chain_rule(
    prepared: PreparedCircuit, values: np.ndarray
) -> Callable[[], tuple[tuple[Parameter, ...], np.ndarray, np.ndarray]] | None:
    """For a rewritten circuit with non-affine arguments: a callable giving its slot
    parameters, the Jacobian ``S + (G, P)`` and the curvature ``S + (G, P, P)`` of the
    arguments at ``values`` (see :attr:`~qprim_grad.methods.base.Plan.chain_rule`)."""
    if not prepared.rewritten or prepared.affine is not None:
        return None

    def compute() -> tuple[tuple[Parameter, ...], np.ndarray, np.ndarray]:
        slots = tuple(slot.parameter for slot in prepared.slots)
        return slots, slot_jacobian(prepared, values), slot_curvature(prepared, values)

    return compute


def prepared_values(prepared: PreparedCircuit, values: np.ndarray) -> np.ndarray:
    """Values for ``prepared.circuit`` from user values ``S + (P_orig,)``."""
    out = np.empty(values.shape[:-1] + (len(prepared.carry),))
    carried = prepared.carry >= 0
    out[..., carried] = values[..., prepared.carry[carried]]
    if prepared.rewritten:
        out[..., prepared.slot_columns] = evaluate_slots(prepared, values)
    return out


class _PreparationCache:
    """Small LRU keyed by circuit identity, verified on every hit against the circuit's
    content: an entry keeps its circuit alive (so an id is never reused while cached) and a
    snapshot of its instructions and global phase (``CircuitData`` compared in Rust, about a
    millisecond for a thousand gates); a circuit edited in place since (a gate replaced,
    parameters assigned, bits or layout changed) is prepared again."""

    def __init__(self, size: int = 128) -> None:
        self._entries: OrderedDict[tuple, tuple[QuantumCircuit, Any, Any]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: tuple, circuit: QuantumCircuit, build: Callable[[], Any]) -> Any:
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and entry[0] is circuit and _unchanged(circuit, entry[1]):
            with self._lock:
                if key in self._entries:
                    self._entries.move_to_end(key)
            return entry[2]
        snapshot = _snapshot(circuit)
        value = build()
        with self._lock:
            self._entries[key] = (circuit, snapshot, value)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._entries)


def _snapshot(circuit: QuantumCircuit) -> tuple[Any, ...]:
    """What a cached preparation depends on: the instructions (with their parameters and
    bits, copied), the global phase, the bits and the layout."""
    return (
        circuit._data.copy(),
        circuit.num_qubits,
        circuit.num_clbits,
        circuit.layout,
    )


def _unchanged(circuit: QuantumCircuit, snapshot: tuple[Any, ...]) -> bool:
    data, num_qubits, num_clbits, layout = snapshot
    return (
        circuit.layout is layout
        and circuit.num_qubits == num_qubits
        and circuit.num_clbits == num_clbits
        and len(circuit._data) == len(data)
        and circuit._data == data
    )


_CACHE = _PreparationCache()


def parameter_names(circuit: QuantumCircuit) -> tuple[str, ...]:
    """``circuit.parameters`` names in order (not cached: cheaper than verifying a cache)."""
    return tuple(p.name for p in circuit.parameters)


def prepare_circuit(
    circuit: QuantumCircuit,
    parameters: tuple[Parameter, ...],
    supported: Collection[str],
    *,
    method: str,
    decompositions: Mapping[str, Decomposer] | None = None,
) -> PreparedCircuit:
    """Prepare (or fetch from the cache) ``circuit`` for a method supporting ``supported``."""
    key = (id(circuit), parameters, method)
    return _CACHE.get(
        key,
        circuit,
        lambda: _build(circuit, parameters, frozenset(supported), decompositions or {}, method),
    )


def bound_values(circuit: QuantumCircuit, bindings: Any) -> np.ndarray:
    """A pub's parameter values as one array ``shape + (num_parameters,)`` in
    ``circuit.parameters`` order (no copy when already in that form)."""
    if not circuit.num_parameters:
        return np.zeros(tuple(bindings.shape) + (0,))
    names = parameter_names(circuit)
    if len(bindings.data) == 1:
        ((key, array),) = bindings.data.items()
        if key == names:
            return array
    return bindings.as_array(names)
