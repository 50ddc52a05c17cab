"""ShotAdaptive: each rule's shots against a hand computation on fixed statistics; gradient
descent on the exact StatevectorEstimator (min_shots everywhere, 0 shots counted); real shot
sampling on BackendEstimatorV2/AerSimulator with one job per iteration (spy) and shots
counted by hand; seeds, checkpoints, the steppable protocol; bad arguments."""

from __future__ import annotations

import math

import numpy as np
import pytest
from qiskit.primitives import BackendEstimatorV2, StatevectorEstimator
from qiskit.quantum_info import Statevector

from qprim_grad.errors import NonFiniteLossError
from qprim_grad.optimizers import EstimatorLoss, ShotAdaptive
from qprim_grad.optimizers.shot_adaptive import ShotAdaptiveState, precision_of
from qprim_grad.optimizers.shot_rules import (
    expected_gain_per_shot,
    gcans_shots,
    icans_shots,
    next_shots,
    quantized,
)
from qprim_grad.optimizers.state import load_state

aer = pytest.importorskip("qiskit_aer")

CHI = np.array([0.4, 0.1, 0.02])
XI = np.array([1.0, 4.0, 0.25])
RULE = {"lipschitz": 2.0, "stepsize": 0.25, "bias": 1e-3, "mu": 0.9, "k": 2}


def energy(circuit, observable, x):
    return Statevector(circuit.assign_parameters(x)).expectation_value(observable).real


def shot_loss(circuit, observable, seed=5):
    backend = aer.AerSimulator(seed_simulator=seed, max_parallel_threads=1)
    return EstimatorLoss(BackendEstimatorV2(backend=backend), circuit, observable)


# ---- the rules, by hand --------------------------------------------------------------------
def test_icans_shots_by_hand():
    factor = 2 * 2.0 * 0.25 / (2 - 2.0 * 0.25)  # 2Lα/(2-Lα) = 2/3
    bias = 1e-3 * 0.9**2
    expected = [math.ceil(factor * xi / (chi**2 + bias)) for chi, xi in zip(CHI, XI)]
    assert icans_shots(CHI, XI, **RULE).tolist() == expected == [5, 247, 138]


def test_gcans_shots_by_hand():
    factor = 2 / 3
    sigma = np.sqrt(XI)  # 1, 2, 0.5
    norm = 0.16 + 0.01 + 0.0004 + 1e-3 * 0.81
    expected = [math.ceil(factor * s * 3.5 / norm) for s in sigma]
    assert gcans_shots(CHI, XI, **RULE).tolist() == expected == [14, 28, 7]


def test_icans1_caps_at_the_most_efficient_component():
    raw = icans_shots(CHI, XI, **RULE)
    gain = expected_gain_per_shot(CHI, XI, raw, lipschitz=2.0, stepsize=0.25)
    assert int(np.argmax(gain)) == 0  # component 0 gains most per shot, with 5 shots
    plan = next_shots("icans1", CHI, XI, min_shots=2, max_shots=None, **RULE)
    assert plan.shots.tolist() == [5, 5, 5]
    assert plan.stepsizes.tolist() == [0.25] * 3
    plan = next_shots("icans1", CHI, XI, min_shots=8, max_shots=None, **RULE)
    assert plan.shots.tolist() == [8, 8, 8]  # min_shots wins over the cap


def test_icans2_lowers_the_learning_rate_of_starved_components():
    plan = next_shots("icans2", CHI, XI, min_shots=2, max_shots=None, **RULE)
    s = plan.shots.astype(float)
    expected = np.minimum(0.25, CHI**2 / (2.0 * (CHI**2 + XI / s)))
    np.testing.assert_allclose(plan.stepsizes, expected)
    assert plan.stepsizes[0] < 0.25 and plan.stepsizes[2] < plan.stepsizes[0]


def test_gcans_clips_and_zero_variance_gives_min_shots():
    plan = next_shots("gcans", CHI, XI, min_shots=10, max_shots=20, **RULE)
    assert plan.shots.tolist() == [14, 20, 10]
    for rule in ("icans1", "icans2", "gcans"):
        plan = next_shots(rule, CHI, np.zeros(3), min_shots=3, max_shots=None, **RULE)
        assert plan.shots.tolist() == [3, 3, 3]


def test_quantized_rounds_up_to_few_values():
    shots = np.arange(10, 400)
    rounded = quantized(shots, 4, base=10)
    assert rounded[0] == 10
    assert np.all(rounded >= shots) and np.all(rounded <= np.ceil(shots * 2**0.25))
    assert len(set(rounded.tolist())) <= 4 * math.log2(400 / 10) + 2
    assert quantized(shots, None).tolist() == shots.tolist()


def test_precision_gives_the_shots():
    shots = np.arange(1, 5000)
    assert np.all(np.ceil(1 / precision_of(shots) ** 2) == shots)


# ---- runs ----------------------------------------------------------------------------------
def test_exact_primitive_is_gradient_descent_at_min_shots(loss, x0, circuit, observable):
    result = ShotAdaptive(stepsize=0.3, rule="gcans", min_shots=7, maxiter=25).minimize(loss, x0)
    ground = np.linalg.eigvalsh(observable.to_matrix())[0]
    assert result.fun < ground + 0.05
    assert result.fun == pytest.approx(energy(circuit, observable, result.x), abs=1e-10)
    assert (result.nit, result.jobs, result.nfev, result.njev, result.shots) == (25, 26, 26, 25, 0)
    assert all(r.parameter_shots == (7,) * 4 for r in result.history)
    # plain gradient descent: the first step is stepsize * the exact gradient
    first = ShotAdaptive(stepsize=0.3, maxiter=1).minimize(loss, x0)
    shift = np.pi / 2 * np.identity(4)
    grad = [
        (energy(circuit, observable, x0 + s) - energy(circuit, observable, x0 - s)) / 2
        for s in shift
    ]
    np.testing.assert_allclose(first.x, x0 - 0.3 * np.array(grad), atol=1e-10)


@pytest.mark.parametrize("rule", ["icans1", "icans2", "gcans"])
def test_shot_noise_one_job_per_iteration_and_shots_counted(rule, circuit, observable, x0, mocker):
    loss = shot_loss(circuit, observable)
    spy = mocker.spy(loss.estimator, "run")
    opt = ShotAdaptive(stepsize=0.4, rule=rule, min_shots=4, maxiter=12)
    result = opt.minimize(loss, x0)
    assert spy.call_count == result.jobs == 13
    assert energy(circuit, observable, result.x) < energy(circuit, observable, x0) - 0.3
    bases = len(observable.group_commuting(qubit_wise=True))
    # what the inner jobs asked for: rows x bases x ceil(1 / precision**2) per inner pub
    # (BackendEstimatorV2 turns a precision into that many shots per basis)
    asked = [
        sum(
            bases * int(np.prod(pub.parameter_values.shape)) * math.ceil(1 / pub.precision**2)
            for pub in call.args[0]
        )
        for call in spy.call_args_list
    ]
    assert result.shots == sum(asked)
    assert [r.shots for r in result.history] == np.cumsum(asked)[:-1].tolist()
    # parameters with equal shots share a pub: centre rows = distinct shot counts
    for call, record in zip(spy.call_args_list, result.history):
        rows = sum(int(np.prod(pub.parameter_values.shape)) for pub in call.args[0])
        assert rows == len(set(record.parameter_shots)) + 2 * 4
    assert max(max(r.parameter_shots) for r in result.history) > 4  # it adapted


def test_seeded_runs_repeat(circuit, observable, x0):
    runs = [
        ShotAdaptive(stepsize=0.3, maxiter=5, seed=1).minimize(
            shot_loss(circuit, observable, seed=11), x0
        )
        for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0].x, runs[1].x)
    assert runs[0].shots == runs[1].shots


def test_resume_from_a_state_or_checkpoint_gives_the_same_iterates(
    circuit, observable, x0, tmp_path
):
    full = ShotAdaptive(stepsize=0.3, maxiter=6).minimize(shot_loss(circuit, observable), x0)
    path = tmp_path / "shots.json"
    first = ShotAdaptive(stepsize=0.3, maxiter=6, checkpoint=path)
    first.start(shot_loss(circuit, observable), x0)
    for _ in range(3):
        first.step()
    saved = first.state
    assert saved is not None and saved.k == 3
    assert isinstance(load_state(path), ShotAdaptiveState)  # the package-wide reader knows it
    for given in (saved, str(path), ShotAdaptiveState.load(path)):
        resumed = ShotAdaptive(stepsize=0.3, maxiter=6).minimize(
            shot_loss(circuit, observable), None, state=given
        )
        np.testing.assert_array_equal(resumed.x, full.x)
        assert (resumed.shots, resumed.jobs, resumed.nit) == (full.shots, full.jobs, 6)
        assert resumed.history == full.history


def test_ask_tell_loop_equals_minimize(loss, x0):
    result = ShotAdaptive(stepsize=0.2, rule="icans2", maxiter=8).minimize(loss, x0)
    opt = ShotAdaptive(stepsize=0.2, rule="icans2", maxiter=8)
    opt.start(loss, x0)
    asks = 0
    while opt.continue_condition():
        ask = opt.ask()
        assert ask.x_fun.shape == (1, 4)
        opt.tell(ask, opt.evaluate(ask))
        asks += 1
    assert asks == 9
    mine = opt.create_result()
    np.testing.assert_array_equal(mine.x, result.x)
    assert mine.fun == result.fun


def test_tell_takes_qiskit_algorithms_tell_data(loss, x0):
    steppable = pytest.importorskip("qiskit_algorithms.optimizers.steppable_optimizer")
    opt = ShotAdaptive(stepsize=0.1, maxiter=1)
    opt.start(loss, x0)
    ask = opt.ask()
    mine = opt.evaluate(ask)
    opt.tell(ask, steppable.TellData(eval_fun=mine.eval_fun, eval_jac=mine.eval_jac))
    np.testing.assert_allclose(opt.state.x, x0 - 0.1 * mine.eval_jac)
    with pytest.raises(TypeError, match="eval_fun"):
        opt.tell(opt.ask(), object())
    bad = steppable.TellData(eval_fun=0.0, eval_jac=np.array([0.0, np.nan, 0.0, 0.0]))
    with pytest.raises(NonFiniteLossError, match="ShotAdaptive iteration 2: the gradient"):
        opt.tell(opt.ask(), bad)


def test_callback_and_termination_checker(loss, x0):
    seen = []
    opt = ShotAdaptive(
        stepsize=0.2,
        maxiter=10,
        callback=lambda *args: seen.append(args),
        termination_checker=lambda nfev, x, fx, size, accepted: nfev >= 3,
    )
    result = opt.minimize(loss, x0)
    assert len(seen) == 3 and result.nit == 3 and result.jobs == 4
    nfev, x, fx, size, accepted = seen[0]
    assert nfev == 1 and accepted and size > 0
    np.testing.assert_array_equal(x, x0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"rule": "icans"}, ValueError, "rule='icans'"),
        ({"stepsize": -1.0}, ValueError, "stepsize"),
        ({"stepsize": "big"}, TypeError, "stepsize"),
        ({"min_shots": 0}, ValueError, "min_shots"),
        ({"min_shots": 2.5}, TypeError, "min_shots"),
        ({"maxiter": -1}, ValueError, "maxiter"),
        ({"mu": 1.0}, ValueError, "mu"),
        ({"bias": -1.0}, ValueError, "bias"),
        ({"lipschitz": 0.0}, ValueError, "lipschitz"),
        ({"min_shots": 50, "max_shots": 10}, ValueError, "max_shots"),
        ({"shot_levels": 0}, ValueError, "shot_levels"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, error, match):
    with pytest.raises(error, match=match):
        ShotAdaptive(**kwargs)


def test_bad_runs_are_rejected(loss, x0):
    with pytest.raises(ValueError, match="2/L"):
        ShotAdaptive(stepsize=2.0).minimize(loss, x0)  # L = 1.8 for the fixture's observable
    with pytest.raises(ValueError, match="x0 has 3 values"):
        ShotAdaptive().minimize(loss, x0[:3])
    with pytest.raises(TypeError, match="EstimatorLoss"):
        ShotAdaptive().minimize(lambda x: 0.0, x0)
    with pytest.raises(RuntimeError, match="start"):
        ShotAdaptive().ask()


def test_plain_estimator_exactness_is_detected(circuit, observable, x0):
    noisy = EstimatorLoss(StatevectorEstimator(default_precision=0.01, seed=1), circuit, observable)
    result = ShotAdaptive(stepsize=0.3, maxiter=3).minimize(noisy, x0)
    assert result.shots > 0  # synthetic noise at a precision: counted as shots


# ---- the driver's I/O ------------------------------------------------------------------------
def test_progress_line_shows_jobs_shots_and_eta(circuit, observable, x0, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # no tqdm: the plain line
    loss = shot_loss(circuit, observable)
    result = ShotAdaptive(stepsize=0.3, maxiter=4, progress=True).minimize(loss, x0)
    err = capsys.readouterr().err
    assert "ShotAdaptive 2/4" in err and "jobs=2" in err and "ETA 0:00:" in err
    assert f"shots={result.history[1].shots:,}" in err


def test_frozen_noise_warning_points_at_the_users_line(circuit, observable, x0):
    from qprim_grad.errors import CorrelatedNoiseWarning

    primitives = pytest.importorskip("qiskit_aer.primitives")
    estimator = primitives.EstimatorV2(
        options={"default_precision": 0.05, "run_options": {"seed_simulator": 3}}
    )
    loss = EstimatorLoss(estimator, circuit, observable)
    with pytest.warns(CorrelatedNoiseWarning, match="same .*noise") as record:
        ShotAdaptive(stepsize=0.3, maxiter=1).minimize(loss, x0)
    assert record[0].filename == __file__


def test_state_is_a_run_state_with_the_common_history(loss, x0, tmp_path):
    from qprim_grad.optimizers.state import RunState

    path = tmp_path / "run.json"
    result = ShotAdaptive(stepsize=0.3, maxiter=3, checkpoint=path).minimize(loss, x0)
    state = ShotAdaptiveState.load(path)
    assert isinstance(state, RunState) and state.done and state.optimizer == "ShotAdaptive"
    assert state.history.iteration == [1, 2, 3] and all(state.history.accepted)
    assert state.records() == result.history
    again = ShotAdaptive(stepsize=0.3, maxiter=3).resume(loss, path)  # finished: no job
    assert (again.jobs, again.nit) == (result.jobs, 3)
