"""Acceptance tests on Aer, BackendEstimatorV2 and qiskit-ibm-runtime local mode."""

from __future__ import annotations

import numpy as np
import pytest
from _reference import expectation_gradient
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.primitives import (
    BackendEstimatorV2,
    BackendSamplerV2,
    StatevectorEstimator,
    StatevectorSampler,
)
from qiskit.quantum_info import SparsePauliOp
from qiskit.transpiler import generate_preset_pass_manager

from qprim_grad import GradientEstimator, GradientSampler

A, B = Parameter("a"), Parameter("b")
H = SparsePauliOp.from_list([("ZZ", 1.0), ("XI", 0.5)])
X0 = np.array([0.6, -0.4])


def circ():
    qc = QuantumCircuit(2)
    qc.ry(A, 0)
    qc.rx(B, 1)
    qc.cx(0, 1)
    qc.ry(A + B, 0)
    return qc


def exact_grad(qc, obs, x):
    return expectation_gradient(qc, obs, x)


@pytest.fixture(scope="module")
def backend():
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    return FakeManilaV2()


@pytest.fixture(scope="module")
def isa(backend):
    pm = generate_preset_pass_manager(optimization_level=1, backend=backend, seed_transpiler=1)
    qc = pm.run(circ())
    return pm, qc, H.apply_layout(qc.layout)


# --------------------------------------------------------------------------- Aer / backend


def test_aer_estimator_with_shots_within_reported_errors():
    from qiskit_aer.primitives import EstimatorV2 as AerEstimator

    est = AerEstimator(
        options={"default_precision": 0.01, "run_options": {"seed_simulator": 1}},
    )
    res = GradientEstimator(est).run([(circ(), H, X0)]).result()[0]
    g = res.data.grads
    assert np.all(res.data.grad_stds > 0)
    assert np.all(np.abs(g - exact_grad(circ(), H, X0)) < 6 * res.data.grad_stds)


def test_backend_estimator_v2_shots():
    from qiskit_aer import AerSimulator

    est = BackendEstimatorV2(backend=AerSimulator(seed_simulator=3))
    pm = generate_preset_pass_manager(optimization_level=0, basis_gates=["rx", "ry", "rz", "cx"])
    qc = pm.run(circ())
    res = GradientEstimator(est).run([(qc, H, X0)], precision=0.02).result()[0]
    assert res.data.grads.shape == (2,)
    assert np.all(res.data.grad_stds > 0)
    assert np.all(np.abs(res.data.grads - exact_grad(circ(), H, X0)) < 6 * res.data.grad_stds)


def test_backend_sampler_v2():
    from qiskit_aer import AerSimulator

    qc = circ()
    qc.measure_all()
    smp = BackendSamplerV2(backend=AerSimulator(seed_simulator=3))
    res = GradientSampler(smp).run([(qc, X0)], shots=4000).result()[0]
    assert res.data.meas.num_shots == 4000
    assert res.data.grads.to_dense().shape == (2, 4)


# --------------------------------------------------------------------------- runtime local mode

#: the deprecated runtime EstimatorV2/SamplerV2 are still supported: these tests use them on purpose
LEGACY_RUNTIME = pytest.mark.filterwarnings(
    r"ignore:The (Estimator|Sampler)V2 class is deprecated:DeprecationWarning"
)


def _runtime_estimator(mode):
    from qiskit_ibm_runtime import EstimatorV2

    est = EstimatorV2(mode=mode)
    est.options.default_shots = 4000
    est.options.simulator.seed_simulator = 42
    return est


@LEGACY_RUNTIME
def test_runtime_isa_param_shift_keeps_isa_circuit(backend, isa, mocker):
    _, qc, obs = isa
    est = _runtime_estimator(backend)
    spy = mocker.spy(est, "run")
    job = GradientEstimator(est, method="param_shift").run([(qc, obs, X0)])
    res = job.result()[0]
    assert spy.call_count == 1
    sent = list(spy.call_args.args[0])
    for pub in sent:
        c = pub[0] if isinstance(pub, tuple) else pub.circuit
        # only parameter values move: the very same ISA circuit structure
        assert c.num_qubits == qc.num_qubits
        assert dict(c.count_ops()) == dict(qc.count_ops())
        assert c.layout is not None
        target_ops = set(backend.target.operation_names)
        assert set(c.count_ops()) <= target_ops | {"barrier"}
    assert res.data.grads.shape == (2,)
    assert np.all(res.data.grad_stds > 0)
    assert isinstance(res.metadata["inner_job_ids"][0], str)
    # noisy device: loose agreement with the exact gradient
    np.testing.assert_allclose(res.data.grads, exact_grad(circ(), H, X0), atol=0.35)


@LEGACY_RUNTIME
def test_runtime_seeded_reproducible(backend, isa):
    _, qc, obs = isa

    def run():
        return GradientEstimator(_runtime_estimator(backend)).run([(qc, obs, X0)]).result()[0]

    r1, r2 = run(), run()
    np.testing.assert_array_equal(r1.data.grads, r2.data.grads)
    np.testing.assert_array_equal(r1.data.evs, r2.data.evs)


@LEGACY_RUNTIME
def test_runtime_session_and_batch(backend, isa, mocker):
    from qiskit_ibm_runtime import Batch, Session

    _, qc, obs = isa
    for ctx in (Session, Batch):
        with ctx(backend=backend) as mode:
            est = _runtime_estimator(mode)
            spy = mocker.spy(est, "run")
            res = GradientEstimator(est).run([(qc, obs, X0), (qc, obs, X0 + 0.1)]).result()
            assert spy.call_count == 1
            assert len(res) == 2


@LEGACY_RUNTIME
def test_runtime_lin_comb_with_pass_manager(backend, isa):
    pm, qc, obs = isa
    est = _runtime_estimator(backend)
    res = (
        GradientEstimator(est, method="lin_comb", pass_manager=pm).run([(qc, obs, X0)]).result()[0]
    )
    assert res.data.grads.shape == (2,)
    np.testing.assert_allclose(res.data.grads, exact_grad(circ(), H, X0), atol=0.4)


@LEGACY_RUNTIME
def test_runtime_sampler_isa(backend, isa):
    from qiskit_ibm_runtime import SamplerV2

    pm, _, _ = isa
    qc = circ()
    qc.measure_all()
    isa_qc = pm.run(qc)
    smp = SamplerV2(mode=backend)
    smp.options.simulator.seed_simulator = 1
    res = GradientSampler(smp).run([(isa_qc, X0)], shots=2000).result()[0]
    assert res.data.meas.num_bits == 2
    assert res.data.grads.shape == (2,)
    assert all(len(k) == 2 for k in res.data.grads[0])


# --------------------------------------------------------------------------- job size cap


def test_max_pub_rows_splits_into_several_jobs(mocker):
    inner = StatevectorEstimator()
    spy = mocker.spy(inner, "run")
    vals = np.linspace(0, 1, 20).reshape(10, 2)
    ref = GradientEstimator(StatevectorEstimator()).run([(circ(), H, vals)]).result()[0]
    job = GradientEstimator(inner, max_pub_rows=8).run([(circ(), H, vals)])
    res = job.result()[0]
    assert spy.call_count > 1
    assert len(res.metadata["inner_job_ids"]) == spy.call_count
    np.testing.assert_allclose(res.data.grads, ref.data.grads, atol=1e-12)
    np.testing.assert_allclose(res.data.evs, ref.data.evs, atol=1e-12)


# --------------------------------------------------------------------------- misuse errors


def test_sampler_wrapped_as_estimator_is_clear_error():
    with pytest.raises(TypeError, match="wraps an estimator, got the StatevectorSampler"):
        GradientEstimator(StatevectorSampler()).run([(circ(), H, X0)]).result()


def test_missing_parameter_values_is_clear_error():
    with pytest.raises(ValueError, match="a|b"):
        GradientEstimator(StatevectorEstimator()).run([(circ(), H)]).result()
