"""Black-box acceptance tests for GradientSampler, written from API.md only."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.circuit import Parameter
from qiskit.primitives import (
    BasePrimitiveJob,
    BaseSamplerV2,
    BitArray,
    PrimitiveResult,
    StatevectorSampler,
)
from qiskit.quantum_info import Statevector

from qprim_grad import GradientSampler

A, B = Parameter("a"), Parameter("b")
SHOTS = 20000


def circ():
    qc = QuantumCircuit(2)
    qc.ry(A, 0)
    qc.rx(B, 1)
    qc.cx(0, 1)
    qc.ry(A, 1)
    qc.measure_all()
    return qc


def multi_reg_circ():
    q = QuantumRegister(3, "q")
    c0 = ClassicalRegister(1, "alpha")
    c1 = ClassicalRegister(2, "beta")
    qc = QuantumCircuit(q, c0, c1)
    qc.ry(A, 0)
    qc.rx(B, 1)
    qc.cx(0, 2)
    qc.ry(A / 2, 2)
    qc.measure(0, c1[1])
    qc.measure(1, c0[0])
    qc.measure(2, c1[0])
    return qc


def exact_probs(qc, values):
    """Distribution over all classical bits keyed like BitArray.get_counts()."""
    params = list(qc.parameters)
    bound = qc.assign_parameters(dict(zip(params, values)))
    meas = [
        (bound.find_bit(i.qubits[0]).index, bound.find_bit(i.clbits[0]).index)
        for i in bound.data
        if i.operation.name == "measure"
    ]
    bound = bound.remove_final_measurements(inplace=False)
    probs = Statevector(bound).probabilities()
    n_c = qc.num_clbits
    out: dict[str, float] = {}
    for idx, p in enumerate(probs):
        cl = [0] * n_c
        for qb, cb in meas:
            cl[cb] = (idx >> qb) & 1
        key = "".join(str(b) for b in reversed(cl))
        out[key] = out.get(key, 0.0) + float(p)
    return out


def exact_prob_grads(qc, values, eps=1e-6):
    values = np.asarray(values, dtype=float)
    grads = []
    for j in range(len(values)):
        e = np.zeros_like(values)
        e[j] = eps
        p, m = exact_probs(qc, values + e), exact_probs(qc, values - e)
        grads.append({k: (p.get(k, 0) - m.get(k, 0)) / (2 * eps) for k in set(p) | set(m)})
    return grads


def assert_dist_close(got, expected, atol):
    keys = set(got) | set(expected)
    for k in keys:
        assert abs(got.get(k, 0.0) - expected.get(k, 0.0)) < atol, (k, got, expected)


X0 = np.array([0.4, 1.2])


def test_is_base_sampler_v2_and_job_api():
    gs = GradientSampler(StatevectorSampler(seed=1))
    assert isinstance(gs, BaseSamplerV2)
    job = gs.run([(circ(), X0)], shots=100)
    assert isinstance(job, BasePrimitiveJob)
    assert isinstance(job.job_id(), str)
    res = job.result()
    assert isinstance(res, PrimitiveResult)
    assert job.done() and not job.running()


def test_register_fields_are_inner_sampler_samples():
    pubs = [(circ(), X0)]
    res = GradientSampler(StatevectorSampler(seed=7)).run(pubs, shots=500).result()[0]
    inner = StatevectorSampler(seed=7).run(pubs, shots=500).result()[0]
    assert isinstance(res.data.meas, BitArray)
    assert res.data.meas.num_shots == 500
    assert res.data.meas.num_bits == 2
    assert res.data.meas.get_counts() == inner.data.meas.get_counts()
    assert res.metadata["shots"] == 500


@pytest.mark.parametrize("method", ["param_shift", "lin_comb", "finite_diff"])
def test_grads_match_exact_derivative(method):
    opts = {"epsilon": 0.1} if method == "finite_diff" else {}
    gs = GradientSampler(StatevectorSampler(seed=2), method=method, **opts)
    res = gs.run([(circ(), X0)], shots=SHOTS).result()[0]
    grads = res.data.grads
    assert grads.shape == (2,)
    ref = exact_prob_grads(circ(), X0)
    for j in range(2):
        g = grads[j]
        assert isinstance(g, dict) or hasattr(g, "keys")
        assert all(isinstance(k, str) and len(k) == 2 for k in g)
        assert all(isinstance(v, float) for v in g.values())
        # a derivative of a distribution sums to zero (exactly for difference methods,
        # up to shot noise for the Hadamard test)
        assert abs(sum(g.values())) < (0.03 if method == "lin_comb" else 1e-9)
        assert_dist_close(g, ref[j], atol=0.06)


def test_grads_broadcast_shape_and_dense_form():
    vals = np.stack([X0, X0 + 0.3, X0 - 0.5]).reshape(3, 1, 2)
    gs = GradientSampler(StatevectorSampler(seed=3))
    res = gs.run([(circ(), vals)], shots=SHOTS).result()[0]
    assert res.data.meas.shape == (3, 1)
    grads = res.data.grads
    assert grads.shape == (3, 1, 2)
    dense = grads.to_dense()
    assert dense.shape == (3, 1, 2, 4)
    for i in range(3):
        ref = exact_prob_grads(circ(), vals[i, 0])
        for j in range(2):
            g = grads[i, 0, j]
            assert_dist_close(g, ref[j], atol=0.06)
            for key, v in g.items():
                assert dense[i, 0, j, int(key, 2)] == pytest.approx(v)


def test_multiple_registers_bitstrings_over_all_clbits():
    qc = multi_reg_circ()
    gs = GradientSampler(StatevectorSampler(seed=4))
    res = gs.run([(qc, X0)], shots=SHOTS).result()[0]
    assert isinstance(res.data.alpha, BitArray) and res.data.alpha.num_bits == 1
    assert isinstance(res.data.beta, BitArray) and res.data.beta.num_bits == 2
    ref = exact_prob_grads(qc, X0)
    for j in range(2):
        g = res.data.grads[j]
        assert all(len(k) == 3 for k in g), g
        assert_dist_close(g, ref[j], atol=0.06)


def test_one_inner_job_per_run(mocker):
    for method in ("param_shift", "finite_diff", "lin_comb", "spsa"):
        inner = StatevectorSampler(seed=5)
        spy = mocker.spy(inner, "run")
        gs = GradientSampler(inner, method=method)
        res = gs.run([(circ(), [X0, X0 + 0.1]), (multi_reg_circ(), X0)], shots=64).result()
        assert spy.call_count == 1, method
        assert len(res) == 2
        assert res[0].metadata["method"] == method
        assert len(res[0].metadata["inner_job_ids"]) == 1


def test_parameters_subset_and_per_pub():
    gs = GradientSampler(StatevectorSampler(seed=6))
    res = gs.run([(circ(), X0), (circ(), X0)], parameters=[[B], [B, A]], shots=SHOTS).result()
    ref = exact_prob_grads(circ(), X0)
    assert res[0].data.grads.shape == (1,)
    assert res[1].data.grads.shape == (2,)
    assert_dist_close(res[0].data.grads[0], ref[1], atol=0.06)
    assert_dist_close(res[1].data.grads[1], ref[0], atol=0.06)
    res = gs.run([(circ(), X0)], parameters=[B], shots=SHOTS).result()
    assert res[0].data.grads.shape == (1,)


def test_shots_in_pub_and_default():
    gs = GradientSampler(StatevectorSampler(seed=6, default_shots=123))
    res = gs.run([(circ(), X0), (circ(), X0, 77)]).result()
    assert res[0].data.meas.num_shots == 123
    assert res[1].data.meas.num_shots == 77


def test_spsa_sampler_seeded():
    def g(seed):
        gs = GradientSampler(StatevectorSampler(seed=1), method="spsa", epsilon=0.05, seed=seed)
        return gs.run([(circ(), X0)], shots=1000).result()[0].data.grads.to_dense()

    np.testing.assert_array_equal(g(3), g(3))


def test_aer_sampler_seed_reproducible():
    from qiskit_aer.primitives import SamplerV2 as AerSampler

    def run():
        inner = AerSampler(seed=9)
        return GradientSampler(inner).run([(circ(), X0)], shots=2000).result()[0]

    r1, r2 = run(), run()
    np.testing.assert_array_equal(r1.data.grads.to_dense(), r2.data.grads.to_dense())
    assert r1.data.meas.get_counts() == r2.data.meas.get_counts()
