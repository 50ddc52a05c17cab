"""Gate coverage (shift rules, chain rule), errors and inner-primitive exactness."""

from __future__ import annotations

import numpy as np
import pytest
from _reference import expectation_gradient
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.circuit.library import PauliEvolutionGate, XXPlusYYGate
from qiskit.primitives import StatevectorEstimator, StatevectorSampler
from qiskit.quantum_info import SparseObservable, SparsePauliOp

from qprim_grad import GradientEstimator, GradientSampler

A, B = Parameter("a"), Parameter("b")
H = SparsePauliOp.from_list([("ZZ", 1.0), ("XX", 0.3), ("YI", 0.7)])
X = np.array([0.4, -0.8])


def fd(qc, obs, x):
    return expectation_gradient(qc, obs, x)


def build(kind):
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.ry(0.3, 1)
    if kind == "crx_cry":
        qc.crx(A, 0, 1)
        qc.cry(B, 1, 0)
    elif kind == "rxx_rzz":
        qc.rxx(A, 0, 1)
        qc.rzz(B, 0, 1)
    elif kind == "u_product":
        qc.u(A, B, A * B, 0)
        qc.cx(0, 1)
    elif kind == "cphase":
        qc.cp(A, 0, 1)
        qc.rx(B, 0)
        qc.h(1)
    elif kind == "global_phase":
        qc.rx(A, 0)
        qc.ry(B, 1)
        qc.global_phase = A + B
    elif kind == "pauli_evolution":
        qc.append(PauliEvolutionGate(SparsePauliOp(["XY", "ZZ"]), A), [0, 1])
        qc.rx(B, 0)
    elif kind == "r":
        qc.r(A, B, 0)
        qc.cx(0, 1)
    elif kind == "xx_plus_yy":
        qc.append(XXPlusYYGate(A, B), [0, 1])
    elif kind == "cu":
        qc.cu(A, B, 0.2, 0.1, 0, 1)
    return qc


KINDS = [
    "crx_cry",
    "rxx_rzz",
    "u_product",
    "cphase",
    "global_phase",
    "pauli_evolution",
    "r",
    "xx_plus_yy",
    "cu",
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ["param_shift", "lin_comb", "finite_diff"])
def test_gate_gradients_exact(kind, method):
    qc = build(kind)
    g = GradientEstimator(StatevectorEstimator(), method=method).run([(qc, H, X)]).result()
    np.testing.assert_allclose(g[0].data.grads, fd(qc, H, X), atol=1e-5)


def test_sparse_observable_accepted():
    qc = build("crx_cry")
    obs = SparseObservable.from_sparse_pauli_op(H)
    g = GradientEstimator(StatevectorEstimator()).run([(qc, obs, X)]).result()[0].data.grads
    np.testing.assert_allclose(g, fd(qc, H, X), atol=1e-6)


def test_default_method_is_param_shift():
    r = GradientEstimator(StatevectorEstimator()).run([(build("r"), H, X)]).result()
    assert r[0].metadata["method"] == "param_shift"
    assert r.metadata["method"] == "param_shift"


# --------------------------------------------------------------------------- errors


def test_inner_job_failure_surfaces_in_result():
    class Failing(StatevectorEstimator):
        def run(self, pubs, *, precision=None):
            job = super().run(pubs, precision=precision)

            def boom():
                raise RuntimeError("inner boom")

            job.result = boom
            return job

    job = GradientEstimator(Failing()).run([(build("r"), H, X)])
    with pytest.raises(RuntimeError, match="inner boom"):
        job.result()
    assert job.status().name == "ERROR"


def test_foreign_parameter_is_value_error_naming_it():
    stranger = Parameter("stranger")
    with pytest.raises(ValueError, match="stranger"):
        GradientEstimator(StatevectorEstimator()).run([(build("r"), H, X)], parameters=[stranger])


def test_parameters_per_pub_count_mismatch():
    with pytest.raises(ValueError, match="gives 1 sequences for 2 pubs"):
        GradientEstimator(StatevectorEstimator()).run(
            [(build("r"), H, X), (build("r"), H, X)], parameters=[[A]]
        )


def test_sampler_without_measurements_is_clear_error():
    with pytest.raises(ValueError, match="measure"):
        GradientSampler(StatevectorSampler()).run([(build("r"), X)]).result()


def test_estimator_rejects_shots_keyword():
    with pytest.raises(TypeError, match="unexpected keyword argument 'shots'"):
        GradientEstimator(StatevectorEstimator()).run([(build("r"), H, X)], shots=10)


def test_cancel_on_finished_job_is_harmless():
    inner = StatevectorEstimator()
    job = GradientEstimator(inner).run([(build("r"), H, X)])
    job.result()
    job.cancel()  # finished job: no error


# --------------------------------------------------------------------------- exactness vs inner


@pytest.mark.parametrize("method", ["param_shift", "lin_comb", "finite_diff", "spsa"])
def test_seeded_aer_outputs_identical_to_inner_alone(method):
    from qiskit_aer.primitives import EstimatorV2 as AerEstimator
    from qiskit_aer.primitives import SamplerV2 as AerSampler

    qc = QuantumCircuit(2)
    qc.ry(A, 0)
    qc.rx(B, 1)
    qc.cx(0, 1)
    m = qc.measure_all(inplace=False)
    spubs = [(m, [[0.1, 0.2], [0.3, 0.4]]), (m, [0.5, 0.6], 300)]
    r1 = GradientSampler(AerSampler(seed=5), method=method).run(spubs, shots=200).result()
    r2 = AerSampler(seed=5).run(spubs, shots=200).result()
    for x, y in zip(r1, r2):
        np.testing.assert_array_equal(x.data.meas.array, y.data.meas.array)
    epubs = [(qc, "ZZ", [[0.1, 0.2], [0.3, 0.4]]), (qc, ["XI", "ZI"], [0.5, 0.6], 0.05)]

    def est():
        return AerEstimator(options={"run_options": {"seed_simulator": 3}})

    e1 = GradientEstimator(est(), method=method).run(epubs, precision=0.02).result()
    e2 = est().run(epubs, precision=0.02).result()
    for x, y in zip(e1, e2):
        np.testing.assert_array_equal(x.data.evs, y.data.evs)
        np.testing.assert_array_equal(x.data.stds, y.data.stds)
