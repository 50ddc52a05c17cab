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


# ---- plot_gradient / plot_qgt ----------------------------------------------------------------


from _reference import expectation_gradient, state_qgt  # noqa: E402
from qiskit.circuit import Parameter  # noqa: E402
from qiskit.primitives import PrimitiveResult, PubResult  # noqa: E402
from qiskit.primitives.containers import DataBin  # noqa: E402

from qprim_grad import GradientEstimator  # noqa: E402
from qprim_grad.plotting import plot_gradient, plot_qgt  # noqa: E402


def _errorbars(ax):
    """(x, y, yerr) of each error-bar series of ``ax``."""
    out = []
    for container in ax.containers:
        line, _, (bars,) = container.lines
        segments = bars.get_segments()
        out.append(
            (
                np.asarray(line.get_xdata()),
                np.asarray(line.get_ydata()),
                np.array([(s[1, 1] - s[0, 1]) / 2 for s in segments]),
            )
        )
    return out


@pytest.fixture(scope="module")
def noisy_gradient():
    """A gradient with shot noise (Aer, seeded), two parameter sets."""
    aer = pytest.importorskip("qiskit_aer.primitives")
    ansatz = real_amplitudes(2, reps=1)
    values = np.array([[0.1, 0.5, -0.3, 0.8], [0.4, -0.2, 0.9, 0.1]])
    estimator = aer.EstimatorV2(options={"default_precision": 0.02, "run_options": {"seed": 4}})
    result = GradientEstimator(estimator).run([(ansatz, "ZZ", values)]).result()
    return ansatz, values, result


def test_plot_gradient_error_bars(noisy_gradient):
    ansatz, values, result = noisy_gradient
    data = result[0].data
    exact = np.array([expectation_gradient(ansatz, "ZZ", row) for row in values])
    ax = plot_gradient(result[0], index=1, reference=exact)
    ((x, y, yerr),) = _errorbars(ax)
    np.testing.assert_array_equal(x, np.arange(4))
    np.testing.assert_allclose(y, data.grads[1])
    np.testing.assert_allclose(yerr, data.grad_stds[1])
    assert np.all(yerr > 0)
    assert [t.get_text() for t in ax.get_xticklabels()] == [p.name for p in ansatz.parameters]
    (reference,) = [line for line in ax.get_lines() if line.get_label() == "reference"]
    np.testing.assert_allclose(reference.get_ydata(), exact[1])
    assert ax.get_title() == "gradient (param_shift)"


def test_plot_gradient_every_entry_and_other_inputs(noisy_gradient):
    _, _, result = noisy_gradient
    data = result[0].data
    series = _errorbars(plot_gradient(result))  # one-pub PrimitiveResult: both entries
    assert len(series) == 2
    for (_, y, yerr), grads, stds in zip(series, data.grads, data.grad_stds):
        np.testing.assert_allclose(y, grads)
        np.testing.assert_allclose(yerr, stds)
    # a bare array: error bars from stds=, default labels
    fig, ax = plt.subplots()
    assert plot_gradient([0.5, -0.25], ax, stds=[0.1, 0.2], labels=["a", "b"]) is ax
    ((_, y, yerr),) = _errorbars(ax)
    np.testing.assert_allclose(yerr, [0.1, 0.2])
    ax = plot_gradient(np.array([0.5, -0.25]))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["θ_0", "θ_1"]
    np.testing.assert_allclose(_errorbars(ax)[0][2], 0.0)


def test_plot_gradient_errors(noisy_gradient):
    _, _, result = noisy_gradient
    with pytest.raises(ValueError, match="2 pub results"):
        plot_gradient(PrimitiveResult([result[0], result[0]]))
    with pytest.raises(TypeError, match="'grads' field"):
        plot_gradient(object())
    with pytest.raises(ValueError, match=r"stds: expected shape \(2,\)"):
        plot_gradient([0.1, 0.2], stds=[0.1])
    with pytest.raises(ValueError, match="labels: expected 4"):
        plot_gradient(result[0], labels=["a"])
    with pytest.raises(ValueError, match="pick one with index="):
        plot_gradient(np.zeros((9, 2)))
    with pytest.raises(IndexError, match="out of range"):
        plot_gradient(result[0], index=5)


def test_plot_qgt_heat_map():
    ansatz = real_amplitudes(2, reps=1)
    qgt = state_qgt(ansatz, [0.3, -0.6, 0.2, 1.1])
    result = PubResult(DataBin(qgt=qgt), metadata={"parameters": list(ansatz.parameters)})
    ax = plot_qgt(result)
    (image,) = ax.get_images()
    np.testing.assert_allclose(image.get_array(), qgt.real, atol=1e-12)
    low, high = image.get_clim()
    assert low == -high == pytest.approx(-np.abs(qgt.real).max())
    assert [t.get_text() for t in ax.get_yticklabels()] == [p.name for p in ansatz.parameters]
    assert len(ax.texts) == 16 and ax.get_title() == "Re QGT"
    assert {t.get_text() for t in ax.texts if abs(float(t.get_text())) < 1e-3} <= {"0"}
    assert len(ax.figure.axes) == 2  # the colour bar

    ax = plot_qgt(qgt, part="imag", annotate=False)
    np.testing.assert_allclose(ax.get_images()[0].get_array(), qgt.imag, atol=1e-12)
    assert not ax.texts and [t.get_text() for t in ax.get_xticklabels()][0] == "θ_0"
    stacked = np.stack([qgt, 2 * qgt])
    ax = plot_qgt(stacked, index=1, part="abs")
    np.testing.assert_allclose(ax.get_images()[0].get_array(), np.abs(2 * qgt), atol=1e-12)
    assert ax.get_title() == "|·| QGT at [1]"


def test_plot_qgt_errors():
    with pytest.raises(ValueError, match="part: expected one of"):
        plot_qgt(np.eye(2), part="phase")
    with pytest.raises(ValueError, match=r"shape \(\.\.\., P, P\)"):
        plot_qgt(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="pick one with index="):
        plot_qgt(np.zeros((3, 2, 2)))
    with pytest.raises(TypeError, match="'qgt' field"):
        plot_qgt(PubResult(DataBin(evs=np.zeros(()))))


def test_docs_figures_are_built_not_checked_in():
    """Every figure a docs page shows is drawn by docs/_scripts/make_figures.py during the
    build (docs/conf.py), into the git-ignored docs/_figures/."""
    import re
    from pathlib import Path

    docs = Path(__file__).resolve().parents[1] / "docs"
    shown = set()
    for page in docs.glob("*.rst"):
        shown |= set(re.findall(r"^\.\. (?:image|figure):: (\S+)$", page.read_text(), re.M))
    assert "_figures/spsa_history.png" in shown and "_figures/gradient.png" in shown
    script = (docs / "_scripts" / "make_figures.py").read_text()
    for path in shown:
        assert path.startswith("_figures/"), f"{path}: a checked-in image"
        assert f'"{path.removeprefix("_figures/")}":' in script, f"{path}: no maker"
    assert "make_figures.build" in (docs / "conf.py").read_text()
    assert "docs/_figures/" in (docs.parent / ".gitignore").read_text().splitlines()
    assert not list(docs.glob("_static/*.png"))


def _inside(figure, artists) -> None:
    """Every non-empty artist's drawn box lies inside the figure."""
    renderer = figure.canvas.get_renderer()
    box = figure.bbox
    for artist in artists:
        if not artist.get_visible() or not getattr(artist, "get_text", lambda: "x")():
            continue
        extent = artist.get_window_extent(renderer)
        assert (
            extent.x0 >= box.x0 - 0.5
            and extent.x1 <= box.x1 + 0.5
            and extent.y0 >= box.y0 - 0.5
            and extent.y1 <= box.y1 + 0.5
        ), f"{artist!r} at {extent} is outside the figure {box}"


@pytest.mark.parametrize("name", ["θ", "theta_long_name"])
@pytest.mark.parametrize("count", [3, 12, 13, 40])
def test_plot_gradient_lays_out_any_number_of_parameters(count, name, tmp_path):
    """Tick labels, the x label and the title stay inside the figure without overlapping,
    and each parameter has its labelled tick; the figure grows with the parameters."""
    params = [Parameter(f"{name}[{j}]") for j in range(count)]
    grads = np.linspace(-1.0, 1.0, count)
    result = PubResult(
        DataBin(grads=grads, grad_stds=np.full(count, 0.05), shape=()),
        metadata={"parameters": params, "method": "param_shift"},
    )
    title = "parameter shift on FakeManilaV2, 4000 shots per point (reference: exact values)"
    ax = plot_gradient(result, title=title)
    figure = ax.figure
    figure.savefig(tmp_path / "gradient.png", dpi=80)  # draws with the constrained layout
    assert ax.get_title().replace("\n", " ") == title
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == [p.name for p in params]
    _inside(figure, [*ax.get_xticklabels(), ax.xaxis.label, ax.title])
    assert ax.xaxis.label.get_text() == "parameter"
    renderer = figure.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.get_xticklabels()]
    for left, right in zip(boxes, boxes[1:]):  # no two labels overlap
        assert left.x1 <= right.x0 + 0.5, (left, right)
    if count > 12:
        assert {t.get_rotation() for t in ax.get_xticklabels()} == {90.0}
    assert figure.get_size_inches()[0] >= min(16.0, 0.32 * count + 2.0) - 1e-9


def test_plot_gradient_thins_labels_of_very_many_parameters(tmp_path):
    count = 300
    ax = plot_gradient(np.zeros(count), stds=np.full(count, 0.1))
    ax.figure.savefig(tmp_path / "gradient.png", dpi=80)
    shown = [t.get_text() for t in ax.get_xticklabels()]
    step = int(shown[1].split("_")[1]) - int(shown[0].split("_")[1])
    assert step > 1 and shown == [f"θ_{j}" for j in range(0, count, step)]
    ticks = {*ax.get_xticks(), *ax.get_xticks(minor=True)}  # every parameter keeps a tick
    assert ticks == set(range(count))
    _inside(ax.figure, [*ax.get_xticklabels(), ax.xaxis.label])
    assert ax.figure.get_size_inches()[0] == 16.0
