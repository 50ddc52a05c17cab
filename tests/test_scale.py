"""Scale: block order and diagonal runs of the adjoint engine, evs from its forward
pass, Pauli-action observables, memory, the reverse Hessian and merged rows in nested shift
plans (Dask-driven inner primitives: test_dask.py)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from _reference import POINTS, bare_circuit, expectation, expectation_gradient
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.circuit.library import efficient_su2
from qiskit.primitives import StatevectorEstimator
from qiskit.quantum_info import SparseObservable, SparsePauliOp, random_pauli_list

from qprim_grad import GradientEstimator, GradientMethodError
from qprim_grad.methods.adjoint import PauliAction, observable_matrix

OBS = SparsePauliOp.from_list([("ZZI", 1.0), ("XIY", 0.5), ("IYX", -0.3)])


def mixed_circuit() -> QuantumCircuit:
    """Multi-argument, controlled, diagonal and fused gates; shared and affine parameters."""
    a, b, c = Parameter("a"), Parameter("b"), Parameter("c")
    qc = QuantumCircuit(3)
    qc.h([0, 1, 2])
    qc.u(a, b, 2 * c + 0.3, 0)
    qc.cx(0, 1)
    qc.rzz(a - b, 1, 2)
    qc.crx(c, 2, 0)
    qc.ry(b, 1)
    qc.rx(a, 2)
    qc.ry(0.5 * a, 2)
    return qc


POINT = np.array([0.4, -1.1, 0.8])


# ---- block order and diagonal runs ---------------------------------------------------------


def layered_ansatz(n: int, layers: int) -> QuantumCircuit:
    """RY/RX on every qubit, then rzz on neighbours, per layer (an rzz ansatz)."""
    qc = QuantumCircuit(n)
    for layer in range(layers):
        for gate in (qc.ry, qc.rx):
            for q in range(n):
                gate(Parameter(f"{gate.__name__}{layer}_{q}"), q)
        for q in range(n - 1):
            qc.rzz(Parameter(f"zz{layer}_{q}"), q, q + 1)
    return qc


def test_layered_ansatz_compiles_into_pairs_and_one_diagonal_run_per_layer():
    from qprim_grad.methods.adjoint import compile_circuit
    from qprim_grad.methods.adjoint.kernels import Diag

    n, layers = 8, 3
    program = compile_circuit(layered_ansatz(n, layers))
    dense = [b for b in program.blocks if not isinstance(b.kernel, Diag)]
    assert [len(b.qubits) for b in dense] == [2] * (n // 2 * layers)  # rotations paired
    runs = sorted(program.runs.values(), key=lambda run: run.start)
    assert [run.stop - run.start for run in runs] == [n - 1] * layers
    assert all(run.sides.count(2) == 1 for run in runs)  # one rzz straddles the cut


def interleaved_circuit(n: int, seed: int) -> QuantumCircuit:
    """Random mix of diagonal (rz, rzz, cz, cp, crz), permutation (cx, swap) and dense gates
    (ry, rx, u) with shared parameters: blocks that commute and blocks that must not move."""
    rng = np.random.default_rng(seed)
    params = [Parameter(f"p{i}") for i in range(6)]
    qc = QuantumCircuit(n)
    qc.h(range(n))
    for _ in range(12 * n):
        kind = rng.integers(8)
        a, b = (int(q) for q in rng.choice(n, size=2, replace=False))
        p = params[rng.integers(len(params))]
        if kind == 0:
            qc.rz(p, a)
        elif kind == 1:
            qc.rzz(2 * p + 0.1, a, b)
        elif kind == 2:
            qc.cz(a, b)
        elif kind == 3:
            qc.cp(p, a, b)
        elif kind == 4:
            qc.cx(a, b)
        elif kind == 5:
            qc.ry(p, a)
        elif kind == 6:
            qc.crz(-p, a, b)
        else:
            qc.rx(p, a)
    return qc


@pytest.mark.parametrize("seed", range(4))
def test_scheduled_blocks_and_fused_diagonal_runs_keep_gradients_exact(seed):
    n = 5
    circuit = interleaved_circuit(n, seed)
    observable = SparsePauliOp.from_list([("ZZIXI", 1.0), ("IYIIZ", 0.7), ("XIIIX", -0.4)])
    values = np.random.default_rng(seed + 10).uniform(-np.pi, np.pi, circuit.num_parameters)
    result = GradientEstimator(StatevectorEstimator(), method="reverse").run(
        [(circuit, observable, values)]
    )
    data = result.result()[0].data
    np.testing.assert_allclose(data.evs, expectation(circuit, observable, values), atol=1e-12)
    expected = expectation_gradient(circuit, observable, values)
    np.testing.assert_allclose(data.grads, expected, atol=1e-7)


# ---- first order: evs from the forward pass ----------------------------------------------------


def test_reverse_takes_evs_from_the_forward_pass(mocker):
    inner = StatevectorEstimator()
    spy = mocker.spy(inner, "run")
    pubs = [(efficient_su2(3, reps=1), [OBS, "ZII"], np.random.default_rng(1).uniform(size=12))]
    result = GradientEstimator(inner, "reverse").run(pubs).result()
    assert sum(len(list(call.args[0])) for call in spy.call_args_list) == 0  # no centre pub
    plain = StatevectorEstimator().run(pubs).result()[0].data
    np.testing.assert_allclose(result[0].data.evs, plain.evs, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(result[0].data.stds, 0.0)


def test_reverse_with_precision_still_asks_the_inner_estimator_for_evs():
    pubs = [(efficient_su2(2, reps=1), "ZZ", np.linspace(0, 1, 8))]
    result = GradientEstimator(StatevectorEstimator(seed=4), "reverse").run(pubs, precision=0.1)
    alone = StatevectorEstimator(seed=4).run(pubs, precision=0.1).result()[0].data
    np.testing.assert_array_equal(result.result()[0].data.evs, alone.evs)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_pauli_action_matches_the_matrix(n):
    rng = np.random.default_rng(n)
    op = SparsePauliOp(random_pauli_list(n, 7, seed=n, phase=False), rng.normal(size=7))
    np.testing.assert_allclose(PauliAction(op).to_matrix(), op.to_matrix(), atol=1e-14)


def test_projector_observables_as_pauli_actions():
    terms = {"0+r": 0.7, "1XZ": -0.2}
    expected = SparseObservable.from_list(list(terms.items())).to_sparse_list()
    dense = SparsePauliOp.from_sparse_observable(
        SparseObservable.from_sparse_list(expected, 3)
    ).to_matrix()
    np.testing.assert_allclose(observable_matrix(terms, 3).to_matrix(), dense, atol=1e-14)


def test_memory_stays_within_four_state_vectors():
    n = 18  # at the column-wise threshold, like n = 20
    circuit = efficient_su2(n, reps=1)
    obs = SparsePauliOp.from_sparse_list([("ZZ", [i, i + 1], 1.0) for i in range(n - 1)], n)
    values = np.random.default_rng(0).uniform(size=circuit.num_parameters)
    gradient = GradientEstimator(StatevectorEstimator(), "reverse")
    gradient.run([(circuit, obs, values)]).result()  # compile and cache first
    tracemalloc.start()
    try:
        gradient.run([(circuit, obs, values)]).result()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= 4 * 16 * 2**n


# ---- second order -----------------------------------------------------------------------------


def reverse_hessian() -> GradientEstimator:
    return GradientEstimator(GradientEstimator(StatevectorEstimator(), "reverse"), "reverse")


def test_reverse_around_reverse_gives_the_exact_hessian():
    qc = mixed_circuit()
    result = reverse_hessian().run([(qc, OBS, POINT)]).result()[0]
    step = 1e-4  # central differences of the stencil gradient
    numeric = np.zeros((3, 3))
    for j in range(3):
        shift = np.eye(3)[j] * step
        numeric[:, j] = (
            expectation_gradient(qc, OBS, POINT + shift)
            - expectation_gradient(qc, OBS, POINT - shift)
        ) / (2 * step)
    np.testing.assert_allclose(result.data.hessian, numeric, atol=1e-6)
    np.testing.assert_allclose(result.data.evs, expectation(qc, OBS, POINT), atol=1e-12)
    np.testing.assert_allclose(result.data.grads, expectation_gradient(qc, OBS, POINT), atol=1e-8)
    np.testing.assert_array_equal(result.data.hessian_stds, 0.0)
    assert result.metadata["hessian_engine"] == "forward-over-reverse"


def test_reverse_hessian_equals_nested_param_shift_with_broadcasting_and_subsets():
    qc = mixed_circuit()
    a, b, c = qc.parameters
    points = np.random.default_rng(2).uniform(-1, 1, (2, 1, 3))
    pub = (qc, [[OBS, "XXZ"]], points)
    mine = reverse_hessian().run([pub], parameters=[c, a]).result()[0]
    shift = GradientEstimator(GradientEstimator(StatevectorEstimator()), "param_shift")
    theirs = shift.run([pub], parameters=[c, a]).result()[0]
    assert mine.data.hessian.shape == (2, 2, 3, 2)
    # rows: every circuit parameter (a, b, c); nested param_shift maps its rewritten circuit
    # back to (P, P) over the requested parameters (c, a)
    np.testing.assert_allclose(mine.data.hessian[..., [2, 0], :], theirs.data.hessian, atol=1e-9)
    np.testing.assert_allclose(mine.data.grads, theirs.data.grads, atol=1e-10)


def test_reverse_hessian_needs_real_derivatives():
    outer = GradientEstimator(
        GradientEstimator(StatevectorEstimator(), "reverse", derivative_type="complex"), "reverse"
    )
    with pytest.raises(GradientMethodError, match="derivative_type='real'"):
        outer.run([(mixed_circuit(), OBS, POINT)])


def test_nested_shift_plan_evaluates_each_row_once(mocker):
    qc = QuantumCircuit(2)
    params = [Parameter(f"p{i}") for i in range(4)]
    for i, p in enumerate(params):
        qc.ry(p, i % 2)
        qc.cx(0, 1)
    base = StatevectorEstimator()
    spy = mocker.spy(base, "run")
    nested = GradientEstimator(GradientEstimator(base), "param_shift")
    result = nested.run([(qc, "ZZ", [0.1, 0.2, 0.3, 0.4])]).result()
    A = 4
    assert result.metadata["base_rows"] == 2 * A * A + 2 * A + 1  # not (2A + 1)^2
    (pubs,) = spy.call_args.args
    sent = sum(int(np.prod(pub.shape)) for pub in pubs)
    assert sent == result.metadata["base_rows"]
    exact = reverse_hessian().run([(qc, "ZZ", [0.1, 0.2, 0.3, 0.4])]).result()[0]
    np.testing.assert_allclose(result[0].data.hessian, exact.data.hessian, atol=1e-10)


def test_merged_rows_with_shots():
    aer = pytest.importorskip("qiskit_aer.primitives")
    obs = SparsePauliOp.from_list([("ZZ", 1.0), ("XI", 0.5)])
    inner = GradientEstimator(aer.EstimatorV2(options={"run_options": {"seed_simulator": 3}}))
    result = GradientEstimator(inner, "param_shift").run(
        [(bare_circuit(), obs, POINTS[0])], precision=0.01
    )
    data = result.result()[0].data
    assert result.result().metadata["base_rows"] == 2 * 9 + 6 + 1
    exact = reverse_hessian().run([(bare_circuit(), obs, POINTS[0])]).result()[0].data.hessian
    assert np.all(data.hessian_stds > 0)
    np.testing.assert_array_less(np.abs(data.hessian - exact), 5 * data.hessian_stds + 1e-12)
