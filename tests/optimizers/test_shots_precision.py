"""Shots across a run: counted on the results and in the history (real shot sampling,
calibration included), and the precision each iteration asks for (None, a float, a
callable, "adaptive")."""

import math

import numpy as np
import pytest
from qiskit.primitives import BackendEstimatorV2

from qprim_grad.optimizers import QNSPSA, SPSA, AdaptivePrecision, EstimatorLoss, NaturalGradient
from qprim_grad.optimizers.precision import as_precision_rule, update_statistics

aer = pytest.importorskip("qiskit_aer")

GAINS = {"learning_rate": 0.2, "perturbation": 0.2}


@pytest.fixture
def sampled_loss(circuit, observable):
    estimator = BackendEstimatorV2(backend=aer.AerSimulator(seed_simulator=11))
    return EstimatorLoss(estimator, circuit, observable)


def test_spsa_counts_the_shots_of_every_job(sampled_loss, x0, mocker):
    spy = mocker.spy(sampled_loss, "run_batch")
    result = SPSA(maxiter=4, seed=1, precision=0.05).minimize(sampled_loss, x0)  # calibrated
    # ZZ | XI, IX: two qubit-wise commuting bases, ceil(1/0.05^2) = 400 shots per basis
    rows = [call.args[0].shape[0] for call in spy.call_args_list]
    assert rows[0] == 50  # the calibration, at the run's precision
    assert result.shots == sum(rows) * 2 * 400 == sampled_loss.shots
    assert result.jobs == len(rows) == 1 + 4 + 1
    shots = result.history.shots
    assert len(shots) == 4 and shots == sorted(shots) and shots[-1] == result.shots
    assert shots[0] == (50 + 3 + 3) * 2 * 400  # calibration, jobs 1 and 2 (which measured step 1)
    assert all(call.kwargs["precision"] == 0.05 for call in spy.call_args_list)


def test_callable_precision_per_iteration(sampled_loss, x0, mocker):
    spy = mocker.spy(sampled_loss, "run_batch")
    SPSA(maxiter=3, seed=1, precision=lambda k: 0.1 / k, **GAINS).minimize(sampled_loss, x0)
    seen = [call.kwargs["precision"] for call in spy.call_args_list]
    assert seen == pytest.approx([0.1, 0.05, 0.1 / 3, 0.025])  # iterations 1..3, final


def test_adaptive_precision_starts_coarse_and_tightens(sampled_loss, x0, mocker):
    spy = mocker.spy(sampled_loss, "run_batch")
    result = SPSA(maxiter=30, seed=3, precision="adaptive", **GAINS).minimize(sampled_loss, x0)
    seen = np.array([call.kwargs["precision"] for call in spy.call_args_list])
    rule = AdaptivePrecision()
    assert seen[0] == rule.p_max  # nothing known yet
    assert np.all((seen >= rule.p_min) & (seen <= rule.p_max))
    assert seen[-5:].mean() < 0.8 * rule.p_max  # near the minimum: more shots per value
    per_iteration = np.diff(result.history.shots)  # one 3-point job each (the last: 1 point)
    assert per_iteration[-2] > per_iteration[0] and result.shots == sampled_loss.shots


def test_adaptive_rule_is_the_documented_formula():
    rule = AdaptivePrecision(fraction=0.5, p_min=1e-3, p_max=0.1, memory=0.8)
    stats = update_statistics({}, differences=[0.2, -0.2], memory=rule.memory)
    assert stats == {"differences": pytest.approx(0.04)}
    assert rule.at(2, stats) == pytest.approx(0.5 * 0.2 / math.sqrt(2))
    stats = update_statistics(stats, differences=[0.0], memory=rule.memory)
    assert stats["differences"] == pytest.approx(0.8 * 0.04)
    # blocking: the smaller of the difference and the loss-change scales decides
    both = update_statistics(stats, change=-0.01, memory=rule.memory)
    assert rule.at(3, both) == pytest.approx(0.5 * 0.01 / math.sqrt(2))
    assert rule.at(4, {"differences": 1e-12}) == 1e-3 and rule.at(4, {"differences": 9}) == 0.1
    with pytest.raises(ValueError, match="p_min"):
        AdaptivePrecision(p_min=0.2, p_max=0.1)
    with pytest.raises(ValueError, match="'adaptive'"):
        as_precision_rule("auto")


def test_adaptive_default_floor_bounds_the_shots_per_iteration():
    """The default floor: at most 1e5 shots per basis and value, however small the
    differences get; a floor of one's own caps the cost of an iteration."""
    rule = AdaptivePrecision()
    assert (rule.fraction, rule.p_max, rule.memory) == (0.5, 0.1, 0.8)
    stats = {}
    for _ in range(50):  # differences shrinking towards the minimum
        stats = update_statistics(stats, differences=[1e-6, -1e-6], memory=rule.memory)
    assert rule.at(51, stats) == rule.p_min and 1 / rule.p_min**2 == pytest.approx(1e5)
    capped = AdaptivePrecision(p_min=0.01)
    assert capped.at(51, stats) == 0.01 and math.ceil(1 / capped.at(51, stats) ** 2) == 10_000
    # large differences: the coarse end, with the documented fraction in between
    assert rule.at(2, {"differences": 1.0}) == 0.1
    assert rule.at(2, {"differences": 0.05**2}) == pytest.approx(0.5 * 0.05 / math.sqrt(2))


def test_qnspsa_and_natural_gradient_take_a_precision(circuit, sampled_loss, x0, mocker):
    from qiskit.primitives import StatevectorSampler

    fidelity = QNSPSA.get_fidelity(circuit, StatevectorSampler(default_shots=100, seed=2))
    spy = mocker.spy(sampled_loss, "run_batch")
    qn = QNSPSA(fidelity, maxiter=2, seed=1, blocking=False, precision=0.1, **GAINS)
    result = qn.minimize(sampled_loss, x0)
    assert {call.kwargs["precision"] for call in spy.call_args_list} == {0.1}
    # estimator: 3 jobs x rows x 2 bases x 100 shots; sampler: 2 jobs x 4 pairs x 100 shots
    rows = sum(call.args[0].shape[0] for call in spy.call_args_list)
    assert result.shots == rows * 2 * 100 + 2 * 4 * 100
    run = mocker.spy(type(sampled_loss.estimator), "run")
    ng = NaturalGradient(stepsize=0.1, maxiter=1, approx="diag", precision=0.1)
    ng_result = ng.minimize(sampled_loss, x0)
    assert run.call_args_list[0].kwargs["precision"] == 0.1
    assert ng_result.shots > 0 and ng_result.jobs == 2
