"""Independent reference derivatives from qiskit.quantum_info (five-point stencils and
central second differences), and the small circuits several test modules share. Test
modules import their oracles from here, never from one another."""

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


def expectation_hessian(circuit, observable, values, step: float = 2e-4) -> np.ndarray:
    """d^2<O>/d theta_i d theta_j over all parameters (circuit order), from central second
    differences of exact expectation values (error ~ step**2)."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    eye = np.eye(n) * step
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            out[i, j] = sum(
                si * sj * expectation(circuit, observable, values + si * eye[i] + sj * eye[j])
                for si in (1, -1)
                for sj in (1, -1)
            ) / (4 * step**2)
    return out


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


# --- circuits shared by several test modules ------------------------------------------------
#: two points of the three parameters of :func:`bare_circuit`
POINTS = np.array([[0.3, 0.5, -0.2], [1.2, -0.4, 0.7]])


def bare_circuit() -> QuantumCircuit:
    """Every parameter the bare argument of one gate: exact shift rules apply directly."""
    from qiskit.circuit import Parameter

    a, b, c = Parameter("a"), Parameter("b"), Parameter("c")
    qc = QuantumCircuit(2)
    qc.ry(a, 0)
    qc.rx(b, 1)
    qc.cx(0, 1)
    qc.rzz(c, 0, 1)
    return qc
