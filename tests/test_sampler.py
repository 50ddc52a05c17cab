"""GradientSampler against exact probability derivatives, with shot-noise tolerances."""

from __future__ import annotations

import numpy as np
import pytest
from _reference import probability_gradient
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.circuit import Parameter, ParameterVector
from qiskit.primitives import BaseSamplerV2, StatevectorSampler
from qiskit.primitives.containers import BitArray

from qprim_grad import GradientJobError, GradientSampler, SamplerGradients

SHOTS = 20_000


def _circuit() -> QuantumCircuit:
    a, b = Parameter("a"), Parameter("b")
    qc = QuantumCircuit(3)
    qc.h(0)
    qc.ry(a, 0)
    qc.crx(2 * a + b, 0, 1)
    qc.rz(a * b, 1)
    qc.rx(b, 1)
    qc.ry(b, 2)
    qc.cx(1, 2)
    qc.measure_all()
    return qc


def _assert_within_noise(grads: SamplerGradients, stds: SamplerGradients, reference, bias=0.0):
    dense, sigma = grads.to_dense(), stds.to_dense()
    # entries never observed have zero estimated variance; allow a tiny floor there
    bound = 5 * sigma + bias + 3.0 / SHOTS
    assert np.all(np.abs(dense - reference) <= bound), np.max(np.abs(dense - reference) - bound)


@pytest.mark.parametrize("method", ["param_shift", "lin_comb", "finite_diff"])
def test_matches_exact_probability_derivatives(method):
    circuit = _circuit()
    values = np.array([[0.3, 0.5], [1.1, -0.7]])
    options = {"epsilon": 0.05} if method == "finite_diff" else {}
    sampler = GradientSampler(StatevectorSampler(seed=11), method=method, **options)
    result = sampler.run([(circuit, values)], shots=SHOTS).result()[0]
    grads = result.data.grads
    assert grads.shape == (2, 2)
    assert grads.to_dense().shape == (2, 2, 8)
    for row in range(2):
        reference = probability_gradient(circuit, values[row])
        bias = 0.01 if method == "finite_diff" else 0.0  # O(epsilon^2) truncation
        _assert_within_noise(grads[row], result.data.grad_stds[row], reference, bias)
    # the register field holds the inner sampler's samples at the unshifted values
    assert isinstance(result.data.meas, BitArray)
    assert result.data.meas.shape == (2,)
    assert result.data.meas.num_shots == SHOTS


def test_mapping_form_uses_bitstrings_over_all_clbits():
    circuit = _circuit()
    result = GradientSampler(StatevectorSampler(seed=3)).run([(circuit, [0.3, 0.5])]).result()[0]
    derivative = result.data.grads[0]  # parameter a
    assert isinstance(derivative, dict)
    assert all(len(key) == 3 and set(key) <= {"0", "1"} for key in derivative)
    # probabilities sum to one, so their derivatives sum to zero
    assert sum(derivative.values()) == pytest.approx(0.0, abs=1e-12)


def test_several_registers_and_partial_measurement_bit_order():
    theta = ParameterVector("t", 3)
    qr = QuantumRegister(4)
    first, second = ClassicalRegister(1, "first"), ClassicalRegister(2, "second")
    qc = QuantumCircuit(qr, first, second)
    qc.ry(theta[0], 0)
    qc.ry(theta[1], 2)
    qc.rx(theta[2], 3)
    qc.cx(0, 1)
    qc.measure(3, first[0])  # qubit 3 -> lowest bit
    qc.measure(0, second[0])
    qc.measure(2, second[1])  # qubit 1 is never measured
    values = [0.4, 1.3, 2.1]
    result = GradientSampler(StatevectorSampler(seed=5)).run([(qc, values)], shots=SHOTS)
    data = result.result()[0].data
    assert set(data.keys()) >= {"first", "second", "grads", "grad_stds"}
    reference = probability_gradient(qc, values)
    _assert_within_noise(data.grads, data.grad_stds, reference)


def test_fourteen_qubits_bit_ordering():
    """A wide register exposes endianness mistakes: only a few bits carry derivatives."""
    theta = ParameterVector("t", 2)
    qc = QuantumCircuit(14)
    qc.x(13)
    qc.ry(theta[0], 0)
    qc.ry(theta[1], 9)
    qc.measure_all()
    values = [0.7, 2.0]
    sampler = GradientSampler(StatevectorSampler(seed=9), method="param_shift")
    data = sampler.run([(qc, values)], shots=SHOTS).result()[0].data
    grads = data.grads
    assert grads.num_bits == 14
    for key in grads[0]:
        assert key[0] == "1"  # qubit 13 is always 1 and is the leftmost bit
    # exact: p(q0=1) = sin^2(t0/2) -> d/dt0 = sin(t0)/2, independent of q9
    d0 = sum(v for k, v in grads[0].items() if k[-1] == "1")
    assert d0 == pytest.approx(np.sin(values[0]) / 2, abs=5 / np.sqrt(SHOTS))
    d9 = sum(v for k, v in grads[1].items() if k[-10] == "1")
    assert d9 == pytest.approx(np.sin(values[1]) / 2, abs=5 / np.sqrt(SHOTS))


def test_sparse_form_stays_small_for_wide_circuits():
    aer = pytest.importorskip("qiskit_aer.primitives")
    theta = Parameter("t")
    qc = QuantumCircuit(30)
    qc.ry(theta, 0)
    qc.measure_all()
    sampler = GradientSampler(
        aer.SamplerV2(seed=1, options={"backend_options": {"method": "matrix_product_state"}})
    )
    grads = sampler.run([(qc, [0.5])], shots=500).result()[0].data.grads
    assert len(grads.outcomes) <= 2
    assert grads.values.shape == (1, len(grads.outcomes))
    with pytest.raises(ValueError, match="dense array over 30 classical bits"):
        grads.to_dense()


def _collapsed_rotation_derivative(values: np.ndarray) -> np.ndarray:
    """Exact d p(x) / d (a, b) for: ry(a) on |0>, measure x0, then ry(b) on a qubit in
    state |x0> (collapsed, or prepared by feed-forward), measure x1."""

    def distribution(v):
        p1 = np.sin(v[0] / 2) ** 2
        out = np.zeros(4)
        for x0, px in ((0, 1 - p1), (1, p1)):
            flip = np.sin(v[1] / 2) ** 2 if x0 == 0 else np.cos(v[1] / 2) ** 2
            out[x0 | 2] += px * flip
            out[x0] += px * (1 - flip)
        return out

    h = 1e-5
    return np.array(
        [(distribution(values + h * e) - distribution(values - h * e)) / (2 * h) for e in np.eye(2)]
    )


def test_mid_circuit_measurement_param_shift():
    a, b = Parameter("a"), Parameter("b")
    qc = QuantumCircuit(1, 2)
    qc.ry(a, 0)
    qc.measure(0, 0)
    qc.ry(b, 0)
    qc.measure(0, 1)
    values = np.array([0.8, 1.9])
    aer = pytest.importorskip("qiskit_aer.primitives")
    data = GradientSampler(aer.SamplerV2(seed=4)).run([(qc, values)], shots=4000)
    data = data.result()[0].data

    reference = _collapsed_rotation_derivative(values)
    _assert_within_noise(data.grads, data.grad_stds, reference)


def test_spsa_is_seeded():
    circuit = _circuit()
    run = lambda seed: (  # noqa: E731
        GradientSampler(StatevectorSampler(seed=1), method="spsa", seed=seed, epsilon=0.1)
        .run([(circuit, [0.3, 0.5])], shots=1000)
        .result()[0]
        .data.grads.to_dense()
    )
    np.testing.assert_array_equal(run(7), run(7))


def test_one_inner_job(mocker):
    inner = StatevectorSampler(seed=2)
    spy = mocker.spy(inner, "run")
    circuit = _circuit()
    for method in ["param_shift", "lin_comb", "finite_diff", "spsa"]:
        spy.reset_mock()
        GradientSampler(inner, method=method).run(
            [(circuit, [0.1, 0.2]), (circuit, [[0.3, 0.4], [0.5, 0.6]])], shots=100
        ).result()
        assert spy.call_count == 1, method


def test_aer_sampler_with_seed():
    aer = pytest.importorskip("qiskit_aer.primitives")
    circuit = _circuit()
    values = [0.3, 0.5]
    sampler = GradientSampler(aer.SamplerV2(seed=42), method="param_shift")
    data = sampler.run([(circuit, values)], shots=SHOTS).result()[0].data
    _assert_within_noise(data.grads, data.grad_stds, probability_gradient(circuit, values))


def test_is_a_v2_sampler():
    assert isinstance(GradientSampler(StatevectorSampler()), BaseSamplerV2)


# --- errors -----------------------------------------------------------------------------


def test_error_no_measurements():
    theta = Parameter("t")
    qc = QuantumCircuit(1)
    qc.ry(theta, 0)
    with pytest.raises(ValueError, match="pub 0: the circuit has no measurements"):
        GradientSampler(StatevectorSampler()).run([(qc, [0.1])])


@pytest.mark.parametrize("shots", [0, -5])
def test_error_bad_shots(shots):
    with pytest.raises(ValueError, match="shots must be a positive integer"):
        GradientSampler(StatevectorSampler()).run([(_circuit(), [0.1, 0.2])], shots=shots)


def test_error_mismatched_values():
    with pytest.raises(ValueError, match="pub 0"):
        GradientSampler(StatevectorSampler()).run([(_circuit(), [0.1, 0.2, 0.3])])


class _FailingSampler(BaseSamplerV2):
    def run(self, pubs, *, shots=None):
        job = StatevectorSampler().run(pubs, shots=shots)

        def fail():
            raise ConnectionError("lost the session")

        job.result = fail
        return job


def test_error_failed_inner_job():
    job = GradientSampler(_FailingSampler()).run([(_circuit(), [0.1, 0.2])])
    with pytest.raises(GradientJobError, match="lost the session") as info:
        job.result()
    assert isinstance(info.value.__cause__, ConnectionError)


@pytest.mark.parametrize("method", ["param_shift", "lin_comb"])
def test_mid_circuit_measurement_with_control_flow(method):
    """Shift rules and the Hadamard test stay exact through measurements and feed-forward
    (both act linearly on the state); checked against the analytic distribution."""
    aer = pytest.importorskip("qiskit_aer.primitives")
    a, b = Parameter("a"), Parameter("b")
    qc = QuantumCircuit(2, 2)
    qc.ry(a, 0)
    qc.measure(0, 0)
    with qc.if_test((qc.clbits[0], 1)):
        qc.x(1)
    qc.ry(b, 1)
    qc.measure(1, 1)
    values = np.array([0.8, 1.9])
    reference = _collapsed_rotation_derivative(values)
    sampler = GradientSampler(aer.SamplerV2(seed=3), method=method)
    data = sampler.run([(qc, values)], shots=4000).result()[0].data
    _assert_within_noise(data.grads, data.grad_stds, reference)


def test_parameters_inside_control_flow_name_the_methods_that_work():
    a = Parameter("a")
    qc = QuantumCircuit(1, 1)
    qc.measure(0, 0)
    with qc.if_test((qc.clbits[0], 0)):
        qc.ry(a, 0)
    qc.measure(0, 0)
    with pytest.raises(ValueError, match="control-flow.*finite_diff"):
        GradientSampler(StatevectorSampler()).run([(qc, [0.3])])


def test_register_fields_are_the_inner_samplers_own_with_a_seed():
    circuit = _circuit()
    pubs = [(circuit, [0.3, 0.5]), (circuit, [[0.1, 0.2], [0.7, 0.9]])]
    alone = StatevectorSampler(seed=13).run(pubs, shots=300).result()
    wrapped = GradientSampler(StatevectorSampler(seed=13)).run(pubs, shots=300).result()
    for mine, theirs in zip(wrapped, alone):
        np.testing.assert_array_equal(mine.data.meas.array, theirs.data.meas.array)
