"""Wrappers around wrappers: a user's mitigation-style estimator, and a GradientEstimator
around a GradientEstimator (second derivatives)."""

from __future__ import annotations

import numpy as np
import pytest
from _reference import POINTS, bare_circuit, expectation_gradient, expectation_hessian
from qiskit import QuantumCircuit
from qiskit.primitives import (
    BaseEstimatorV2,
    PrimitiveJob,
    PrimitiveResult,
    PubResult,
    StatevectorEstimator,
)
from qiskit.primitives.containers import DataBin
from qiskit.quantum_info import SparsePauliOp

from qprim_grad import GradientEstimator

OBSERVABLE = SparsePauliOp.from_list([("ZZ", 1.0), ("XI", 0.5), ("YX", -0.3)])


def circuit() -> QuantumCircuit:
    qc = bare_circuit()
    qc.ry(qc.parameters[0], 1)  # a shared parameter
    return qc


def exact_hessian(qc: QuantumCircuit, values: np.ndarray, step: float = 1e-3) -> np.ndarray:
    return expectation_hessian(qc, OBSERVABLE, values, step)


class Rescaled(BaseEstimatorV2):
    """A user's mitigation-style wrapper: forwards to another estimator and rescales."""

    def __init__(self, estimator: BaseEstimatorV2, factor: float) -> None:
        self._estimator = estimator
        self._factor = factor
        self.calls = 0

    def run(self, pubs, *, precision=None):
        self.calls += 1
        job = PrimitiveJob(self._run, list(pubs), precision)
        job._submit()
        return job

    def _run(self, pubs, precision):
        result = self._estimator.run(pubs, precision=precision).result()
        out = []
        for pub_result in result:
            data = pub_result.data
            scaled = DataBin(
                evs=self._factor * data.evs, stds=abs(self._factor) * data.stds, shape=data.shape
            )
            out.append(PubResult(scaled, metadata={**pub_result.metadata, "rescaled": True}))
        return PrimitiveResult(out, metadata={"mitigation": "rescaled"})


@pytest.mark.parametrize("method", ["param_shift", "finite_diff", "lin_comb"])
def test_gradient_around_users_mitigation_wrapper(method):
    mitigated = Rescaled(StatevectorEstimator(), factor=1.25)
    grad = GradientEstimator(mitigated, method)
    result = grad.run([(circuit(), OBSERVABLE, POINTS)]).result()
    assert mitigated.calls == 1  # every circuit the gradient needs went through it
    exact = GradientEstimator(StatevectorEstimator(), method).run([(circuit(), OBSERVABLE, POINTS)])
    exact = exact.result()[0]
    np.testing.assert_allclose(result[0].data.evs, 1.25 * exact.data.evs, atol=1e-12)
    np.testing.assert_allclose(result[0].data.grads, 1.25 * exact.data.grads, atol=1e-6)
    assert result[0].metadata["rescaled"] is True
    assert result.metadata["inner_metadata"] == [{"mitigation": "rescaled"}]


def exact_gradient(qc: QuantumCircuit, values: np.ndarray) -> np.ndarray:
    return expectation_gradient(qc, OBSERVABLE, values)


def test_hessian_from_gradient_of_gradient():
    inner = GradientEstimator(StatevectorEstimator(), "param_shift")
    outer = GradientEstimator(inner, "finite_diff", epsilon=1e-4)
    result = outer.run([(circuit(), OBSERVABLE, POINTS)]).result()[0]
    assert result.data.hessian.shape == (2, 3, 3)
    assert result.data.hessian_stds.shape == (2, 3, 3)
    np.testing.assert_array_equal(result.data.hessian_stds, 0.0)
    exact = np.stack([exact_hessian(circuit(), x) for x in POINTS])
    np.testing.assert_allclose(result.data.hessian, exact, atol=1e-5)
    np.testing.assert_allclose(result.data.hessian, np.swapaxes(exact, -1, -2), atol=1e-5)
    # first derivatives are the outer method's own
    gradients = np.stack([exact_gradient(circuit(), x) for x in POINTS])
    np.testing.assert_allclose(result.data.grads, gradients, atol=1e-5)


def test_hessian_from_spsa_of_gradient_is_hessian_along_the_direction():
    """One SPSA direction delta (entries +-1) per row: the outer gradient is
    ``(g . delta) delta`` and the Hessian estimate ``(H delta) delta^T``."""
    inner = GradientEstimator(StatevectorEstimator(), "param_shift")
    outer = GradientEstimator(inner, "spsa", epsilon=1e-4, seed=1)
    result = outer.run([(circuit(), OBSERVABLE, POINTS)]).result()[0]
    for row, x in enumerate(POINTS):
        gradient = exact_gradient(circuit(), x)
        hessian = exact_hessian(circuit(), x)
        delta = np.sign(result.data.grads[row])  # +-delta: both give the same products
        assert set(np.abs(delta)) == {1.0}
        np.testing.assert_allclose(result.data.grads[row], (gradient @ delta) * delta, atol=1e-5)
        np.testing.assert_allclose(
            result.data.hessian[row], np.outer(hessian @ delta, delta), atol=1e-5
        )


@pytest.mark.parametrize("outer", ["param_shift", "lin_comb"])
def test_exact_hessian_by_double_parameter_shift(outer):
    inner = GradientEstimator(StatevectorEstimator(), "param_shift")
    result = GradientEstimator(inner, outer).run([(bare_circuit(), OBSERVABLE, POINTS)]).result()
    exact = np.stack([exact_hessian(bare_circuit(), x) for x in POINTS])
    np.testing.assert_allclose(result[0].data.hessian, exact, atol=1e-5)


def test_hessian_with_shots_has_errors():
    aer = pytest.importorskip("qiskit_aer.primitives")
    inner = GradientEstimator(aer.EstimatorV2(options={"run_options": {"seed": 3}}))
    outer = GradientEstimator(inner, "param_shift")
    result = outer.run([(bare_circuit(), OBSERVABLE, POINTS[0])], precision=0.01).result()[0]
    stds = result.data.hessian_stds
    assert stds.shape == (3, 3) and np.all(stds > 0)
    exact = exact_hessian(bare_circuit(), POINTS[0])
    np.testing.assert_array_less(np.abs(result.data.hessian - exact), 5 * stds)


def test_one_inner_job_through_two_layers(mocker):
    base = StatevectorEstimator()
    spy = mocker.spy(base, "run")
    inner = GradientEstimator(base)
    GradientEstimator(inner, "finite_diff").run([(circuit(), OBSERVABLE, POINTS)]).result()
    assert spy.call_count == 1


@pytest.mark.parametrize("outer", ["param_shift", "lin_comb"])
def test_hessian_through_the_chain_rule_when_the_circuit_is_rewritten(outer):
    """Shared parameters and affine expressions: the outer method evaluates a rewritten
    circuit whose gate arguments are parameters of their own; the inner derivatives are
    mapped back to the user's parameters (H = J^T M J)."""
    qc = circuit()
    a = qc.parameters[0]
    qc.rx(2 * a - 0.4, 0)  # an affine expression as well as the shared parameter
    inner = GradientEstimator(StatevectorEstimator())
    result = GradientEstimator(inner, outer).run([(qc, OBSERVABLE, POINTS)]).result()[0]
    exact = np.stack([exact_hessian(qc, x, step=2e-4) for x in POINTS])
    assert result.data.hessian.shape == (2, 3, 3)
    np.testing.assert_allclose(result.data.hessian, exact, atol=1e-5)


def test_hessian_for_non_affine_expressions_on_a_rewritten_circuit():
    """d^2 (a * b) / da db does not vanish: the second-order chain rule adds it."""
    qc = circuit()
    a, b, _ = qc.parameters
    qc.rz(a * b, 1)
    inner = GradientEstimator(StatevectorEstimator())
    result = GradientEstimator(inner, "param_shift").run([(qc, OBSERVABLE, POINTS)])
    exact = np.stack([exact_hessian(qc, x, step=2e-4) for x in POINTS])
    np.testing.assert_allclose(result.result()[0].data.hessian, exact, atol=1e-5)
