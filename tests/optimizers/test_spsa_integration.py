"""SPSA where users put an optimizer: qiskit-algorithms VQE, qiskit-machine-learning
trainers, scipy.optimize.minimize; EstimatorLoss with a GradientEstimator as ``jac``."""

import warnings

import numpy as np
import pytest
from qiskit.primitives import StatevectorEstimator
from scipy.optimize import minimize

from qprim_grad.optimizers import SPSA, EstimatorLoss


def test_vqe(circuit, observable):
    """In VQE (plain-callable schedule) the result equals qiskit-algorithms' SPSA's."""
    vqe_mod = pytest.importorskip("qiskit_algorithms.minimum_eigensolvers")
    from qiskit_algorithms.optimizers import SPSA as QSPSA
    from qiskit_algorithms.utils import algorithm_globals

    spsa = SPSA(maxiter=30, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        start = np.full(4, 0.2)
        ours = vqe_mod.VQE(StatevectorEstimator(), circuit, spsa, initial_point=start)
        result = ours.compute_minimum_eigenvalue(observable)
        algorithm_globals.random_seed = 3
        theirs = vqe_mod.VQE(
            StatevectorEstimator(), circuit, QSPSA(maxiter=30), initial_point=start
        )
        reference = theirs.compute_minimum_eigenvalue(observable)
    assert result.eigenvalue.real == pytest.approx(reference.eigenvalue.real, abs=1e-10)
    assert result.eigenvalue.real < EstimatorLoss(StatevectorEstimator(), circuit, observable)(
        start
    )
    assert result.cost_function_evals == result.optimizer_result.nfev
    assert spsa._max_evals_grouped is None  # VQE leaves our optimizer unchanged


def test_qiskit_machine_learning_classifier():
    qml = pytest.importorskip("qiskit_machine_learning")
    from qiskit.circuit import ParameterVector, QuantumCircuit
    from qiskit_machine_learning.algorithms import NeuralNetworkClassifier
    from qiskit_machine_learning.neural_networks import EstimatorQNN

    inputs, weights = ParameterVector("x", 1), ParameterVector("w", 2)
    qc = QuantumCircuit(1)
    qc.ry(inputs[0], 0)
    qc.ry(weights[0], 0)
    qc.rz(weights[1], 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qnn = EstimatorQNN(
            circuit=qc,
            estimator=StatevectorEstimator(),
            input_params=list(inputs),
            weight_params=list(weights),
        )
        features = np.array([[0.1], [0.3], [2.8], [3.0]])
        labels = np.array([1, 1, -1, -1])
        classifier = NeuralNetworkClassifier(
            qnn, optimizer=SPSA(maxiter=25, seed=1), initial_point=np.array([1.5, 0.0])
        )
        classifier.fit(features, labels)
    assert classifier.score(features, labels) == 1.0
    assert classifier.fit_result.nit == 25
    del qml


def test_scipy_minimize_batched_one_job_per_iteration(loss, x0, mocker):
    spy = mocker.spy(loss.estimator, "run")
    seen = []
    res = minimize(
        loss,
        x0,
        method=SPSA(seed=1, learning_rate=0.2, perturbation=0.1).scipy_method,
        options={"maxiter": 10, "blocking": True},
        callback=lambda intermediate_result: seen.append(intermediate_result.fun),
    )
    assert res.success and res.nit == 10 and spy.call_count == 11
    assert res.fun <= loss(x0) and len(seen) >= 1


def test_scipy_minimize_plain_callable_with_args_and_stop():
    def f(x, shift):
        return float(np.sum((x - shift) ** 2))

    def stop(xk):
        raise StopIteration

    res = minimize(
        f,
        [1.0, 1.0],
        args=(0.5,),
        method=SPSA(maxiter=30, learning_rate=0.1, perturbation=0.05, seed=0).scipy_method,
    )
    assert res.fun < 0.01
    early = minimize(f, [1.0, 1.0], args=(0.5,), method=SPSA(seed=0).scipy_method, callback=stop)
    assert early.nit == 1


def test_estimator_loss_with_gradient_estimator(circuit, observable, x0, mocker):
    qg = pytest.importorskip("qprim_grad")
    if not hasattr(qg, "GradientEstimator"):
        pytest.skip("GradientEstimator not available")
    inner = StatevectorEstimator()
    loss = EstimatorLoss(qg.GradientEstimator(inner), circuit, observable)
    plain = EstimatorLoss(inner, circuit, observable)
    assert loss(x0) == pytest.approx(plain(x0))
    value, grad = loss.value_and_gradient(x0)
    eps = 1e-6
    fd = [(plain(x0 + eps * e) - plain(x0 - eps * e)) / (2 * eps) for e in np.eye(4)]
    np.testing.assert_allclose(grad, fd, atol=1e-5)
    res = minimize(loss, x0, jac=loss.gradient, method="BFGS")
    assert res.fun == pytest.approx(np.linalg.eigvalsh(observable.to_matrix()).min(), abs=1e-5)
    spy = mocker.spy(inner, "run")
    SPSA(maxiter=3, seed=1, learning_rate=0.1, perturbation=0.1).minimize(loss, x0)
    assert spy.call_count == 4  # SPSA values skip the gradient points


def test_estimator_loss_errors(circuit, estimator, x0):
    loss = EstimatorLoss(estimator, circuit, "ZZ")
    with pytest.raises(TypeError, match="GradientEstimator"):
        loss.gradient(x0)
    with pytest.raises(ValueError, match="parameter values"):
        loss(np.zeros(3))
    with pytest.raises(ValueError, match="qubits"):
        EstimatorLoss(estimator, circuit, "ZZZ")
    assert "4 parameters" in repr(loss)
