"""``allocation="optimal"`` on an estimator that samples real shots reports each measurement
group's standard error from its measured spread, which counts the covariances of the
group's terms. qiskit's ``BackendEstimatorV2`` (on a seeded ``AerSimulator``) adds its
terms' deviations instead: on the Heisenberg chain, whose terms are correlated, its errors
are several times the true spread."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("qiskit_aer")

from qiskit.circuit.library import real_amplitudes  # noqa: E402
from qiskit.primitives import BackendEstimatorV2, StatevectorEstimator  # noqa: E402
from qiskit.primitives.containers import PubResult  # noqa: E402
from qiskit.quantum_info import SparsePauliOp  # noqa: E402
from test_allocation import ReseededSimulator, sampling  # noqa: E402

from qprim_grad import GradientEstimator  # noqa: E402
from qprim_grad.optimizers import EstimatorLoss, ShotAdaptive  # noqa: E402

#: ``sum_i X_i X_{i+1} + Y_i Y_{i+1} + Z_i Z_{i+1}`` on an open chain of 4 qubits
CHAIN = SparsePauliOp.from_sparse_list(
    [(pauli * 2, [i, i + 1], 1.0) for i in range(3) for pauli in "XYZ"], num_qubits=4
)
ANSATZ = real_amplitudes(4, reps=1)
PRECISION = 0.05
VALUES = np.random.default_rng(1).uniform(-np.pi, np.pi, (4, ANSATZ.num_parameters))
RUNS = 16  # 16 runs x 4 points x 8 parameters: 512 gradient entries


class ShotlessEstimator(BackendEstimatorV2):
    """``BackendEstimatorV2`` whose results do not say their shots: an estimator whose
    reported errors are all there is to go on."""

    def _postprocess_pub(self, pub, expval_map, data, shots) -> PubResult:
        result = super()._postprocess_pub(pub, expval_map, data, shots)
        metadata = {k: v for k, v in result.metadata.items() if k != "shots"}
        return PubResult(result.data, metadata=metadata)


@pytest.fixture(scope="module")
def exact():
    result = GradientEstimator(StatevectorEstimator()).run([(ANSATZ, CHAIN, VALUES)])
    return result.result()[0].data.grads


def repeated(inner, allocation: str = "optimal") -> tuple[np.ndarray, np.ndarray, int]:
    """Gradients and their stds over :data:`RUNS` runs after a warm-up run, and the shots
    of the last run."""
    grad = GradientEstimator(inner, allocation=allocation)
    grad.run([(ANSATZ, CHAIN, VALUES)], precision=PRECISION).result()
    grads, stds = [], []
    for _ in range(RUNS):
        result = grad.run([(ANSATZ, CHAIN, VALUES)], precision=PRECISION).result()
        grads.append(result[0].data.grads)
        stds.append(result[0].data.grad_stds)
    return np.array(grads), np.array(stds), result.metadata["shots"]


def scores(grads: np.ndarray, stds: np.ndarray, exact: np.ndarray) -> tuple[float, float]:
    """The fraction of entries within two stds of the exact gradient and the root mean
    square of ``(grad - exact) / std`` (the spread over the reported std)."""
    z = ((grads - exact) / stds).ravel()
    return float(np.mean(np.abs(z) <= 2)), float(np.sqrt(np.mean(z**2)))


def test_measured_spreads_calibrated(exact):
    grads, stds, _ = repeated(sampling(11))
    coverage, ratio = scores(grads, stds, exact)
    # 512 entries: the coverage's standard error is about 1 %, the ratio's about 3 %
    assert 0.92 <= coverage <= 0.98, coverage
    assert 0.9 <= ratio <= 1.1, ratio
    # the shots are sized on the learned true deviations: the target at the typical point
    assert np.sqrt(np.mean(stds**2)) == pytest.approx(PRECISION, rel=0.15)


@pytest.mark.parametrize("allocation", ["uniform", pytest.param("optimal", marks=pytest.mark.slow)])
def test_reported_errors_of_the_estimator_overstate_the_spread(exact, allocation):
    """The same check fails on the errors ``BackendEstimatorV2`` reports (``"uniform"``;
    ``"optimal"`` on an estimator that does not say its shots): they are several times the
    spread, so every entry is within two of them."""
    if allocation == "uniform":
        inner = sampling(12)
    else:
        inner = ShotlessEstimator(backend=ReseededSimulator(13))
    grads, stds, _ = repeated(inner, allocation)
    coverage, ratio = scores(grads, stds, exact)
    assert coverage == 1.0 and ratio < 0.7, (coverage, ratio)


def test_fewer_shots_for_the_target():
    """Sized on the measured spreads, the target takes fewer shots than sized on the
    errors the estimator reports."""
    shots = []
    for inner in (sampling(14), ShotlessEstimator(backend=ReseededSimulator(14))):
        grad = GradientEstimator(inner, allocation="optimal")
        grad.run([(ANSATZ, CHAIN, VALUES)], precision=PRECISION).result()  # warm-up
        result = grad.run([(ANSATZ, CHAIN, VALUES)], precision=PRECISION).result()
        shots.append(result.metadata["shots"])
    assert shots[0] * 3 < shots[1], shots


def test_shot_adaptive_follows_the_loss_allocation():
    """``ShotAdaptive`` measures with the allocation of the ``EstimatorLoss`` it is given."""
    x0 = VALUES[0]
    shots = {}
    for allocation in ("uniform", "optimal"):
        loss = EstimatorLoss(sampling(15), ANSATZ, CHAIN, allocation=allocation)
        result = ShotAdaptive(stepsize=1 / 9, maxiter=3).minimize(loss, x0)
        shots[allocation] = result.shots
    assert shots["optimal"] != shots["uniform"], shots
