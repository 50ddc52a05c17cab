"""One primitive job per iteration with a batched loss, in every mode (counted with a spy
on the real estimator's ``run``)."""

import numpy as np
import pytest

from qprim_grad.optimizers import SPSA, EstimatorLoss

MAXITER = 6
GAINS = {"learning_rate": 0.2, "perturbation": 0.1}


def stop_after(n):
    calls = []

    def checker(nfev, x, fx, stepsize, accepted):
        calls.append(fx)
        return len(calls) >= n

    return checker


MODES = {
    "plain": {},
    "blocking": {"blocking": True},
    "blocking_fixed": {"blocking": True, "allowed_increase": 0.0},
    "resamplings=3": {"resamplings": 3},
    "resamplings_dict": {"resamplings": {1: 4, 3: 2}},
    "second_order": {"second_order": True, "hessian_delay": 1},
    "last_avg": {"last_avg": 3, "blocking": True},
    "trust_region": {"trust_region": True, "perturbation_dims": 2},
}


@pytest.mark.parametrize("options", MODES.values(), ids=MODES.keys())
def test_one_job_per_iteration(loss, x0, mocker, options):
    spy = mocker.spy(loss.estimator, "run")
    result = SPSA(maxiter=MAXITER, seed=3, **GAINS, **options).minimize(loss, x0)
    assert result.nit == MAXITER
    assert spy.call_count == MAXITER + 1  # one per iteration + the final point
    assert result.jobs == spy.call_count
    assert result.nfev == sum(call.args[0][0][2].shape[0] for call in spy.call_args_list)
    assert result.fun == pytest.approx(loss(result.x))


def test_calibration_is_one_job(loss, x0, mocker):
    spy = mocker.spy(loss.estimator, "run")
    result = SPSA(maxiter=MAXITER, seed=3).minimize(loss, x0)
    assert spy.call_count == 1 + MAXITER + 1
    assert spy.call_args_list[0].args[0][0][2].shape == (50, 4)  # 25 directions, ±c
    assert result.state.gains["perturbation"]["scale"] == 0.2


def test_blocking_stddev_rides_in_first_job(loss, x0, mocker):
    spy = mocker.spy(loss.estimator, "run")
    result = SPSA(maxiter=3, seed=1, blocking=True, **GAINS).minimize(loss, x0)
    # centre + 25 repetitions + 2 perturbations
    assert spy.call_args_list[0].args[0][0][2].shape == (28, 4)
    assert result.state.allowed_increase == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("last_avg", [1, 2])
def test_termination_checker_costs_no_extra_job(loss, x0, mocker, last_avg):
    spy = mocker.spy(loss.estimator, "run")
    checker = stop_after(3)
    result = SPSA(
        maxiter=50, seed=3, termination_checker=checker, last_avg=last_avg, **GAINS
    ).minimize(loss, x0)
    assert result.nit == 3
    assert spy.call_count == 4  # iterations 1..3, the fourth job measures x_3 and stops
    assert result.fun == pytest.approx(loss(result.x))


def test_rejection_discards_speculative_gradient(loss, x0, mocker):
    """A huge learning rate makes steps fail the blocking check: the iterate stays."""
    seen = []
    spsa = SPSA(
        maxiter=5,
        blocking=True,
        allowed_increase=0.0,
        learning_rate=50.0,
        perturbation=0.1,
        seed=0,
        callback=lambda *args: seen.append(args),
    )
    spy = mocker.spy(loss.estimator, "run")
    result = spsa.minimize(loss, x0)
    assert spy.call_count == 6
    assert any(not accepted for *_, accepted in seen)
    accepted_values = [fx for _, _, fx, _, acc in seen if acc]
    assert result.fun <= loss(x0) + 1e-12
    assert all(b <= a for a, b in zip(accepted_values, accepted_values[1:]))
    assert result.history.accepted == [acc for *_, acc in seen]


def test_aer_estimator_one_job_per_iteration(circuit, observable, x0, mocker):
    aer = pytest.importorskip("qiskit_aer.primitives")
    estimator = aer.EstimatorV2(options={"default_precision": 0.02, "run_options": {"seed": 5}})
    loss = EstimatorLoss(estimator, circuit, observable)
    spy = mocker.spy(estimator, "run")
    result = SPSA(maxiter=4, seed=2, resamplings=2, second_order=True, blocking=True).minimize(
        loss, x0
    )
    assert spy.call_count == 1 + 4 + 1
    assert result.state.allowed_increase > 0  # shot noise was measured


@pytest.mark.filterwarnings(r"ignore:The EstimatorV2 class is deprecated:DeprecationWarning")
def test_runtime_local_mode_one_job_per_iteration(circuit, observable, x0, mocker):
    runtime = pytest.importorskip("qiskit_ibm_runtime")
    from qiskit.transpiler import generate_preset_pass_manager
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    backend = FakeManilaV2()
    isa = generate_preset_pass_manager(optimization_level=1, backend=backend).run(circuit)
    with runtime.Session(backend=backend) as session:
        estimator = runtime.EstimatorV2(mode=session)
        estimator.options.default_shots = 256
        estimator.options.simulator.seed_simulator = 7
        loss = EstimatorLoss(estimator, isa, observable)  # layout applied to the observable
        spy = mocker.spy(estimator, "run")
        result = SPSA(maxiter=3, seed=2, blocking=True, **GAINS).minimize(loss, x0)
    assert spy.call_count == 3 + 1
    assert np.isfinite(result.fun)
