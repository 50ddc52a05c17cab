"""Linear combination of unitaries: a Hadamard test with one auxiliary qubit.

For a gate ``exp(-i theta G)`` with ``G = sum_k c_k P_k`` (Paulis on the gate's qubits),

* real part: ``d<O>/d theta = 2 Re<d psi|O|psi> = sum_k 2 c_k <Y_aux (x) O>_k``,
* imaginary part: ``-2 Im<d psi|O|psi> = -sum_k 2 c_k <X_aux (x) O>_k``,

where circuit ``k`` starts the auxiliary qubit in ``|+>`` and applies ``P_k`` controlled
by it right after the gate. The generators are data (:data:`~qprim_grad.circuit.gates.GENERATORS`,
from the gate table :data:`qprim_grad.circuit.gates.GATES`), taken traceless: a gate's global phase
does not enter, so the imaginary part follows the phase convention of qiskit-algorithms'
``LinCombEstimatorGradient`` (and equals it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from qiskit.circuit import QuantumCircuit
from scipy import sparse

from ..cache import BoundedCache
from ..circuit.chain_rule import PreparedCircuit, prepared_values, slot_jacobian
from ..circuit.gates import DECOMPOSITIONS, GENERATORS
from ..circuit.options import derivative_type_name
from ..circuit.prepare import parameter_names, prepare_circuit
from ..errors import GradientMethodError
from ..pipeline.types import Evaluation, Plan, PubTask
from .hadamard import (
    AUX,
    AuxPlacement,
    add_aux_qubit,
    controlled_paulis,
    extended_observables,
    find_coupling_map,
    measure_aux,
    observable_support,
)
from .shift import argument_map

__all__ = ["LinComb"]

#: the auxiliary qubit's Pauli measured for each derivative type
_LETTERS = {"real": "Y", "imag": "X", "complex": "YX"}


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


def prepare_for_lin_comb(task: PubTask, name: str) -> PreparedCircuit:
    """``task``'s circuit with one parameter per differentiated gate argument, every such
    argument in a gate with a generator (cached)."""
    return prepare_circuit(
        task.circuit,
        task.parameters,
        GENERATORS.keys(),
        method=name,
        decompositions=DECOMPOSITIONS,
    )


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
        self.derivative_type = derivative_type_name(derivative_type)
        self.pass_manager = pass_manager
        source = coupling_map if coupling_map is not None else pass_manager
        self.placement = AuxPlacement(find_coupling_map(source))
        # transpiled circuits, per user circuit (identity and content) and parameters
        self._terms: BoundedCache[list[_Term]] = BoundedCache(size=64)
        self._centers: BoundedCache[QuantumCircuit] = BoundedCache(size=64)

    @property
    def options(self) -> dict[str, Any]:
        return {
            "derivative_type": self.derivative_type,
            "pass_manager": None if self.pass_manager is None else type(self.pass_manager).__name__,
        }

    # -- circuits ---------------------------------------------------------------------------
    def _aux_bases(self, sampler: bool) -> list[str]:
        """The bases the auxiliary qubit is measured in (sampler: ``Y`` for the real part)."""
        if not sampler:
            return []
        if self.derivative_type != "real":
            raise GradientMethodError(
                "lin_comb on a sampler gives real derivatives only; use derivative_type='real'"
            )
        return ["Y"]

    def _test_circuits(
        self, prepared: PreparedCircuit, sampler: bool, busy: frozenset[int]
    ) -> list[_Term]:
        """A Hadamard-test circuit for every generator term."""
        bases = self._aux_bases(sampler)
        circuit = prepared.circuit
        idle = None
        if circuit.layout is not None:
            idle = self.placement.idle_qubits(circuit, busy)
        out = []
        for g, slot in enumerate(prepared.slots):
            instruction = circuit.data[slot.instruction]
            aux = None
            if idle is not None:
                qubits = [circuit.find_bit(q).index for q in instruction.qubits]
                aux = self.placement.closest(idle, qubits)
            index = circuit.num_qubits if aux is None else aux
            for coefficient, label in GENERATORS[instruction.operation.name][slot.argument]:
                test = self._hadamard_test(circuit, slot.instruction, label, bases, aux)
                out.append(_Term(g, coefficient, test, index, test.num_qubits))
        return out

    @staticmethod
    def _hadamard_test(
        circuit: QuantumCircuit,
        position: int,
        label: str,
        bases: list[str],
        aux_index: int | None = None,
    ) -> QuantumCircuit:
        """``circuit`` with Pauli ``label`` (little-endian over the gate's qubits) controlled by
        an auxiliary qubit in ``|+>`` right after instruction ``position``; the auxiliary qubit
        measured in ``bases`` (sampler) or left for the observables (estimator)."""
        test = circuit.copy_empty_like()
        aux, _ = add_aux_qubit(test, aux_index)
        test.h(aux)
        instruction = circuit.data[position]
        for index, instr in enumerate(circuit.data):
            test._append(instr)
            if index == position:
                controlled_paulis(test, aux, instruction.qubits, label[::-1])
        measure_aux(test, aux, bases)
        return test

    def _circuits_for(self, task: PubTask, prepared: PreparedCircuit) -> list[_Term]:
        busy: frozenset[int] = frozenset()
        if task.circuit.layout is not None:
            busy = observable_support(task.observables)
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
        prepared = prepare_for_lin_comb(task, self.name)
        base = prepared_values(prepared, task.values)
        arguments_jacobian = slot_jacobian(prepared, task.values)  # sparse (G, P) or S + (G, P)
        jacobian = arguments_jacobian
        if sparse.issparse(jacobian):
            jacobian = jacobian.toarray().reshape((1,) * (base.ndim - 1) + jacobian.shape)
        evaluations = [
            self._evaluation(task, term, jacobian, base)
            for term in self._circuits_for(task, prepared)
        ]
        return Plan(
            evaluations=evaluations,
            center=self.center_evaluation(task, prepared, base),
            arguments=argument_map(prepared, task.values, arguments_jacobian),
        )

    def _evaluation(
        self, task: PubTask, term: _Term, jacobian: np.ndarray, base: np.ndarray
    ) -> Evaluation:
        """One Hadamard test's evaluation: ``2 c_k dslot/dtheta`` times the phase of each
        measured auxiliary Pauli."""
        letters = _LETTERS[self.derivative_type]
        phases = {"Y": 1.0, "X": -1j if self.derivative_type == "complex" else -1.0}
        slot_weights = 2.0 * term.coefficient * jacobian[..., term.slot, :]  # w + (P,)
        weights = np.stack([phases[letter] * slot_weights for letter in letters])
        if task.kind == "estimator":
            observables = extended_observables(task.observables, letters, term.aux, term.width)
            if self.pass_manager is not None and term.circuit.layout is not None:
                observables = observables.apply_layout(term.circuit.layout)
            return Evaluation(
                term.circuit,
                base[None],
                weights,
                observables=observables,
                parameter_names=term.names,
            )
        return Evaluation(
            term.circuit, base[None], weights, aux_register=AUX, parameter_names=term.names
        )

    def center_evaluation(
        self, task: PubTask, prepared: PreparedCircuit, base: np.ndarray
    ) -> Evaluation | None:
        """The unshifted evaluation: the user's pub (``None``), unless the circuit was
        rewritten or is a virtual circuit that ``pass_manager`` must map like the tests."""
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
