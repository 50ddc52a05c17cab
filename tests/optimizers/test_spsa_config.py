"""Constructor validation, settings, immutability during minimize, seeding, observability."""

import copy
import logging
import re

import numpy as np
import pytest

from qprim_grad.optimizers import SPSA, OptimizerSupportLevel, PowerSeries


def test_learning_rate_and_perturbation_both_or_neither():
    with pytest.raises(ValueError, match="both must be set"):
        SPSA(learning_rate=0.1)
    with pytest.raises(ValueError, match="both must be set"):
        SPSA(perturbation=0.1)
    spsa = SPSA(learning_rate=0.1, perturbation=0.1)
    spsa.perturbation = None  # mutated after construction: caught in minimize
    with pytest.raises(ValueError, match="both must be set"):
        spsa.minimize(lambda x: 0.0, [0.0])


def test_too_short_arrays():
    with pytest.raises(ValueError, match="learning_rate"):
        SPSA(maxiter=5, learning_rate=np.ones(4), perturbation=0.1)
    with pytest.raises(ValueError, match="perturbation"):
        SPSA(maxiter=5, learning_rate=0.1, perturbation=[0.1] * 3)
    SPSA(maxiter=5, learning_rate=np.ones(5), perturbation=0.1)


def test_defaults_match_qiskit_algorithms():
    qa = pytest.importorskip("qiskit_algorithms.optimizers")
    ours, theirs = SPSA().settings, qa.SPSA().settings
    for key, value in theirs.items():
        assert ours[key] == value, key
    assert SPSA.calibrate.__defaults__ == qa.SPSA.calibrate.__defaults__
    assert SPSA.estimate_stddev.__defaults__ == qa.SPSA.estimate_stddev.__defaults__
    assert SPSA().get_support_level() == qa.SPSA().get_support_level()
    for name in [
        "gradient_support_level",
        "is_gradient_ignored",
        "is_bounds_supported",
        "is_initial_point_required",
        "is_initial_point_ignored",
    ]:
        assert getattr(SPSA(), name) == getattr(qa.SPSA(), name), name


def test_support_levels_without_qiskit_algorithms():
    spsa = SPSA()
    assert spsa.gradient_support_level is OptimizerSupportLevel.ignored
    assert spsa.is_initial_point_required and not spsa.is_bounds_required


def test_settings_rebuild_same_run(loss, x0):
    spsa = SPSA(maxiter=4, seed=1, learning_rate=PowerSeries(0.3, 0.6), perturbation=0.1)
    settings = spsa.settings
    assert settings["learning_rate"].shape == (4,)
    again = SPSA(**settings)
    np.testing.assert_allclose(again.minimize(loss, x0).x, spsa.minimize(loss, x0).x)


def test_minimize_does_not_mutate_and_repeats(loss, x0):
    spsa = SPSA(maxiter=5, seed=7, blocking=True, second_order=True)
    before = copy.deepcopy(vars(spsa))
    first = spsa.minimize(loss, x0)
    assert vars(spsa).keys() == before.keys()
    for key, value in before.items():
        assert np.all(vars(spsa)[key] == value), key
    assert spsa.allowed_increase is None  # calibrated value lives in the state only
    second = spsa.minimize(loss, x0)
    np.testing.assert_array_equal(first.x, second.x)
    assert first.history == second.history


def test_generator_seed_is_not_advanced(loss, x0):
    rng = np.random.default_rng(12)
    state = copy.deepcopy(rng.bit_generator.state)
    a = SPSA(maxiter=3, seed=rng).minimize(loss, x0)
    assert rng.bit_generator.state == state
    b = SPSA(maxiter=3, seed=12).minimize(loss, x0)
    np.testing.assert_array_equal(a.x, b.x)


def test_unseeded_runs_differ(loss, x0):
    a = SPSA(maxiter=3).minimize(loss, x0)
    b = SPSA(maxiter=3).minimize(loss, x0)
    assert not np.array_equal(a.x, b.x)


def test_no_global_rng_use(loss, x0):
    np.random.seed(0)
    expected = np.random.random()
    np.random.seed(0)
    SPSA(maxiter=3, seed=1).minimize(loss, x0)
    assert np.random.random() == expected


def test_callback_logging_history_result(loss, x0, caplog):
    calls = []
    spsa = SPSA(maxiter=4, seed=2, callback=lambda *args: calls.append(args))
    with caplog.at_level(logging.INFO, logger="qprim_grad.optimizers"):
        result = spsa.minimize(loss, x0)
    lines = [r for r in caplog.records if "SPSA iteration" in r.getMessage()]
    assert len(lines) == 4 and all(r.name == "qprim_grad.optimizers" for r in lines)
    assert len(calls) == 4
    nfev, x, fx, stepsize, accepted = calls[-1]
    assert isinstance(nfev, int) and x.shape == (4,) and accepted is True
    assert fx == pytest.approx(loss(x)) and stepsize > 0
    assert result.history.loss == [c[2] for c in calls]
    assert result.history.jobs == [3, 4, 5, 6]  # calibration + iteration jobs
    assert (result.nit, result.njev, result.jobs) == (4, 4, 6)
    assert result.fun == result.history.loss[-1]
    qa = pytest.importorskip("qiskit_algorithms.optimizers")
    assert isinstance(result, qa.OptimizerResult)


def test_progress_bar(loss, x0, capsys):
    SPSA(maxiter=3, seed=2, progress=True, learning_rate=0.1, perturbation=0.1).minimize(loss, x0)
    assert "3/3" in capsys.readouterr().err


def test_set_max_evals_grouped_and_replace():
    spsa = SPSA(maxiter=3)
    spsa.set_max_evals_grouped(7)
    other = spsa.replace(maxiter=9, blocking=True)
    assert (other.maxiter, other.blocking, other._max_evals_grouped) == (9, True, 7)
    assert spsa.maxiter == 3
    with pytest.raises(TypeError, match="Unknown"):
        spsa.replace(speed=2)
    spsa.set_options(foo=1)
    assert "maxiter" in spsa.setting


def test_gradient_num_diff_and_wrap_function():
    grad = SPSA.gradient_num_diff(np.array([1.0, 2.0]), lambda x: float(x @ x), 1e-6)
    np.testing.assert_allclose(grad, [2.0, 4.0], atol=1e-4)
    assert SPSA.wrap_function(lambda x, a: x + a, (2,))(1) == 3


def test_calibration_progress_is_shown_before_its_job(loss, x0, caplog, capsys):
    """The calibration job is announced before it runs (log and progress line), and its
    gains are logged readably."""
    seen = []

    class Watched:
        def __call__(self, x):
            return loss(x)

        def batch(self, points):
            seen.append(([r.getMessage() for r in caplog.records], capsys.readouterr().err))
            return np.array([loss(p) for p in points])

    with caplog.at_level(logging.INFO, logger="qprim_grad.optimizers"):
        SPSA(maxiter=1, seed=2, progress=True).minimize(Watched(), x0)
    messages, err = seen[0]  # at the calibration job
    assert messages[-1] == "SPSA calibration: measuring the loss at 50 points in one job..."
    assert "calibrating the gains: 50 loss evaluations" in err
    (gains,) = [r.getMessage() for r in caplog.records if "with a=" in r.getMessage()]
    assert re.search(r"a=\d+(\.\d{1,4})?(e[-+]\d+)?, A=0, alpha=0.602", gains), gains
