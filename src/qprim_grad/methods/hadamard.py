"""Pieces of Hadamard tests, shared by ``lin_comb`` and the ``lin_comb`` metric: where the
auxiliary qubit goes, controlled Paulis on it, its measurement and the observables extended
by a Pauli on it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from qiskit.circuit import ClassicalRegister, QuantumCircuit, QuantumRegister, Qubit
from qiskit.primitives.containers import ObservablesArray

from ..errors import GradientMethodError

__all__ = [
    "AUX",
    "AuxPlacement",
    "add_aux_qubit",
    "controlled_paulis",
    "find_coupling_map",
    "extended_observables",
    "measure_aux",
    "observable_support",
]

#: name of the auxiliary qubit's register (and of its classical register)
AUX = "qpg_aux"


def _passes(obj: Any) -> Iterator[Any]:
    """Every pass inside a (staged) pass manager, best effort."""
    stages = getattr(obj, "stages", None)
    children: list[Any] = []
    if stages is not None:
        children = [getattr(obj, stage, None) for stage in stages]
    flow = getattr(obj, "to_flow_controller", None)  # a pass manager's passes, flattened
    children += list(flow().tasks if callable(flow) else getattr(obj, "tasks", None) or [])
    for child in children:
        if child is None:
            continue
        for task in child if isinstance(child, list | tuple) else [child]:
            yield task
            yield from _passes(task)


def _built_coupling_map(source: Any) -> tuple[bool, Any]:
    """``(True, map)`` if ``source`` or its ``target`` can build a coupling map (``map``
    ``None`` if building failed), else ``(False, None)``."""
    for candidate in (source, getattr(source, "target", None)):
        if candidate is not None and hasattr(candidate, "build_coupling_map"):
            try:
                return True, candidate.build_coupling_map()
            except Exception:
                return True, None
    return False, None


def find_coupling_map(source: Any) -> Any:
    """A ``CouplingMap`` from a coupling map, a target, a backend or a pass manager, or None."""
    if source is None:
        return None
    if hasattr(source, "distance") and hasattr(source, "physical_qubits"):
        return source
    found, built = _built_coupling_map(source)
    if found:
        return built
    try:
        for task in _passes(source):
            inner = getattr(task, "target", None) or getattr(task, "find_coupling_map", None)
            if inner is not None:
                return find_coupling_map(inner)
    except Exception:
        return None
    return None


class AuxPlacement:
    """Where an ISA circuit's auxiliary qubit goes: an idle physical qubit (touched by no
    instruction and no observable), the one closest to the given qubits on ``coupling``."""

    def __init__(self, coupling: Any = None) -> None:
        self.coupling = coupling

    @staticmethod
    def idle_qubits(circuit: QuantumCircuit, busy: frozenset[int]) -> list[int]:
        """Qubits of an ISA circuit no instruction and no observable touches."""
        used = set(busy)
        for instruction in circuit.data:
            if instruction.operation.name == "barrier":
                continue
            used.update(circuit.find_bit(q).index for q in instruction.qubits)
        idle = [i for i in range(circuit.num_qubits) if i not in used]
        if not idle:
            raise GradientMethodError(
                f"lin_comb needs one auxiliary qubit, but the ISA circuit already uses every "
                f"one of the device's {circuit.num_qubits} qubits (in gates or observables); "
                "use a method that needs no extra qubit: 'param_shift', 'finite_diff' or 'spsa'"
            )
        return idle

    def closest(self, idle: list[int], targets: Sequence[int]) -> int:
        """The idle qubit nearest ``targets`` (the first idle one without a coupling map)."""
        coupling = self.coupling
        if coupling is None:
            return idle[0]

        def cost(qubit: int) -> tuple[float, int]:
            try:
                return (sum(coupling.distance(qubit, t) for t in targets), qubit)
            except Exception:  # disconnected or unknown qubit
                return (float("inf"), qubit)

        return min(idle, key=cost)


def add_aux_qubit(test: QuantumCircuit, aux_index: int | None) -> tuple[Qubit, int]:
    """The auxiliary qubit of ``test`` and its index: qubit ``aux_index`` (an idle qubit of
    an ISA circuit), or a new one-qubit register appended to ``test``."""
    if aux_index is None:
        register = QuantumRegister(1, AUX)
        test.add_register(register)
        return register[0], test.num_qubits - 1
    return test.qubits[aux_index], aux_index


def controlled_paulis(
    test: QuantumCircuit, aux: Qubit, qubits: Sequence[Any], letters: str
) -> None:
    """``letters[i]`` on ``qubits[i]`` controlled by ``aux`` (identities skipped)."""
    gates = {"X": test.cx, "Y": test.cy, "Z": test.cz}
    for qubit, letter in zip(qubits, letters):
        if letter in gates:
            gates[letter](aux, qubit)


def measure_aux(test: QuantumCircuit, aux: Qubit, bases: Sequence[str]) -> None:
    """Measure ``aux`` in each of ``bases`` (``"Y"`` or ``"X"``), one classical register each."""
    for basis in bases:
        classical = ClassicalRegister(1, AUX)
        test.add_register(classical)
        if basis == "Y":
            test.sdg(aux)
        test.h(aux)
        test.measure(aux, classical[0])


def extended_observables(
    observables: ObservablesArray, letters: str, aux: int, width: int
) -> ObservablesArray:
    """``letter`` on qubit ``aux`` (of ``width``) tensored with each observable, per letter
    (observables one qubit narrower than ``width``: the auxiliary qubit was appended)."""
    out = np.empty((len(letters),) + observables.shape, dtype=object)
    position = width - 1 - aux  # labels are little-endian strings
    for index in np.ndindex(observables.shape):
        entry = observables[index]
        for i, letter in enumerate(letters):
            terms = {}
            for label, coeff in entry.items():
                if len(label) == width - 1:  # the auxiliary qubit was appended
                    label = label[:position] + "I" + label[position:]
                terms[label[:position] + letter + label[position + 1 :]] = coeff
            out[(i,) + index] = terms
    return ObservablesArray(out)


def observable_support(observables: ObservablesArray | None) -> frozenset[int]:
    """Qubits some observable acts on."""
    if observables is None:
        return frozenset()
    used: set[int] = set()
    for index in np.ndindex(observables.shape):
        for label in observables[index]:
            used.update(i for i, char in enumerate(reversed(label)) if char != "I")
    return frozenset(used)
