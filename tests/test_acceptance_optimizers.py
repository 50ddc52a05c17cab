"""Acceptance tests for qprim_grad.optimizers (SPSA, EstimatorLoss), oracle qiskit-algorithms."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import qiskit_algorithms.optimizers as qao
from qiskit.circuit import Parameter
from qiskit.circuit.library import real_amplitudes
from qiskit.primitives import StatevectorEstimator
from qiskit.quantum_info import SparsePauliOp, Statevector
from qiskit_algorithms.utils import algorithm_globals

from qprim_grad import GradientEstimator
from qprim_grad.optimizers import SPSA, EstimatorLoss

H = SparsePauliOp.from_list([("ZZ", 1.0), ("XI", 0.4), ("IX", -0.3)])
ANSATZ = real_amplitudes(2, reps=1)
NP = ANSATZ.num_parameters
X0 = np.linspace(0.1, 0.8, NP)


def exact(x):
    return float(np.real(Statevector(ANSATZ.assign_parameters(x)).expectation_value(H)))


def quad(x):
    x = np.asarray(x)
    return float(np.sum((x - 0.5) ** 2) + 0.1 * np.sum(np.cos(3 * x)))


# --------------------------------------------------------------------------- SPSA API parity


def test_spsa_constructor_superset_of_qiskit_algorithms():
    ours = inspect.signature(SPSA)
    ref = inspect.signature(qao.SPSA)
    for name, p in ref.parameters.items():
        assert name in ours.parameters, name
        q = ours.parameters[name]
        if p.default is not inspect.Parameter.empty:
            assert q.default == p.default or (q.default is None and p.default is None), name
    assert "seed" in ours.parameters
    assert ours.parameters["seed"].default is None


@pytest.mark.parametrize(
    "name", ["calibrate", "estimate_stddev", "minimize", "settings", "set_max_evals_grouped"]
)
def test_spsa_methods_exist(name):
    assert hasattr(SPSA, name)


def test_static_methods_are_static():
    assert isinstance(inspect.getattr_static(SPSA, "calibrate"), staticmethod)
    assert isinstance(inspect.getattr_static(SPSA, "estimate_stddev"), staticmethod)


def test_settings_roundtrip_like_qiskit_algorithms():
    ours = SPSA(maxiter=7, learning_rate=0.1, perturbation=0.05, resamplings=2, blocking=True)
    ref = qao.SPSA(maxiter=7, learning_rate=0.1, perturbation=0.05, resamplings=2, blocking=True)
    s_ours, s_ref = ours.settings, ref.settings
    for k in s_ref:
        assert k in s_ours, k
    assert s_ours["maxiter"] == 7
    SPSA(**{k: v for k, v in s_ours.items()})  # settings feed back into the constructor


def test_minimize_plain_callable_result_fields():
    res = SPSA(maxiter=20, seed=1).minimize(quad, np.zeros(3))
    for f in ("x", "fun", "nfev", "nit", "njev"):
        assert hasattr(res, f), f
    assert res.nit == 20
    assert res.fun == pytest.approx(quad(res.x))
    assert quad(res.x) < quad(np.zeros(3))


def test_seed_reproducible_without_global_state():
    r1 = SPSA(maxiter=15, seed=3).minimize(quad, np.zeros(3))
    np.random.seed(0)
    algorithm_globals.random_seed = 99
    r2 = SPSA(maxiter=15, seed=3).minimize(quad, np.zeros(3))
    np.testing.assert_array_equal(r1.x, r2.x)
    r3 = SPSA(maxiter=15, seed=4).minimize(quad, np.zeros(3))
    assert not np.array_equal(r1.x, r3.x)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"blocking": True},
        {"resamplings": 2},
        {"second_order": True},
        {"last_avg": 3},
        {"trust_region": True},
    ],
)
def test_nfev_and_nit_match_qiskit_algorithms(kwargs):
    kw = {"maxiter": 6, "learning_rate": 0.1, "perturbation": 0.1, **kwargs}
    ours = SPSA(seed=5, **kw).minimize(quad, np.zeros(2))
    algorithm_globals.random_seed = 5
    ref = qao.SPSA(**kw).minimize(quad, np.zeros(2))
    assert ours.nit == ref.nit
    assert ours.nfev == ref.nfev


def test_iterates_match_qiskit_algorithms_with_same_seed():
    """Same seed, same gains: the same directions -> the same iterates as qiskit-algorithms."""
    kw = {"maxiter": 8, "learning_rate": 0.1, "perturbation": 0.1}
    ours = SPSA(seed=5, **kw).minimize(quad, np.zeros(3))
    algorithm_globals.random_seed = 5
    ref = qao.SPSA(**kw).minimize(quad, np.zeros(3))
    np.testing.assert_allclose(ours.x, ref.x, atol=1e-12)


def test_calibrate_and_estimate_stddev_static():
    algorithm_globals.random_seed = 2
    lr, pert = SPSA.calibrate(quad, np.zeros(2))
    assert callable(lr) and callable(pert)
    next(iter(lr()))
    std = SPSA.estimate_stddev(quad, np.zeros(2), avg=5)
    assert std == pytest.approx(0.0)


def test_callback_signature():
    calls = []
    SPSA(maxiter=3, seed=1, callback=lambda *a: calls.append(a)).minimize(quad, np.zeros(2))
    assert len(calls) == 3
    nfev, x, fx, step, accepted = calls[0]
    assert isinstance(nfev, int)
    assert np.asarray(x).shape == (2,)
    assert isinstance(accepted, (bool, np.bool_))


def test_termination_checker():
    def stop(nfev, x, fx, step, accepted):
        return True

    res = SPSA(maxiter=10, seed=1, termination_checker=stop).minimize(quad, np.zeros(2))
    assert res.nit == 1


def test_scipy_minimize_custom_method():
    import scipy.optimize

    spsa = SPSA(maxiter=10, seed=1)
    res = scipy.optimize.minimize(quad, np.zeros(2), method=spsa.minimize)
    assert np.asarray(res.x).shape == (2,)
    assert res.fun == pytest.approx(quad(res.x))


# --------------------------------------------------------------------------- EstimatorLoss


def test_estimator_loss_values_and_one_job(mocker):
    est = StatevectorEstimator()
    spy = mocker.spy(est, "run")
    loss = EstimatorLoss(est, ANSATZ, H)
    v = loss(X0)
    assert isinstance(v, float)
    assert v == pytest.approx(exact(X0), abs=1e-10)
    assert spy.call_count == 1
    X = np.stack([X0, X0 + 0.1, X0 - 0.3, X0 * 2])
    vals = loss.batch(X)
    assert spy.call_count == 2
    assert isinstance(vals, np.ndarray) and vals.shape == (4,)
    np.testing.assert_allclose(vals, [exact(x) for x in X], atol=1e-10)


def test_estimator_loss_accepts_gradient_estimator():
    loss = EstimatorLoss(GradientEstimator(StatevectorEstimator()), ANSATZ, H)
    assert loss(X0) == pytest.approx(exact(X0), abs=1e-10)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"resamplings": 3},
        {"blocking": True},
        {"second_order": True},
        {"second_order": True, "resamplings": 2, "blocking": True},
        {"termination_checker": lambda *a: False},
        {"trust_region": True, "last_avg": 2},
    ],
)
def test_spsa_one_job_per_iteration_with_batched_loss(mocker, kwargs):
    est = StatevectorEstimator()
    spy = mocker.spy(est, "run")
    loss = EstimatorLoss(est, ANSATZ, H)
    counts = []
    spsa = SPSA(
        maxiter=5,
        learning_rate=0.05,
        perturbation=0.1,
        seed=3,
        callback=lambda *a: counts.append(spy.call_count),
        **kwargs,
    )
    res = spsa.minimize(loss, X0)
    assert res.nit == 5
    assert len(counts) == 5
    # one job per iteration, plus at most an initial and a final evaluation
    assert 5 <= spy.call_count <= 5 + 2, (spy.call_count, kwargs)
    assert np.all(np.diff(counts) <= 1), (counts, kwargs)


def test_spsa_calibration_one_job(mocker):
    est = StatevectorEstimator()
    spy = mocker.spy(est, "run")
    loss = EstimatorLoss(est, ANSATZ, H)
    res = SPSA(maxiter=3, seed=3).minimize(loss, X0)
    assert res.nit == 3
    # calibration (one job for all 25 directions) + 3 iterations + at most 2 extra evaluations
    assert 1 + 3 <= spy.call_count <= 1 + 3 + 2
    first_pubs = list(spy.call_args_list[0].args[0])
    assert sum(np.prod(np.shape(p[2])[:-1]) for p in first_pubs) == 50


def test_spsa_batched_equals_plain_callable_iterates():
    est = StatevectorEstimator()
    loss = EstimatorLoss(est, ANSATZ, H)
    kw = {"maxiter": 6, "learning_rate": 0.05, "perturbation": 0.1, "seed": 11}
    r1 = SPSA(**kw).minimize(loss, X0)
    r2 = SPSA(**kw).minimize(lambda x: loss(x), X0)
    np.testing.assert_allclose(r1.x, r2.x, atol=1e-12)


def test_spsa_decreases_energy():
    loss = EstimatorLoss(StatevectorEstimator(), ANSATZ, H)
    res = SPSA(maxiter=40, seed=1).minimize(loss, X0)
    assert res.fun < exact(X0)
    assert res.fun == pytest.approx(exact(res.x), abs=1e-10)


# --------------------------------------------------------------------------- checkpoint


def test_checkpoint_and_resume_same_iterates(tmp_path):
    class Stop(RuntimeError):
        pass

    class EndsAfter:
        def __init__(self, loss, jobs):
            self.loss, self.jobs_left = loss, jobs

        def __call__(self, x):
            return self.loss(x)

        def batch(self, points):
            if self.jobs_left == 0:
                raise Stop
            self.jobs_left -= 1
            return self.loss.batch(points)

    loss = EstimatorLoss(StatevectorEstimator(), ANSATZ, H)
    full = SPSA(maxiter=6, seed=7).minimize(loss, X0)
    path = tmp_path / "run.json"
    spsa = SPSA(maxiter=6, seed=7, checkpoint=str(path))
    with pytest.raises(Stop):
        spsa.minimize(EndsAfter(loss, 4), X0)
    assert path.exists()
    resumed = SPSA(maxiter=6, seed=7, checkpoint=str(path)).minimize(loss, None, state=str(path))
    assert resumed.nit == full.nit
    np.testing.assert_array_equal(resumed.x, full.x)
    assert resumed.fun == full.fun


# --------------------------------------------------------------------------- peer libraries


def test_spsa_in_qiskit_algorithms_vqe():
    from qiskit_algorithms.minimum_eigensolvers import VQE

    vqe = VQE(StatevectorEstimator(), ANSATZ, SPSA(maxiter=30, seed=1))
    res = vqe.compute_minimum_eigenvalue(H)
    assert res.eigenvalue.real < exact(np.zeros(NP)) + 1e-9
    assert res.optimal_point.shape == (NP,)


def test_spsa_in_qiskit_machine_learning():
    from qiskit_machine_learning.algorithms import NeuralNetworkRegressor
    from qiskit_machine_learning.neural_networks import EstimatorQNN

    x = Parameter("x")
    qc = real_amplitudes(1, reps=1)
    circ = qc.copy()
    circ.ry(x, 0)
    circ = circ.compose(qc.assign_parameters(list(qc.parameters)), inplace=False)
    qnn = EstimatorQNN(
        circuit=circ,
        input_params=[x],
        weight_params=list(qc.parameters),
        estimator=StatevectorEstimator(seed=1),
    )
    reg = NeuralNetworkRegressor(qnn, optimizer=SPSA(maxiter=5, seed=1))
    X = np.linspace(-1, 1, 6).reshape(-1, 1)
    reg.fit(X, np.sin(X).ravel())
    assert reg.predict(X).shape[0] == 6
