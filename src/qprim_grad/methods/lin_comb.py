"""Linear combination of unitaries: a Hadamard test with one auxiliary qubit.

For a gate ``exp(-i theta G)`` with ``G = sum_k c_k P_k`` (Paulis on the gate's qubits),

* real part: ``d<O>/d theta = 2 Re<d psi|O|psi> = sum_k 2 c_k <Y_aux (x) O>_k``,
* imaginary part: ``-2 Im<d psi|O|psi> = -sum_k 2 c_k <X_aux (x) O>_k``,

where circuit ``k`` starts the auxiliary qubit in ``|+>`` and applies ``P_k`` controlled
by it right after the gate. The generators are data (:data:`GENERATORS`), taken traceless:
a gate's global phase does not enter, so the imaginary part follows the phase convention
of qiskit-algorithms' ``LinCombEstimatorGradient`` (and equals it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from qiskit.circuit import (
    CircuitInstruction,
    ClassicalRegister,
    QuantumCircuit,
    QuantumRegister,
)
from qiskit.primitives.containers import ObservablesArray
from scipy import sparse

from ..circuits import (
    PreparedCircuit,
    _PreparationCache,
    chain_rule,
    parameter_map,
    parameter_names,
    prepare_circuit,
    prepared_values,
    slot_jacobian,
)
from .base import Evaluation, GradientMethodError, Plan, PubTask

__all__ = ["LinComb", "GENERATORS", "DERIVATIVE_TYPES"]

_HALF = 0.5
#: gate name -> per argument, the generator ``G`` of ``exp(-i theta G)`` as (coefficient,
#: Pauli label over the gate's qubits, little-endian).
GENERATORS: dict[str, tuple[tuple[tuple[float, str], ...], ...]] = {
    "rx": (((_HALF, "X"),),),
    "ry": (((_HALF, "Y"),),),
    "rz": (((_HALF, "Z"),),),
    "p": (((_HALF, "Z"),),),
    "u1": (((_HALF, "Z"),),),
    "rxx": (((_HALF, "XX"),),),
    "ryy": (((_HALF, "YY"),),),
    "rzz": (((_HALF, "ZZ"),),),
    "rzx": (((_HALF, "XZ"),),),
    "global_phase": ((),),
}

DERIVATIVE_TYPES = ("real", "imag", "complex")
_AUX = "qpg_aux"


def _u_as_rotations(instruction: CircuitInstruction) -> QuantumCircuit:
    """``U(theta, phi, lam) = P(phi) RY(theta) P(lam)`` exactly (no global phase)."""
    op = instruction.operation
    params = list(op.params)
    if op.name == "u2":
        params = [np.pi / 2, *params]
    theta, phi, lam = params
    circuit = QuantumCircuit(1)
    circuit.p(lam, 0)
    circuit.ry(theta, 0)
    circuit.p(phi, 0)
    return circuit


_DECOMPOSITIONS = {"u": _u_as_rotations, "u3": _u_as_rotations, "u2": _u_as_rotations}


def _normalize_derivative_type(value: Any) -> str:
    name = getattr(value, "name", value)
    name = str(name).lower()
    if name not in DERIVATIVE_TYPES:
        raise GradientMethodError(
            f"unknown derivative_type {value!r}; use one of {', '.join(DERIVATIVE_TYPES)}"
        )
    return name


def _extended(
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


def _support(observables: ObservablesArray | None) -> frozenset[int]:
    """Qubits some observable acts on."""
    if observables is None:
        return frozenset()
    used: set[int] = set()
    for index in np.ndindex(observables.shape):
        for label in observables[index]:
            used.update(i for i, char in enumerate(reversed(label)) if char != "I")
    return frozenset(used)


def _tasks(obj: Any) -> Iterator[Any]:
    """Every pass inside a (staged) pass manager, best effort."""
    stages = getattr(obj, "stages", None)
    children: list[Any] = []
    if stages is not None:
        children = [getattr(obj, stage, None) for stage in stages]
    children += list(getattr(obj, "_tasks", None) or getattr(obj, "tasks", None) or [])
    for child in children:
        if child is None:
            continue
        for task in child if isinstance(child, list | tuple) else [child]:
            yield task
            yield from _tasks(task)


def _coupling_map(source: Any) -> Any:
    """A ``CouplingMap`` from a coupling map, a target, a backend or a pass manager, or None."""
    if source is None:
        return None
    if hasattr(source, "distance") and hasattr(source, "physical_qubits"):
        return source
    for candidate in (source, getattr(source, "target", None)):
        if candidate is not None and hasattr(candidate, "build_coupling_map"):
            try:
                return candidate.build_coupling_map()
            except Exception:
                return None
    try:
        for task in _tasks(source):
            found = getattr(task, "target", None) or getattr(task, "coupling_map", None)
            if found is not None:
                return _coupling_map(found)
    except Exception:
        return None
    return None


@dataclass(frozen=True)
class _Term:
    """One Hadamard-test circuit: generator slot, Pauli coefficient, circuit as submitted,
    and where its auxiliary qubit sits before mapping (index, circuit width)."""

    slot: int
    coefficient: float
    circuit: QuantumCircuit
    aux: int
    width: int
    names: tuple[str, ...] = ()  # circuit.parameters' names (computed once, when cached)


class LinComb:
    """Hadamard-test gradients with one auxiliary qubit.

    Args:
        derivative_type: ``"real"`` (``d<O>/d theta``), ``"imag"`` or ``"complex"``.
        pass_manager: maps the Hadamard-test circuits (and observables) onto a device;
            transpiled circuits are cached per circuit and parameters, so an optimisation
            loop transpiles once.
        coupling_map: where to look for an auxiliary qubit next to a gate's qubits on an ISA
            circuit (a ``CouplingMap``, ``Target`` or backend); by default taken from the
            pass manager's target.

    On an ISA circuit (one with a ``layout``) the auxiliary qubit is an idle physical qubit
    (touched by no instruction and no observable), the one closest to the differentiated
    gate's qubits; if the circuit uses every qubit of the device a
    :class:`GradientMethodError` says so. Circuits without a layout get a new qubit.
    """

    name = "lin_comb"

    def __init__(
        self, derivative_type: Any = "real", pass_manager: Any = None, coupling_map: Any = None
    ) -> None:
        self.derivative_type = _normalize_derivative_type(derivative_type)
        self.pass_manager = pass_manager
        self._coupling = _coupling_map(coupling_map if coupling_map is not None else pass_manager)
        # transpiled circuits, per user circuit (identity) and differentiated parameters
        self._terms = _PreparationCache(size=64)
        self._centers = _PreparationCache(size=64)

    @property
    def options(self) -> dict[str, Any]:
        return {
            "derivative_type": self.derivative_type,
            "pass_manager": None if self.pass_manager is None else type(self.pass_manager).__name__,
        }

    # -- circuits ---------------------------------------------------------------------------
    def _test_circuits(
        self, prepared: PreparedCircuit, sampler: bool, busy: frozenset[int]
    ) -> list[_Term]:
        """A Hadamard-test circuit for every generator term."""
        bases = ["Y"] if sampler and self.derivative_type == "real" else []
        if sampler and self.derivative_type != "real":
            raise GradientMethodError(
                "lin_comb on a sampler gives real derivatives only; use derivative_type='real'"
            )
        out = []
        circuit = prepared.circuit
        idle = self._idle_qubits(circuit, busy) if circuit.layout is not None else None
        for g, slot in enumerate(prepared.slots):
            instruction = circuit.data[slot.instruction]
            aux = None
            if idle is not None:
                aux = self._closest(idle, [circuit.find_bit(q).index for q in instruction.qubits])
            for coefficient, label in GENERATORS[instruction.operation.name][slot.argument]:
                test = self._hadamard_test(circuit, slot.instruction, label, bases, aux)
                index = circuit.num_qubits if aux is None else aux
                out.append(_Term(g, coefficient, test, index, test.num_qubits))
        return out

    @staticmethod
    def _idle_qubits(circuit: QuantumCircuit, busy: frozenset[int]) -> list[int]:
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

    def _closest(self, idle: list[int], targets: list[int]) -> int:
        coupling = self._coupling
        if coupling is None:
            return idle[0]

        def cost(qubit: int) -> tuple[float, int]:
            try:
                return (sum(coupling.distance(qubit, t) for t in targets), qubit)
            except Exception:  # disconnected or unknown qubit
                return (float("inf"), qubit)

        return min(idle, key=cost)

    @staticmethod
    def _hadamard_test(
        circuit: QuantumCircuit,
        position: int,
        label: str,
        bases: list[str],
        aux_index: int | None = None,
    ) -> QuantumCircuit:
        test = circuit.copy_empty_like()
        if aux_index is None:
            register = QuantumRegister(1, _AUX)
            test.add_register(register)
            aux = register[0]
        else:
            aux = test.qubits[aux_index]
        test.h(aux)
        instruction = circuit.data[position]
        for index, instr in enumerate(circuit.data):
            test._append(instr)
            if index != position:
                continue
            for qubit, letter in zip(instruction.qubits, reversed(label)):
                if letter == "X":
                    test.cx(aux, qubit)
                elif letter == "Y":
                    test.cy(aux, qubit)
                elif letter == "Z":
                    test.cz(aux, qubit)
        for basis in bases:
            classical = ClassicalRegister(1, _AUX)
            test.add_register(classical)
            if basis == "Y":
                test.sdg(aux)
            test.h(aux)
            test.measure(aux, classical[0])
        return test

    def _circuits_for(self, task: PubTask, prepared: PreparedCircuit) -> list[_Term]:
        busy = _support(task.observables) if task.circuit.layout is not None else frozenset()
        key = (id(task.circuit), task.parameters, task.kind, busy)
        return self._terms.get(
            key, task.circuit, lambda: self._mapped_terms(prepared, task.kind, busy)
        )

    def _mapped_terms(
        self, prepared: PreparedCircuit, kind: str, busy: frozenset[int]
    ) -> list[_Term]:
        terms = self._test_circuits(prepared, kind == "sampler", busy)
        if self.pass_manager is not None and terms:
            mapped = self.pass_manager.run([term.circuit for term in terms])
            if isinstance(mapped, QuantumCircuit):
                mapped = [mapped]
            terms = [replace(term, circuit=circuit) for term, circuit in zip(terms, mapped)]
        return [replace(term, names=parameter_names(term.circuit)) for term in terms]

    # -- plan -------------------------------------------------------------------------------
    def plan(self, task: PubTask) -> Plan:
        prepared = prepare_circuit(
            task.circuit,
            task.parameters,
            GENERATORS.keys(),
            method=self.name,
            decompositions=_DECOMPOSITIONS,
        )
        base = prepared_values(prepared, task.values)
        jacobian = slot_jacobian(prepared, task.values)  # sparse (G, P) or S + (G, P)
        if sparse.issparse(jacobian):
            jacobian = jacobian.toarray().reshape((1,) * (base.ndim - 1) + jacobian.shape)
        letters = {"real": "Y", "imag": "X", "complex": "YX"}[self.derivative_type]
        phases = {"Y": 1.0, "X": -1j if self.derivative_type == "complex" else -1.0}
        evaluations: list[Evaluation] = []
        for term in self._circuits_for(task, prepared):
            slot_weights = 2.0 * term.coefficient * jacobian[..., term.slot, :]  # w + (P,)
            weights = np.stack([phases[letter] * slot_weights for letter in letters])
            if task.kind == "estimator":
                observables = _extended(task.observables, letters, term.aux, term.width)
                if self.pass_manager is not None and term.circuit.layout is not None:
                    observables = observables.apply_layout(term.circuit.layout)
                evaluation = Evaluation(
                    term.circuit, base[None], weights, observables, parameter_names=term.names
                )
            else:
                evaluation = Evaluation(
                    term.circuit, base[None], weights, aux_register=_AUX, parameter_names=term.names
                )
            evaluations.append(evaluation)
        return Plan(
            evaluations=evaluations,
            center=self._center(task, prepared, base),
            parameter_map=parameter_map(prepared),
            chain_rule=chain_rule(prepared, task.values),
        )

    def _center(self, task: PubTask, prepared: PreparedCircuit, base: np.ndarray):
        """The unshifted evaluation: the user's pub, unless the circuit was rewritten or is
        a virtual circuit that ``pass_manager`` must map like the Hadamard tests."""
        mapped = self.pass_manager is not None and task.circuit.layout is None
        if not prepared.rewritten and not mapped:
            return None
        circuit, observables = prepared.circuit, None
        if mapped:
            key = (id(task.circuit), task.parameters)
            circuit = self._centers.get(
                key, task.circuit, lambda: self.pass_manager.run(prepared.circuit)
            )
            if task.observables is not None:
                observables = task.observables.reshape((1,) + task.observables.shape)
                observables = observables.apply_layout(circuit.layout)
        return Evaluation(circuit, base[None], observables=observables)
