"""plot_history on real SPSA runs (Agg backend)."""

from __future__ import annotations

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from qiskit.circuit.library import real_amplitudes  # noqa: E402
from qiskit.primitives import StatevectorEstimator  # noqa: E402

from qprim_grad.optimizers import SPSA, EstimatorLoss, SPSAHistory, SPSAState, batched  # noqa: E402
from qprim_grad.plotting import history_of, plot_history  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def calibrated_run():
    """A real run on a primitive: calibrated gains, every step accepted."""
    loss = EstimatorLoss(StatevectorEstimator(), real_amplitudes(2, reps=1), "ZZ")
    return SPSA(maxiter=12, seed=3).minimize(loss, np.full(4, 0.3))


@pytest.fixture(scope="module")
def blocked_run():
    """A noisy loss with blocking: some steps are rejected; gains given, no calibration."""
    rng = np.random.default_rng(0)

    def noisy(points):
        points = np.atleast_2d(points)
        return np.sum(points**2, axis=1) + 0.05 * rng.normal(size=len(points))

    spsa = SPSA(maxiter=40, blocking=True, learning_rate=0.2, perturbation=0.1, seed=1)
    return spsa.minimize(batched(noisy), [1.0, -0.5, 0.3])


def _lines(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def test_plot_calibrated_run(calibrated_run, tmp_path):
    loss_ax, step_ax = plot_history(calibrated_run)
    assert loss_ax.figure is step_ax.figure and loss_ax is not step_ax
    history = calibrated_run.history
    accepted = _lines(loss_ax)["accepted"]
    np.testing.assert_array_equal(accepted.get_xdata(), history.iteration)
    np.testing.assert_allclose(accepted.get_ydata(), history.loss)
    np.testing.assert_allclose(_lines(step_ax)["step length"].get_ydata(), history.stepsize)
    assert "learning rate $a_k$" in _lines(step_ax)  # calibrated gains drawn
    assert "rejected" not in _lines(loss_ax)
    assert any(t.get_text() == "calibration" for t in loss_ax.texts)
    assert f"{calibrated_run.jobs} jobs" in loss_ax.get_title()
    path = tmp_path / "history.png"
    loss_ax.figure.savefig(path)
    assert path.stat().st_size > 1000


def test_plot_marks_rejected_steps(blocked_run):
    history = blocked_run.history
    assert not all(history.accepted)
    loss_ax, step_ax = plot_history(blocked_run)
    rejected = _lines(loss_ax)["rejected"]
    expected = [i for i, ok in zip(history.iteration, history.accepted) if not ok]
    np.testing.assert_array_equal(rejected.get_xdata(), expected)
    assert not any(t.get_text() == "calibration" for t in loss_ax.texts)  # gains were given
    assert "learning rate $a_k$" not in _lines(step_ax)


def test_given_axes_and_other_inputs(calibrated_run, tmp_path):
    fig, (a, b) = plt.subplots(1, 2)
    assert plot_history(calibrated_run, (a, b)) == (a, b)
    fig, ax = plt.subplots()
    loss_ax, step_ax = plot_history(calibrated_run.state, ax, title="custom")
    assert loss_ax is ax and step_ax is not ax and ax.get_title() == "custom"
    # a checkpoint file read back, and a bare history
    path = tmp_path / "state.json"
    calibrated_run.state.save(path)
    plot_history(SPSAState.load(path))
    history, state = history_of(calibrated_run.history)
    assert isinstance(history, SPSAHistory) and state is None
    plot_history(calibrated_run.history)


def test_errors(calibrated_run):
    with pytest.raises(TypeError, match="SPSA result"):
        plot_history(object())
    fig, axes = plt.subplots(1, 3)
    with pytest.raises(ValueError, match="two"):
        plot_history(calibrated_run, axes)


def test_clear_error_without_matplotlib(calibrated_run, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)  # import now fails
    with pytest.raises(ImportError, match=r"qprim-grad\[plot\]"):
        plot_history(calibrated_run)
