"""SPSA never returns a silently wrong result: zero perturbations,
non-finite losses, checkpoints of another problem or corrupted, short gain iterators, and
the gradient methods' ``epsilon`` validation."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from qiskit.primitives import StatevectorEstimator

from qprim_grad import GradientEstimator, GradientMethodError, NonFiniteLossError
from qprim_grad.optimizers import SPSA, SPSAState, batched

GAINS = {"learning_rate": 0.1, "perturbation": 0.1}


def square(x):
    x = np.asarray(x, dtype=float)
    return float(x @ x)


@pytest.mark.parametrize("perturbation", [0.0, np.nan, [0.1, 0.0, 0.1]])
def test_zero_or_non_finite_perturbation_rejected_at_construction(perturbation):
    with pytest.raises(ValueError, match="perturbation must be finite and non-zero"):
        SPSA(maxiter=3, learning_rate=0.1, perturbation=perturbation)


def test_zero_perturbation_from_an_iterator_rejected_naming_the_iteration():
    spsa = SPSA(maxiter=3, learning_rate=0.1, perturbation=lambda: iter([0.1, 0.0, 0.1]), seed=1)
    with pytest.raises(ValueError, match=r"perturbation must be .*non-zero.*iteration 2"):
        spsa.minimize(square, np.ones(2))


@pytest.mark.parametrize("name", ["learning_rate", "perturbation"])
@pytest.mark.parametrize("loss", [square, batched(lambda X: np.sum(np.square(X), axis=1))])
def test_short_gain_iterator_names_argument_and_iteration(name, loss):
    gains = dict(GAINS)
    gains[name] = lambda: iter([0.1, 0.1])
    spsa = SPSA(maxiter=5, seed=1, **gains)
    with pytest.raises(
        ValueError, match=rf"{name}: the iterator ended after 2 values.*iteration 3"
    ):
        spsa.minimize(loss, np.ones(2))


class Flaky:
    """A batched loss returning NaN on the ``bad``-th call (or on every call from it on)."""

    def __init__(self, bad: int, always: bool = False) -> None:
        self.calls, self.bad, self.always = 0, bad, always

    def __call__(self, x):
        return float(self.batch(np.asarray(x)[None, :])[0])

    def batch(self, points):
        self.calls += 1
        values = np.sum(np.square(points), axis=1)
        if self.calls == self.bad or (self.always and self.calls >= self.bad):
            values[-1] = np.nan
        return values


def test_nan_once_stops_naming_the_iteration_and_resumes_bit_identically(tmp_path):
    path = tmp_path / "run.json"
    reference = SPSA(maxiter=6, seed=3, **GAINS).minimize(Flaky(bad=0), np.ones(3))
    spsa = SPSA(maxiter=6, seed=3, checkpoint=path, **GAINS)
    with pytest.raises(NonFiniteLossError, match=r"iteration 4: the loss returned nan") as info:
        spsa.minimize(Flaky(bad=4), np.ones(3))
    state = info.value.state
    assert state.k == 3 and np.all(np.isfinite(state.x))
    assert str(path) in str(info.value)
    saved = SPSAState.load(path)
    np.testing.assert_array_equal(saved.x, state.x)
    assert saved.rng == state.rng and saved.jobs == state.jobs
    for source in (state, path):  # in memory or from the file: the same iterates
        resumed = SPSA(maxiter=6, seed=3, **GAINS).minimize(Flaky(bad=0), None, state=source)
        np.testing.assert_array_equal(resumed.x, reference.x)
        assert resumed.jobs == reference.jobs


def test_nan_always_and_in_calibration_stop_with_clear_errors():
    with pytest.raises(NonFiniteLossError, match="iteration 1: the loss returned nan"):
        SPSA(maxiter=4, seed=1, **GAINS).minimize(Flaky(bad=1, always=True), np.ones(2))
    with pytest.raises(NonFiniteLossError, match="calibration: the loss returned nan") as info:
        SPSA(maxiter=4, seed=1).minimize(Flaky(bad=1), np.ones(2))  # calibration is job 1
    assert info.value.state.k == 0
    np.testing.assert_array_equal(info.value.state.x, np.ones(2))


def test_nan_from_a_plain_callable_stops_with_the_last_finite_iterate():
    calls = {"n": 0}

    def loss(x):
        calls["n"] += 1
        return np.inf if calls["n"] == 5 else square(x)

    with pytest.raises(NonFiniteLossError, match=r"iteration 3: the loss returned inf") as info:
        SPSA(maxiter=5, seed=2, **GAINS).minimize(loss, np.ones(2))
    assert info.value.state.k == 2 and np.all(np.isfinite(info.value.state.x))


def test_resume_with_another_dimension_names_the_checkpoint(tmp_path):
    path = tmp_path / "run.json"
    SPSA(maxiter=2, seed=1, checkpoint=path, **GAINS).minimize(square, np.ones(3))
    with pytest.raises(ValueError, match=r"run\.json.*stores 3 parameters.*x0 has 5"):
        SPSA(maxiter=4, seed=1, **GAINS).minimize(square, np.ones(5), state=path)


def test_resume_with_a_loss_of_another_dimension(tmp_path, loss):
    path = tmp_path / "run.json"
    SPSA(maxiter=2, seed=1, checkpoint=path, **GAINS).minimize(loss, np.zeros(4))
    SPSA(maxiter=3, seed=1, **GAINS).resume(loss, path)  # the same problem resumes
    state = replace(SPSAState.load(path), x=np.zeros(3))  # of a three-parameter problem
    state.save(path)
    with pytest.raises(ValueError, match=r"stores 3 parameters, but the given loss has 4"):
        SPSA(maxiter=3, seed=1, **GAINS).resume(loss, path)


@pytest.mark.parametrize("content", [b"\xff\xfe\x00garbage", b'{"format": "qprim_grad.sp', b"[1]"])
def test_corrupted_or_truncated_checkpoint_names_the_file(tmp_path, content):
    path = tmp_path / "broken.json"
    good = tmp_path / "good.json"
    SPSA(maxiter=1, seed=1, checkpoint=good, **GAINS).minimize(square, np.ones(2))
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"SPSA checkpoint .*broken\.json.* cannot be read"):
        SPSA(maxiter=2, **GAINS).resume(square, path)
    data = json.loads(good.read_text())
    del data["x"]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"broken\.json.*cannot be read"):
        SPSAState.load(path)


@pytest.mark.parametrize("method", ["finite_diff", "spsa"])
@pytest.mark.parametrize("epsilon", ["abc", None, -1.0, True])
def test_bad_epsilon_names_option_and_method(method, epsilon):
    with pytest.raises(GradientMethodError, match=rf"{method}: epsilon must be a positive number"):
        GradientEstimator(StatevectorEstimator(), method, epsilon=epsilon)
