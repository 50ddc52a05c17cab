"""Same iterates as qiskit-algorithms' SPSA for a plain callable and the same seed; the
batched schedule equals the sequential one when blocking is off."""

import warnings

import numpy as np
import pytest

from qprim_grad.optimizers import SPSA, batched

qa = pytest.importorskip("qiskit_algorithms.optimizers")

CASES = {
    "calibrated": {},
    "blocking": {"blocking": True},
    "second_order": {"second_order": True, "hessian_delay": 2},
    "resamplings": {"resamplings": {1: 3, 4: 2}},
    "pert_dims_trust_avg": {"perturbation_dims": 2, "trust_region": True, "last_avg": 3},
    "gains": {"learning_rate": np.linspace(0.3, 0.1, 12), "perturbation": 0.05},
}


@pytest.mark.parametrize("options", CASES.values(), ids=CASES.keys())
def test_same_iterates_as_qiskit_algorithms(options, x0, quadratic):
    from qiskit_algorithms.utils import algorithm_globals

    theirs_x, ours_x = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        algorithm_globals.random_seed = 17
        theirs = qa.SPSA(maxiter=12, callback=lambda *a: theirs_x.append(a), **options).minimize(
            quadratic, x0
        )
    ours = SPSA(maxiter=12, seed=17, callback=lambda *a: ours_x.append(a), **options).minimize(
        quadratic, x0
    )
    np.testing.assert_allclose(ours.x, theirs.x, atol=1e-10)
    assert ours.fun == pytest.approx(theirs.fun, abs=1e-10)
    assert (ours.nfev, ours.nit) == (theirs.nfev, theirs.nit)
    assert len(ours_x) == len(theirs_x)
    for a, b in zip(ours_x, theirs_x):
        assert a[0] == b[0] and a[4] == b[4]
        np.testing.assert_allclose(a[1], b[1], atol=1e-10)
        assert a[2] == pytest.approx(b[2], abs=1e-10)


def test_max_evals_grouped_honoured(x0, quadratic):
    calls = []

    def grouped(points):
        points = np.atleast_2d(points)
        calls.append(len(points))
        return [quadratic(p) for p in points]

    spsa = SPSA(maxiter=3, seed=1, second_order=True)
    spsa.set_max_evals_grouped(10)
    result = spsa.minimize(grouped, x0)
    # calibration: 50 points in chunks of 10; each iteration one call of 4 points; final 1
    assert calls == [10] * 5 + [4] * 3 + [1]
    assert result.jobs == len(calls)


@pytest.mark.parametrize(
    "options", [{}, {"second_order": True}, {"resamplings": 2, "last_avg": 2}], ids=str
)
def test_batched_equals_sequential_without_blocking(options, x0, quadratic):
    def vectorised(points):
        return np.array([quadratic(p) for p in np.atleast_2d(points)])

    seq = SPSA(maxiter=10, seed=4, **options).minimize(quadratic, x0)
    bat = SPSA(maxiter=10, seed=4, **options).minimize(batched(vectorised), x0)
    np.testing.assert_allclose(bat.x, seq.x, atol=1e-12)
    assert bat.fun == pytest.approx(seq.fun)
    assert bat.jobs == 12 and seq.jobs > bat.jobs


def test_estimator_loss_plain_vs_batched(loss, x0):
    """The same EstimatorLoss through its plain call gives the same iterates."""
    plain = SPSA(maxiter=5, seed=8, learning_rate=0.2, perturbation=0.1).minimize(
        lambda x: loss(x), x0
    )
    batch = SPSA(maxiter=5, seed=8, learning_rate=0.2, perturbation=0.1).minimize(loss, x0)
    np.testing.assert_allclose(batch.x, plain.x, atol=1e-12)
