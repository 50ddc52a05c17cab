"""``metadata["shots"]`` (each pub's share: ``metadata["pub_shots"]``): the shots a run
asked for, counted as IBM Runtime counts them
(parameter sets x qubit-wise commuting bases x shots per basis; sampler: parameter sets x
shots), checked against the circuits x shots the simulator under qiskit's
``BackendEstimatorV2`` and qiskit-ibm-runtime's local mode actually executed."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("qiskit_aer")
pytest.importorskip("qiskit_ibm_runtime")

from qiskit import QuantumCircuit  # noqa: E402
from qiskit.circuit import Parameter  # noqa: E402
from qiskit.primitives import (  # noqa: E402
    BackendEstimatorV2,
    BackendSamplerV2,
    StatevectorEstimator,
    StatevectorSampler,
)
from qiskit.primitives.containers.estimator_pub import EstimatorPub  # noqa: E402
from qiskit.quantum_info import SparsePauliOp  # noqa: E402
from qiskit.transpiler import generate_preset_pass_manager  # noqa: E402
from qiskit_aer import AerSimulator  # noqa: E402
from qiskit_aer.primitives import EstimatorV2 as AerEstimator  # noqa: E402
from qiskit_ibm_runtime import EstimatorV2 as RuntimeEstimator  # noqa: E402
from qiskit_ibm_runtime.executor_estimator import Estimator as ExecutorEstimator  # noqa: E402
from qiskit_ibm_runtime.fake_provider import FakeManilaV2  # noqa: E402

from qprim_grad import GradientEstimator, GradientSampler, QGTEstimator  # noqa: E402
from qprim_grad.optimizers import EstimatorLoss, LossBatch, LossGradient  # noqa: E402
from qprim_grad.shots import estimator_pub_shots, num_bases, shots_for_precision  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore::UserWarning",
    r"ignore:The (Estimator|Sampler)V2 class is deprecated:DeprecationWarning",
)

#: ZZ, IZ commute qubit-wise; XX and YY each need a basis of their own: three bases
OBSERVABLE = SparsePauliOp.from_list([("ZZ", 1.0), ("XX", 0.5), ("IZ", 0.3), ("YY", 0.2)])
VALUES = np.array([[0.4, -0.7], [1.1, 0.3], [0.2, 0.9]])


def circuit(measure: bool = False) -> QuantumCircuit:
    a, b = Parameter("a"), Parameter("b")
    qc = QuantumCircuit(2)
    qc.ry(a, 0)
    qc.rx(b, 1)
    qc.cx(0, 1)
    if measure:
        qc.measure_all()
    return qc


@pytest.fixture
def executed(mocker):
    """Shots the Aer simulator executed: circuits x parameter bindings x shots, summed over
    every ``AerSimulator.run`` call (the simulator under every primitive used here)."""
    spy = mocker.spy(AerSimulator, "run")

    def total() -> int:
        count = 0
        for call in spy.call_args_list:
            circuits = call.args[1]
            circuits = circuits if isinstance(circuits, list) else [circuits]
            binds = call.kwargs.get("parameter_binds")
            sets = [len(next(iter(b.values()))) if b else 1 for b in binds] if binds else None
            count += (sum(sets) if sets else len(circuits)) * call.kwargs["shots"]
        return count

    return total


@pytest.fixture(scope="module")
def manila():
    return FakeManilaV2()


def isa_pub(backend, values=VALUES):
    pm = generate_preset_pass_manager(optimization_level=1, backend=backend, seed_transpiler=1)
    isa = pm.run(circuit())
    return (isa, OBSERVABLE.apply_layout(isa.layout), values)


def test_rule_on_plain_pubs():
    pub = EstimatorPub.coerce((circuit(), [OBSERVABLE, "XI"], VALUES[:, None, :]))
    assert num_bases(pub.observables) == 3  # XI joins XX's basis
    assert estimator_pub_shots(pub, {"shots": 100}) == 3 * 3 * 100
    assert estimator_pub_shots(pub, {"executor": {"shots": 7}}) == 3 * 3 * 7
    assert estimator_pub_shots(pub, {"target_precision": 0.05}) == 3 * 3 * 400
    assert estimator_pub_shots(pub, {}, 0.1) == 3 * 3 * 100
    assert estimator_pub_shots(pub, {"target_precision": 0.0}) == 0
    assert shots_for_precision(1 / np.sqrt(1000)) == 1001  # as BackendEstimatorV2 rounds


@pytest.mark.parametrize("method", ["param_shift", "finite_diff"])
def test_backend_estimator_counts_what_runs(executed, method):
    inner = BackendEstimatorV2(backend=AerSimulator(seed_simulator=1))
    grad = GradientEstimator(inner, method)
    pubs = [(circuit(), OBSERVABLE, VALUES), (circuit(), "ZZ", VALUES[0], 0.1)]
    result = grad.run(pubs, precision=0.05).result()
    assert result.metadata["shots"] == executed() > 0
    # centre + 2 shifts per parameter: 5 evaluations of 3 sets x 3 bases x 400 shots
    assert result[0].metadata["pub_shots"] == 5 * 3 * 3 * 400
    assert result[1].metadata["pub_shots"] == 5 * 1 * 1 * 100
    assert sum(r.metadata["pub_shots"] for r in result) == result.metadata["shots"]
    assert result[0].metadata["shots"] == 400  # the inner primitive's own: per basis


def test_the_centre_costs_what_the_plain_estimator_reports(executed):
    inner = BackendEstimatorV2(backend=AerSimulator(seed_simulator=1))
    plain = inner.run([(circuit(), OBSERVABLE, VALUES)], precision=0.05).result()[0]
    plain_shots = executed()
    assert plain_shots == plain.metadata["shots"] * len(VALUES) * 3
    result = QGTEstimator(inner, "block_diag").run(
        [(circuit(), OBSERVABLE, VALUES)], precision=0.05
    )
    assert result.result().metadata["shots"] == executed() - plain_shots


def test_split_jobs_sum(executed):
    inner = BackendEstimatorV2(backend=AerSimulator(seed_simulator=1))
    pub = (circuit(), OBSERVABLE, VALUES)
    whole = GradientEstimator(inner).run([pub], precision=0.1).result()
    before = executed()
    split = GradientEstimator(inner, max_job_rows=4).run([pub], precision=0.1).result()
    assert len(split.metadata["inner_job_ids"]) > 1
    assert split.metadata["shots"] == whole.metadata["shots"] == executed() - before
    assert split[0].metadata["pub_shots"] == split.metadata["shots"]


def test_nested_counts_each_row_once(executed):
    inner = BackendEstimatorV2(backend=AerSimulator(seed_simulator=1))
    hessian = GradientEstimator(GradientEstimator(inner))
    result = hessian.run([(circuit(), "ZZ", VALUES[0])], precision=0.1).result()
    assert result.metadata["shots"] == executed() == result.metadata["base_rows"] * 100
    assert result[0].metadata["pub_shots"] == result.metadata["shots"]


@pytest.mark.parametrize("kind", ["runtime", "executor"])
def test_runtime_local_mode(executed, manila, kind):
    make = RuntimeEstimator if kind == "runtime" else ExecutorEstimator
    inner = make(mode=manila, options={"default_shots": 256, "resilience_level": 0})
    pub = isa_pub(manila, VALUES[:2])
    plain = inner.run([pub]).result()[0]
    reported = plain.metadata.get("shots") or plain.metadata["executor"]["shots"]
    assert reported == 256 and executed() == 256 * 2 * 3
    before = executed()
    result = GradientEstimator(inner).run([pub]).result()
    assert result.metadata["shots"] == executed() - before == 5 * 256 * 2 * 3


def test_samplers(executed):
    values = VALUES[:2]
    result = GradientSampler(BackendSamplerV2(backend=AerSimulator(seed_simulator=1))).run(
        [(circuit(measure=True), values)], shots=50
    )
    assert result.result().metadata["shots"] == executed() == 5 * 2 * 50
    exact = GradientSampler(StatevectorSampler(seed=1)).run([(circuit(measure=True), values, 20)])
    assert exact.result()[0].metadata["pub_shots"] == 5 * 2 * 20


def test_exact_primitives_count_zero():
    exact = StatevectorEstimator()
    pub = (circuit(), OBSERVABLE, VALUES)
    for wrapper in (
        GradientEstimator(exact),
        GradientEstimator(exact, "reverse"),
        QGTEstimator(exact),
    ):
        result = wrapper.run([pub]).result()
        assert result.metadata["shots"] == 0 and result[0].metadata["pub_shots"] == 0


def test_gaussian_estimators_count_by_precision():
    for inner in (StatevectorEstimator(seed=1), AerEstimator()):
        result = GradientEstimator(inner).run([(circuit(), OBSERVABLE, VALUES)], precision=0.1)
        assert result.result().metadata["shots"] == 5 * 3 * 3 * 100


def test_estimator_loss_counts(executed):
    inner = BackendEstimatorV2(backend=AerSimulator(seed_simulator=1))
    loss = EstimatorLoss(inner, circuit(), OBSERVABLE, precision=0.1)
    batch = loss.run_batch(VALUES)
    assert isinstance(batch, LossBatch) and batch.jobs == 1
    assert batch.shots == executed() == 3 * 3 * 100
    assert batch.values.shape == batch.stds.shape == (3,) and np.all(batch.stds > 0)
    gradient = loss.run_gradient(VALUES[0], precision=0.2)
    assert isinstance(gradient, LossGradient) and gradient.grads.shape == (2,)
    assert gradient.shots == 5 * 3 * 25 and np.all(gradient.grad_stds > 0)
    loss(VALUES[0])
    assert (loss.shots, loss.jobs) == (executed(), 3)
    assert loss.gradient_estimator() is loss.gradient_estimator()  # built once


def test_estimator_loss_allocation_checked():
    with pytest.raises(ValueError, match="allocation"):
        EstimatorLoss(StatevectorEstimator(), circuit(), "ZZ", allocation="best")
    with pytest.raises(ValueError, match="disagrees"):
        EstimatorLoss(
            GradientEstimator(StatevectorEstimator()), circuit(), "ZZ", allocation="optimal"
        )
    with pytest.raises(ValueError, match="allocation"):
        GradientEstimator(StatevectorEstimator(), allocation="neyman")
