"""The seed-compatible QGT facade against qiskit-algorithms 0.4 as an oracle, and drop-in
inside its VarQITE / VarQRTE variational principles."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

qa = pytest.importorskip("qiskit_algorithms")

from qiskit import QuantumCircuit  # noqa: E402
from qiskit.circuit import ParameterVector  # noqa: E402
from qiskit.circuit.library import efficient_su2  # noqa: E402
from qiskit.primitives import StatevectorEstimator  # noqa: E402
from qiskit.quantum_info import SparsePauliOp  # noqa: E402
from qiskit_algorithms import TimeEvolutionProblem, VarQITE, VarQRTE  # noqa: E402
from qiskit_algorithms import gradients as qa_gradients  # noqa: E402
from qiskit_algorithms.time_evolvers.variational import (  # noqa: E402
    ImaginaryMcLachlanPrinciple,
    RealMcLachlanPrinciple,
)

from qprim_grad import gradients  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
TYPES = ["COMPLEX", "REAL", "IMAG"]


def circuit_with_expressions(seed: int) -> QuantumCircuit:
    """Shared parameters and affine expressions; no controlled rotations (qiskit-algorithms
    0.4's QGTs are wrong on those: tests/test_qgt.py checks ours against statevector
    finite differences there)."""
    rng = np.random.default_rng(seed)
    t = ParameterVector("t", 4)
    qc = QuantumCircuit(3)
    qc.h([0, 1, 2])
    for k in range(7):
        a, b = (int(q) for q in rng.choice(3, 2, replace=False))
        angle = [t[k % 4], 2 * t[(k + 1) % 4] - 0.3, t[k % 4]][k % 3]
        [qc.rx, qc.ry, qc.rz][k % 3](angle, a)
        [qc.rzz, qc.rxx, qc.rzx][k % 3](t[(k + 2) % 4], a, b)
        qc.cx(a, b)
    return qc


def unique_circuit() -> QuantumCircuit:
    t = ParameterVector("t", 6)
    qc = QuantumCircuit(3)
    qc.h([0, 1, 2])
    qc.rx(t[0], 0)
    qc.rzz(t[1], 0, 2)
    qc.ry(t[2], 1)
    qc.cx(1, 2)
    qc.rxx(t[3], 1, 0)
    qc.rz(t[4], 2)
    qc.rzx(t[5], 2, 1)
    return qc


def assert_same(got, want):
    np.testing.assert_allclose(got.qgts[0], want.qgts[0], atol=1e-8)
    assert got.qgts[0].dtype == want.qgts[0].dtype
    assert got.derivative_type.value == want.derivative_type.value
    assert [list(m[0]["parameters"]) for m in got.metadata] == [
        list(m[0]["parameters"]) for m in want.metadata
    ]


@pytest.mark.parametrize("kind", TYPES)
@pytest.mark.parametrize("seed", range(2))
def test_qgts_equal_qiskit_algorithms(kind, seed):
    """Oracle: qiskit-algorithms' ReverseQGT (its LinCombQGT gets imaginary parts wrong with
    shared parameters, so it is the oracle on a circuit with unique parameters only)."""
    circuit = circuit_with_expressions(seed)
    values = np.random.default_rng(seed).uniform(-np.pi, np.pi, circuit.num_parameters)
    theirs_type = getattr(qa_gradients.DerivativeType, kind)
    oracle = qa_gradients.ReverseQGT(derivative_type=theirs_type)
    ours = [
        gradients.LinCombQGT(StatevectorEstimator(), derivative_type=theirs_type),
        gradients.ReverseQGT(derivative_type=kind.lower()),
    ]
    for parameters in (None, [list(circuit.parameters)[2:0:-1]]):
        want = oracle.run([circuit], [values], parameters).result()
        for qgt in ours:
            assert_same(qgt.run([circuit], [values], parameters).result(), want)
    unique = unique_circuit()
    values = values[: unique.num_parameters].tolist() + [0.2] * (unique.num_parameters - 4)
    want = qa_gradients.LinCombQGT(StatevectorEstimator(), derivative_type=theirs_type)
    want = want.run([unique], [values]).result()
    got = ours[0].run([unique], [values]).result()
    assert_same(got, want)
    assert got.precision == want.precision == 0.0


def test_qfi_and_settable_attributes():
    circuit = circuit_with_expressions(3)
    values = np.linspace(-1, 1, circuit.num_parameters)
    qgt = gradients.LinCombQGT(StatevectorEstimator(), phase_fix=True)
    got = gradients.QFI(qgt).run([circuit, circuit], [values, values + 0.1]).result()
    want = qa_gradients.QFI(qa_gradients.LinCombQGT(StatevectorEstimator()))
    want = want.run([circuit, circuit], [values, values + 0.1]).result()
    for a, b in zip(got.qfis, want.qfis):
        np.testing.assert_allclose(a, b, atol=1e-8)
    assert isinstance(got, gradients.QFIResult) and qgt.derivative_type.value == "complex"
    qgt.derivative_type = qa_gradients.DerivativeType.REAL  # their enum, as VarQITE sets it
    assert qgt.run([circuit], [values]).result().qgts[0].dtype == float
    assert isinstance(qgt._estimator, StatevectorEstimator)
    qgt.precision = 0.0
    assert qgt.run([circuit], [values]).result().precision == 0.0


def evolve(algorithm, principle, ansatz, hamiltonian, time=0.6):
    initial = np.full(ansatz.num_parameters, 0.3)
    evolver = algorithm(ansatz, initial, principle, StatevectorEstimator(), num_timesteps=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = evolver.evolve(TimeEvolutionProblem(hamiltonian, time))
    return np.array(result.parameter_values[-1])


@pytest.mark.parametrize("gradient_from", ["qiskit_algorithms", "qprim_grad"])
@pytest.mark.parametrize("which", ["imaginary", "real"])
def test_drop_in_inside_var_qite_and_var_qrte(which, gradient_from):
    """Our QGTs in qiskit-algorithms' McLachlan principles evolve the same parameters as its
    own (with its gradient, and with ours)."""
    module = gradients if gradient_from == "qprim_grad" else qa_gradients
    if not hasattr(module.LinCombEstimatorGradient(StatevectorEstimator()), "_estimator"):
        pytest.skip("the gradient facade does not carry _estimator yet")
    ansatz = efficient_su2(2, reps=1)
    hamiltonian = SparsePauliOp(["ZZ", "XI", "IX"], [1.0, 0.4, 0.4])
    estimator = StatevectorEstimator()
    if which == "imaginary":
        algorithm, principle, kind = VarQITE, ImaginaryMcLachlanPrinciple, "REAL"
    else:
        algorithm, principle, kind = VarQRTE, RealMcLachlanPrinciple, "IMAG"
    theirs_type = getattr(qa_gradients.DerivativeType, kind)

    def gradient(module):
        return module.LinCombEstimatorGradient(estimator, derivative_type=theirs_type)

    want = evolve(
        algorithm,
        principle(qgt=qa_gradients.LinCombQGT(estimator), gradient=gradient(qa_gradients)),
        ansatz,
        hamiltonian,
    )
    for qgt in (gradients.LinCombQGT(estimator), gradients.ReverseQGT()):
        got = evolve(algorithm, principle(qgt=qgt, gradient=gradient(module)), ansatz, hamiltonian)
        np.testing.assert_allclose(got, want, atol=1e-6)
