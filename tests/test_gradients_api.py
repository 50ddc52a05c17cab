"""Calling conventions of ``qprim_grad.gradients``: inputs, settings, options, transpiler,
jobs, and the estimator attributes client code reads through a ``GradientEstimator``."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from _reference import expectation_gradient
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.primitives import StatevectorEstimator, StatevectorSampler
from qiskit.providers import JobStatus, Options
from qiskit.quantum_info import SparsePauliOp

import qprim_grad.gradients as g
from qprim_grad import GradientEstimator, GradientJob

A, B = Parameter("a"), Parameter("b")


def _circuit(measure: bool = False) -> QuantumCircuit:
    qc = QuantumCircuit(2)
    qc.ry(A, 0)
    qc.rx(B, 1)
    qc.cx(0, 1)
    qc.rz(2 * A, 1)
    if measure:
        qc.measure_all()
    return qc


OBS = SparsePauliOp.from_list([("ZZ", 1.0), ("XI", 0.5)])


def _exact(values) -> np.ndarray:
    """Independent reference derivatives (tests/_reference.py)."""
    return expectation_gradient(_circuit(), OBS, values)


def test_single_items_and_integer_values():
    gradient = g.ParamShiftEstimatorGradient(StatevectorEstimator())
    single = gradient.run(_circuit(), OBS, [1, 0]).result()
    listed = gradient.run([_circuit()], [OBS], [[1, 0]]).result()
    np.testing.assert_allclose(single.gradients[0], listed.gradients[0], atol=1e-12)
    np.testing.assert_allclose(single.gradients[0], _exact([1.0, 0.0]), atol=1e-9)
    assert single.gradients[0].dtype == np.float64
    # a label string and a 2-D array of values also work
    arrays = gradient.run([_circuit()] * 2, ["ZZ", OBS], np.array([[1, 0], [0, 1]])).result()
    assert [x.shape for x in arrays.gradients] == [(2,), (2,)]
    want = expectation_gradient(_circuit(), "ZZ", [1.0, 0.0])
    np.testing.assert_allclose(arrays.gradients[0], want, atol=1e-9)
    np.testing.assert_allclose(arrays.gradients[1], _exact([0.0, 1.0]), atol=1e-9)


def test_precision_zero_and_integers_are_single_values():
    gradient = g.FiniteDiffEstimatorGradient(StatevectorEstimator(), 1e-4, precision=0)
    result = gradient.run([_circuit()] * 2, [OBS] * 2, [[0.2, 0.3]] * 2).result()
    assert result.precision == 0
    result = gradient.run([_circuit()] * 2, [OBS] * 2, [[0.2, 0.3]] * 2, precision=0).result()
    assert result.precision == 0
    result = gradient.run(
        [_circuit()] * 2, [OBS] * 2, [[0.2, 0.3]] * 2, precision=[0, None]
    ).result()
    assert result.precision == [0, 0.0]  # None filled from the inner result


def test_precision_filled_from_inner_results():
    estimator = StatevectorEstimator(default_precision=0.0)
    result = g.ParamShiftEstimatorGradient(estimator).run(_circuit(), OBS, [0.1, 0.2]).result()
    assert result.precision == 0.0
    gradient = g.ParamShiftEstimatorGradient(estimator, precision=0.01)
    assert gradient.precision == 0.01
    assert gradient.run(_circuit(), OBS, [0.1, 0.2]).result().precision == 0.01


def test_sampler_shots_single_list_and_default():
    sampler = StatevectorSampler(seed=1, default_shots=300)
    gradient = g.ParamShiftSamplerGradient(sampler)
    circuits, values = [_circuit(True)] * 2, [[0.1, 0.2]] * 2
    assert gradient.run(circuits, values).result().shots == 300
    assert gradient.run(circuits, values, shots=50).result().shots == 50
    assert gradient.run(circuits, values, shots=[50, None]).result().shots == [50, 300]
    result = gradient.run(_circuit(True), [1, 2]).result()
    assert len(result.gradients) == 1 and len(result.gradients[0]) == 2
    assert all(isinstance(k, int) for k in result.gradients[0][0])


def test_old_options_dicts():
    estimator = StatevectorEstimator()
    by_keyword = g.ParamShiftEstimatorGradient(estimator, options={"precision": 0.0})
    positional = g.ParamShiftEstimatorGradient(estimator, {"precision": 0.0})  # old position
    from_options = g.ParamShiftEstimatorGradient(estimator, Options(precision=0.0))
    for gradient in (by_keyword, positional, from_options):
        assert gradient.precision == 0.0 and gradient.options == {"precision": 0.0}
        result = gradient.run(_circuit(), OBS, [0.1, 0.2]).result()
        assert result.options == {"precision": 0.0}
    # old run(**options)
    result = by_keyword.run(_circuit(), OBS, [0.1, 0.2], precision=0.0).result()
    assert result.precision == 0.0
    assert by_keyword.run(_circuit(), OBS, [0.1, 0.2], **{"precision": 0}).result().precision == 0
    sampler = g.FiniteDiffSamplerGradient(StatevectorSampler(seed=2), 0.1, options={"shots": 64})
    assert sampler.shots == 64 and sampler.run(_circuit(True), [0.1, 0.2]).result().shots == 64
    sampler.update_default_options(shots=32)
    assert sampler.options == {"shots": 32}
    assert sampler.run(_circuit(True), [0.1, 0.2]).result().options == {"shots": 32}
    with pytest.raises(ValueError, match="seed"):
        g.ParamShiftSamplerGradient(StatevectorSampler(), options={"seed": 1})


def test_constructor_errors_and_defaults():
    with pytest.raises(ValueError, match="epsilon must be a positive number, got 0.0"):
        g.FiniteDiffEstimatorGradient(StatevectorEstimator(), 0.0)
    with pytest.raises(TypeError, match="should be central, forward, or backward"):
        g.FiniteDiffEstimatorGradient(StatevectorEstimator(), 0.1, method="sideways")
    with pytest.raises(TypeError, match="abstract"):
        g.BaseEstimatorGradient(StatevectorEstimator())
    gradient = g.LinCombEstimatorGradient(StatevectorEstimator())
    assert gradient.derivative_type is g.DerivativeType.REAL
    gradient.derivative_type = g.DerivativeType.COMPLEX
    result = gradient.run(_circuit(), OBS, [0.1, 0.2]).result()
    assert result.gradients[0].dtype == np.complex128
    np.testing.assert_allclose(result.gradients[0].real, _exact([0.1, 0.2]), atol=1e-10)


def test_run_errors_name_the_problem():
    gradient = g.ParamShiftEstimatorGradient(StatevectorEstimator())
    with pytest.raises(ValueError, match="parameter value sets"):
        gradient.run([_circuit()] * 2, [OBS] * 2, [[0.1, 0.2]])
    with pytest.raises(ValueError, match="observables"):
        gradient.run([_circuit()] * 2, [OBS], [[0.1, 0.2]] * 2)
    with pytest.raises(ValueError, match="number of values"):
        gradient.run([_circuit()], [OBS], [[0.1]])
    with pytest.raises(ValueError, match="not parameterised"):
        gradient.run([QuantumCircuit(2)], [OBS], [[]])


def test_parameters_subset_and_order():
    gradient = g.ParamShiftEstimatorGradient(StatevectorEstimator())
    full = _exact([0.3, -0.2])
    result = gradient.run([_circuit()] * 2, [OBS] * 2, [[0.3, -0.2]] * 2, [[B], None]).result()
    np.testing.assert_allclose(result.gradients[0], full[[1]], atol=1e-9)
    np.testing.assert_allclose(result.gradients[1], full, atol=1e-9)
    assert result.metadata[0]["parameters"] == [B]


def test_transpiler_is_applied():
    from qiskit.providers.fake_provider import GenericBackendV2
    from qiskit.transpiler import generate_preset_pass_manager

    pm = generate_preset_pass_manager(1, backend=GenericBackendV2(4, seed=3), seed_transpiler=3)
    want = _exact([0.3, -0.2])
    for cls in (g.ParamShiftEstimatorGradient, g.LinCombEstimatorGradient):
        gradient = cls(StatevectorEstimator(), transpiler=pm, transpiler_options={"callback": None})
        got = gradient.run(_circuit(), OBS, [0.3, -0.2]).result().gradients[0]
        np.testing.assert_allclose(got, want, atol=1e-8)
    # qiskit-machine-learning spelling
    gradient = g.SPSAEstimatorGradient(StatevectorEstimator(), 1e-6, seed=1, pass_manager=pm)
    assert gradient.run(_circuit(), OBS, [0.3, -0.2]).result().gradients[0].shape == (2,)


def test_transpiler_maps_each_circuit_once_until_it_is_edited():
    class Counting:
        def __init__(self) -> None:
            self.calls = 0

        def run(self, circuits, **options):
            self.calls += 1
            return [c.copy() for c in circuits]

    transpiler = Counting()
    gradient = g.ParamShiftEstimatorGradient(StatevectorEstimator(), transpiler=transpiler)
    circuit = _circuit()
    for _ in range(3):
        got = gradient.run(circuit, OBS, [0.3, -0.2]).result().gradients[0]
    assert transpiler.calls == 1
    np.testing.assert_allclose(got, _exact([0.3, -0.2]), atol=1e-9)
    circuit.rz(A, 0)  # edited in place: mapped again
    gradient.run(circuit, OBS, [0.3, -0.2]).result()
    assert transpiler.calls == 2


def test_job_interface():
    job = g.ParamShiftEstimatorGradient(StatevectorEstimator()).run(_circuit(), OBS, [0.1, 0.2])
    assert isinstance(job.primitive_job, GradientJob)
    assert job.job_id() == job.primitive_job.job_id()
    result = job.result()
    assert job.result() is result
    assert job.status() == JobStatus.DONE and job.done() and job.in_final_state()
    assert len(job.primitive_job.inner_job_ids) == 1  # one inner job for the whole call


def test_gradient_estimator_forwards_estimator_attributes():
    class Estimator(StatevectorEstimator):
        mode = "session-object"
        options = Options(default_precision=0.25)

        def backend(self):
            return "fake-backend"

    wrapped = GradientEstimator(Estimator(default_precision=0.125))
    assert wrapped.default_precision == 0.125
    assert wrapped.options.default_precision == 0.25
    assert wrapped.mode == "session-object"
    assert wrapped.backend() == "fake-backend"
    with pytest.raises(AttributeError, match="no attribute 'no_such_attribute'"):
        _ = wrapped.no_such_attribute


def test_import_does_not_need_qiskit_algorithms():
    code = (
        "import sys; import qprim_grad.gradients; "
        "bad = [m for m in sys.modules if m.startswith(('qiskit_algorithms', "
        "'qiskit_machine_learning'))]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
