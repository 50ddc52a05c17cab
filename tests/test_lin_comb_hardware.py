"""lin_comb on hardware: Hadamard tests mapped by a pass manager, auxiliary qubit chosen
among idle physical qubits of an ISA circuit, transpilation cached."""

from __future__ import annotations

import numpy as np
import pytest
from _reference import expectation, expectation_gradient
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.circuit.library import real_amplitudes
from qiskit.primitives import StatevectorEstimator, StatevectorSampler
from qiskit.providers.fake_provider import GenericBackendV2
from qiskit.quantum_info import SparsePauliOp
from qiskit.transpiler import CouplingMap, generate_preset_pass_manager

from qprim_grad import GradientEstimator, GradientMethodError, GradientSampler
from qprim_grad.methods.lin_comb import LinComb

VALUES = np.array([[0.4, -0.7, 0.2], [1.1, 0.3, -0.5]])
OBSERVABLE = SparsePauliOp.from_list([("ZZ", 1.0), ("XI", 0.5), ("IY", -0.2)])


@pytest.fixture(scope="module")
def backend():
    """Five qubits on a line, so the auxiliary qubit's neighbourhood is easy to check."""
    return GenericBackendV2(5, coupling_map=CouplingMap.from_line(5), seed=3)


@pytest.fixture(scope="module")
def pass_manager(backend):
    return generate_preset_pass_manager(optimization_level=1, backend=backend, seed_transpiler=1)


def logical_circuit() -> QuantumCircuit:
    a, b, c = Parameter("a"), Parameter("b"), Parameter("c")
    circuit = QuantumCircuit(2)
    circuit.ry(a, 0)
    circuit.rx(b, 1)
    circuit.cx(0, 1)
    circuit.rzz(c, 0, 1)
    circuit.ry(0.5 * a, 1)
    return circuit


def exact(observable=OBSERVABLE, circuit=None) -> np.ndarray:
    """Independent reference derivatives (tests/_reference.py), one row per value set."""
    circuit = circuit or logical_circuit()
    return np.stack([expectation_gradient(circuit, observable, x) for x in VALUES])


def is_isa(circuit: QuantumCircuit, backend) -> bool:
    target = backend.target
    return all(
        target.instruction_supported(
            instruction.operation.name, tuple(circuit.find_bit(q).index for q in instruction.qubits)
        )
        for instruction in circuit.data
        if instruction.operation.name != "barrier"
    )


def test_isa_circuit_uses_an_idle_neighbour_and_stays_on_device(mocker, backend, pass_manager):
    isa = pass_manager.run(logical_circuit())
    observable = OBSERVABLE.apply_layout(isa.layout)
    inner = StatevectorEstimator()
    spy = mocker.spy(inner, "run")
    method = LinComb(pass_manager=pass_manager)
    build = mocker.spy(LinComb, "_hadamard_test")
    result = GradientEstimator(inner, method).run([(isa, observable, VALUES)]).result()[0]
    np.testing.assert_allclose(result.data.grads, exact(), atol=1e-9)

    active = {isa.find_bit(q).index for inst in isa.data for q in inst.qubits}
    coupling = backend.coupling_map
    for call in build.mock_calls:
        aux = call.args[-1]
        assert aux not in active
        assert min(coupling.distance(aux, q) for q in active) == 1  # next to the circuit
    for pub in spy.call_args.args[0][1:]:  # the Hadamard tests, mapped
        assert pub.circuit.num_qubits == backend.num_qubits and is_isa(pub.circuit, backend)


def test_observables_on_idle_qubits_are_not_used_as_auxiliary(backend, pass_manager):
    circuit = QuantumCircuit(3)  # qubit 2 has no gates, but the observable measures it
    theta = Parameter("t")
    circuit.ry(theta, 0)
    circuit.cx(0, 1)
    circuit.x(2)
    circuit.data.pop()  # keep qubit 2 in the layout without gates
    isa = pass_manager.run(circuit)
    observable = SparsePauliOp("ZIZ").apply_layout(isa.layout)
    grad = GradientEstimator(StatevectorEstimator(), "lin_comb", pass_manager=pass_manager)
    result = grad.run([(isa, observable, [0.3])]).result()[0]
    expected = expectation_gradient(circuit, "ZIZ", [0.3])
    np.testing.assert_allclose(result.data.grads, expected, atol=1e-9)


@pytest.mark.parametrize("derivative_type", ["imag", "complex"])
def test_isa_derivative_types_match_logical(backend, pass_manager, derivative_type):
    isa = pass_manager.run(logical_circuit())
    observable = OBSERVABLE.apply_layout(isa.layout)
    options = {"derivative_type": derivative_type}
    on_device = GradientEstimator(
        StatevectorEstimator(), "lin_comb", pass_manager=pass_manager, **options
    )
    logical = GradientEstimator(StatevectorEstimator(), "lin_comb", **options)
    got = on_device.run([(isa, observable, VALUES)]).result()[0].data.grads
    want = logical.run([(logical_circuit(), OBSERVABLE, VALUES)]).result()[0].data.grads
    np.testing.assert_allclose(got, want, atol=1e-10)


def test_full_device_raises_naming_other_methods(pass_manager):
    circuit = real_amplitudes(5, reps=1)
    isa = pass_manager.run(circuit)
    observable = SparsePauliOp("ZZZZZ").apply_layout(isa.layout)
    grad = GradientEstimator(StatevectorEstimator(), "lin_comb", pass_manager=pass_manager)
    with pytest.raises(GradientMethodError, match="every one of the device's 5 qubits") as info:
        grad.run([(isa, observable, np.zeros(circuit.num_parameters))])
    for name in ("param_shift", "finite_diff", "spsa"):
        assert name in str(info.value)


def test_transpiled_once_per_circuit_and_parameters(mocker, pass_manager):
    isa = pass_manager.run(logical_circuit())
    observable = OBSERVABLE.apply_layout(isa.layout)
    transpile = mocker.spy(pass_manager, "run")
    grad = GradientEstimator(StatevectorEstimator(), "lin_comb", pass_manager=pass_manager)
    for step in range(3):  # an optimisation loop: new values, same circuit
        grad.run([(isa, observable, VALUES + step)]).result()
    assert transpile.call_count == 1
    grad.run([(isa, observable, VALUES)], parameters=[isa.parameters[0]]).result()
    assert transpile.call_count == 2  # other parameters: other Hadamard tests


def test_logical_circuit_with_pass_manager_gets_new_qubit(backend, pass_manager):
    """Without a layout the auxiliary qubit is added, then everything is mapped."""
    grad = GradientEstimator(StatevectorEstimator(), "lin_comb", pass_manager=pass_manager)
    result = grad.run([(logical_circuit(), OBSERVABLE, VALUES)]).result()[0]
    np.testing.assert_allclose(result.data.grads, exact(), atol=1e-9)


def test_sampler_on_isa_circuit(pass_manager):
    measured = logical_circuit()
    measured.measure_all()
    isa = pass_manager.run(measured)
    grad = GradientSampler(StatevectorSampler(seed=2), "lin_comb", pass_manager=pass_manager)
    got = grad.run([(isa, VALUES)], shots=20000).result()[0]
    want = GradientSampler(StatevectorSampler(seed=2), "param_shift")
    want = want.run([(measured, VALUES)], shots=20000).result()[0]
    np.testing.assert_allclose(got.data.grads.to_dense(), want.data.grads.to_dense(), atol=0.05)


def test_virtual_circuit_with_pass_manager_maps_the_center_too(mocker):
    """On hardware every circuit must be ISA: with pass_manager= and a virtual circuit, the
    unshifted evaluation is mapped as well (not only the Hadamard tests)."""
    from qiskit.circuit.library import efficient_su2
    from qiskit.primitives import StatevectorEstimator
    from qiskit.transpiler import generate_preset_pass_manager
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    from qprim_grad import GradientEstimator

    backend = FakeManilaV2()
    pass_manager = generate_preset_pass_manager(optimization_level=1, backend=backend)
    circuit = efficient_su2(2, reps=1)
    values = np.linspace(0.1, 0.8, circuit.num_parameters)
    inner = StatevectorEstimator()
    spy = mocker.spy(inner, "run")
    gradient = GradientEstimator(inner, method="lin_comb", pass_manager=pass_manager)
    data = gradient.run([(circuit, "ZZ", values)]).result()[0].data
    pubs = spy.call_args.args[0]
    assert all(pub.circuit.num_qubits == backend.num_qubits for pub in pubs)
    np.testing.assert_allclose(data.evs, expectation(circuit, "ZZ", values), atol=1e-10)
    np.testing.assert_allclose(data.grads, expectation_gradient(circuit, "ZZ", values), atol=1e-8)
