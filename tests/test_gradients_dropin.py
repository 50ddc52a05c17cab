"""Drop-in proofs: qiskit-algorithms' VQE and qiskit-machine-learning's QNNs give the same
results with our gradient classes as with their own."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.circuit.library import real_amplitudes
from qiskit.primitives import StatevectorEstimator, StatevectorSampler
from qiskit.quantum_info import SparsePauliOp

import qprim_grad.gradients as ours
from qprim_grad import GradientEstimator

qa = pytest.importorskip("qiskit_algorithms")
qml_nn = pytest.importorskip("qiskit_machine_learning.neural_networks")
qml_grad = pytest.importorskip("qiskit_machine_learning.gradients")

HAMILTONIAN = SparsePauliOp.from_list([("ZZ", 1.0), ("XI", 0.4), ("IX", -0.3), ("YY", 0.2)])


def _vqe(estimator, gradient, maxiter=40):
    from qiskit_algorithms.optimizers import L_BFGS_B

    ansatz = real_amplitudes(2, reps=2)
    initial = np.linspace(0.1, 0.9, ansatz.num_parameters)
    vqe = qa.VQE(
        estimator, ansatz, L_BFGS_B(maxiter=maxiter), gradient=gradient, initial_point=initial
    )
    return vqe.compute_minimum_eigenvalue(HAMILTONIAN)


@pytest.mark.parametrize("name", ["ParamShiftEstimatorGradient", "LinCombEstimatorGradient"])
def test_vqe_with_our_gradient_equals_theirs(name):
    from qiskit_algorithms import gradients as theirs

    want = _vqe(StatevectorEstimator(), getattr(theirs, name)(StatevectorEstimator()))
    got = _vqe(StatevectorEstimator(), getattr(ours, name)(StatevectorEstimator()))
    assert got.eigenvalue == pytest.approx(want.eigenvalue, abs=1e-8)
    np.testing.assert_allclose(got.optimal_point, want.optimal_point, atol=1e-8)
    assert got.cost_function_evals == want.cost_function_evals


def test_vqe_accepts_a_gradient_estimator_as_estimator():
    # deliverable 4: a GradientEstimator passes for a plain estimator
    from qiskit_algorithms import gradients as theirs

    reference = theirs.ParamShiftEstimatorGradient(StatevectorEstimator())
    want = _vqe(StatevectorEstimator(), reference, maxiter=5)
    inner = GradientEstimator(StatevectorEstimator())
    got = _vqe(inner, ours.ParamShiftEstimatorGradient(inner), maxiter=5)
    assert got.eigenvalue == pytest.approx(want.eigenvalue, abs=1e-8)


def _qnn_circuit() -> tuple[QuantumCircuit, ParameterVector, ParameterVector]:
    x = ParameterVector("x", 2)
    w = ParameterVector("w", 4)
    qc = QuantumCircuit(2)
    qc.rx(x[0], 0)
    qc.rx(x[1], 1)
    qc.ry(w[0], 0)
    qc.ry(w[1], 1)
    qc.cx(0, 1)
    qc.rz(w[2] * x[0], 0)  # an expression mixing input and weight
    qc.ry(w[3], 1)
    return qc, x, w


INPUTS = np.array([[0.1, -0.4], [0.7, 0.2], [-1.1, 0.5]])
WEIGHTS = np.array([0.3, -0.2, 0.8, 1.4])


@pytest.mark.parametrize("input_gradients", [False, True])
@pytest.mark.parametrize("name", ["ParamShiftEstimatorGradient", "LinCombEstimatorGradient"])
def test_estimator_qnn_backward_equals_theirs(name, input_gradients):
    qc, x, w = _qnn_circuit()
    observables = [SparsePauliOp("ZZ"), SparsePauliOp.from_list([("XI", 0.5), ("IY", 1.0)])]

    def qnn(gradient):
        return qml_nn.EstimatorQNN(
            circuit=qc,
            estimator=StatevectorEstimator(),
            observables=observables,
            input_params=list(x),
            weight_params=list(w),
            gradient=gradient,
            input_gradients=input_gradients,
            default_precision=0.0,
        )

    want = qnn(getattr(qml_grad, name)(StatevectorEstimator())).backward(INPUTS, WEIGHTS)
    got = qnn(getattr(ours, name)(StatevectorEstimator())).backward(INPUTS, WEIGHTS)
    for g, t in zip(got, want):
        if t is None:
            assert g is None
        else:
            np.testing.assert_allclose(g, t, atol=1e-8, rtol=0)


@pytest.mark.parametrize("input_gradients", [False, True])
def test_sampler_qnn_backward_equals_theirs(input_gradients):
    qc, x, w = _qnn_circuit()
    qc = QuantumCircuit(2).compose(qc.assign_parameters({w[2]: 0.0}))  # keep rz, drop w[2]
    qc.measure_all()
    weights = [p for p in w if p in set(qc.parameters)]

    def qnn(gradient):
        return qml_nn.SamplerQNN(
            circuit=qc,
            sampler=StatevectorSampler(seed=17),
            input_params=list(x),
            weight_params=weights,
            interpret=lambda k: bin(k).count("1") % 2,
            output_shape=2,
            gradient=gradient,
            input_gradients=input_gradients,
        )

    # parameter shift on rx/ry/cx: both sides sample the same points with the same seed
    want = qnn(qml_grad.ParamShiftSamplerGradient(StatevectorSampler(seed=17))).backward(
        INPUTS, WEIGHTS[:3]
    )
    got = qnn(ours.ParamShiftSamplerGradient(StatevectorSampler(seed=17))).backward(
        INPUTS, WEIGHTS[:3]
    )
    for g, t in zip(got, want):
        if t is None:
            assert g is None
        else:
            np.testing.assert_allclose(g, t, atol=1e-9, rtol=0)
