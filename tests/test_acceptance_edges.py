"""Edge cases a demanding Qiskit user hits: bindings, clbits, facade details, SPSA."""

from __future__ import annotations

import numpy as np
import pytest
import qiskit_algorithms.gradients as qa
import qiskit_algorithms.optimizers as qao
from _reference import expectation_gradient, probability_gradient
from qiskit import ClassicalRegister, QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.primitives import StatevectorEstimator, StatevectorSampler
from qiskit.quantum_info import SparsePauliOp, Statevector
from qiskit_algorithms.utils import algorithm_globals

import qprim_grad.gradients as qg
from qprim_grad import GradientEstimator, GradientSampler
from qprim_grad.optimizers import SPSA, EstimatorLoss

A, B, C = Parameter("a"), Parameter("b"), Parameter("c")
H = SparsePauliOp.from_list([("ZZ", 1.0), ("XI", 0.5)])


def circ():
    qc = QuantumCircuit(2)
    qc.ry(A, 0)
    qc.rx(B, 1)
    qc.cx(0, 1)
    qc.rz(C, 0)
    qc.h(0)
    return qc


def ev(qc, obs, bind):
    return float(np.real(Statevector(qc.assign_parameters(bind)).expectation_value(obs)))


def fd(qc, obs, bind):
    """The gradient at the values ``bind`` (a dict), in circuit parameter order."""
    return expectation_gradient(qc, obs, [bind[p] for p in qc.parameters])


def test_bindings_array_dict_in_other_order():
    """BindingsArray-like dict keyed by a parameter tuple in a non-circuit order."""
    bind = {A: 0.2, B: -0.5, C: 0.9}
    vals = {(C, A, B): np.array([0.9, 0.2, -0.5])}
    res = GradientEstimator(StatevectorEstimator()).run([(circ(), H, vals)]).result()[0]
    # default parameters = circuit.parameters (sorted a, b, c)
    np.testing.assert_allclose(res.data.grads, fd(circ(), H, bind), atol=1e-6)
    np.testing.assert_allclose(res.data.evs, ev(circ(), H, bind), atol=1e-10)


def test_bindings_array_dict_by_names():
    bind = {A: 0.2, B: -0.5, C: 0.9}
    vals = {("b", "a"): [-0.5, 0.2], "c": 0.9}
    res = GradientEstimator(StatevectorEstimator()).run([(circ(), H, vals)]).result()[0]
    np.testing.assert_allclose(res.data.grads, fd(circ(), H, bind), atol=1e-6)


def test_pub_precision_overrides_run_precision():
    from qiskit_aer.primitives import EstimatorV2 as AerEstimator

    est = AerEstimator(options={"run_options": {"seed_simulator": 1}})
    vals = [0.2, -0.5, 0.9]
    res = (
        GradientEstimator(est)
        .run([(circ(), H, vals, 0.05), (circ(), H, vals)], precision=0.0)
        .result()
    )
    assert res[0].metadata["target_precision"] == 0.05
    assert np.all(res[0].data.stds == 0.05)
    assert np.all(res[1].data.stds == 0.0)


def test_empty_pub_list():
    res = GradientEstimator(StatevectorEstimator()).run([]).result()
    assert len(res) == 0


def test_sampler_unmeasured_clbits_are_in_the_bitstring():
    qc = QuantumCircuit(2)
    qc.add_register(ClassicalRegister(3, "c"))
    qc.ry(A, 0)
    qc.ry(B, 1)
    qc.measure(0, 0)
    qc.measure(1, 2)
    res = (
        GradientSampler(StatevectorSampler(seed=1)).run([(qc, [0.5, 1.0])], shots=20000).result()[0]
    )
    g = res.data.grads
    for j in range(2):
        keys = set(g[j])
        assert all(len(k) == 3 and k[1] == "0" for k in keys), keys
    # d/da P(clbit0 = 1) = sin(a)/2
    d = g[0]
    dp1 = sum(v for k, v in d.items() if k[-1] == "1")
    assert dp1 == pytest.approx(np.sin(0.5) / 2, abs=0.03)


def test_sampler_int_outcomes_consistent_with_facade():
    qc = circ()
    qc.measure_all()
    vals = [0.2, -0.5, 0.9]
    prim = GradientSampler(StatevectorSampler(seed=4)).run([(qc, vals)], shots=5000).result()[0]
    fac = (
        qg.ParamShiftSamplerGradient(StatevectorSampler(seed=4), shots=5000)
        .run([qc], [vals])
        .result()
    )
    for j in range(3):
        d_fac = fac.gradients[0][j]
        d_prim = {int(k, 2): v for k, v in prim.data.grads[j].items()}
        for k in set(d_fac) | set(d_prim):
            assert abs(d_fac.get(k, 0) - d_prim.get(k, 0)) < 0.08


# --------------------------------------------------------------------------- facade details


def test_facade_base_class_attributes_like_qiskit_algorithms():
    ours = qg.ParamShiftEstimatorGradient(StatevectorEstimator(), precision=0.01)
    ref = qa.ParamShiftEstimatorGradient(StatevectorEstimator(), precision=0.01)
    assert isinstance(ours, qg.BaseEstimatorGradient)
    assert ours.precision == ref.precision
    for attr in ("precision", "options", "update_default_options"):
        if hasattr(ref, attr):
            assert hasattr(ours, attr), attr
    smp = qg.ParamShiftSamplerGradient(StatevectorSampler(), shots=100)
    assert isinstance(smp, qg.BaseSamplerGradient)
    assert smp.shots == 100


def test_facade_result_dataclasses_positional():
    r = qg.EstimatorGradientResult([np.zeros(2)], [{}], 0.1)
    assert r.precision == 0.1 and r.gradients[0].shape == (2,)
    s = qg.SamplerGradientResult([[{0: 0.0}]], [{}], 100)
    assert s.shots == 100


def test_facade_in_qiskit_algorithms_vqe():
    from qiskit.circuit.library import real_amplitudes
    from qiskit_algorithms.minimum_eigensolvers import VQE
    from qiskit_algorithms.optimizers import SLSQP

    ans = real_amplitudes(2, reps=1)
    est = StatevectorEstimator()
    vqe = VQE(est, ans, SLSQP(maxiter=50), gradient=qg.ParamShiftEstimatorGradient(est))
    res = vqe.compute_minimum_eigenvalue(H)
    ref = np.linalg.eigvalsh(H.to_matrix()).min()
    assert res.eigenvalue.real == pytest.approx(ref, abs=1e-3)


def test_facade_lin_comb_sampler_imaginary_not_required_but_types():
    qc = circ()
    qc.measure_all()
    shots = 10_000
    points = [[0.1, 0.2, 0.3], [0.7, -0.5, 1.1]]
    r = (
        qg.LinCombSamplerGradient(StatevectorSampler(seed=2, default_shots=shots))
        .run([qc, qc], points)
        .result()
    )
    assert len(r.gradients) == 2 and len(r.gradients[0]) == 3
    for gradients, x in zip(r.gradients, points, strict=True):
        want = probability_gradient(qc, x)  # (3 parameters, 4 outcomes)
        for j, derivative in enumerate(gradients):
            assert isinstance(derivative, dict) and set(derivative) <= set(range(4))
            got = np.array([derivative.get(outcome, 0.0) for outcome in range(4)])
            # a Hadamard test: p(x, 0) - p(x, 1) of std <= 1 / sqrt(shots), times 2
            np.testing.assert_allclose(got, want[j], atol=5 * 2 / np.sqrt(shots))


# --------------------------------------------------------------------------- SPSA parity


@pytest.mark.parametrize(
    "kwargs",
    [
        {"resamplings": 2},
        {"blocking": True, "allowed_increase": 0.1},
        {"second_order": True},
        {"second_order": True, "hessian_delay": 2, "regularization": 0.02},
        {"perturbation_dims": 1},
        {"last_avg": 3},
        {"trust_region": True},
    ],
)
def test_spsa_iterates_match_qiskit_algorithms(kwargs):
    def f(x):
        x = np.asarray(x)
        return float(np.sum((x - 0.3) ** 2) + 0.2 * np.sin(np.sum(x)))

    kw = {"maxiter": 6, "learning_rate": 0.1, "perturbation": 0.1, **kwargs}
    ours = SPSA(seed=5, **kw).minimize(f, np.zeros(3))
    algorithm_globals.random_seed = 5
    ref = qao.SPSA(**kw).minimize(f, np.zeros(3))
    np.testing.assert_allclose(ours.x, ref.x, atol=1e-10)
    assert ours.nfev == ref.nfev
    assert ours.fun == pytest.approx(ref.fun, abs=1e-10)


def test_spsa_calibrated_run_matches_qiskit_algorithms():
    def f(x):
        x = np.asarray(x)
        return float(np.sum((x - 0.3) ** 2))

    ours = SPSA(maxiter=5, seed=8).minimize(f, np.zeros(2))
    algorithm_globals.random_seed = 8
    ref = qao.SPSA(maxiter=5).minimize(f, np.zeros(2))
    np.testing.assert_allclose(ours.x, ref.x, atol=1e-10)


def test_spsa_resume_plain_callable(tmp_path):
    def f(x):
        return float(np.sum((np.asarray(x) - 0.3) ** 2))

    class Stop(Exception):
        pass

    calls = {"n": 0}

    def flaky(x):
        calls["n"] += 1
        if calls["n"] > 7:
            raise Stop
        return f(x)

    kw = {"maxiter": 6, "learning_rate": 0.1, "perturbation": 0.1, "seed": 2}
    full = SPSA(**kw).minimize(f, np.zeros(2))
    path = tmp_path / "s.json"
    with pytest.raises(Stop):
        SPSA(checkpoint=str(path), **kw).minimize(flaky, np.zeros(2))
    resumed = SPSA(checkpoint=str(path), **kw).resume(f, str(path))
    np.testing.assert_array_equal(resumed.x, full.x)
    assert resumed.nit == full.nit


def test_estimator_loss_batch_accepts_list_and_single_row():
    from qiskit.circuit.library import real_amplitudes

    ans = real_amplitudes(2, reps=1)
    loss = EstimatorLoss(StatevectorEstimator(), ans, H)
    x = np.zeros(ans.num_parameters)
    assert loss.batch([list(x)]).shape == (1,)
    assert loss(list(x)) == pytest.approx(loss.batch(np.array([x]))[0])
