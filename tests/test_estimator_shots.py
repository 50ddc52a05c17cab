"""GradientEstimator on shot-based and simulator primitives (qiskit-aer)."""

from __future__ import annotations

import numpy as np
import pytest
from _reference import expectation, expectation_gradient
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.circuit.library import efficient_su2
from qiskit.quantum_info import SparsePauliOp

from qprim_grad import GradientEstimator

aer = pytest.importorskip("qiskit_aer.primitives")


def _controlled_rotation_circuit() -> QuantumCircuit:
    t = ParameterVector("t", 4)
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.ry(t[0], 1)
    qc.crx(t[1], 0, 1)
    qc.cry(t[2], 1, 0)
    qc.crz(t[3], 0, 1)
    qc.cp(t[0] + t[1], 1, 0)
    qc.h(1)
    return qc


@pytest.mark.parametrize("method", ["param_shift", "lin_comb", "finite_diff", "spsa"])
def test_aer_controlled_rotations_are_right(method):
    """qiskit-aer mis-simulates parameterised crx/cry/crz/cp; the wrapper must not."""
    circuit = _controlled_rotation_circuit()
    values = np.array([0.3, 1.7, -0.8, 0.6])
    observable = SparsePauliOp(["ZZ", "XI", "IY"], [1.0, 0.4, 0.3])
    options = {"seed": 2} if method == "spsa" else {}
    estimator = GradientEstimator(aer.EstimatorV2(), method=method, **options)
    data = estimator.run([(circuit, observable, values)]).result()[0].data
    np.testing.assert_allclose(data.evs, expectation(circuit, observable, values), atol=1e-10)
    if method != "spsa":
        reference = expectation_gradient(circuit, observable, values)
        np.testing.assert_allclose(data.grads, reference, atol=1e-6)


@pytest.mark.parametrize("method", ["param_shift", "lin_comb", "finite_diff"])
def test_grad_stds_are_consistent_with_errors_on_aer_shots(method):
    circuit = efficient_su2(3, reps=1)
    num = circuit.num_parameters
    rng = np.random.default_rng(11)
    values = rng.uniform(-np.pi, np.pi, (20, num))
    observable = SparsePauliOp(["ZZI", "IXX", "YIZ"], [1.0, 0.6, -0.4])
    options = {"epsilon": 0.2} if method == "finite_diff" else {}
    estimator = GradientEstimator(
        aer.EstimatorV2(options={"run_options": {"seed": 1234}}), method=method, **options
    )
    data = estimator.run([(circuit, observable, values)], precision=0.02).result()[0].data
    assert data.grads.shape == (20, num)
    assert np.all(data.grad_stds > 0)
    if method == "finite_diff":
        # compare with the exact central difference at the same step (no truncation bias)
        reference = np.array(
            [
                [
                    (
                        expectation(circuit, observable, v + 0.2 * np.eye(num)[j])
                        - expectation(circuit, observable, v - 0.2 * np.eye(num)[j])
                    )
                    / 0.4
                    for j in range(num)
                ]
                for v in values
            ]
        )
    else:
        reference = np.array([expectation_gradient(circuit, observable, v) for v in values])
    z = np.abs(data.grads - reference) / data.grad_stds
    assert z.size >= 200
    assert np.mean(z <= 3) >= 0.9
    assert np.mean(z <= 1) >= 0.5  # the errors are not wildly overestimated either


def test_tiny_epsilon_on_a_noisy_primitive_warns():
    from qprim_grad import SmallStepWarning

    circuit = efficient_su2(2, reps=1)
    estimator = GradientEstimator(aer.EstimatorV2(), method="finite_diff")  # epsilon 1e-6
    job = estimator.run([(circuit, "ZZ", np.zeros(8))], precision=0.01)
    with pytest.warns(SmallStepWarning, match="epsilon=1e-06"):
        job.result()
