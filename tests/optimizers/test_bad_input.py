"""QN-SPSA and natural gradient on bad input: every option checked at construction (the error
names the argument, its value and the fix), a checkpoint of another optimizer refused, a
fidelity or metric that returns NaN named as such (and no NaN in the state), a fidelity of
another circuit named by its parameter counts."""

import math

import numpy as np
import pytest
from qiskit.circuit.library import real_amplitudes
from qiskit.primitives import StatevectorSampler

from qprim_grad import GradientEstimator
from qprim_grad.errors import NonFiniteLossError
from qprim_grad.optimizers import QNSPSA, SPSA, EstimatorLoss, NaturalGradient, SPSAState

GAINS = {"learning_rate": 0.2, "perturbation": 0.1}


def exact_fidelity(xs, ys):
    return np.ones(np.reshape(xs, (-1, 4)).shape[0])


QNSPSA_BAD = {
    "learning_rate": [-0.1, 0.0, np.array([0.1, -0.1]), "fast"],
    "perturbation": [-0.1, 0.0, math.nan],
    "regularization": [-1, math.inf, "big"],
    "maxiter": [-1, 2.5, True],
    "blocking": ["yes"],
    "allowed_increase": [-0.1, math.nan],
    "resamplings": [0, 1.5, {1: 0}],
    "perturbation_dims": [0, 1.5],
    "hessian_delay": [-1, 0.5],
    "last_avg": [0],
    "lse_solver": ["numpy"],
    "callback": [3],
    "termination_checker": ["stop"],
    "initial_hessian": [np.ones(3), np.full((2, 2), np.nan)],
    "seed": [-1, "seed", 1.5],
    "precision": [-0.1, "fine"],
    "progress": ["yes"],
}
CASES = [(name, value) for name, values in QNSPSA_BAD.items() for value in values]


@pytest.mark.parametrize(("name", "value"), CASES, ids=[f"{n}={v!r}" for n, v in CASES])
def test_every_qnspsa_option_is_checked_at_construction(name, value):
    options = dict(GAINS)
    if name in ("learning_rate", "perturbation"):
        options = {"learning_rate": 0.2, "perturbation": 0.1, name: value}
    else:
        options[name] = value
    with pytest.raises(ValueError, match=rf"{name}") as info:
        QNSPSA(exact_fidelity, **options)
    assert "give" in str(info.value) or "must" in str(info.value)  # says the fix


def test_negative_learning_rate_and_regularization_are_named():
    with pytest.raises(ValueError, match=r"QNSPSA\(learning_rate=-0.1\).*positive"):
        QNSPSA(exact_fidelity, learning_rate=-0.1, perturbation=0.1)
    with pytest.raises(ValueError, match=r"QNSPSA\(regularization=-1\).*>= 0"):
        QNSPSA(exact_fidelity, regularization=-1)


NG_BAD = {
    "stepsize": [0, -1, math.nan, "big"],
    "approx": ["full"],
    "lam": [-0.1, math.inf],
    "relative_lam": [-1e-3],
    "rcond": [-1e-4, 1.0],
    "max_step": [0, -1.0],
    "maxiter": [-1, 2.5],
    "gradient_options": ["epsilon"],
    "metric_options": [3],
    "gradient_method": [3],
    "callback": [3],
    "termination_checker": ["stop"],
    "seed": [-2],
    "progress": ["no"],
    "precision": [-1.0, "fine"],
}
NG_CASES = [(name, value) for name, values in NG_BAD.items() for value in values]


@pytest.mark.parametrize(("name", "value"), NG_CASES, ids=[f"{n}={v!r}" for n, v in NG_CASES])
def test_every_natural_gradient_option_is_checked_at_construction(name, value):
    with pytest.raises(ValueError, match=rf"{name}"):
        NaturalGradient(**{name: value})


def test_qnspsa_refuses_a_2spsa_checkpoint(loss, circuit, x0, tmp_path):
    path = tmp_path / "2spsa.json"
    SPSA(maxiter=2, seed=1, second_order=True, checkpoint=path, **GAINS).minimize(loss, x0)
    fidelity = QNSPSA.get_fidelity(circuit, StatevectorSampler(seed=1))
    with pytest.raises(ValueError, match="saved by SPSA"):
        QNSPSA(fidelity, maxiter=4, seed=1, blocking=False, **GAINS).resume(loss, path)
    with pytest.raises(ValueError, match="SPSA checkpoint|holds a SPSAState|natural_state"):
        NaturalGradient(maxiter=4).resume(loss, path)


@pytest.mark.parametrize("blocking", [False, True])
def test_nan_fidelity_is_named_and_leaves_no_nan_in_state(loss, circuit, x0, blocking):
    calls = {"n": 0}

    def flaky(xs, ys):
        calls["n"] += 1
        n = np.reshape(xs, (-1, 4)).shape[0]
        return np.full(n, np.nan) if calls["n"] >= 9 else np.ones(n) * 0.99  # iteration 3

    qn = QNSPSA(flaky, maxiter=6, seed=1, blocking=blocking, **GAINS)
    with pytest.raises(NonFiniteLossError, match="the fidelity returned nan") as info:
        qn.minimize(loss, x0)
    assert "loss returned" not in str(info.value)
    state = info.value.state
    assert isinstance(state, SPSAState)
    assert state.k == 2
    for value in (state.x, state.hessian, state.fx):
        assert np.all(np.isfinite(value))


def test_fidelity_of_another_circuit_names_the_parameter_counts(loss, x0):
    other = QNSPSA.get_fidelity(real_amplitudes(3, reps=1), StatevectorSampler())
    with pytest.raises(ValueError, match=r"6 parameters.*has 4"):
        QNSPSA(other, maxiter=2, **GAINS).minimize(loss, x0)


def test_natural_gradient_nan_estimator_is_named(circuit, observable, x0, mocker):
    from qiskit.primitives import StatevectorEstimator

    inner = StatevectorEstimator()
    estimator = GradientEstimator(inner, method="param_shift", metric="diag")
    loss = EstimatorLoss(estimator, circuit, observable)
    original = inner.run

    def nan_run(pubs, precision=None):
        result = original(pubs, precision=precision).result()
        for pub in result:
            pub.data.evs[...] = np.nan
        return type("Job", (), {"result": lambda self: result, "job_id": lambda self: "x"})()

    mocker.patch.object(inner, "run", side_effect=nan_run)
    with pytest.raises(NonFiniteLossError, match="NaturalGradient iteration 1: the") as info:
        NaturalGradient(stepsize=0.1, maxiter=3).minimize(loss, x0)
    assert "LinAlgError" not in str(info.value)
    assert np.all(np.isfinite(info.value.state.x))


def test_precision_needs_a_loss_that_takes_one(x0, quadratic):
    with pytest.raises(TypeError, match=r"precision=0.01.*EstimatorLoss"):
        SPSA(maxiter=2, precision=0.01, **GAINS).minimize(quadratic, x0)
