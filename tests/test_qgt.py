"""QGTEstimator and GradientEstimator(..., metric=...) on exact primitives, against the
quantum geometric tensor from statevector finite differences (tests/_reference.py)."""

from __future__ import annotations

import numpy as np
import pytest
from _reference import state_qgt
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter, ParameterVector
from qiskit.primitives import BackendEstimatorV2, BaseEstimatorV2, StatevectorEstimator
from qiskit.providers.basic_provider import BasicSimulator
from qiskit.quantum_info import SparsePauliOp

from qprim_grad import GradientEstimator, GradientMethodError, QGTEstimator
from qprim_grad.methods.metric.block_diag import BlockDiagMetric, layers
from qprim_grad.methods.metric.lin_comb import LinCombMetric, prepare_for_metric

GATES = ["rx", "ry", "rz", "p", "u", "crx", "cry", "crz", "cp", "rxx", "ryy", "rzz", "rzx"]


def random_circuit(num_qubits: int, depth: int, seed: int, shared: bool = True) -> QuantumCircuit:
    """Random gates from the whole library; with ``shared``: shared parameters and affine
    and non-affine expressions."""
    rng = np.random.default_rng(seed)
    theta = ParameterVector("t", 4 if shared else depth)
    pool = list(theta)
    if shared:
        pool += [2 * theta[0] - theta[1], theta[2] * theta[3], theta[1] + 0.3]
    qc = QuantumCircuit(num_qubits)
    qc.h(range(num_qubits))
    for k in range(depth):
        gate = str(rng.choice(GATES))
        qubits = [int(q) for q in rng.choice(num_qubits, size=2, replace=False)]
        angle = pool[rng.integers(len(pool))] if shared else theta[k]
        if gate == "u":
            extra = pool[rng.integers(len(pool))] if shared else 0.4
            qc.u(angle, extra, 0.1, qubits[0])
        elif gate in ("rx", "ry", "rz", "p"):
            getattr(qc, gate)(angle, qubits[0])
        else:
            getattr(qc, gate)(angle, *qubits)
        if rng.random() < 0.3:
            qc.cx(*qubits)
        if rng.random() < 0.3:
            qc.s(qubits[0])
    for p in theta:
        if p not in qc.parameters:
            qc.ry(p, 0)
    return qc


def qgt_of(method: str, circuit, values, estimator=None, **options):
    estimator = estimator or StatevectorEstimator()
    result = QGTEstimator(estimator, method, **options).run(
        [(circuit, "Z" * circuit.num_qubits, values)]
    )
    return result.result()[0].data


@pytest.mark.parametrize("seed", range(8))
def test_random_circuits_match_statevector_reference(seed):
    num_qubits = 2 + seed % 4
    circuit = random_circuit(num_qubits, 9, seed, shared=seed % 2 == 0)
    values = np.random.default_rng(seed).uniform(-np.pi, np.pi, circuit.num_parameters)
    want = state_qgt(circuit, values)
    lin_comb = qgt_of("lin_comb", circuit, values)
    reverse = qgt_of("reverse", circuit, values)
    np.testing.assert_allclose(lin_comb.qgt, want, atol=1e-7)
    np.testing.assert_allclose(reverse.qgt, want, atol=1e-7)
    np.testing.assert_allclose(reverse.qgt, lin_comb.qgt, atol=1e-10)
    np.testing.assert_allclose(lin_comb.qfi, 4 * want.real, atol=4e-7)
    assert lin_comb.qgt.dtype == complex and not np.any(lin_comb.qgt_stds)


def test_without_phase_fix_and_real_imag_parts():
    circuit = random_circuit(3, 8, 3, shared=False)
    circuit = circuit.decompose(["p", "u", "cp"])  # phases differ by convention only there
    circuit = QuantumCircuit(3).compose(circuit)
    keep = [i for i in circuit.data if i.operation.name not in ("p", "u", "cp", "u1", "u3")]
    bare = circuit.copy_empty_like()
    for instruction in keep:
        bare.append(instruction)
    values = np.linspace(-1.2, 1.3, bare.num_parameters)
    want = state_qgt(bare, values, phase_fix=False)
    for method in ("lin_comb", "reverse"):
        data = qgt_of(method, bare, values, phase_fix=False)
        np.testing.assert_allclose(data.qgt, want, atol=1e-7)
        real = qgt_of(method, bare, values, derivative_type="real", phase_fix=False)
        imag = qgt_of(method, bare, values, derivative_type="imag")
        assert real.qgt.dtype == float and imag.qgt.dtype == float
        np.testing.assert_allclose(real.qgt, want.real, atol=1e-7)
        np.testing.assert_allclose(imag.qgt, state_qgt(bare, values).imag, atol=1e-7)
        assert "qfi" in real and "qfi" not in imag


def layered_circuit() -> QuantumCircuit:
    t = ParameterVector("t", 9)
    qc = QuantumCircuit(4)
    for q in range(4):
        qc.ry(t[q], q)
    qc.cx(0, 1)
    qc.rz(t[4], 2)  # q2 touched by ry(t[2]) since the layer began: a new layer
    qc.rz(t[5], 0)  # q0 untouched since then (the cx came before): joins
    qc.rzz(t[6], 1, 3)
    qc.cx(2, 3)
    qc.rx(t[7], 2)  # q2 touched: a new layer
    qc.rx(t[8], 1)
    return qc


def test_layers_follow_the_rule():
    circuit = layered_circuit()
    task_parameters = tuple(circuit.parameters)

    class Task:
        kind, parameters = "estimator", task_parameters

    Task.circuit = circuit
    prepared = prepare_for_metric(Task, "block_diag")  # type: ignore[arg-type]
    groups = [[prepared.slots[g].parameter.name for g in slots] for _, slots in layers(prepared)]
    assert groups == [["t[0]", "t[1]", "t[2]", "t[3]"], ["t[4]", "t[5]", "t[6]"], ["t[7]", "t[8]"]]


def test_block_diag_is_the_exact_tensor_restricted_to_its_blocks():
    circuit = layered_circuit()
    values = np.linspace(-0.9, 1.4, 9)
    want = state_qgt(circuit, values).real
    blocks = [[0, 1, 2, 3], [4, 5, 6], [7, 8]]
    mask = np.zeros((9, 9), dtype=bool)
    for block in blocks:
        mask[np.ix_(block, block)] = True
    block_diag = qgt_of("block_diag", circuit, values)
    np.testing.assert_allclose(block_diag.qgt, np.where(mask, want, 0), atol=1e-7)
    diag = qgt_of("diag", circuit, values, derivative_type="real")
    np.testing.assert_allclose(diag.qgt, np.diag(np.diag(want)), atol=1e-7)


def test_block_diag_chain_rule_couples_layers_through_a_shared_parameter():
    a, b = Parameter("a"), Parameter("b")
    qc = QuantumCircuit(2)
    qc.ry(a, 0)
    qc.rx(b, 1)
    qc.cx(0, 1)
    qc.ry(2 * a + 0.1, 1)  # slot of layer 2 fed by a
    values = [0.4, -0.8]
    # the exact tensor of the circuit with independent slot parameters, then J^T G J
    s = ParameterVector("s", 3)
    free = QuantumCircuit(2)
    free.ry(s[0], 0)
    free.rx(s[1], 1)
    free.cx(0, 1)
    free.ry(s[2], 1)
    slots = np.array([0.4, -0.8, 0.9])
    exact = state_qgt(free, slots).real
    exact[:2, 2] = exact[2, :2] = 0.0  # two layers: {s0, s1}, {s2}
    jacobian = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0]])
    got = qgt_of("block_diag", qc, values).qgt
    np.testing.assert_allclose(got, jacobian.T @ exact @ jacobian, atol=1e-7)
    assert abs(got[0, 0] - exact[0, 0]) > 1e-3  # the layers coupled


def test_broadcasting_and_parameters_subset():
    circuit = random_circuit(3, 6, 5, shared=True)
    rng = np.random.default_rng(1)
    values = rng.uniform(-1, 1, (2, 1, circuit.num_parameters))
    observables = [SparsePauliOp("ZII"), SparsePauliOp("IXI"), SparsePauliOp("YYZ")]
    params = [circuit.parameters[2], circuit.parameters[0]]
    for method in ("lin_comb", "reverse", "block_diag"):
        data = (
            QGTEstimator(StatevectorEstimator(), method)
            .run([(circuit, observables, values)], parameters=params)
            .result()[0]
            .data
        )
        assert data.qgt.shape == (2, 3, 2, 2) and data.evs.shape == (2, 3)
        want = StatevectorEstimator().run([(circuit, observables, values)]).result()[0].data
        np.testing.assert_allclose(data.evs, want.evs, atol=1e-12)
        for i in range(2):
            single = (
                QGTEstimator(StatevectorEstimator(), method)
                .run([(circuit, "ZII", values[i, 0])])
                .result()[0]
                .data.qgt
            )
            for j in range(3):
                np.testing.assert_allclose(
                    data.qgt[i, j], single[np.ix_([2, 0], [2, 0])], atol=1e-10
                )


class Counting(BaseEstimatorV2):
    """An exact estimator that counts its jobs."""

    def __init__(self) -> None:
        self.inner = StatevectorEstimator()
        self.calls: list[int] = []

    def run(self, pubs, *, precision=None):
        pubs = list(pubs)
        self.calls.append(len(pubs))
        return self.inner.run(pubs, precision=precision)


@pytest.mark.parametrize("metric", ["lin_comb", "block_diag", "diag"])
def test_gradient_and_metric_in_one_inner_job(metric):
    circuit = random_circuit(3, 6, 2, shared=True)
    values = np.linspace(-1, 1, circuit.num_parameters)
    inner = Counting()
    both = GradientEstimator(inner, "param_shift", metric=metric)
    data = both.run([(circuit, "ZZI", values), (circuit, "XII", values + 0.1)]).result()
    assert len(inner.calls) == 1
    plain = GradientEstimator(StatevectorEstimator()).run([(circuit, "ZZI", values)]).result()
    np.testing.assert_allclose(data[0].data.grads, plain[0].data.grads, atol=1e-12)
    alone = qgt_of(metric, circuit, values)
    np.testing.assert_allclose(data[0].data.qgt, alone.qgt, atol=1e-12)
    assert data.metadata["metric"] == metric and data[0].data.qfi.shape == (4, 4)


def test_reverse_on_statevector_estimator_sends_nothing(mocker):
    circuit = layered_circuit()
    inner = StatevectorEstimator()
    spy = mocker.spy(inner, "run")
    job = QGTEstimator(inner, "reverse").run([(circuit, "ZIII", np.linspace(-1, 1, 9))])
    data = job.result()[0].data
    assert data.qgt.shape == (9, 9)
    spy.assert_not_called()  # evs and the tensor come from the adjoint engine's states
    want = StatevectorEstimator().run([(circuit, "ZIII", np.linspace(-1, 1, 9))]).result()
    np.testing.assert_allclose(data.evs, want[0].data.evs, atol=1e-12)


def test_block_diag_on_statevector_estimator_computes_layers_directly(mocker):
    """Exact StatevectorEstimator at precision 0: one statevector per value row instead of
    one simulation per observable (the same values as through the estimator, see above)."""
    circuit = layered_circuit()
    inner = StatevectorEstimator()
    spy = mocker.spy(inner, "run")
    values = np.linspace(-0.9, 1.4, 9)
    QGTEstimator(inner, "block_diag").run([(circuit, "ZIII", values)]).result()
    assert len(spy.call_args.args[0]) == 1  # only the centre
    QGTEstimator(inner, "block_diag").run([(circuit, "ZIII", values)], precision=0.1).result()
    assert len(spy.call_args.args[0]) == 4  # centre and the three layers


def test_max_job_rows_splits_and_gives_the_same_result():
    circuit = random_circuit(2, 5, 7, shared=False)
    values = np.random.default_rng(0).uniform(-1, 1, (3, circuit.num_parameters))
    inner = Counting()
    whole = QGTEstimator(StatevectorEstimator()).run([(circuit, "ZZ", values)]).result()
    split = QGTEstimator(inner, max_job_rows=7).run([(circuit, "ZZ", values)])
    np.testing.assert_allclose(split.result()[0].data.qgt, whole[0].data.qgt, atol=1e-12)
    assert len(inner.calls) > 1 and max(inner.calls) <= 7


def test_metric_objects_and_options():
    circuit = random_circuit(2, 4, 1, shared=False)
    values = np.linspace(0.1, 0.9, circuit.num_parameters)
    by_object = QGTEstimator(StatevectorEstimator(), LinCombMetric(derivative_type="real"))
    by_class = GradientEstimator(
        StatevectorEstimator(), metric=BlockDiagMetric, metric_options={"phase_fix": True}
    )
    assert by_object.run([(circuit, "ZZ", values)]).result()[0].data.qgt.dtype == float
    P = circuit.num_parameters
    assert by_class.run([(circuit, "ZZ", values)]).result()[0].data.qgt.shape == (P, P)
    with pytest.raises(GradientMethodError, match="unknown metric method 'nope'"):
        QGTEstimator(StatevectorEstimator(), "nope")
    with pytest.raises(GradientMethodError, match="derivative_type"):
        QGTEstimator(StatevectorEstimator(), derivative_type="sideways")
    with pytest.raises(ValueError, match="metric_options"):
        GradientEstimator(StatevectorEstimator(), metric_options={"phase_fix": False})


def test_metric_needs_an_estimator():
    from qiskit.primitives import StatevectorSampler

    from qprim_grad import GradientSampler

    with pytest.raises(TypeError, match="metric= needs an estimator"):
        GradientSampler(StatevectorSampler(), metric="lin_comb")


def test_reverse_rejects_sampling_estimators_at_construction():
    with pytest.raises(ValueError, match="reverse.*lin_comb"):
        QGTEstimator(BackendEstimatorV2(backend=BasicSimulator()), "reverse")
    with pytest.raises(ValueError, match="reverse"):
        GradientEstimator(BackendEstimatorV2(backend=BasicSimulator()), metric="reverse")


def test_qgt_estimator_is_a_v2_estimator_and_reports_metadata():
    estimator = QGTEstimator(StatevectorEstimator())
    assert isinstance(estimator, BaseEstimatorV2)
    circuit = random_circuit(2, 3, 0, shared=False)
    result = estimator.run([(circuit, "ZZ", np.zeros(circuit.num_parameters))]).result()
    assert result.metadata["metric"] == "lin_comb"
    assert result.metadata["metric_options"]["derivative_type"] == "complex"
    assert set(result[0].data.keys()) == {"evs", "stds", "qgt", "qgt_stds", "qfi", "qfi_stds"}
