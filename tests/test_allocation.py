"""``allocation="optimal"``: each (inner pub, measurement group) at its own precision, the
fewest shots giving every result entry the target standard error; real shot sampling is
qiskit's ``BackendEstimatorV2`` on a seeded ``AerSimulator``."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("qiskit_aer")

from qiskit.circuit.library import real_amplitudes  # noqa: E402
from qiskit.primitives import BackendEstimatorV2, StatevectorEstimator  # noqa: E402
from qiskit.quantum_info import SparsePauliOp  # noqa: E402
from qiskit_aer import AerSimulator  # noqa: E402

from qprim_grad import GradientEstimator, QGTEstimator  # noqa: E402
from qprim_grad.optimizers import EstimatorLoss  # noqa: E402
from qprim_grad.pipeline.allocation import MIN_SHOTS, Allocation, grid_shots, precision_for  # noqa: E402

#: one term per measurement group: BackendEstimatorV2's reported stds are then exact
#: (within a group it adds the terms' stds, an upper bound), so coverage can be checked
CALIBRATION = SparsePauliOp.from_list([("ZZ", 1.0), ("XX", 0.5), ("YY", 0.2)])
#: many groups of very unequal weight, as molecular Hamiltonians have
UNEQUAL = SparsePauliOp.from_list(
    [("ZZ", 1.0), ("ZI", 0.6), ("XX", 0.05), ("YY", 0.04), ("XY", 0.02), ("YX", 0.02)]
)
CIRCUIT = real_amplitudes(2, reps=1)


class ReseededSimulator(AerSimulator):
    """A seeded ``AerSimulator`` whose every ``run`` draws a fresh seed. (A fixed
    ``seed_simulator`` restarts the same random stream in each call, and
    ``BackendEstimatorV2`` makes one call per distinct shot count: units of one job would
    then share random numbers, which real shots never do.)"""

    def __init__(self, seed: int, **options):
        super().__init__(max_parallel_threads=1, **options)
        self._seeds = np.random.default_rng(seed)

    def run(self, circuits, **options):
        options["seed_simulator"] = int(self._seeds.integers(2**31))
        return super().run(circuits, **options)


def sampling(seed: int = 5) -> BackendEstimatorV2:
    return BackendEstimatorV2(backend=ReseededSimulator(seed))


def points(count: int, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-np.pi, np.pi, (count, CIRCUIT.num_parameters))


def exact(observable, values):
    result = GradientEstimator(StatevectorEstimator()).run([(CIRCUIT, observable, values)])
    return result.result()[0].data


def test_grid():
    shots = grid_shots(np.array([0.5, 33.0, 100.0, 1e5]))
    assert shots[0] == MIN_SHOTS and np.all(shots >= [MIN_SHOTS, 33, 100, 1e5])
    assert np.all(shots <= np.maximum([MIN_SHOTS, 33, 100, 1e5] * np.array(2**0.25) + 1, 32))
    many = grid_shots(np.linspace(40, 4000, 500))
    assert len(np.unique(many)) <= 28  # a coarse grid: few distinct precisions per job
    for n in (32, 1000, 4096, 1001):
        assert int(np.ceil(1 / precision_for(n) ** 2)) == n


def test_exact_primitive_unchanged():
    values = points(3)
    pub = (CIRCUIT, [UNEQUAL, "XI"], values[:, None, :])
    for make in (
        lambda allocation: GradientEstimator(StatevectorEstimator(), allocation=allocation),
        lambda allocation: QGTEstimator(StatevectorEstimator(), allocation=allocation),
    ):
        uniform = make("uniform").run([pub]).result()
        optimal = make("optimal").run([pub]).result()
        assert optimal.metadata["shots"] == 0
        for name in uniform[0].data.keys():
            np.testing.assert_array_equal(
                getattr(optimal[0].data, name), getattr(uniform[0].data, name)
            )


def test_calibrated_under_shot_sampling():
    values = points(80)  # 400 entries: the coverage's own standard error is about 1 %
    truth = exact(CALIBRATION, values)
    grad = GradientEstimator(sampling(), allocation="optimal")
    data = grad.run([(CIRCUIT, CALIBRATION, values)], precision=0.05).result()[0].data
    assert np.max(data.grad_stds) <= 0.05 and np.max(data.stds) <= 0.05
    z = np.concatenate(
        [((data.grads - truth.grads) / data.grad_stds).ravel(), (data.evs - truth.evs) / data.stds]
    )
    coverage = np.mean(np.abs(z) < 2)
    assert 0.93 <= coverage <= 0.97, coverage


def test_fewer_shots_than_uniform_at_equal_or_better_error(mocker):
    values = points(4)
    pub = (CIRCUIT, UNEQUAL, values)
    inner = sampling()
    spy = mocker.spy(inner, "run")
    uniform = GradientEstimator(inner).run([pub], precision=0.02).result()
    optimal = GradientEstimator(inner, allocation="optimal")
    result = optimal.run([pub], precision=0.02).result()
    assert spy.call_count == 2  # one job per run
    stds = result[0].data.grad_stds
    assert np.max(stds) <= 0.02 <= np.max(uniform[0].data.grad_stds)
    assert result.metadata["shots"] * 2 < uniform.metadata["shots"]
    assert result.metadata["allocation"] == "optimal"


def test_learned_deviations_reused(mocker):
    values = points(2)
    pub = (CIRCUIT, UNEQUAL, values)
    grad = GradientEstimator(sampling(), allocation="optimal")
    learn = mocker.spy(Allocation, "_learn")
    first = grad.run([pub], precision=0.02).result().metadata["shots"]
    second = grad.run([pub], precision=0.02).result().metadata["shots"]
    again = GradientEstimator(sampling(), allocation="optimal").run([pub], precision=0.02)
    assert learn.call_count == 2
    # the bound sum |c| over-estimates; what was learned on the first run saves shots
    assert second < first == again.result().metadata["shots"]


def test_split_jobs_and_qgt():
    values = points(2)
    pub = (CIRCUIT, UNEQUAL, values)
    whole = GradientEstimator(sampling(), allocation="optimal").run([pub], precision=0.05)
    split = GradientEstimator(sampling(), allocation="optimal", max_job_rows=7)
    result = split.run([pub], precision=0.05).result()
    assert len(result.metadata["inner_job_ids"]) > 1
    assert result.metadata["shots"] == whole.result().metadata["shots"]
    assert np.max(result[0].data.grad_stds) <= 0.05
    qgt = QGTEstimator(sampling(), allocation="optimal").run([pub], precision=0.05).result()
    assert np.max(qgt[0].data.qgt_stds) <= 0.05 and np.max(qgt[0].data.stds) <= 0.05


def test_estimator_loss_optimal_values():
    loss = EstimatorLoss(sampling(), CIRCUIT, UNEQUAL, precision=0.02, allocation="optimal")
    batch = loss.run_batch(points(3))
    assert np.max(batch.stds) <= 0.02 and batch.jobs == 1
    gradient = loss.run_gradient(points(1)[0])
    # measured spreads, shots sized on the deviation typical of the batch's points
    assert np.max(gradient.grad_stds) <= 0.03 and gradient.std <= 0.03
    uniform = EstimatorLoss(sampling(), CIRCUIT, UNEQUAL, precision=0.02).run_batch(points(3))
    assert batch.shots < uniform.shots
    assert loss.shots == batch.shots + gradient.shots and loss.jobs == 2


@pytest.mark.filterwarnings("ignore:The EstimatorV2 class is deprecated:DeprecationWarning")
@pytest.mark.parametrize("kind", ["runtime", "executor"])
def test_estimator_ignoring_precision_is_an_error(kind):
    pytest.importorskip("qiskit_ibm_runtime")
    from qiskit_ibm_runtime import EstimatorV2
    from qiskit_ibm_runtime.executor_estimator import Estimator
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    make = EstimatorV2 if kind == "runtime" else Estimator
    inner = make(mode=FakeManilaV2(), options={"default_shots": 100})
    grad = GradientEstimator(inner, allocation="optimal")
    with pytest.raises(ValueError, match=r"default_shots=100.*allocation='uniform'") as info:
        grad.run([(CIRCUIT, UNEQUAL, points(1)[0])])
    assert "allocation='optimal'" in str(info.value)
    with pytest.raises(ValueError, match="default_shots"):
        EstimatorLoss(inner, CIRCUIT, UNEQUAL, allocation="optimal").run_gradient(points(1)[0])


def test_allocation_checked():
    with pytest.raises(ValueError, match=r"allocation must be .*'optimal'.*got 'neyman'"):
        GradientEstimator(StatevectorEstimator(), allocation="neyman")
    with pytest.raises(ValueError, match="allocation"):
        QGTEstimator(StatevectorEstimator(), allocation=None)  # type: ignore[arg-type]


def test_learned_spread_is_pooled_over_runs():
    """The true per-shot deviation is the root of the mean variance over runs (the last
    POOLED_RUNS of them, exponentially): the shares follow the circuit's typical point."""
    from qprim_grad.pipeline.allocation import POOLED_RUNS, pooled

    spread, runs = pooled(None, 0, 1.0)
    spread, runs = pooled(spread, runs, 3.0)
    assert (runs, spread) == (2, pytest.approx(np.sqrt((1 + 9) / 2)))
    assert pooled(spread, runs, None) == (spread, runs)  # nothing measured: unchanged
    for _ in range(40):
        spread, runs = pooled(spread, runs, 1.0)
    assert spread == pytest.approx(1.0, abs=0.2)  # the early runs fade
    late, runs = pooled(spread, runs, 3.0)  # a late outlier weighs 1 / POOLED_RUNS
    weight = 1 / POOLED_RUNS
    assert late == pytest.approx(np.sqrt((1 - weight) * spread**2 + weight * 9.0))
