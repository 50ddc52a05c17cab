"""The small parts: gains, directions, estimates, Hessian handling; parity of each with
qiskit-algorithms where it has the same part."""

import numpy as np
import pytest

from qprim_grad.optimizers import SPSA, Constant, PowerSeries, Table, as_gain
from qprim_grad.optimizers.steps import (
    accepts,
    bernoulli,
    clip_to_trust_region,
    estimate,
    make_spd,
    num_resamplings,
    perturbation_points,
    sample_directions,
    smooth_hessian,
)

qa_spsa = pytest.importorskip("qiskit_algorithms.optimizers.spsa")


def test_power_series_matches_qiskit_algorithms():
    ours = PowerSeries(0.7, 0.602, 3.0)
    theirs = qa_spsa.powerseries(0.7, 0.602, 3.0)
    assert [ours.at(k) for k in range(1, 20)] == [next(theirs) for _ in range(19)]
    it = ours()  # also a callable returning an iterator
    assert next(it) == ours.at(1) and next(it) == ours.at(2)


def test_as_gain_forms():
    assert as_gain(0.1, "lr").at(7) == 0.1
    assert as_gain(np.array([1.0, 2.0]), "lr").at(2) == 2.0
    gen = as_gain(lambda: iter([5.0, 4.0, 3.0]), "lr")
    assert (gen.at(3), gen.at(1)) == (3.0, 5.0)
    assert isinstance(as_gain(Constant(1.0), "x"), Constant)
    with pytest.raises(ValueError, match="has 1 entries, iteration 2 needs more"):
        Table((1.0,)).at(2)
    with pytest.raises(TypeError, match="lr must be a float"):
        as_gain("fast", "lr")


@pytest.mark.parametrize("dims", [None, 2])
def test_bernoulli_matches_qiskit_algorithms_draws(dims):
    from qiskit_algorithms.utils import algorithm_globals

    algorithm_globals.random_seed = 123
    theirs = [qa_spsa.bernoulli_perturbation(5, dims) for _ in range(4)]
    rng = np.random.default_rng(123)
    ours = [bernoulli(rng, 5, dims) for _ in range(4)]
    np.testing.assert_array_equal(ours, theirs)


def test_directions_and_points_shapes():
    rng = np.random.default_rng(0)
    first, second = sample_directions(rng, 3, 4, second_order=True)
    assert first.shape == second.shape == (3, 4)
    assert set(np.unique(first)) <= {-1, 1}
    pts = perturbation_points(np.zeros(4), 0.5, first, second)
    assert pts.shape == (12, 4)
    np.testing.assert_allclose(pts[0], 0.5 * first[0])
    np.testing.assert_allclose(pts[1], -0.5 * first[0])
    np.testing.assert_allclose(pts[3], 0.5 * (-first[0] + second[0]))
    assert num_resamplings({2: 5}, 2) == 5 and num_resamplings({2: 5}, 3) == 1


def test_estimate_exact_on_quadratic():
    """For f = x^T A x / 2 + b x, the 2-SPSA estimates are exact along the directions."""
    rng = np.random.default_rng(4)
    a = np.array([[2.0, 0.5], [0.5, 1.0]])
    b = np.array([0.3, -0.2])
    x = np.array([0.1, 0.7])

    def f(p):
        return 0.5 * p @ a @ p + b @ p

    first, second = sample_directions(rng, 200, 2, second_order=True)
    pts = perturbation_points(x, 0.1, first, second)
    value, grad, hess = estimate(np.array([f(p) for p in pts]), 0.1, first, second)
    # exact along each direction: the mean over directions of (g . d) d and of the
    # symmetrised (d1^T A d2) d1 d2^T, which equal grad and A only on average
    g = a @ x + b
    want_grad = np.mean((first @ g)[:, None] * first, axis=0)
    outer = first[:, :, None] * second[:, None, :]
    curvature = np.einsum("ki,ij,kj->k", first, a, second)
    want_hess = np.mean(curvature[:, None, None] * (outer + np.swapaxes(outer, 1, 2)) / 2, axis=0)
    np.testing.assert_allclose(grad, want_grad, atol=1e-12)
    np.testing.assert_allclose(hess, want_hess, atol=1e-12)
    np.testing.assert_allclose(grad, g, atol=0.15)  # and close to the truth on average
    np.testing.assert_allclose(hess, a, atol=0.3)
    assert value == pytest.approx(np.mean([f(p) for p in pts]))


def test_make_spd_matches_qiskit_algorithms():
    m = np.array([[1.0, 2.0, 0.0], [2.0, -3.0, 1.0], [0.0, 1.0, 0.5]])
    np.testing.assert_allclose(make_spd(m, 0.01), qa_spsa._make_spd(m, 0.01), atol=1e-10)
    assert np.all(np.linalg.eigvalsh(make_spd(m, 0.01)) > 0)
    nonsym = np.array([[1.0, 2.0], [0.0, 1.0]])
    np.testing.assert_allclose(make_spd(nonsym, 0.1), qa_spsa._make_spd(nonsym, 0.1), atol=1e-8)


def test_small_rules():
    np.testing.assert_allclose(smooth_hessian(np.eye(2), np.zeros((2, 2)), 1), np.eye(2) / 2)
    assert np.linalg.norm(clip_to_trust_region(np.array([3.0, 4.0]))) == pytest.approx(1.0)
    np.testing.assert_array_equal(clip_to_trust_region(np.array([0.3])), [0.3])
    assert accepts(1.0, 1.0, 0.1) and not accepts(1.1, 1.0, 0.1)


def test_calibrate_matches_qiskit_algorithms():
    from qiskit_algorithms.optimizers import SPSA as QSPSA
    from qiskit_algorithms.utils import algorithm_globals

    def f(x):
        return float(np.sum(np.cos(x)) + x[0] ** 2)

    x0 = np.array([0.2, 1.0, -0.5])
    algorithm_globals.random_seed = 9
    q_lr, q_pert = QSPSA.calibrate(f, x0, c=0.3, stability_constant=2, target_magnitude=0.5)
    lr, pert = SPSA.calibrate(f, x0, c=0.3, stability_constant=2, target_magnitude=0.5, seed=9)
    q_lr, q_pert = q_lr(), q_pert()
    for k in range(1, 6):
        assert lr.at(k) == pytest.approx(next(q_lr), rel=1e-12)
        assert pert.at(k) == pytest.approx(next(q_pert), rel=1e-12)
    algorithm_globals.random_seed = 9
    q_lr, _ = QSPSA.calibrate(f, x0, modelspace=True)
    lr, _ = SPSA.calibrate(f, x0, modelspace=True, seed=9)
    assert lr.at(1) == pytest.approx(next(q_lr()), rel=1e-12)


def test_calibrate_flat_loss_warns():
    with pytest.warns(UserWarning, match="Calibration failed"):
        lr, _ = SPSA.calibrate(lambda x: 1.0, np.zeros(2), seed=0)
    assert lr.at(1) == pytest.approx(2 * np.pi / 10)


def test_estimate_stddev_batched_one_call(loss, x0, mocker):
    spy = mocker.spy(loss.estimator, "run")
    assert SPSA.estimate_stddev(loss, x0) == pytest.approx(0.0, abs=1e-12)
    assert spy.call_count == 1
    assert SPSA.estimate_stddev(lambda x: float(x[0]), np.ones(2), avg=5) == 0.0
