"""Nothing silently wrong: stale caches, non-finite values, zero-row pubs,
wrong inner results, nested Hessians over non-affine expressions."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from _reference import expectation, expectation_gradient, expectation_hessian
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.circuit.library import RYGate
from qiskit.primitives import PrimitiveResult, StatevectorEstimator, StatevectorSampler
from qiskit.quantum_info import SparsePauliOp

from qprim_grad import GradientEstimator, GradientJobError, GradientSampler
from qprim_grad.cache import BoundedCache

A, B = Parameter("a"), Parameter("b")
METHODS = ["param_shift", "finite_diff", "lin_comb", "reverse"]


def one_qubit() -> QuantumCircuit:
    qc = QuantumCircuit(1)
    qc.ry(A, 0)
    return qc


# --- caches never change an answer ---------------------------------------------------------------
@pytest.mark.parametrize("method", ["param_shift", "lin_comb", "reverse", "finite_diff"])
def test_gate_replaced_in_place_is_seen(method):
    qc = one_qubit()
    first = GradientEstimator(StatevectorEstimator(), method).run([(qc, "Z", [0.3])]).result()
    np.testing.assert_allclose(first[0].data.grads, [-np.sin(0.3)], atol=1e-6)
    qc.data[0] = qc.data[0].replace(operation=RYGate(2 * A))  # same instruction count
    again = GradientEstimator(StatevectorEstimator(), method).run([(qc, "Z", [0.3])]).result()
    np.testing.assert_allclose(again[0].data.grads, [-2 * np.sin(0.6)], atol=1e-6)
    np.testing.assert_allclose(again[0].data.evs, np.cos(0.6), atol=1e-12)


@pytest.mark.parametrize("method", ["param_shift", "lin_comb"])
def test_parameters_assigned_in_place_are_seen(method):
    qc = QuantumCircuit(1)
    qc.ry(A, 0)
    qc.rx(B, 0)
    gradient = GradientEstimator(StatevectorEstimator(), method)
    gradient.run([(qc, "Z", [0.3, 0.2])]).result()
    qc.assign_parameters({A: 0.5}, inplace=True)
    result = gradient.run([(qc, "Z", [0.2])]).result()[0]
    bound = QuantumCircuit(1)
    bound.ry(0.5, 0)
    bound.rx(B, 0)
    reference = expectation_gradient(bound, "Z", [0.2])
    np.testing.assert_allclose(result.data.grads, reference, atol=1e-8)


def test_global_phase_and_new_gate_with_same_count_are_seen():
    """The Hadamard tests of lin_comb cached per circuit: a gate moved to another qubit."""
    qc = QuantumCircuit(2)
    qc.h(1)
    qc.ry(A, 0)
    observable = SparsePauliOp("ZX")
    gradient = GradientEstimator(StatevectorEstimator(), "lin_comb")
    gradient.run([(qc, observable, [0.4])]).result()
    qc.data[1] = qc.data[1].replace(qubits=(qc.qubits[1],))
    result = gradient.run([(qc, observable, [0.4])]).result()[0]
    np.testing.assert_allclose(
        result.data.grads, expectation_gradient(qc, observable, [0.4]), atol=1e-8
    )


def test_preparation_cache_is_bounded_and_checks_content():
    cache = BoundedCache(size=3)
    circuits = [one_qubit() for _ in range(5)]
    for index, circuit in enumerate(circuits):
        assert cache.get((id(circuit),), circuit, lambda i=index: i) == index
    assert len(cache) == 3
    builds = []
    cache.get((id(circuits[-1]),), circuits[-1], lambda: builds.append(1))
    assert builds == []  # a hit
    circuits[-1].global_phase = 0.5
    cache.get((id(circuits[-1]),), circuits[-1], lambda: builds.append(1))
    assert builds == [1]  # the edit is seen


# --- zero-row pubs -------------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS + ["spsa"])
def test_zero_row_pub_gives_empty_arrays(method):
    qc = one_qubit()
    qc.rx(B, 0)
    result = (
        GradientEstimator(StatevectorEstimator(), method)
        .run([(qc, "Z", np.zeros((0, 2)))])
        .result()[0]
    )
    assert result.data.evs.shape == (0,)
    assert result.data.grads.shape == (0, 2)
    assert result.data.grad_stds.shape == (0, 2)


# --- reverse on qiskit-aer: exact evs next to exact grads ----------------------------------------
def test_reverse_on_aer_gives_exact_evs_for_controlled_rotations():
    aer = pytest.importorskip("qiskit_aer.primitives")
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.ry(B, 1)
    qc.cry(A, 0, 1)
    qc.crz(A, 1, 0)
    qc.cp(B, 0, 1)
    values = [1.3, 0.4]
    observables = ["ZZ", "XX", "YI"]
    result = GradientEstimator(aer.EstimatorV2(), "reverse").run([(qc, observables, values)])
    data = result.result()[0].data
    exact = [expectation(qc, obs, values) for obs in observables]
    np.testing.assert_allclose(data.evs, exact, atol=1e-10)
    reference = [expectation_gradient(qc, obs, values) for obs in observables]
    np.testing.assert_allclose(data.grads, reference, atol=1e-8)


# --- non-finite parameter values -----------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("method", ["param_shift", "reverse"])
def test_non_finite_values_rejected_in_run(bad, method):
    qc = one_qubit()
    qc.rx(B, 0)
    gradient = GradientEstimator(StatevectorEstimator(), method)
    good = (qc, "Z", [0.1, 0.2])
    with pytest.raises(ValueError, match=r"pub 1: .*finite.*\['b'\]"):
        gradient.run([good, (qc, "Z", [[0.1, 0.2], [0.3, bad]])])


def test_non_finite_values_rejected_on_aer_and_sampler():
    aer = pytest.importorskip("qiskit_aer.primitives")
    qc = one_qubit()
    with pytest.raises(ValueError, match=r"pub 0: .*finite.*\['a'\]"):
        GradientEstimator(aer.EstimatorV2()).run([(qc, "Z", [np.nan])])
    qc.measure_all()
    with pytest.raises(ValueError, match=r"pub 0: .*finite.*\['a'\]"):
        GradientSampler(StatevectorSampler()).run([(qc, [np.inf])])


# --- nested Hessian over non-affine expressions --------------------------------------------------
@pytest.mark.parametrize("outer", ["param_shift", "lin_comb"])
def test_nested_hessian_over_non_affine_expressions(outer):
    qc = QuantumCircuit(2)
    qc.ry(A, 0)
    qc.rx(B, 1)
    qc.cx(0, 1)
    qc.rz(A * B, 1)
    qc.ry(A * A + 0.3 * B, 0)
    observable = SparsePauliOp.from_list([("ZZ", 1.0), ("XI", 0.5), ("YX", -0.3)])
    points = np.array([[0.3, 0.5], [1.2, -0.4]])
    inner = GradientEstimator(StatevectorEstimator())
    result = GradientEstimator(inner, outer).run([(qc, observable, points)]).result()[0]
    exact = np.stack([expectation_hessian(qc, observable, x) for x in points])
    assert result.data.hessian.shape == (2, 2, 2)
    np.testing.assert_allclose(result.data.hessian, exact, atol=1e-5)
    np.testing.assert_array_equal(result.data.hessian_stds, 0.0)


# --- an inner primitive returning the wrong number of pub results --------------------------------
@pytest.mark.parametrize("change", [-1, +1])
def test_wrong_number_of_inner_results_is_a_gradient_job_error(mocker, change):
    inner = StatevectorEstimator()
    original = inner.run

    def run(pubs, **kwargs):
        pubs = list(pubs)
        result = original(pubs, **kwargs).result()
        results = list(result)
        results = results[:change] if change < 0 else results + results[:change]
        job = original(pubs, **kwargs)
        mocker.patch.object(job, "result", return_value=PrimitiveResult(results))
        return job

    mocker.patch.object(inner, "run", side_effect=run)
    qc = one_qubit()
    job = GradientEstimator(inner, "lin_comb").run([(qc, "Z", [0.1]), (qc, "X", [0.2])])
    submitted = len(inner.run.call_args.args[0])
    got = submitted + change
    with pytest.raises(
        GradientJobError, match=rf"returned {got} pub results; expected {submitted}"
    ):
        job.result()


# --- seeded qiskit-aer estimators: correlated noise across the pubs of one gradient --------------
@pytest.mark.parametrize(
    "method, options, warns",
    [
        ("lin_comb", {}, True),
        ("finite_diff", {"scheme": "forward", "epsilon": 0.1}, True),
        ("finite_diff", {"scheme": "backward", "epsilon": 0.1}, True),
        ("finite_diff", {"epsilon": 0.1}, False),
        ("param_shift", {}, False),
        ("spsa", {"epsilon": 0.1, "seed": 1}, False),
    ],
)
def test_seeded_aer_estimator_warns_once_when_noise_is_correlated(method, options, warns):
    aer = pytest.importorskip("qiskit_aer.primitives")
    from qprim_grad import CorrelatedNoiseWarning

    qc = one_qubit()
    qc.rx(B, 0)
    seeded = aer.EstimatorV2(
        options={"default_precision": 0.01, "run_options": {"seed_simulator": 7}}
    )
    gradient = GradientEstimator(seeded, method, **options)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gradient.run([(qc, "Z", [0.3, 0.4])]).result()
        gradient.run([(qc, "Z", [0.3, 0.4])]).result()
    messages = [str(w.message) for w in caught if w.category is CorrelatedNoiseWarning]
    assert len(messages) == int(warns)
    if warns:
        assert "seed_simulator=7" in messages[0] and repr(method) in messages[0]


def test_no_correlation_warning_without_seed_or_noise():
    aer = pytest.importorskip("qiskit_aer.primitives")
    qc = one_qubit()
    unseeded = aer.EstimatorV2(options={"default_precision": 0.01})
    exact = aer.EstimatorV2(options={"run_options": {"seed_simulator": 7}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for estimator in (unseeded, exact):
            GradientEstimator(estimator, "lin_comb").run([(qc, "Z", [0.3])]).result()


def test_seeded_aer_noise_is_identical_for_forward_differences():
    """Why the warning exists: with a seed the centre and the first shifted pub share their
    noise, so the forward difference of parameter 0 shows none of the reported error."""
    aer = pytest.importorskip("qiskit_aer.primitives")
    qc = one_qubit()
    seeded = aer.EstimatorV2(
        options={"default_precision": 0.05, "run_options": {"seed_simulator": 7}}
    )
    gradient = GradientEstimator(seeded, "finite_diff", scheme="forward", epsilon=0.1)
    with pytest.warns(UserWarning, match="correlated"):
        data = gradient.run([(qc, "Z", [0.3])]).result()[0].data
    exact = (np.cos(0.4) - np.cos(0.3)) / 0.1
    assert abs(data.grads[0] - exact) < 1e-9 < data.grad_stds[0]  # noise cancelled exactly
