"""Independent reference derivatives from qiskit.quantum_info (five-point stencils)."""

from __future__ import annotations

import numpy as np
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp, Statevector

STEP = 1e-3


def _stencil(function, values: np.ndarray, index: int) -> np.ndarray:
    shift = np.zeros_like(values, dtype=float)
    shift[index] = STEP
    return (
        -function(values + 2 * shift)
        + 8 * function(values + shift)
        - 8 * function(values - shift)
        + function(values - 2 * shift)
    ) / (12 * STEP)


def expectation(circuit: QuantumCircuit, observable, values) -> float:
    bound = circuit.assign_parameters(np.asarray(values, dtype=float))
    bound = bound.remove_final_measurements(inplace=False)
    return float(np.real(Statevector(bound).expectation_value(SparsePauliOp(observable))))


def expectation_gradient(circuit, observable, values, parameters=None) -> np.ndarray:
    """d<O>/d theta_j for the listed parameters (default: all, in circuit order)."""
    values = np.asarray(values, dtype=float)
    order = list(circuit.parameters)
    parameters = order if parameters is None else list(parameters)
    return np.array(
        [
            _stencil(lambda v: expectation(circuit, observable, v), values, order.index(p))
            for p in parameters
        ]
    )


def probabilities(circuit: QuantumCircuit, values) -> np.ndarray:
    """Outcome probabilities over all classical bits (measure-at-end circuits)."""
    bound = circuit.assign_parameters(np.asarray(values, dtype=float))
    clbit_of = {}
    for instruction in bound.data:
        if instruction.operation.name == "measure":
            qubit = bound.find_bit(instruction.qubits[0]).index
            clbit_of[bound.find_bit(instruction.clbits[0]).index] = qubit
    state = Statevector(bound.remove_final_measurements(inplace=False))
    qubit_probs = state.probabilities()  # over all qubits, little-endian
    out = np.zeros(2**bound.num_clbits)
    for outcome, p in enumerate(qubit_probs):
        key = 0
        for clbit, qubit in clbit_of.items():
            key |= ((outcome >> qubit) & 1) << clbit
        out[key] += p
    return out


def probability_gradient(circuit, values, parameters=None) -> np.ndarray:
    """Shape (P, 2**num_clbits)."""
    values = np.asarray(values, dtype=float)
    order = list(circuit.parameters)
    parameters = order if parameters is None else list(parameters)
    return np.array(
        [_stencil(lambda v: probabilities(circuit, v), values, order.index(p)) for p in parameters]
    )


def state(circuit: QuantumCircuit, values) -> np.ndarray:
    bound = circuit.assign_parameters(np.asarray(values, dtype=float))
    return Statevector(bound.remove_final_measurements(inplace=False)).data


def state_qgt(circuit, values, parameters=None, phase_fix=True) -> np.ndarray:
    """``<d_i psi|d_j psi> (- <d_i psi|psi><psi|d_j psi>)`` from five-point stencils of the
    statevector (``P x P`` complex)."""
    values = np.asarray(values, dtype=float)
    order = list(circuit.parameters)
    parameters = order if parameters is None else list(parameters)
    derivatives = np.array(
        [_stencil(lambda v: state(circuit, v), values, order.index(p)) for p in parameters]
    )
    tensor = np.conj(derivatives) @ derivatives.T
    if phase_fix:
        overlap = np.conj(derivatives) @ state(circuit, values)  # <d_i psi|psi>
        tensor = tensor - np.outer(overlap, np.conj(overlap))
    return tensor
