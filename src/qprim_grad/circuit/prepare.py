"""Per-circuit preparation, cached: which gate arguments ("slots") depend on the
differentiated parameters, in a circuit a method can evaluate.

A method that moves gate arguments independently (parameter shift, linear combination)
needs every differentiated gate argument to be its own circuit parameter. When a circuit
already has that form — each differentiated parameter is the bare argument of exactly one
supported gate — the user's circuit is used unchanged. Otherwise a copy is made with the
same gates, qubits, registers and layout in which each such argument is a fresh parameter
(and gates outside the method's table are replaced by their definitions). The map from the
user's parameters to the slots, and its derivatives, are in :mod:`qprim_grad.circuit.chain_rule`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
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

from ..cache import BoundedCache
from ..errors import GradientMethodError
from .chain_rule import PreparedCircuit, Slot, affine_form
from .gates import REWRITTEN_GATES, Decomposer

__all__ = [
    "bound_values",
    "check_unitary",
    "parameter_names",
    "prepare_circuit",
]


#: a differentiated gate argument found by the walk: (instruction, argument, expression, gate)
_Found = tuple[int, int, ParameterExpression, str]


def _depends_on(value: object, diff: frozenset[Parameter]) -> bool:
    if isinstance(value, Parameter):
        return value in diff
    return isinstance(value, ParameterExpression) and not diff.isdisjoint(value.parameters)


def _gate_label(op: Any) -> str:
    return f"'{op.name}'"


def _needs_rewrite(op: Any) -> bool:
    """A gate simulators mis-handle, with a parameter to bind (see ``REWRITTEN_GATES``)."""
    return op.name in REWRITTEN_GATES and any(isinstance(p, ParameterExpression) for p in op.params)


def _inlined(instruction: CircuitInstruction, definition: QuantumCircuit) -> list:
    """``definition``'s instructions on ``instruction``'s qubits and clbits."""
    qubit_map = dict(zip(definition.qubits, instruction.qubits))
    clbit_map = dict(zip(definition.clbits, instruction.clbits))
    return [
        CircuitInstruction(
            sub.operation,
            tuple(qubit_map[q] for q in sub.qubits),
            tuple(clbit_map[c] for c in sub.clbits),
        )
        for sub in definition.data
    ]


@dataclass
class _Walk:
    """The instructions of a circuit with those a method cannot differentiate decomposed, and
    the differentiated gate arguments among them."""

    diff: frozenset[Parameter]
    supported: Collection[str]
    decompositions: Mapping[str, Decomposer]
    method: str
    instructions: list[CircuitInstruction] = field(default_factory=list)
    found: list[_Found] = field(default_factory=list)
    decomposed: bool = False  # true if anything was decomposed

    def add(self, instructions: Iterable[CircuitInstruction]) -> None:
        for instruction in instructions:
            self._add(instruction)

    def _add(self, instruction: CircuitInstruction) -> None:
        op = instruction.operation
        if isinstance(op, ControlFlowOp):
            self._check_control_flow(op)
            self.instructions.append(instruction)
            return
        arguments = [i for i, p in enumerate(op.params) if _depends_on(p, self.diff)]
        rewrite = _needs_rewrite(op)
        if not arguments and not rewrite:
            self.instructions.append(instruction)
            return
        if op.name in self.supported and not rewrite:
            position = len(self.instructions)
            self.found.extend((position, a, op.params[a], op.name) for a in arguments)
            self.instructions.append(instruction)
            return
        self.add(_inlined(instruction, self._definition(instruction)))
        self.decomposed = True

    def _check_control_flow(self, op: ControlFlowOp) -> None:
        inner = set().union(*(block.parameters for block in op.blocks))
        if not self.diff.isdisjoint(inner):
            raise GradientMethodError(
                f"method {self.method!r} cannot differentiate parameters inside the control-flow "
                f"operation {_gate_label(op)}; use method='finite_diff' or method='spsa'"
            )

    def _definition(self, instruction: CircuitInstruction) -> QuantumCircuit:
        op = instruction.operation
        if op.name in self.decompositions:
            return self.decompositions[op.name](instruction)
        if getattr(op, "definition", None) is not None:
            return op.definition
        raise GradientMethodError(
            f"method {self.method!r} cannot differentiate gate {_gate_label(op)} (no shift rule "
            f"and no definition to decompose); try method='finite_diff' or method='spsa'"
        )


def _with_fresh_slots(
    circuit: QuantumCircuit, walk: _Walk
) -> tuple[QuantumCircuit, list[Parameter]]:
    """A copy of ``circuit`` holding the walk's instructions, every differentiated argument
    replaced by a fresh parameter; and those parameters, in slot order."""
    vector = ParameterVector("_qpg_slot", len(walk.found))
    copy = circuit.copy_empty_like()
    by_instruction: dict[int, list[tuple[int, Parameter]]] = {}
    for (index, argument, _, _), fresh in zip(walk.found, vector):
        by_instruction.setdefault(index, []).append((argument, fresh))
    for index, instruction in enumerate(walk.instructions):
        if index in by_instruction:
            op = instruction.operation.copy()
            params = list(op.params)
            for argument, fresh in by_instruction[index]:
                params[argument] = fresh
            op.params = params
            instruction = instruction.replace(operation=op)
        copy._append(instruction)
    return copy, list(vector)


def _evaluated_circuit(
    circuit: QuantumCircuit, walk: _Walk
) -> tuple[QuantumCircuit, list[Any], bool]:
    """The circuit to evaluate, the parameter carrying each slot and whether it is a copy:
    the user's circuit when nothing was decomposed and every slot is its own parameter."""
    expressions = [expr for _, _, expr, _ in walk.found]
    bare = all(isinstance(e, Parameter) for e in expressions)
    if not walk.decomposed and bare and len(set(expressions)) == len(expressions):
        return circuit, expressions, False
    copy, fresh = _with_fresh_slots(circuit, walk)
    return copy, fresh, True


def _build(
    circuit: QuantumCircuit,
    parameters: tuple[Parameter, ...],
    supported: Collection[str],
    decompositions: Mapping[str, Decomposer],
    method: str,
) -> PreparedCircuit:
    walk = _Walk(frozenset(parameters), supported, decompositions, method)
    walk.add(circuit.data)
    evaluated, slot_params, rewritten = _evaluated_circuit(circuit, walk)
    slots = tuple(
        Slot(index, argument, expr, fresh, gate)
        for (index, argument, expr, gate), fresh in zip(walk.found, slot_params)
    )
    original_position = {p: i for i, p in enumerate(circuit.parameters)}
    slot_columns, carry = _columns(evaluated, slots, original_position, rewritten)
    affine, offset = affine_form([s.expression for s in slots], original_position)
    return PreparedCircuit(
        original=circuit,
        circuit=evaluated,
        slots=slots,
        parameters=parameters,
        slot_columns=slot_columns,
        carry=carry,
        affine=affine,
        offset=offset,
        rewritten=rewritten,
        parameter_names=parameter_names(evaluated),
    )


def _columns(
    evaluated: QuantumCircuit,
    slots: tuple[Slot, ...],
    original_position: dict[Parameter, int],
    rewritten: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Each slot's column in ``evaluated.parameters``; and for each of those parameters its
    column in the user's values (``-1`` for a fresh slot parameter)."""
    eval_params = list(evaluated.parameters)
    position = {p: i for i, p in enumerate(eval_params)}
    slot_set = {s.parameter for s in slots} if rewritten else set()
    carry = [-1 if p in slot_set else original_position[p] for p in eval_params]
    slot_columns = np.array([position[s.parameter] for s in slots], dtype=int)
    return slot_columns, np.array(carry, dtype=int)


_CACHE: BoundedCache[PreparedCircuit] = BoundedCache(size=128)


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


#: operations that make a circuit non-unitary when they act on a qubit already in use
_RESETS = frozenset({"reset", "initialize"})
_UNITARY_CACHE: BoundedCache[tuple[int, str, int] | None] = BoundedCache(size=128)


def _first_non_unitary(circuit: QuantumCircuit) -> tuple[int, str, int] | None:
    """``(instruction, name, qubit)`` of the first operation that makes ``circuit`` more than
    a unitary followed by final measurements: a reset (or ``initialize``) of a qubit in use,
    a measurement followed by an operation on its qubit, control flow or a ``store``."""
    names = circuit.count_ops().keys()
    if not circuit.has_control_flow_op() and not names & {"measure", "store", *_RESETS}:
        return None
    used: set[int] = set()
    measured: dict[int, int] = {}  # qubit -> its measurement's instruction
    for index, instruction in enumerate(circuit.data):
        op = instruction.operation
        if op.name == "barrier":
            continue
        qubits = [circuit.find_bit(q).index for q in instruction.qubits]
        if isinstance(op, ControlFlowOp) or op.name == "store":
            return index, op.name, qubits[0] if qubits else -1
        if op.name != "measure":
            for qubit in qubits:
                if qubit in measured:
                    return measured[qubit], "measure", qubit
        if op.name in _RESETS:
            for qubit in qubits:
                if qubit in used:
                    return index, op.name, qubit
        if op.name == "measure":
            measured.setdefault(qubits[0], index)
        used.update(qubits)
    return None


def check_unitary(circuit: QuantumCircuit, what: str) -> None:
    """A :class:`GradientMethodError` naming the first reset, mid-circuit measurement or
    classical control in ``circuit`` (``what``: who needs it unitary, for the message).
    Final measurements and resets of unused qubits are allowed. Cached per circuit."""
    found = _UNITARY_CACHE.get(
        ("unitary", id(circuit)), circuit, lambda: _first_non_unitary(circuit)
    )
    if found is None:
        return
    index, name, qubit = found
    kind = {"measure": "mid-circuit measurement"}.get(name, f"operation {name!r}")
    if name in _RESETS:
        kind = f"mid-circuit {name!r}"
    raise GradientMethodError(
        f"{what} cannot differentiate through the {kind} (instruction {index}, qubit {qubit}): "
        f"expectation values and the metric need a circuit that is unitary up to its final "
        f"measurements. Remove it, or differentiate the outcome distribution of a circuit "
        f"with mid-circuit measurements with GradientSampler"
    )
