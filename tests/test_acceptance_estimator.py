"""Black-box acceptance tests for GradientEstimator, written from API.md only."""

from __future__ import annotations

import numpy as np
import pytest
from _reference import expectation_gradient
from qiskit import QuantumCircuit
from qiskit.circuit import Gate, Parameter
from qiskit.primitives import (
    BaseEstimatorV2,
    BasePrimitiveJob,
    PrimitiveResult,
    StatevectorEstimator,
)
from qiskit.quantum_info import SparsePauliOp, Statevector

from qprim_grad import GradientEstimator

A, B, C = Parameter("a"), Parameter("b"), Parameter("c")


def ansatz():
    qc = QuantumCircuit(2)
    qc.ry(A, 0)
    qc.rx(B, 1)
    qc.cx(0, 1)
    qc.rz(C, 1)
    qc.ry(A, 1)  # a used twice
    return qc


def exact_ev(qc, obs, values, params=None):
    params = list(qc.parameters) if params is None else params
    bound = qc.assign_parameters(dict(zip(params, values)))
    return float(np.real(Statevector(bound).expectation_value(obs)))


def fd_grad(qc, obs, values):
    return expectation_gradient(qc, obs, values)


OBS = SparsePauliOp.from_list([("ZZ", 1.0), ("XI", 0.5), ("IY", -0.3)])
X0 = np.array([0.3, -0.7, 1.1])


@pytest.fixture
def spy_run(mocker):
    def make(primitive):
        return mocker.spy(primitive, "run")

    return make


# --------------------------------------------------------------------------- basics


def test_is_base_estimator_v2_and_job_api():
    ge = GradientEstimator(StatevectorEstimator())
    assert isinstance(ge, BaseEstimatorV2)
    job = ge.run([(ansatz(), OBS, X0)])
    assert isinstance(job, BasePrimitiveJob)
    assert isinstance(job.job_id(), str)
    job.status()
    res = job.result()
    assert job.done()
    assert not job.running()
    assert isinstance(res, PrimitiveResult)
    assert len(res) == 1
    # cancel on a finished job must not raise an unexpected error
    job.cancel()


@pytest.mark.parametrize("method", ["param_shift", "lin_comb", "reverse"])
def test_exact_gradients_match_statevector(method):
    ge = GradientEstimator(StatevectorEstimator(), method=method)
    res = ge.run([(ansatz(), OBS, X0)]).result()[0]
    np.testing.assert_allclose(res.data.evs, exact_ev(ansatz(), OBS, X0), atol=1e-10)
    np.testing.assert_allclose(res.data.grads, fd_grad(ansatz(), OBS, X0), atol=1e-6)
    assert res.data.grads.shape == (3,)
    assert res.data.grad_stds.shape == (3,)
    np.testing.assert_array_equal(res.data.grad_stds, 0.0)
    assert res.data.stds.shape == ()


def test_evs_stds_exactly_as_inner_estimator():
    est = StatevectorEstimator(seed=11)
    pubs = [(ansatz(), OBS, X0)]
    inner = StatevectorEstimator(seed=11).run(pubs, precision=0.05).result()[0]
    res = GradientEstimator(est).run(pubs, precision=0.05).result()[0]
    np.testing.assert_array_equal(res.data.evs, inner.data.evs)
    np.testing.assert_array_equal(res.data.stds, inner.data.stds)


@pytest.mark.parametrize(
    "scheme, formula",
    [
        ("central", lambda f, x, e: (f(x + e) - f(x - e)) / (2 * np.linalg.norm(e))),
        ("forward", lambda f, x, e: (f(x + e) - f(x)) / np.linalg.norm(e)),
        ("backward", lambda f, x, e: (f(x) - f(x - e)) / np.linalg.norm(e)),
    ],
)
def test_finite_diff_schemes(scheme, formula):
    eps = 0.05
    ge = GradientEstimator(StatevectorEstimator(), method="finite_diff", epsilon=eps, scheme=scheme)
    res = ge.run([(ansatz(), OBS, X0)]).result()[0]

    def f(x):
        return exact_ev(ansatz(), OBS, x)

    expected = [formula(f, X0, eps * np.eye(3)[j]) for j in range(3)]
    np.testing.assert_allclose(res.data.grads, expected, atol=1e-10)
    md = res.metadata
    assert md["method"] == "finite_diff"


def test_finite_diff_invalid_scheme_errors():
    with pytest.raises((ValueError, TypeError)):
        ge = GradientEstimator(StatevectorEstimator(), method="finite_diff", scheme="sideways")
        ge.run([(ansatz(), OBS, X0)]).result()


def test_lin_comb_derivative_types_vs_qiskit_algorithms():
    from qiskit_algorithms.gradients import DerivativeType as QDT
    from qiskit_algorithms.gradients import LinCombEstimatorGradient as QLC

    for dtype in ("real", "imag", "complex"):
        ge = GradientEstimator(StatevectorEstimator(), method="lin_comb", derivative_type=dtype)
        ours = ge.run([(ansatz(), OBS, X0)]).result()[0].data.grads
        ref = (
            QLC(StatevectorEstimator(), derivative_type=QDT[dtype.upper()])
            .run([ansatz()], [OBS], [X0])
            .result()
            .gradients[0]
        )
        np.testing.assert_allclose(ours, ref, atol=1e-8, err_msg=dtype)


def test_spsa_seed_reproducible_and_batch_size():
    def g(seed, bs=1):
        ge = GradientEstimator(
            StatevectorEstimator(), method="spsa", epsilon=0.01, batch_size=bs, seed=seed
        )
        return ge.run([(ansatz(), OBS, X0)]).result()[0].data.grads

    np.testing.assert_array_equal(g(5), g(5))
    assert not np.allclose(g(5), g(6))
    # SPSA estimate with many batches approaches the gradient on average
    est = g(3, bs=200)
    assert est.shape == (3,)
    assert np.dot(est, fd_grad(ansatz(), OBS, X0)) > 0


# --------------------------------------------------------------------------- shapes


def test_broadcasting_shapes_and_values():
    rng = np.random.default_rng(1)
    vals = rng.uniform(-1, 1, size=(2, 1, 3))
    obs = [[SparsePauliOp("ZZ"), SparsePauliOp("XI"), SparsePauliOp("IY"), OBS]]  # shape (1, 4)
    ge = GradientEstimator(StatevectorEstimator())
    res = ge.run([(ansatz(), obs, vals)]).result()[0]
    assert res.data.evs.shape == (2, 4)
    assert res.data.stds.shape == (2, 4)
    assert res.data.grads.shape == (2, 4, 3)
    assert res.data.grad_stds.shape == (2, 4, 3)
    for i in range(2):
        for k in range(4):
            o = obs[0][k]
            np.testing.assert_allclose(
                res.data.evs[i, k], exact_ev(ansatz(), o, vals[i, 0]), atol=1e-10
            )
            np.testing.assert_allclose(
                res.data.grads[i, k], fd_grad(ansatz(), o, vals[i, 0]), atol=1e-6
            )


def test_observable_forms_accepted():
    ge = GradientEstimator(StatevectorEstimator())
    pubs = [
        (ansatz(), "ZZ", X0),
        (ansatz(), {"ZZ": 1.0, "XI": 0.5}, X0),
        (ansatz(), ["ZZ", "XI"], X0),
        (ansatz(), [[SparsePauliOp("ZZ")], [SparsePauliOp("XI")]], [X0, X0 + 0.1]),
    ]
    res = ge.run(pubs).result()
    assert res[0].data.grads.shape == (3,)
    assert res[1].data.grads.shape == (3,)
    assert res[2].data.grads.shape == (2, 3)
    assert res[3].data.grads.shape == (2, 2, 3)
    np.testing.assert_allclose(
        res[0].data.grads, fd_grad(ansatz(), SparsePauliOp("ZZ"), X0), atol=1e-6
    )
    np.testing.assert_allclose(
        res[3].data.grads[1, 1], fd_grad(ansatz(), SparsePauliOp("XI"), X0 + 0.1), atol=1e-6
    )


def test_parameter_values_as_dict_bindings():
    ge = GradientEstimator(StatevectorEstimator())
    # a pub without parameters: grads has a trailing axis of length 0
    qc = QuantumCircuit(1)
    qc.h(0)
    res = ge.run([(qc, "X")]).result()[0]
    assert res.data.grads.shape == (0,)
    np.testing.assert_allclose(res.data.evs, 1.0, atol=1e-12)


def test_parameters_single_sequence_for_all_pubs_and_order():
    ge = GradientEstimator(StatevectorEstimator())
    full = fd_grad(ansatz(), OBS, X0)
    res = ge.run([(ansatz(), OBS, X0), (ansatz(), "ZZ", X0)], parameters=[C, A]).result()
    assert res[0].data.grads.shape == (2,)
    np.testing.assert_allclose(res[0].data.grads, [full[2], full[0]], atol=1e-6)
    full_zz = fd_grad(ansatz(), SparsePauliOp("ZZ"), X0)
    np.testing.assert_allclose(res[1].data.grads, [full_zz[2], full_zz[0]], atol=1e-6)
    assert list(res[0].metadata["parameters"]) == [C, A]


def test_parameters_one_per_pub():
    ge = GradientEstimator(StatevectorEstimator())
    full = fd_grad(ansatz(), OBS, X0)
    res = ge.run([(ansatz(), OBS, X0), (ansatz(), OBS, X0)], parameters=[[B], [A, C]]).result()
    np.testing.assert_allclose(res[0].data.grads, [full[1]], atol=1e-6)
    np.testing.assert_allclose(res[1].data.grads, [full[0], full[2]], atol=1e-6)


def test_default_parameters_are_circuit_parameters_in_order():
    ge = GradientEstimator(StatevectorEstimator())
    res = ge.run([(ansatz(), OBS, X0)]).result()[0]
    assert list(res.metadata["parameters"]) == list(ansatz().parameters)


def test_wrong_parameter_count_is_clear_error():
    ge = GradientEstimator(StatevectorEstimator())
    with pytest.raises(ValueError, match=r"pub 0: .*parameters, in order: \['a', 'b', 'c'\]"):
        ge.run([(ansatz(), OBS, [0.1, 0.2])]).result()


# --------------------------------------------------------------------------- structure


def test_parameter_expression_chain_rule():
    x, y = Parameter("x"), Parameter("y")
    qc = QuantumCircuit(2)
    qc.ry(2 * x + y, 0)
    qc.rx(x * y, 1)
    qc.cx(0, 1)
    qc.rz(np.pi / 3 - y, 0)
    qc.h(0)
    vals = [0.4, -0.9]
    for method in ("param_shift", "finite_diff", "lin_comb"):
        opts = {"epsilon": 1e-5} if method == "finite_diff" else {}
        res = (
            GradientEstimator(StatevectorEstimator(), method=method, **opts)
            .run([(qc, OBS, vals)])
            .result()[0]
        )
        np.testing.assert_allclose(
            res.data.grads, fd_grad(qc, OBS, vals), atol=1e-5, err_msg=method
        )


def test_undifferentiable_gate_error_names_gate():
    qc = QuantumCircuit(1)
    qc.append(Gate("mystery_gate", 1, [A]), [0])
    ge = GradientEstimator(StatevectorEstimator(), method="param_shift")
    with pytest.raises(ValueError, match="cannot differentiate gate 'mystery_gate'"):
        ge.run([(qc, "Z", [0.1])]).result()


def test_one_inner_job_per_run_all_methods(spy_run):
    for method in ("param_shift", "finite_diff", "lin_comb", "spsa"):
        inner = StatevectorEstimator()
        spy = spy_run(inner)
        ge = GradientEstimator(inner, method=method)
        pubs = [(ansatz(), OBS, np.zeros((2, 3)) + X0), (ansatz(), ["ZZ", "XI"], X0)]
        res = ge.run(pubs).result()
        assert spy.call_count == 1, method
        assert len(res) == 2
        md = res[0].metadata
        assert md["method"] == method
        assert len(md["inner_job_ids"]) == 1


def test_run_returns_before_inner_job_completes(mocker):
    """run() must not block on the inner job."""
    import threading

    from qiskit.providers import JobStatus

    inner = StatevectorEstimator()
    gate = threading.Event()
    early: list[str] = []
    real_run = inner.run

    def slow_run(*args, **kwargs):
        job = real_run(*args, **kwargs)
        real_result = job.result

        real_status = job.status

        def result():
            if not gate.is_set():
                early.append("result() called before the inner job finished")
            gate.wait(2)
            return real_result()

        def status():  # the inner job stays running until released
            return real_status() if gate.is_set() else JobStatus.RUNNING

        job.result = result
        job.status = status
        return job

    mocker.patch.object(inner, "run", side_effect=slow_run)
    job = GradientEstimator(inner).run([(ansatz(), OBS, X0)])
    assert early == []  # run() never waited for the inner result
    assert not job.done()
    gate.set()
    job.result()
    assert job.done()
    assert early == []


def test_metadata_method_options_and_inner_ids():
    ge = GradientEstimator(
        StatevectorEstimator(), method="finite_diff", epsilon=0.01, scheme="forward"
    )
    job = ge.run([(ansatz(), OBS, X0)])
    res = job.result()
    md = res[0].metadata
    assert md["method"] == "finite_diff"
    opts = md["method_options"]
    assert opts.get("epsilon") == 0.01
    assert opts.get("scheme") == "forward"
    assert md["inner_job_ids"]
    assert all(isinstance(i, str) for i in md["inner_job_ids"])


def test_precision_propagates_to_grad_stds():
    from qiskit_aer.primitives import EstimatorV2 as AerEstimator

    def make():
        return AerEstimator(options={"run_options": {"seed_simulator": 3}})

    res = (
        GradientEstimator(make(), method="param_shift")
        .run([(ansatz(), OBS, X0)], precision=0.01)
        .result()[0]
    )
    assert np.all(res.data.stds > 0)
    assert np.all(res.data.grad_stds > 0)
    exact = fd_grad(ansatz(), OBS, X0)
    assert np.all(np.abs(res.data.grads - exact) < 6 * res.data.grad_stds)
    # param shift: g = (f+ - f-)/2 (a appears twice: 4 terms) -> std at least precision / sqrt(2)
    assert np.all(res.data.grad_stds >= 0.01 / np.sqrt(2) - 1e-12)
    # seeded inner primitive -> reproducible
    res2 = GradientEstimator(make()).run([(ansatz(), OBS, X0)], precision=0.01).result()[0]
    np.testing.assert_array_equal(res.data.grads, res2.data.grads)
    np.testing.assert_array_equal(res.data.evs, res2.data.evs)


def test_result_pub_metadata_target_precision():
    ge = GradientEstimator(StatevectorEstimator())
    res = ge.run([(ansatz(), OBS, X0, 0.02)]).result()[0]
    inner = StatevectorEstimator().run([(ansatz(), OBS, X0, 0.02)]).result()[0]
    assert res.metadata["target_precision"] == inner.metadata["target_precision"]


def test_unknown_method_is_clear_error():
    with pytest.raises(ValueError, match="unknown gradient method 'no_such_method'"):
        GradientEstimator(StatevectorEstimator(), method="no_such_method").run(
            [(ansatz(), OBS, X0)]
        ).result()


def test_nested_gradient_estimator_wrapping():
    """A GradientEstimator is a V2 estimator, so wrapping it again must work (evs unchanged)."""
    outer = GradientEstimator(GradientEstimator(StatevectorEstimator()))
    res = outer.run([(ansatz(), OBS, X0)]).result()[0]
    np.testing.assert_allclose(res.data.grads, fd_grad(ansatz(), OBS, X0), atol=1e-6)
