"""Circuit pieces the sampling metric methods share: prefixes, Pauli labels, mapping."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from qiskit.circuit import CircuitInstruction, QuantumCircuit
from qiskit.primitives.containers import ObservablesArray

from ...circuits import PreparedCircuit, parameter_names
from ..lin_comb import GENERATORS

__all__ = ["slot_generator", "prefix", "pauli_label", "value_columns", "map_circuits"]


def slot_generator(prepared: PreparedCircuit, slot: int) -> tuple[float, tuple[int, ...], str]:
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


def multiply(first: dict[int, str], second: dict[int, str]) -> dict[int, str]:
    """The product of two Pauli strings on disjoint qubits."""
    out = dict(first)
    out.update(second)
    return out


def prefix(circuit: QuantumCircuit, stop: int) -> QuantumCircuit:
    """``circuit.data[:stop]`` with the circuit's registers and layout, no measurements."""
    out = circuit.copy_empty_like()
    for instruction in circuit.data[:stop]:
        if instruction.operation.name in ("measure", "reset"):
            continue
        out._append(instruction)
    return out


def append(circuit: QuantumCircuit, instruction: CircuitInstruction) -> None:
    circuit._append(instruction)


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
