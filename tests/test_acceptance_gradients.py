"""Acceptance tests for the seed-compatible ``qprim_grad.gradients`` facade.

qiskit-algorithms 0.4 (on the same V2 primitives) is the oracle.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import qiskit_algorithms.gradients as qa
from _reference import probability_gradient
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.primitives import StatevectorEstimator, StatevectorSampler
from qiskit.quantum_info import SparsePauliOp

import qprim_grad.gradients as qg

NAMES = [
    "BaseEstimatorGradient",
    "BaseSamplerGradient",
    "FiniteDiffEstimatorGradient",
    "LinCombEstimatorGradient",
    "ParamShiftEstimatorGradient",
    "SPSAEstimatorGradient",
    "FiniteDiffSamplerGradient",
    "LinCombSamplerGradient",
    "ParamShiftSamplerGradient",
    "SPSASamplerGradient",
    "EstimatorGradientResult",
    "SamplerGradientResult",
    "DerivativeType",
]

A, B = Parameter("a"), Parameter("b")
OBS = SparsePauliOp.from_list([("ZZ", 1.0), ("XI", 0.5)])


def circ(measure=False):
    qc = QuantumCircuit(2)
    qc.ry(A, 0)
    qc.rx(2 * B, 1)
    qc.cx(0, 1)
    qc.ry(A + B, 1)
    if measure:
        qc.measure_all()
    return qc


VALS = [[0.3, -0.4], [1.0, 0.2]]


@pytest.mark.parametrize("name", NAMES)
def test_names_exported(name):
    assert hasattr(qg, name)


@pytest.mark.parametrize(
    "name", [n for n in NAMES if n.endswith("Gradient") and not n.startswith("Base")]
)
def test_constructor_signature_matches_qiskit_algorithms(name):
    ours = inspect.signature(getattr(qg, name))
    ref = inspect.signature(getattr(qa, name))
    for pname, p in ref.parameters.items():
        assert pname in ours.parameters, f"{name}: missing argument {pname}"
        q = ours.parameters[pname]
        assert q.kind == p.kind, f"{name}.{pname}: {q.kind} != {p.kind}"
        if p.default is not inspect.Parameter.empty and not isinstance(
            p.default, type(qa.DerivativeType.REAL)
        ):
            assert q.default == p.default, f"{name}.{pname}"


def test_derivative_type_members():
    assert {m.name for m in qg.DerivativeType} >= {"REAL", "IMAG", "COMPLEX"}


def _estimator_pairs():
    return [
        ("ParamShiftEstimatorGradient", (), {}),
        ("FiniteDiffEstimatorGradient", (1e-3,), {}),
        ("FiniteDiffEstimatorGradient", (1e-3,), {"method": "forward"}),
        ("FiniteDiffEstimatorGradient", (1e-3,), {"method": "backward"}),
        ("LinCombEstimatorGradient", (), {}),
        ("LinCombEstimatorGradient", (), {"derivative_type": "IMAG"}),
        ("LinCombEstimatorGradient", (), {"derivative_type": "COMPLEX"}),
        ("SPSAEstimatorGradient", (0.01,), {"seed": 123, "batch_size": 2}),
    ]


@pytest.mark.parametrize("name, args, kwargs", _estimator_pairs())
def test_estimator_gradients_same_as_qiskit_algorithms(name, args, kwargs):
    kw_ours, kw_ref = dict(kwargs), dict(kwargs)
    if "derivative_type" in kwargs:
        kw_ours["derivative_type"] = qg.DerivativeType[kwargs["derivative_type"]]
        kw_ref["derivative_type"] = qa.DerivativeType[kwargs["derivative_type"]]
    ours = getattr(qg, name)(StatevectorEstimator(), *args, **kw_ours)
    ref = getattr(qa, name)(StatevectorEstimator(), *args, **kw_ref)
    circuits = [circ(), circ()]
    obs = [OBS, SparsePauliOp("ZI")]
    r1 = ours.run(circuits, obs, VALS).result()
    r2 = ref.run(circuits, obs, VALS).result()
    assert type(r1).__name__ == "EstimatorGradientResult"
    assert isinstance(r1.gradients, list) and len(r1.gradients) == 2
    for g1, g2 in zip(r1.gradients, r2.gradients):
        assert isinstance(g1, np.ndarray)
        assert g1.shape == g2.shape == (2,)
        assert g1.dtype == g2.dtype, (g1.dtype, g2.dtype)
        np.testing.assert_allclose(g1, g2, atol=1e-8)
    assert len(r1.metadata) == 2
    assert [list(m["parameters"]) for m in r1.metadata] == [
        list(m["parameters"]) for m in r2.metadata
    ]
    assert r1.precision == r2.precision


def test_estimator_parameters_subset_like_qiskit_algorithms():
    ours = qg.ParamShiftEstimatorGradient(StatevectorEstimator())
    ref = qa.ParamShiftEstimatorGradient(StatevectorEstimator())
    r1 = ours.run([circ()], [OBS], [VALS[0]], [[B]]).result()
    r2 = ref.run([circ()], [OBS], [VALS[0]], [[B]]).result()
    assert r1.gradients[0].shape == r2.gradients[0].shape == (1,)
    np.testing.assert_allclose(r1.gradients[0], r2.gradients[0], atol=1e-10)
    assert list(r1.metadata[0]["parameters"]) == [B]


def test_precision_and_options_accepted():
    ours = qg.ParamShiftEstimatorGradient(StatevectorEstimator(), precision=0.0)
    r = ours.run([circ()], [OBS], [VALS[0]]).result()
    assert r.precision == 0.0
    r = ours.run([circ()], [OBS], [VALS[0]], precision=0.0).result()
    assert r.precision == 0.0
    # the seed's options= dict must be accepted
    qg.ParamShiftEstimatorGradient(StatevectorEstimator(), options={})
    qg.FiniteDiffEstimatorGradient(StatevectorEstimator(), 0.01, options={})


def _sampler_pairs():
    return [
        ("ParamShiftSamplerGradient", (), {}),
        ("FiniteDiffSamplerGradient", (0.05,), {}),
        ("LinCombSamplerGradient", (), {}),
    ]


@pytest.mark.parametrize("name, args, kwargs", _sampler_pairs())
def test_sampler_gradients_types_and_values(name, args, kwargs):
    shots = 20000
    ours = getattr(qg, name)(StatevectorSampler(seed=1), *args, shots=shots, **kwargs)
    ref = getattr(qa, name)(StatevectorSampler(seed=1), *args, shots=shots, **kwargs)
    c = circ(measure=True)
    r1 = ours.run([c], [VALS[0]]).result()
    r2 = ref.run([c], [VALS[0]]).result()
    assert type(r1).__name__ == "SamplerGradientResult"
    assert r1.shots == r2.shots
    g1, g2 = r1.gradients[0], r2.gradients[0]
    assert isinstance(g1, list) and len(g1) == len(g2) == 2
    for d1, d2 in zip(g1, g2):
        assert isinstance(d1, dict)
        assert all(isinstance(k, int) for k in d1)
        for k in set(d1) | set(d2):
            assert abs(d1.get(k, 0.0) - d2.get(k, 0.0)) < 0.06
    # qiskit-algorithms nests the param-shift/lin-comb sampler metadata one level deeper (a quirk)
    m2 = [m[0] if isinstance(m, list) else m for m in r2.metadata]
    assert [list(m["parameters"]) for m in r1.metadata] == [list(m["parameters"]) for m in m2]


def test_spsa_sampler_seed_parity():
    c = circ(measure=True)
    ours = qg.SPSASamplerGradient(StatevectorSampler(seed=1), 0.05, seed=7, shots=20000)
    ref = qa.SPSASamplerGradient(StatevectorSampler(seed=1), 0.05, seed=7, shots=20000)
    g1 = ours.run([c], [VALS[0]]).result().gradients[0]
    g2 = ref.run([c], [VALS[0]]).result().gradients[0]
    for d1, d2 in zip(g1, g2):
        for k in set(d1) | set(d2):
            assert abs(d1.get(k, 0.0) - d2.get(k, 0.0)) < 0.08


def test_facade_one_job_per_run(mocker):
    inner = StatevectorEstimator()
    spy = mocker.spy(inner, "run")
    grad = qg.ParamShiftEstimatorGradient(inner)
    grad.run([circ(), circ()], [OBS, OBS], VALS).result()
    assert spy.call_count == 1


def test_facade_is_thin_over_gradient_estimator(mocker):
    from qprim_grad import GradientEstimator, GradientSampler

    spy = mocker.spy(GradientEstimator, "run")
    qg.ParamShiftEstimatorGradient(StatevectorEstimator()).run([circ()], [OBS], [VALS[0]]).result()
    assert spy.call_count >= 1
    spy = mocker.spy(GradientSampler, "run")
    qg.ParamShiftSamplerGradient(StatevectorSampler(seed=1)).run([circ(True)], [VALS[0]]).result()
    assert spy.call_count >= 1


def test_facade_job_api():
    job = qg.ParamShiftEstimatorGradient(StatevectorEstimator()).run([circ()], [OBS], [VALS[0]])
    assert isinstance(job.job_id(), str)
    job.result()
    assert job.done()
    job.status()


def test_qiskit_machine_learning_estimator_qnn_dropin():
    from qiskit_machine_learning.neural_networks import EstimatorQNN

    c = QuantumCircuit(2)
    x = Parameter("x")
    c.ry(x, 0)
    c.ry(A, 1)
    c.cx(0, 1)
    c.rx(B, 0)
    est = StatevectorEstimator(seed=1)
    ours = EstimatorQNN(
        circuit=c,
        observables=[SparsePauliOp("ZZ")],
        input_params=[x],
        weight_params=[A, B],
        estimator=est,
        gradient=qg.ParamShiftEstimatorGradient(est),
    )
    ref = EstimatorQNN(
        circuit=c,
        observables=[SparsePauliOp("ZZ")],
        input_params=[x],
        weight_params=[A, B],
        estimator=est,
        gradient=qa.ParamShiftEstimatorGradient(est),
    )
    xin = np.array([[0.1], [0.5]])
    w = np.array([0.3, -0.2])
    # EstimatorQNN runs with its default precision 1/64 -> StatevectorEstimator adds noise
    gi1, gw1 = ours.backward(xin, w)
    gi2, gw2 = ref.backward(xin, w)
    assert gw1.shape == gw2.shape == (2, 1, 2)
    np.testing.assert_allclose(gw1, gw2, atol=6 * 2 / 64)


def test_qiskit_machine_learning_sampler_qnn_dropin():
    from qiskit_machine_learning.neural_networks import SamplerQNN

    c = circ(measure=True)
    shots = 20_000
    smp = StatevectorSampler(seed=3, default_shots=shots)
    qnn = SamplerQNN(
        circuit=c,
        input_params=[A],
        weight_params=[B],
        sampler=smp,
        gradient=qg.ParamShiftSamplerGradient(smp),
    )
    _, gw = qnn.backward(np.array([[0.2]]), np.array([0.4]))
    assert gw.shape == (1, 4, 1)
    # d p(outcome) / d b at (a, b) = (0.2, 0.4): b enters twice (rx(2b), ry(a + b)), so the
    # shift rule adds four sampled probabilities of std <= 0.5 / sqrt(shots) each
    want = probability_gradient(c, [0.2, 0.4], [B])[0]
    tolerance = 5 * np.sqrt(4 * 0.25 / shots) * 2
    np.testing.assert_allclose(gw[0, :, 0], want, atol=tolerance)
