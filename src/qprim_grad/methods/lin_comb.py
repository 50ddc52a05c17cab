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

import threading
from collections import OrderedDict
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

from ..circuits import PreparedCircuit, prepare_circuit, prepared_values, slot_jacobian
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


def _prefixed(observables: ObservablesArray, letters: str) -> ObservablesArray:
    """``letter (x) O`` for each letter (the auxiliary qubit is the highest index)."""
    out = np.empty((len(letters),) + observables.shape, dtype=object)
    for index in np.ndindex(observables.shape):
        entry = observables[index]
        for i, letter in enumerate(letters):
            out[(i,) + index] = {letter + label: coeff for label, coeff in entry.items()}
    return ObservablesArray(out)


class LinComb:
    """Hadamard-test gradients with one auxiliary qubit.

    Args:
        derivative_type: ``"real"`` (``d<O>/d theta``), ``"imag"`` or ``"complex"``.
        pass_manager: maps the Hadamard-test circuits (and observables) onto a device;
            transpiled circuits are cached per circuit and parameters.
    """

    name = "lin_comb"

    def __init__(self, derivative_type: Any = "real", pass_manager: Any = None) -> None:
        self.derivative_type = _normalize_derivative_type(derivative_type)
        self.pass_manager = pass_manager
        self._cache: OrderedDict[tuple, tuple[Any, list[QuantumCircuit]]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def options(self) -> dict[str, Any]:
        return {
            "derivative_type": self.derivative_type,
            "pass_manager": None if self.pass_manager is None else type(self.pass_manager).__name__,
        }

    # -- circuits ---------------------------------------------------------------------------
    def _test_circuits(
        self, prepared: PreparedCircuit, sampler: bool
    ) -> list[tuple[int, float, QuantumCircuit]]:
        """(slot, coefficient, circuit) for every generator term."""
        bases = ["Y"] if sampler and self.derivative_type == "real" else []
        if sampler and self.derivative_type != "real":
            raise GradientMethodError(
                "lin_comb on a sampler gives real derivatives only; use derivative_type='real'"
            )
        out = []
        circuit = prepared.circuit
        for g, slot in enumerate(prepared.slots):
            instruction = circuit.data[slot.instruction]
            for coefficient, label in GENERATORS[instruction.operation.name][slot.argument]:
                out.append(
                    (g, coefficient, self._hadamard_test(circuit, slot.instruction, label, bases))
                )
        return out

    @staticmethod
    def _hadamard_test(
        circuit: QuantumCircuit, position: int, label: str, bases: list[str]
    ) -> QuantumCircuit:
        aux = QuantumRegister(1, _AUX)
        test = circuit.copy_empty_like()
        test.add_register(aux)
        test.h(aux[0])
        instruction = circuit.data[position]
        for index, instr in enumerate(circuit.data):
            test._append(instr)
            if index != position:
                continue
            for qubit, letter in zip(instruction.qubits, reversed(label)):
                if letter == "X":
                    test.cx(aux[0], qubit)
                elif letter == "Y":
                    test.cy(aux[0], qubit)
                elif letter == "Z":
                    test.cz(aux[0], qubit)
        for basis in bases:
            register = ClassicalRegister(1, _AUX)
            test.add_register(register)
            if basis == "Y":
                test.sdg(aux[0])
            test.h(aux[0])
            test.measure(aux[0], register[0])
        return test

    def _circuits_for(self, task: PubTask, prepared: PreparedCircuit):
        key = (id(task.circuit), task.parameters, task.kind)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] is prepared:
                return hit[1]
        terms = self._test_circuits(prepared, task.kind == "sampler")
        if self.pass_manager is not None:
            mapped = self.pass_manager.run([c for _, _, c in terms]) if terms else []
            if isinstance(mapped, QuantumCircuit):
                mapped = [mapped]
            terms = [(g, c, circ) for (g, c, _), circ in zip(terms, mapped)]
        with self._lock:
            self._cache[key] = (prepared, terms)
            while len(self._cache) > 64:
                self._cache.popitem(last=False)
        return terms

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
        for g, coefficient, circuit in self._circuits_for(task, prepared):
            slot_weights = 2.0 * coefficient * jacobian[..., g, :]  # w + (P,)
            weights = np.stack([phases[letter] * slot_weights for letter in letters])
            if task.kind == "estimator":
                observables = _prefixed(task.observables, letters)
                if self.pass_manager is not None and circuit.layout is not None:
                    observables = observables.apply_layout(circuit.layout)
                evaluation = Evaluation(circuit, base[None], weights, observables=observables)
            else:
                evaluation = Evaluation(circuit, base[None], weights, aux_register=_AUX)
            evaluations.append(evaluation)
        center = None
        if prepared.rewritten:
            center = Evaluation(prepared.circuit, base[None], np.zeros((1, task.num_parameters)))
        return Plan(evaluations=evaluations, center=center)
