"""With a batched loss and blocking, the iterates, the number of iterations and the callbacks
(rejected steps included) equal qiskit-algorithms' SPSA with the same seed, in one job per
iteration; the deferred schedule stays available by name."""

import warnings

import numpy as np
import pytest
from qiskit.circuit.library import efficient_su2
from qiskit.primitives import StatevectorEstimator
from qiskit.quantum_info import SparsePauliOp

from qprim_grad.optimizers import SPSA, EstimatorLoss

qa = pytest.importorskip("qiskit_algorithms.optimizers")

ISING = SparsePauliOp.from_list([("ZZI", 1), ("IZZ", 1), ("XII", 1), ("IXI", 1), ("IIX", 1)])

CASES = {
    "fixed_gains": {"learning_rate": 0.12, "perturbation": 0.15, "maxiter": 40},
    "calibrated": {"maxiter": 12},
    "second_order": {
        "second_order": True,
        "resamplings": 2,
        "learning_rate": 0.3,
        "perturbation": 0.15,
        "maxiter": 12,
    },  # fmt: skip
    "last_avg": {"last_avg": 3, "learning_rate": 0.4, "perturbation": 0.15, "maxiter": 12},
}


@pytest.fixture
def ising_loss():
    return EstimatorLoss(StatevectorEstimator(), efficient_su2(3, reps=1), ISING)


@pytest.mark.parametrize("options", CASES.values(), ids=CASES.keys())
def test_blocking_keeps_qiskit_algorithms_iterates(ising_loss, options, mocker):
    from qiskit_algorithms.utils import algorithm_globals

    x0 = np.linspace(0.1, 1.5, ising_loss.num_parameters)
    theirs, ours = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        algorithm_globals.random_seed = 5
        expected = qa.SPSA(blocking=True, callback=lambda *a: theirs.append(a), **options)
        expected = expected.minimize(lambda x: ising_loss(x), x0)
    spy = mocker.spy(ising_loss.estimator, "run")
    got = SPSA(blocking=True, seed=5, callback=lambda *a: ours.append(a), **options).minimize(
        ising_loss, x0
    )
    assert got.nit == expected.nit == options["maxiter"]
    assert len(ours) == len(theirs)  # one callback per iteration, rejected ones included
    assert [a[4] for a in ours] == [a[4] for a in theirs]
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a[1], b[1])
        assert a[2] == pytest.approx(b[2], abs=1e-12) and a[3] == b[3]
    np.testing.assert_array_equal(got.x, expected.x)
    calibration = "learning_rate" not in options
    assert spy.call_count == got.jobs == calibration + options["maxiter"] + 1
    assert got.history.accepted == [a[4] for a in theirs]
    if options["maxiter"] == 40:
        assert not all(got.history.accepted)  # the case tests rejections


def test_deferred_schedule_uses_up_an_iteration_per_rejection(ising_loss):
    x0 = np.linspace(0.1, 1.5, ising_loss.num_parameters)
    options = {"learning_rate": 0.12, "perturbation": 0.15, "maxiter": 40, "seed": 5}
    deferred = SPSA(blocking=True, blocking_schedule="deferred", **options).minimize(ising_loss, x0)
    exact = SPSA(blocking=True, **options).minimize(ising_loss, x0)
    assert deferred.jobs == exact.jobs == 41
    assert len(deferred.history) < len(exact.history) == 40
    # the exact schedule measures the perturbations around both possible next iterates
    assert exact.nfev > deferred.nfev
    with pytest.raises(ValueError, match="blocking_schedule='later'"):
        SPSA(blocking_schedule="later")
