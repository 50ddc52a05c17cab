"""Property-based tests (Hypothesis) of the core invariants, on random small circuits:

* ``grads`` equal an independent finite-difference reference (tests/_reference.py) for every
  exact method, broadcast shape, parameter subset and order;
* splitting with ``max_job_rows`` never changes a result;
* reordering ``parameters=`` permutes the output.

Examples are derandomised (the same on every run), so a failure reproduces.
"""

from __future__ import annotations

import numpy as np
import pytest
from _reference import expectation_gradient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.primitives import StatevectorEstimator
from qiskit.primitives.containers.estimator_pub import EstimatorPub

from qprim_grad import GradientEstimator

SETTINGS = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
POOL = [Parameter(name) for name in "abc"]
ONE_QUBIT = ["rx", "ry", "rz", "p"]
TWO_QUBIT = ["rzz", "rxx", "crx", "cry", "crz", "cp"]
FIXED = ["h", "cx", "s", "sx"]


@st.composite
def circuits(draw) -> QuantumCircuit:
    """1-3 qubits, 1-5 gates; arguments are parameters (possibly shared) or affine
    expressions of them; at least one parameter."""
    num_qubits = draw(st.integers(1, 3))
    qc = QuantumCircuit(num_qubits)
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["one", "two", "fixed"] if num_qubits > 1 else ["one"]))
        qubits = draw(st.permutations(range(num_qubits)))
        param = draw(st.sampled_from(POOL))
        scale = draw(st.sampled_from([1.0, 1.0, -0.5, 2.0]))
        shift = draw(st.sampled_from([0.0, 0.0, 0.3]))
        argument = param if (scale, shift) == (1.0, 0.0) else scale * param + shift
        if kind == "one":
            getattr(qc, draw(st.sampled_from(ONE_QUBIT)))(argument, qubits[0])
        elif kind == "two":
            getattr(qc, draw(st.sampled_from(TWO_QUBIT)))(argument, qubits[0], qubits[1])
        else:
            name = draw(st.sampled_from(FIXED))
            if name == "cx":
                qc.cx(qubits[0], qubits[1])
            else:
                getattr(qc, name)(qubits[0])
    if not qc.parameters:
        qc.ry(draw(st.sampled_from(POOL)), 0)
    return qc


def labels(num_qubits: int):
    return st.text(alphabet="IXYZ", min_size=num_qubits, max_size=num_qubits)


@st.composite
def pubs(draw):
    """A circuit, observables and values whose shapes broadcast, and a parameter subset in a
    random order."""
    qc = draw(circuits())
    shapes = draw(
        st.sampled_from(
            [((), ()), ((2,), ()), ((), (2,)), ((2, 1), (1, 2)), ((1,), (3,)), ((2,), (2,))]
        )
    )
    values_shape, obs_shape = shapes
    size = int(np.prod(obs_shape, dtype=int))
    observables = np.array(
        draw(st.lists(labels(qc.num_qubits), min_size=size, max_size=size)), dtype=object
    ).reshape(obs_shape)
    flat = draw(
        st.lists(
            st.floats(-np.pi, np.pi, allow_nan=False),
            min_size=int(np.prod(values_shape, dtype=int)) * qc.num_parameters,
            max_size=int(np.prod(values_shape, dtype=int)) * qc.num_parameters,
        )
    )
    values = np.array(flat, dtype=float).reshape(values_shape + (qc.num_parameters,))
    parameters = list(qc.parameters)
    subset = draw(st.lists(st.sampled_from(parameters), min_size=1, unique=True))
    return qc, observables.tolist() if obs_shape else str(observables), values, subset


def reference(qc, observables, values, subset) -> np.ndarray:
    obs = np.array(observables, dtype=object)
    shape = np.broadcast_shapes(values.shape[:-1], obs.shape)
    values = np.broadcast_to(values, shape + values.shape[-1:])
    obs = np.broadcast_to(obs, shape)
    out = np.empty(shape + (len(subset),))
    for index in np.ndindex(shape):
        out[index] = expectation_gradient(qc, obs[index], values[index], subset)
    return out


@pytest.mark.parametrize(
    "method, options, atol",
    [
        ("param_shift", {}, 1e-6),
        ("lin_comb", {}, 1e-6),
        ("reverse", {}, 1e-6),
        ("finite_diff", {"epsilon": 1e-5}, 1e-5),
    ],
)
@SETTINGS
@given(pub=pubs())
def test_grads_match_an_independent_reference(method, options, atol, pub):
    qc, observables, values, subset = pub
    gradient = GradientEstimator(StatevectorEstimator(), method, **options)
    result = gradient.run([(qc, observables, values)], parameters=subset).result()[0]
    want = reference(qc, observables, values, subset)
    assert result.data.grads.shape == want.shape
    np.testing.assert_allclose(result.data.grads, want, atol=atol)


@SETTINGS
@given(
    pub=pubs(),
    method=st.sampled_from(["param_shift", "finite_diff", "lin_comb", "spsa"]),
    limit=st.integers(1, 7),
)
def test_splitting_never_changes_results(pub, method, limit):
    qc, observables, values, subset = pub
    options = {"seed": 3} if method == "spsa" else {}
    pubs_ = [(qc, observables, values), (qc, observables, values)]
    whole = GradientEstimator(StatevectorEstimator(), method, **options)
    inner = Counting()
    split = GradientEstimator(inner, method, max_job_rows=limit, **options)
    want = whole.run(pubs_, parameters=subset).result()
    job = split.run(pubs_, parameters=subset)
    got = job.result()
    for a, b in zip(got, want):
        np.testing.assert_allclose(a.data.evs, b.data.evs, rtol=0, atol=1e-12)
        np.testing.assert_allclose(a.data.grads, b.data.grads, rtol=0, atol=1e-12)
    assert len(job.inner_job_ids) == len(inner.jobs)
    for rows in inner.jobs:  # each job within the cap, unless it is one uncut centre pub
        assert sum(rows) <= limit or len(rows) == 1


class Counting(StatevectorEstimator):
    """Records the rows of every pub of every job."""

    def __init__(self) -> None:
        super().__init__()
        self.jobs: list[list[int]] = []

    def run(self, pubs, *, precision=None):
        pubs = list(pubs)
        self.jobs.append([int(np.prod(EstimatorPub.coerce(p).shape, dtype=int)) for p in pubs])
        return super().run(pubs, precision=precision)


@SETTINGS
@given(
    pub=pubs(),
    method=st.sampled_from(["param_shift", "finite_diff", "lin_comb", "reverse"]),
    data=st.data(),
)
def test_reordering_parameters_permutes_the_output(pub, method, data):
    qc, observables, values, _ = pub
    parameters = list(qc.parameters)
    order = data.draw(st.permutations(range(len(parameters))))
    gradient = GradientEstimator(StatevectorEstimator(), method)
    full = gradient.run([(qc, observables, values)]).result()[0].data.grads
    permuted = gradient.run(
        [(qc, observables, values)], parameters=[parameters[i] for i in order]
    ).result()[0]
    np.testing.assert_allclose(permuted.data.grads, full[..., list(order)], rtol=0, atol=1e-10)
    assert permuted.metadata["parameters"] == [parameters[i] for i in order]
