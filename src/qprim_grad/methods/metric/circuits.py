"""Circuit pieces the sampling metric methods share: prefixes, Pauli labels, mapping."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from qiskit.circuit import QuantumCircuit
from qiskit.primitives.containers import ObservablesArray

from ...circuit.chain_rule import PreparedCircuit
from ...circuit.gates import GENERATORS
from ...circuit.prepare import parameter_names
from ...pipeline.types import Evaluation

__all__ = [
    "Generator",
    "evaluation_inputs",
    "evaluations_of",
    "map_circuits",
    "observables_array",
    "pauli_label",
    "prefix",
    "slot_generator",
    "value_columns",
]

#: a slot's generator ``c P``: ``(c, qubits, letters)``, ``letters[i]`` acting on ``qubits[i]``
Generator = tuple[float, tuple[int, ...], str]


def slot_generator(prepared: PreparedCircuit, slot: int) -> Generator:
    """``(c, qubits, letters)`` with the slot's generator ``c P`` (``letters[i]`` acting on
    ``qubits[i]``); ``c = 0`` for a generator that is a multiple of the identity."""
    entry = prepared.slots[slot]
    instruction = prepared.circuit.data[entry.instruction]
    terms = GENERATORS[entry.gate][entry.argument]
    if not terms:
        return 0.0, (), ""
    if len(terms) != 1:  # pragma: no cover - every table entry is one Pauli
        raise NotImplementedError(f"gate {entry.gate!r}: multi-term generators")
    coefficient, label = terms[0]
    circuit = prepared.circuit
    qubits = tuple(circuit.find_bit(q).index for q in instruction.qubits)
    return coefficient, qubits, label[::-1]  # label is little-endian over the gate's qubits


def pauli_label(width: int, letters: dict[int, str]) -> str:
    """A little-endian Pauli label of ``width`` qubits with ``letters[q]`` on qubit ``q``."""
    chars = ["I"] * width
    for qubit, letter in letters.items():
        chars[width - 1 - qubit] = letter
    return "".join(chars)


def prefix(circuit: QuantumCircuit, stop: int) -> QuantumCircuit:
    """``circuit.data[:stop]`` with the circuit's registers and layout, no measurements."""
    out = circuit.copy_empty_like()
    for instruction in circuit.data[:stop]:
        if instruction.operation.name in ("measure", "reset"):
            continue
        out._append(instruction)
    return out


def value_columns(source: QuantumCircuit, target: QuantumCircuit) -> np.ndarray:
    """Column in ``source.parameters`` of each of ``target.parameters`` (matched by name)."""
    position = {name: i for i, name in enumerate(parameter_names(source))}
    return np.array([position[name] for name in parameter_names(target)], dtype=int)


def observables_array(labels: Sequence[str], ndim: int) -> ObservablesArray:
    """Labels as an ``ObservablesArray`` of shape ``(len(labels),) + (1,) * ndim``."""
    array = np.empty(len(labels), dtype=object)
    for i, label in enumerate(labels):
        array[i] = {label: 1.0}
    return ObservablesArray(array).reshape((len(labels),) + (1,) * ndim)


def map_circuits(pass_manager: Any, circuits: list[QuantumCircuit]) -> list[QuantumCircuit]:
    """``pass_manager.run`` over a list (always a list back)."""
    if pass_manager is None or not circuits:
        return circuits
    mapped = pass_manager.run(circuits)
    return [mapped] if isinstance(mapped, QuantumCircuit) else list(mapped)


def evaluation_inputs(
    pass_manager: Any, source: QuantumCircuit, entries: Sequence[Any], ndim: int
) -> list[tuple[Any, ObservablesArray, np.ndarray]]:
    """Each entry (a circuit of ``source``'s parameters with Pauli ``labels``) with its
    observables (``ndim`` trailing axes; on the mapped circuit's layout) and the columns of
    ``source``'s values its circuit takes."""
    out = []
    for entry in entries:
        observables = observables_array(entry.labels, ndim)
        if pass_manager is not None and entry.circuit.layout is not None:
            observables = observables.apply_layout(entry.circuit.layout)
        out.append((entry, observables, value_columns(source, entry.circuit)))
    return out


def evaluations_of(
    inputs: Sequence[tuple[Any, ObservablesArray, np.ndarray]], base: np.ndarray
) -> list[Evaluation]:
    """One evaluation per input of :func:`evaluation_inputs` at the prepared values ``base``."""
    return [
        Evaluation(entry.circuit, base[..., columns][None], None, observables)
        for entry, observables, columns in inputs
    ]
