"""method="reverse": exact adjoint gradients, checked against independent references.

The main reference is exact and independent of the kernel: along each parameter the
expectation value of a circuit whose parameters enter with integer coefficients is a
trigonometric polynomial in theta/2, so sampling ``Statevector`` on an equidistant grid and a
discrete Fourier transform give its derivative to rounding error.
"""

from __future__ import annotations

import numpy as np
import pytest
from _reference import expectation_gradient
from qiskit import QuantumCircuit
from qiskit.circuit import Gate, Parameter, ParameterVector
from qiskit.circuit.library import (
    GlobalPhaseGate,
    PauliEvolutionGate,
    RVGate,
    RXGate,
    efficient_su2,
    get_standard_gate_name_mapping,
)
from qiskit.primitives import BackendEstimatorV2, StatevectorEstimator
from qiskit.providers.basic_provider import BasicSimulator
from qiskit.quantum_info import SparsePauliOp, Statevector

from qprim_grad import GradientEstimator, GradientMethodError
from qprim_grad.methods.adjoint import compile_circuit, observable_matrix
from qprim_grad.methods.adjoint import program as adjoint_program
from qprim_grad.methods.reverse import Reverse, is_exact_statevector_estimator

TOL = 1e-10
_SKIP = {"delay", "reset", "measure", "global_phase"}
_GATES = {
    name: gate for name, gate in get_standard_gate_name_mapping().items() if name not in _SKIP
}
_PARAMETERISED = sorted(name for name, gate in _GATES.items() if gate.params)
_FIXED = sorted(name for name, gate in _GATES.items() if not gate.params)


# ---- references -----------------------------------------------------------------------------


def _energy(circuit: QuantumCircuit, observable: SparsePauliOp, values: np.ndarray) -> complex:
    state = Statevector(circuit.assign_parameters(values))
    return complex(state.expectation_value(observable))


def _fourier_gradient(circuit, observable, values, degree: int) -> np.ndarray:
    """Exact d<O>/d theta_j when every theta_j enters with total |coefficient| <= degree/4."""
    samples = 2 * degree + 1
    t = 4 * np.pi * np.arange(samples) / samples
    m = np.fft.fftfreq(samples, 1 / samples)  # integer frequencies in theta/2
    grads = []
    for j in range(circuit.num_parameters):
        line = []
        for shift in t:
            shifted = np.array(values, dtype=float)
            shifted[j] += shift
            line.append(_energy(circuit, observable, shifted))
        coeffs = np.fft.fft(np.real(line)) / samples
        grads.append(np.real(np.sum(coeffs * 0.5j * m)))
    return np.array(grads)


def _stencil_gradient(circuit, observable, values, step: float = 0.02) -> np.ndarray:
    """Eighth-order central differences (for non-trigonometric parameter expressions)."""
    weights = np.array([1 / 280, -4 / 105, 1 / 5, -4 / 5, 0, 4 / 5, -1 / 5, 4 / 105, -1 / 280])
    grads = []
    for j in range(circuit.num_parameters):
        total = 0.0
        for k, w in zip(range(-4, 5), weights, strict=True):
            if w:
                shifted = np.array(values, dtype=float)
                shifted[j] += k * step
                total += w * _energy(circuit, observable, shifted).real
        grads.append(total / step)
    return np.array(grads)


def _reverse(circuit, observable, values, derivative_type="real", parameters=None):
    estimator = GradientEstimator(
        StatevectorEstimator(), method="reverse", derivative_type=derivative_type
    )
    kwargs = {} if parameters is None else {"parameters": parameters}
    return estimator.run([(circuit, observable, values)], **kwargs).result()[0]


# ---- random circuits over the standard library -----------------------------------------------


def _random_circuit(names, num_qubits, params, rng, coefficient_bound=1):
    """Each gate argument is ±p or ±p ± q with parameters from ``params`` (integer weights)."""
    circuit = QuantumCircuit(num_qubits)
    for q in range(num_qubits):
        circuit.ry(rng.uniform(0, np.pi), q)
        circuit.rz(rng.uniform(0, np.pi), q)
    uses = np.zeros(len(params))
    for name in names:
        gate = _GATES[name]
        qubits = [int(q) for q in rng.permutation(num_qubits)[: gate.num_qubits]]
        args = []
        for _ in gate.params:
            picks = rng.choice(len(params), size=rng.integers(1, coefficient_bound + 1))
            expr = 0
            for p in picks:
                sign = int(rng.choice([-1, 1]))
                expr = expr + sign * params[p]
                uses[p] += 1
            args.append(expr + float(rng.uniform(-1, 1)))
        op = gate.base_class(*args) if gate.params else gate
        circuit.append(op, qubits)
        circuit.h(qubits[0])
    return circuit, int(uses.max())


def _random_observable(num_qubits, rng, terms=3):
    labels = ["".join(rng.choice(list("IXYZ"), size=num_qubits)) for _ in range(terms)]
    return SparsePauliOp(labels, rng.normal(size=terms))


@pytest.mark.parametrize("chunk", range(4))
def test_standard_library_matches_exact_reference(chunk):
    rng = np.random.default_rng(100 + chunk)
    names = _PARAMETERISED[chunk::4] + list(rng.choice(_FIXED, size=4))
    rng.shuffle(names)
    params = ParameterVector("t", 4)
    circuit, max_uses = _random_circuit(names, 4, params, rng)
    observable = _random_observable(4, rng)
    values = rng.uniform(-np.pi, np.pi, size=circuit.num_parameters)
    reference = _fourier_gradient(circuit, observable, values, degree=4 * max_uses)
    grads = _reverse(circuit, observable, values).data.grads
    np.testing.assert_allclose(grads, reference, rtol=0, atol=TOL)


def test_every_fixed_gate_between_parameterised_ones():
    rng = np.random.default_rng(7)
    params = ParameterVector("t", 3)
    circuit = QuantumCircuit(4)
    for i, name in enumerate(_FIXED):
        gate = _GATES[name]
        circuit.rx(params[i % 3], i % 4)
        circuit.append(gate, [int(q) for q in rng.permutation(4)[: gate.num_qubits]])
        circuit.crz(2 * params[(i + 1) % 3], (i + 1) % 4, (i + 2) % 4)
    observable = _random_observable(4, rng)
    values = rng.uniform(-np.pi, np.pi, size=3)
    uses = max(sum(1 for inst in circuit.data if p in inst.operation.params) for p in params)
    reference = _fourier_gradient(circuit, observable, values, degree=4 * 2 * uses)
    np.testing.assert_allclose(
        _reverse(circuit, observable, values).data.grads, reference, rtol=0, atol=TOL
    )


def test_matches_param_shift_on_efficient_su2_with_broadcasting():
    circuit = efficient_su2(3, reps=2)
    rng = np.random.default_rng(3)
    values = rng.uniform(-np.pi, np.pi, size=(2, 3, circuit.num_parameters))
    observables = [SparsePauliOp(["ZZI", "XIY"], [1.0, 0.5]), "IYZ", "ZII"]
    pub = (circuit, observables, values)
    reverse = GradientEstimator(StatevectorEstimator(), method="reverse").run([pub]).result()[0]
    shift = GradientEstimator(StatevectorEstimator(), method="param_shift").run([pub]).result()[0]
    plain = StatevectorEstimator().run([pub]).result()[0]
    assert reverse.data.grads.shape == (2, 3, circuit.num_parameters)
    np.testing.assert_allclose(reverse.data.grads, shift.data.grads, rtol=0, atol=TOL)
    # evs from the forward pass: what StatevectorEstimator computes, to rounding
    np.testing.assert_allclose(reverse.data.evs, plain.data.evs, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(reverse.data.grad_stds, 0)


@pytest.mark.parametrize(
    ("values_shape", "observables_shape"),
    [((2, 3), (2, 3)), ((2, 1), (1, 4)), ((1,), (3, 2)), ((), (2,)), ((3,), ())],
)
def test_broadcasting_shapes(values_shape, observables_shape):
    circuit = efficient_su2(2, reps=1)
    rng = np.random.default_rng(11)
    values = rng.uniform(-1, 1, size=values_shape + (circuit.num_parameters,))
    labels = np.array(
        ["".join(rng.choice(list("XYZ"), size=2)) for _ in range(int(np.prod(observables_shape)))]
    ).reshape(observables_shape)
    observables = labels.tolist() if observables_shape else str(labels)
    result = _reverse(circuit, observables, values)
    shape = np.broadcast_shapes(values_shape, observables_shape)
    assert result.data.grads.shape == shape + (circuit.num_parameters,)
    flat_values = np.broadcast_to(values, shape + values.shape[-1:]).reshape(-1, values.shape[-1])
    flat_labels = np.broadcast_to(labels, shape).ravel()
    grads = result.data.grads.reshape(-1, circuit.num_parameters)
    for v, label, g in zip(flat_values, flat_labels, grads, strict=True):
        reference = _fourier_gradient(circuit, SparsePauliOp(label), v, degree=4)
        np.testing.assert_allclose(g, reference, rtol=0, atol=TOL)


def test_chunked_batches(monkeypatch):
    monkeypatch.setattr(adjoint_program, "_MAX_AMPLITUDES", 16)
    circuit = efficient_su2(3, reps=1)
    values = np.random.default_rng(5).uniform(-1, 1, size=(5, circuit.num_parameters))
    pub = (circuit, ["ZZZ", "XIX"], values[:, None, :])
    chunked = GradientEstimator(StatevectorEstimator(), method="reverse").run([pub]).result()[0]
    shift = GradientEstimator(StatevectorEstimator(), method="param_shift").run([pub]).result()[0]
    np.testing.assert_allclose(chunked.data.grads, shift.data.grads, rtol=0, atol=TOL)


def test_parameters_subset_and_order():
    a, b, c = Parameter("a"), Parameter("b"), Parameter("c")
    circuit = QuantumCircuit(2)
    circuit.rx(a, 0)
    circuit.ry(b, 1)
    circuit.cx(0, 1)
    circuit.rz(c, 1)
    circuit.ry(a, 1)
    observable = SparsePauliOp(["ZX", "YY"], [1.0, 0.3])
    values = [0.3, -0.4, 1.1]
    full = _fourier_gradient(circuit, observable, values, degree=8)
    result = _reverse(circuit, observable, values, parameters=[c, a])
    np.testing.assert_allclose(result.data.grads, full[[2, 0]], rtol=0, atol=TOL)


# ---- parameter expressions ------------------------------------------------------------------


def test_non_affine_expressions_use_the_chain_rule():
    a, b = Parameter("a"), Parameter("b")
    circuit = QuantumCircuit(2)
    circuit.h([0, 1])
    circuit.rx(a * b, 0)
    circuit.cry(np.sin(a) + b, 0, 1)
    circuit.u(a**2, np.cos(b), a - b, 1)
    circuit.rzz(np.exp(0.5 * a), 0, 1)
    observable = SparsePauliOp(["XZ", "ZY", "YY"], [1.0, -0.4, 0.7])
    values = np.array([0.7, -0.3])
    reference = _stencil_gradient(circuit, observable, values)
    grads = _reverse(circuit, observable, values).data.grads
    np.testing.assert_allclose(grads, reference, rtol=0, atol=1e-9)


def test_decomposed_gates_without_a_template():
    t = Parameter("t")
    evolution = PauliEvolutionGate(SparsePauliOp(["XY", "ZZ"], [0.5, -1.0]), time=t)
    inner = QuantumCircuit(2, name="custom")
    inner.rx(2 * t, 0)
    inner.cx(0, 1)
    inner.rz(-t, 1)
    custom = inner.to_gate()
    circuit = QuantumCircuit(3)
    circuit.h(range(3))
    circuit.append(evolution, [0, 2])
    circuit.append(custom, [2, 1])
    circuit.append(RXGate(t).control(2, ctrl_state=1, annotated=False), [0, 1, 2])
    circuit.append(RXGate(-t).control(1, annotated=True), [1, 0])
    observable = SparsePauliOp(["XYZ", "ZZI"], [1.0, 0.5])
    values = np.array([0.37])
    reference = _stencil_gradient(circuit, observable, values)
    grads = _reverse(circuit, observable, values).data.grads
    np.testing.assert_allclose(grads, reference, rtol=0, atol=1e-9)


# ---- derivative types and phases --------------------------------------------------------------


def _phase_circuit():
    a, b, c = Parameter("a"), Parameter("b"), Parameter("c")
    circuit = QuantumCircuit(2, global_phase=c)
    circuit.h(0)
    circuit.rx(a, 0)
    circuit.ry(b, 1)
    circuit.cx(0, 1)
    circuit.rz(2 * a, 1)
    circuit.p(b, 0)
    circuit.u(a, b, 0.3, 1)
    circuit.crx(b, 0, 1)
    circuit.append(GlobalPhaseGate(a), [])
    return circuit


@pytest.mark.parametrize("derivative_type", ["imag", "complex"])
def test_imag_and_complex_follow_qiskit_algorithms(derivative_type):
    from qiskit_algorithms.gradients import DerivativeType, LinCombEstimatorGradient

    circuit = _phase_circuit()
    observable = SparsePauliOp(["XY", "ZZ", "YI"], [1.0, 0.5, 0.3])
    values = np.array([0.3, 0.7, -0.2])
    seed = LinCombEstimatorGradient(
        StatevectorEstimator(), derivative_type=DerivativeType(derivative_type)
    )
    # qiskit-algorithms cannot bind a parameterised global phase; its value is irrelevant
    # in the SU(d) convention, so compare on the circuit without it
    plain = circuit.assign_parameters({circuit.parameters[2]: 0.0})
    plain.global_phase = 0
    plain.data = [inst for inst in plain.data if inst.operation.name != "global_phase"]
    expected = seed.run([plain], [observable], [values[:2]]).result().gradients[0]
    result = _reverse(circuit, observable, values, derivative_type=derivative_type)
    np.testing.assert_allclose(result.data.grads[:2], expected, rtol=0, atol=TOL)
    assert abs(result.data.grads[2]) < TOL  # global phase: no SU(d) contribution


def test_complex_includes_gate_phases_in_kernel_when_asked():
    circuit = _phase_circuit()
    observable = SparsePauliOp(["XY", "ZZ"], [1.0, 0.5])
    values = np.array([0.3, 0.7, -0.2])
    program = compile_circuit(circuit)
    matrix = observable_matrix(dict(zip(observable.paulis.to_labels(), observable.coeffs)), 2)
    with_phases = program.gradients(values[None], [[matrix]], [0, 1, 2], traceless=False)
    h = 1e-4
    states = []
    for k in (-2, -1, 1, 2):
        shifted = []
        for j in range(3):
            v = values.copy()
            v[j] += k * h
            shifted.append(Statevector(circuit.assign_parameters(v)).data)
        states.append(shifted)
    psi = Statevector(circuit.assign_parameters(values)).data
    op = observable.to_matrix()
    for j in range(3):
        dpsi = (states[0][j] - 8 * states[1][j] + 8 * states[2][j] - states[3][j]) / (12 * h)
        np.testing.assert_allclose(with_phases[0, 0, j], np.vdot(psi, op @ dpsi), atol=1e-9)


def test_real_part_matches_qiskit_algorithms_reverse():
    from qiskit_algorithms.gradients import ReverseEstimatorGradient

    circuit = efficient_su2(4, reps=2)
    observable = SparsePauliOp(["ZZII", "IXXI", "YIIY"], [1.0, 0.4, -0.3])
    values = np.random.default_rng(2).uniform(-np.pi, np.pi, circuit.num_parameters)
    expected = ReverseEstimatorGradient().run([circuit], [observable], [values]).result()
    result = _reverse(circuit, observable, values)
    np.testing.assert_allclose(result.data.grads, expected.gradients[0], rtol=0, atol=TOL)


# ---- where it applies -----------------------------------------------------------------------


def test_refuses_non_exact_estimators_naming_alternatives():
    estimator = GradientEstimator(BackendEstimatorV2(backend=BasicSimulator()), method="reverse")
    circuit = efficient_su2(2, reps=1)
    with pytest.raises(
        GradientMethodError, match="needs an exact statevector.*param_shift"
    ) as info:
        estimator.run([(circuit, "ZZ", np.zeros(circuit.num_parameters))]).result()
    assert "StatevectorEstimator" in str(info.value)


def test_exact_estimator_detection():
    assert is_exact_statevector_estimator(StatevectorEstimator())
    assert not is_exact_statevector_estimator(BackendEstimatorV2(backend=BasicSimulator()))
    assert not is_exact_statevector_estimator(GradientEstimator(StatevectorEstimator()))
    aer = pytest.importorskip("qiskit_aer")
    from qiskit_aer.noise import NoiseModel, depolarizing_error
    from qiskit_aer.primitives import EstimatorV2

    assert is_exact_statevector_estimator(EstimatorV2())
    noise = NoiseModel()
    noise.add_all_qubit_quantum_error(depolarizing_error(0.01, 1), ["rx"])
    noisy = EstimatorV2(options={"backend_options": {"noise_model": noise}})
    assert not is_exact_statevector_estimator(noisy)
    assert not is_exact_statevector_estimator(
        EstimatorV2.from_backend(aer.AerSimulator(noise_model=noise))
    )


def test_aer_estimator_in_exact_mode():
    pytest.importorskip("qiskit_aer")
    from qiskit_aer.primitives import EstimatorV2

    circuit = efficient_su2(3, reps=1)
    values = np.random.default_rng(4).uniform(-1, 1, size=(2, circuit.num_parameters))
    pub = (circuit, "XZY", values)
    aer = GradientEstimator(EstimatorV2(), method="reverse").run([pub]).result()[0]
    exact = GradientEstimator(StatevectorEstimator(), method="reverse").run([pub]).result()[0]
    np.testing.assert_allclose(aer.data.grads, exact.data.grads, rtol=0, atol=TOL)


def test_clear_errors_for_circuits_it_cannot_differentiate():
    a = Parameter("a")
    measured = QuantumCircuit(1, 1)
    measured.rx(a, 0)
    measured.measure(0, 0)
    with pytest.raises(GradientMethodError, match="without measurements.*found 'measure'"):
        _reverse(measured, "Z", [0.1])
    rotation = QuantumCircuit(1)
    rotation.append(RVGate(a, 0.2, 0.3), [0])
    with pytest.raises(GradientMethodError, match="cannot differentiate gate 'rv'"):
        _reverse(rotation, "Z", [0.1])
    opaque = QuantumCircuit(1)
    opaque.append(Gate("opaque", 1, [a]), [0])
    with pytest.raises(GradientMethodError, match="gate 'opaque': it has neither"):
        _reverse(opaque, "Z", [0.1])


def test_options_and_protocol():
    method = Reverse(derivative_type="IMAG")
    assert method.options == {"derivative_type": "imag"}
    with pytest.raises(GradientMethodError, match="derivative_type"):
        Reverse(derivative_type="both")
    assert GradientEstimator(StatevectorEstimator(), method="reverse") is not None


def test_kernel_accepts_projector_labels():
    # StatevectorEstimator itself rejects them; the kernel supports every SparseObservable label
    from qiskit.quantum_info import SparseObservable

    circuit = efficient_su2(3, reps=1)
    values = np.random.default_rng(9).uniform(-1, 1, circuit.num_parameters)
    terms = {"0+Z": 1.0, "1rX": -0.5}
    matrix = observable_matrix(terms, 3)
    grads = 2 * compile_circuit(circuit).gradients(
        values[None], [[matrix]], range(circuit.num_parameters)
    )
    observable = SparseObservable.from_list(list(terms.items()))
    as_paulis = SparsePauliOp.from_sparse_observable(observable)
    reference = _fourier_gradient(circuit, as_paulis, values, degree=4)
    np.testing.assert_allclose(grads[0, 0].real, reference, rtol=0, atol=TOL)


def test_kernels_run_with_one_blas_thread(mocker):
    import threadpoolctl

    from qprim_grad.methods.adjoint import passes

    seen = []
    forward = passes._forward

    def spy(*args):
        seen.extend(
            i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"
        )
        return forward(*args)

    mocker.patch.object(passes, "_forward", side_effect=spy)
    circuit = efficient_su2(2, reps=1)
    _reverse(circuit, "ZZ", np.zeros(circuit.num_parameters))
    assert seen and set(seen) == {1}


def test_blas_limit_is_restored():
    import threadpoolctl

    before = [info["num_threads"] for info in threadpoolctl.threadpool_info()]
    circuit = efficient_su2(2, reps=1)
    _reverse(circuit, "ZZ", np.zeros(circuit.num_parameters))
    assert [info["num_threads"] for info in threadpoolctl.threadpool_info()] == before


def test_several_pubs_and_a_circuit_without_parameters():
    a = Parameter("a")
    rotation = QuantumCircuit(1)
    rotation.rx(a, 0)
    bell = QuantumCircuit(2)
    bell.h(0)
    bell.cx(0, 1)
    estimator = GradientEstimator(StatevectorEstimator(), method="reverse")
    first, second = estimator.run([(rotation, "Z", [[0.3], [0.1]]), (bell, ["ZZ", "XX"])]).result()
    np.testing.assert_allclose(first.data.grads[:, 0], -np.sin([0.3, 0.1]), rtol=0, atol=TOL)
    assert second.data.grads.shape == (2, 0)
    np.testing.assert_allclose(second.data.evs, [1, 1])


def test_rows_are_vectorised_consistently_over_every_kernel():
    rng = np.random.default_rng(21)
    params = ParameterVector("t", 4)
    circuit, max_uses = _random_circuit(_PARAMETERISED + ["cx", "swap", "ccx"], 4, params, rng)
    observables = [_random_observable(4, rng), _random_observable(4, rng)]
    values = rng.uniform(-np.pi, np.pi, size=(3, 1, circuit.num_parameters))
    batched = _reverse(circuit, observables, values).data.grads  # (3, 2, P)
    for r in range(3):
        single = _reverse(circuit, observables, values[r, 0]).data.grads
        np.testing.assert_allclose(batched[r], single, rtol=0, atol=1e-12)
    reference = _fourier_gradient(circuit, observables[1], values[2, 0], degree=4 * max_uses)
    np.testing.assert_allclose(batched[2, 1], reference, rtol=0, atol=TOL)


def test_sampler_pubs_are_refused():
    from qiskit.primitives import StatevectorSampler

    from qprim_grad import GradientSampler

    circuit = efficient_su2(2, reps=1)
    circuit.measure_all()
    sampler = GradientSampler(StatevectorSampler(), method="reverse")
    with pytest.raises(GradientMethodError, match="expectation values only"):
        sampler.run([(circuit, np.zeros(circuit.num_parameters))]).result()


@pytest.mark.parametrize("num_qubits", [5, 6])
def test_two_thread_kernels_give_the_same_gradients(monkeypatch, num_qubits):
    """Kernels split their rows over two threads on large states; forced on a small one here
    (every in-place and two-thread path taken), the gradient is the serial one and exact."""
    from qprim_grad.methods.adjoint import kernels, parallel, program

    circuit = efficient_su2(num_qubits, reps=2)
    circuit.rzz(0.3, 0, num_qubits - 1)
    observable = SparsePauliOp.from_list(
        [("Z" * num_qubits, 1.0), ("X" + "I" * (num_qubits - 1), 0.4)]
    )
    values = np.linspace(-1.2, 1.1, circuit.num_parameters)
    serial = _reverse(circuit, observable, values)
    program._PROGRAMS.clear()  # recompile with the patched thresholds
    monkeypatch.setattr(kernels, "_IN_PLACE", 1)
    monkeypatch.setattr(kernels, "PARALLEL_AMPLITUDES", 1)
    monkeypatch.setattr(parallel, "PARALLEL_AMPLITUDES", 1)
    monkeypatch.setattr(kernels, "_LARGE_CHUNK", 4)
    calls = []
    real = parallel.in_halves
    monkeypatch.setattr(kernels, "in_halves", lambda *a: calls.append(a[1]) or real(*a))
    threaded = _reverse(circuit, observable, values)
    program._PROGRAMS.clear()
    assert calls and parallel._pool() is not None
    np.testing.assert_allclose(threaded.data.grads, serial.data.grads, rtol=0, atol=1e-12)
    reference = expectation_gradient(circuit, observable, values)
    np.testing.assert_allclose(threaded.data.grads, reference, rtol=0, atol=1e-7)


def test_a_forked_process_gets_its_own_kernel_threads():
    """The two-thread pool is per process: a child forked after the parent used it (idle
    threads that do not exist in the child) must not wait forever."""
    import multiprocessing
    import time

    from qprim_grad.methods.adjoint import parallel

    assert parallel._pool() is not None
    for _ in range(2):  # both of the parent's threads exist, and are idle afterwards
        parallel.in_halves(lambda lo, hi: time.sleep(0.05), 8, 4, parallel.PARALLEL_AMPLITUDES)
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        result = pool.apply_async(_halves_in_child)
        assert result.get(timeout=30) == [(0, 4), (4, 8)]


def _halves_in_child() -> list[tuple[int, int]]:
    from qprim_grad.methods.adjoint import parallel

    return parallel.in_halves(lambda lo, hi: (lo, hi), 8, 4, parallel.PARALLEL_AMPLITUDES)
