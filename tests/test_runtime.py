"""qiskit-ibm-runtime in local testing mode: EstimatorV2/SamplerV2 and the client-side
executor Estimator/Sampler, in job, Session and Batch mode, on ISA circuits.

Statistical checks run on a noiseless simulator with FakeManilaV2's target (so the only
error is shot noise, bounded by the reported ``grad_stds``); options and ISA checks also
run on the noisy FakeManilaV2. FakeFez (Heron, 156 qubits) is used with a noiseless
simulator: building its noise model takes ~30 s and each noisy run ~20 s, and the executor
primitives cannot simulate it locally at all (they do not truncate idle qubits).
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("qiskit_aer")
runtime = pytest.importorskip("qiskit_ibm_runtime")

from _reference import expectation, expectation_gradient, probability_gradient  # noqa: E402
from qiskit import QuantumCircuit  # noqa: E402
from qiskit.circuit import Parameter  # noqa: E402
from qiskit.primitives.containers.estimator_pub import EstimatorPub  # noqa: E402
from qiskit.primitives.containers.sampler_pub import SamplerPub  # noqa: E402
from qiskit.quantum_info import SparsePauliOp  # noqa: E402
from qiskit.transpiler import generate_preset_pass_manager  # noqa: E402
from qiskit_aer import AerSimulator  # noqa: E402
from qiskit_ibm_runtime import Batch, EstimatorV2, SamplerV2, Session  # noqa: E402
from qiskit_ibm_runtime.executor_estimator import Estimator as ExecutorEstimator  # noqa: E402
from qiskit_ibm_runtime.executor_sampler import Sampler as ExecutorSampler  # noqa: E402
from qiskit_ibm_runtime.fake_provider import FakeFez, FakeManilaV2  # noqa: E402
from qiskit_ibm_runtime.fake_provider.local_service import (  # noqa: E402
    QiskitRuntimeLocalService,
)

from qprim_grad import GradientEstimator, GradientSampler  # noqa: E402

#: the deprecated EstimatorV2/SamplerV2 are tested on purpose (still supported); any other
#: DeprecationWarning shows
pytestmark = pytest.mark.filterwarnings(
    "ignore::UserWarning",
    r"ignore:The (Estimator|Sampler)V2 class is deprecated:DeprecationWarning",
)

VALUES = np.array([[0.4, -0.7], [1.1, 0.3]])
SHOTS = 4000
METHODS = {
    "param_shift": {},
    "finite_diff": {"epsilon": 0.2},
    "spsa": {"epsilon": 0.2, "batch_size": 2, "seed": 11},
}
ESTIMATORS = {"runtime": EstimatorV2, "executor": ExecutorEstimator}
SAMPLERS = {"runtime": SamplerV2, "executor": ExecutorSampler}


def logical_circuit(measure: bool = False) -> QuantumCircuit:
    a, b = Parameter("a"), Parameter("b")
    circuit = QuantumCircuit(2)
    circuit.ry(a, 0)
    circuit.rx(b, 1)
    circuit.cx(0, 1)
    circuit.ry(0.5 * a, 1)
    if measure:
        circuit.measure_all()
    return circuit


OBSERVABLE = SparsePauliOp.from_list([("ZZ", 1.0), ("XI", 0.5)])


@pytest.fixture(scope="module")
def manila():
    return FakeManilaV2()


@pytest.fixture(scope="module")
def ideal_manila():
    """FakeManilaV2's target, no noise: ISA checks apply, shot noise is the only error."""
    return AerSimulator.from_backend(FakeManilaV2(), noise_model=None)


@pytest.fixture(scope="module")
def ideal_fez():
    backend = FakeFez()
    backend.sim = AerSimulator()  # skip the 156-qubit noise model (see module docstring)
    return backend


def make_mode(name: str, backend):
    return {"job": lambda: backend, "session": lambda: Session(backend=backend),
            "batch": lambda: Batch(backend=backend)}[name]()  # fmt: skip


def transpile(circuit: QuantumCircuit, backend) -> QuantumCircuit:
    return generate_preset_pass_manager(optimization_level=1, backend=backend).run(circuit)


def exact_reference(method: str, options: dict) -> np.ndarray:
    """What the method estimates, from exact statevector expectation values
    (tests/_reference.py): the derivative for param_shift, the central difference with the
    same step for finite_diff, and for spsa the mean over the documented directions (``+-1``
    from ``numpy.random.default_rng(seed)``, one draw of shape ``(batch_size,) + values``)."""
    circuit = logical_circuit()
    if method == "param_shift":
        return np.stack([expectation_gradient(circuit, OBSERVABLE, x) for x in VALUES])

    def difference(x, direction, epsilon):
        plus = expectation(circuit, OBSERVABLE, x + epsilon * direction)
        minus = expectation(circuit, OBSERVABLE, x - epsilon * direction)
        return (plus - minus) / (2 * epsilon)

    epsilon = options["epsilon"]
    if method == "finite_diff":
        eye = np.eye(VALUES.shape[1])
        return np.array([[difference(x, e, epsilon) for e in eye] for x in VALUES])
    draws = np.random.default_rng(options["seed"]).integers(
        0, 2, size=(options["batch_size"],) + VALUES.shape
    )
    directions = (-1.0) ** draws
    return np.mean(
        [[difference(x, d, epsilon) * d for x, d in zip(VALUES, batch)] for batch in directions],
        axis=0,
    )


def structure(circuit: QuantumCircuit) -> list[tuple]:
    """Gates, qubits and fixed angles: everything but the parameter values."""
    out = []
    for instruction in circuit.data:
        params = tuple(
            p if isinstance(p, float | int) else "<param>" for p in instruction.operation.params
        )
        qubits = tuple(circuit.find_bit(q).index for q in instruction.qubits)
        out.append((instruction.operation.name, qubits, params))
    return out


def assert_same_isa(circuit: QuantumCircuit, isa: QuantumCircuit) -> None:
    assert circuit.num_qubits == isa.num_qubits
    assert structure(circuit) == structure(isa)
    assert circuit.layout is not None
    assert circuit.layout.initial_index_layout() == isa.layout.initial_index_layout()
    assert circuit.layout.final_index_layout() == isa.layout.final_index_layout()


def assert_consistent(got, stds, want, floor=0.0):
    stds = np.asarray(stds)
    assert np.all(stds > 0)
    np.testing.assert_array_less(np.abs(np.asarray(got) - want), 5 * stds + floor)


#: every mode and every method for each primitive, without the full product
COMBINATIONS = [
    ("job", "param_shift"),
    ("session", "finite_diff"),
    ("batch", "spsa"),
    ("batch", "param_shift"),
]


def quick(inner, kind: str):
    """Shots for the matrix; the executor's default TREX (resilience level 1) takes ~5 s per
    job locally, so the matrix runs it at level 0 (level 1 is tested below)."""
    inner.options.default_shots = SHOTS
    if kind == "executor":
        inner.options.resilience_level = 0
    return inner


@pytest.mark.parametrize("mode, method", COMBINATIONS)
@pytest.mark.parametrize("kind", list(ESTIMATORS))
def test_estimator_matrix(mocker, ideal_manila, kind, mode, method):
    isa = transpile(logical_circuit(), ideal_manila)
    observable = OBSERVABLE.apply_layout(isa.layout)
    inner = quick(ESTIMATORS[kind](mode=make_mode(mode, ideal_manila)), kind)
    spy = mocker.spy(inner, "run")
    job = GradientEstimator(inner, method, **METHODS[method]).run([(isa, observable, VALUES)])
    result = job.result()[0]

    assert spy.call_count == 1
    assert job.inner_job_ids == [spy.spy_return.job_id()]
    for pub in spy.call_args.args[0]:
        circuit = EstimatorPub.coerce(pub).circuit
        assert_same_isa(circuit, isa)
        if method != "param_shift":
            assert circuit is isa  # only parameter values move
    assert result.data.grads.shape == (2, 2)
    assert_consistent(
        result.data.grads, result.data.grad_stds, exact_reference(method, METHODS[method])
    )
    assert result.metadata["inner_job_ids"] == job.inner_job_ids


def _exact_probability_grads() -> np.ndarray:
    """d p(x) / d theta_j for x in 00, 01, 10, 11 (bitstring order: qubit 1, qubit 0)."""
    circuit = logical_circuit(measure=True)
    return np.stack([probability_gradient(circuit, x) for x in VALUES])


@pytest.mark.parametrize("mode", ["job", "session", "batch"])
@pytest.mark.parametrize("kind", list(SAMPLERS))
def test_sampler_matrix(mocker, ideal_manila, kind, mode):
    isa = transpile(logical_circuit(measure=True), ideal_manila)
    inner = SAMPLERS[kind](mode=make_mode(mode, ideal_manila))
    inner.options.default_shots = SHOTS
    spy = mocker.spy(inner, "run")
    job = GradientSampler(inner).run([(isa, VALUES)])
    result = job.result()[0]
    assert spy.call_count == 1
    for pub in spy.call_args.args[0]:
        assert_same_isa(SamplerPub.coerce(pub).circuit, isa)
    assert result.data.meas.num_shots == SHOTS
    dense, stds = result.data.grads.to_dense(), result.data.grad_stds.to_dense()
    assert_consistent(dense, np.maximum(stds, 1e-3), _exact_probability_grads(), floor=0.02)


def _submitted(spy) -> dict:
    """The inputs the primitive sent to the (local) runtime service."""
    return spy.call_args.kwargs["inputs"]


@pytest.mark.parametrize("method", list(METHODS))
def test_runtime_estimator_options_pass_through(mocker, manila, method):
    """Noisy FakeManilaV2 in a Session: the options reach the inner job unchanged."""
    isa = transpile(logical_circuit(), manila)
    with Session(backend=manila) as session:
        inner = EstimatorV2(mode=session)
        inner.options.default_shots = 1000
        inner.options.resilience_level = 1
        inner.options.twirling.enable_gates = True
        inner.options.twirling.num_randomizations = 8
        before = inner.options.__dict__.copy()
        submitted = mocker.spy(QiskitRuntimeLocalService, "_run")
        spy = mocker.spy(inner, "run")
        grad = GradientEstimator(inner, method, **METHODS[method])
        result = grad.run([(isa, OBSERVABLE.apply_layout(isa.layout), VALUES)], precision=0.05)
        result = result.result()[0]
    assert spy.call_count == 1 and spy.call_args.kwargs == {"precision": 0.05}
    inputs = _submitted(submitted)
    options = inputs["options"]
    assert options["default_shots"] == 1000 and inputs["resilience_level"] == 1
    assert options["twirling"] == {"enable_gates": True, "num_randomizations": 8}
    assert inner.options.__dict__ == before
    assert result.metadata["target_precision"] == 0.05
    for pub in spy.call_args.args[0]:
        assert_same_isa(EstimatorPub.coerce(pub).circuit, isa)
    assert np.all(np.isfinite(result.data.grads))


def test_executor_estimator_options_in_inner_metadata(mocker, manila):
    isa = transpile(logical_circuit(), manila)
    with Batch(backend=manila) as batch:
        inner = ExecutorEstimator(mode=batch)
        inner.options.default_shots = 2000
        inner.options.resilience_level = 1
        inner.options.twirling.num_randomizations = 8
        job = GradientEstimator(inner, "param_shift").run(
            [(isa, OBSERVABLE.apply_layout(isa.layout), VALUES)]
        )
        result = job.result()
    (inner_meta,) = result.metadata["inner_metadata"]
    assert inner_meta["options"]["default_shots"] == 2000
    assert inner_meta["options"]["resilience_level"] == 1
    assert inner_meta["options"]["resilience"]["measure_mitigation"] is True
    assert inner_meta["options"]["twirling"]["num_randomizations"] == 8
    assert result[0].data.grads.shape == (2, 2)


def test_samplers_options_pass_through(mocker, manila):
    isa = transpile(logical_circuit(measure=True), manila)
    with Batch(backend=manila) as batch:
        runtime_sampler = SamplerV2(mode=batch)
        runtime_sampler.options.default_shots = 500
        runtime_sampler.options.twirling.enable_gates = True
        submitted = mocker.spy(QiskitRuntimeLocalService, "_run")
        result = GradientSampler(runtime_sampler, "finite_diff", epsilon=0.2).run([(isa, VALUES)])
        assert result.result()[0].data.meas.num_shots == 500
        options = _submitted(submitted)["options"]
        assert options["default_shots"] == 500 and options["twirling"]["enable_gates"] is True

        executor = ExecutorSampler(mode=batch)
        executor.options.default_shots = 300
        executor.options.twirling.enable_measure = True
        result = GradientSampler(executor, "spsa", epsilon=0.2, seed=1).run([(isa, VALUES)])
        result = result.result()
    (inner_meta,) = result.metadata["inner_metadata"]
    assert inner_meta["options"]["default_shots"] == 300
    # the executor rounds shots up to whole twirling randomizations: its behaviour, unchanged
    assert result[0].data.meas.num_shots >= 300
    assert inner_meta["options"]["twirling"]["enable_measure"] is True


@pytest.mark.parametrize("method", ["param_shift", "finite_diff"])
def test_heron_fake_fez(mocker, ideal_fez, method):
    isa = transpile(logical_circuit(), ideal_fez)
    assert isa.num_qubits == 156 and "cz" in isa.count_ops()
    with Batch(backend=ideal_fez) as batch:
        inner = EstimatorV2(mode=batch)
        inner.options.default_shots = SHOTS
        spy = mocker.spy(inner, "run")
        grad = GradientEstimator(inner, method, **METHODS[method])
        result = grad.run([(isa, OBSERVABLE.apply_layout(isa.layout), VALUES)]).result()[0]
    for pub in spy.call_args.args[0]:
        assert_same_isa(EstimatorPub.coerce(pub).circuit, isa)
    assert_consistent(
        result.data.grads, result.data.grad_stds, exact_reference(method, METHODS[method])
    )


def test_heron_sampler(ideal_fez):
    isa = transpile(logical_circuit(measure=True), ideal_fez)
    inner = SamplerV2(mode=ideal_fez)
    inner.options.default_shots = SHOTS
    result = GradientSampler(inner).run([(isa, VALUES)]).result()[0]
    dense, stds = result.data.grads.to_dense(), result.data.grad_stds.to_dense()
    assert_consistent(dense, np.maximum(stds, 1e-3), _exact_probability_grads(), floor=0.02)


def test_split_jobs_in_a_batch(mocker, ideal_manila):
    """max_job_rows: several inner jobs submitted together in one Batch, same gradients."""
    isa = transpile(logical_circuit(), ideal_manila)
    with Batch(backend=ideal_manila) as batch:
        inner = EstimatorV2(mode=batch)
        inner.options.default_shots = SHOTS
        spy = mocker.spy(inner, "run")
        job = GradientEstimator(inner, max_job_rows=4).run(
            [(isa, OBSERVABLE.apply_layout(isa.layout), VALUES)]
        )
        result = job.result()[0]
    assert spy.call_count == len(job.inner_job_ids) > 1
    assert len(set(job.inner_job_ids)) == len(job.inner_job_ids)
    assert_consistent(result.data.grads, result.data.grad_stds, exact_reference("param_shift", {}))
