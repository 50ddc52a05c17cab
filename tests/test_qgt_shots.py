"""The QGT on shot-based primitives: Aer (error-bar calibration) and qiskit-ibm-runtime
local mode (FakeManilaV2 target, Session, ISA circuits, one inner job per run)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("qiskit_aer")
runtime = pytest.importorskip("qiskit_ibm_runtime")

from qiskit import QuantumCircuit  # noqa: E402
from qiskit.circuit import ParameterVector  # noqa: E402
from qiskit.primitives import BackendEstimatorV2, StatevectorEstimator  # noqa: E402
from qiskit.quantum_info import SparsePauliOp  # noqa: E402
from qiskit.transpiler import generate_preset_pass_manager  # noqa: E402
from qiskit_aer import AerSimulator  # noqa: E402
from qiskit_ibm_runtime import EstimatorV2, Session  # noqa: E402
from qiskit_ibm_runtime.fake_provider import FakeManilaV2  # noqa: E402

from qprim_grad import GradientEstimator, QGTEstimator  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


def ansatz() -> QuantumCircuit:
    t = ParameterVector("t", 4)
    qc = QuantumCircuit(2)
    qc.ry(t[0], 0)
    qc.rx(t[1], 1)
    qc.cx(0, 1)
    qc.ry(t[2], 0)
    qc.rz(t[3], 1)
    return qc


def exact(method: str, circuit, values, **options) -> np.ndarray:
    estimator = QGTEstimator(StatevectorEstimator(), method, **options)
    return estimator.run([(circuit, "ZZ", values)]).result()[0].data.qfi


@pytest.mark.parametrize("method", ["lin_comb", "block_diag"])
def test_qfi_stds_are_calibrated_on_seeded_aer(method):
    """+-2 sigma of the propagated qfi_stds covers ~95% of the entries (shot noise only)."""
    circuit = ansatz()
    values = np.random.default_rng(5).uniform(-np.pi, np.pi, (30, 4))
    inner = BackendEstimatorV2(backend=AerSimulator(seed_simulator=123))
    data = QGTEstimator(inner, method).run([(circuit, "ZZ", values)], precision=0.05)
    data = data.result()[0].data
    want = exact(method, circuit, values)
    upper = np.triu_indices(4)
    stds = data.qfi_stds[:, upper[0], upper[1]]
    errors = np.abs(data.qfi - want)[:, upper[0], upper[1]]
    measured = stds > 0
    # each independent estimate once: a prefix without parameters is measured once for all
    # rows (block_diag's first layer)
    error, sigma = np.unique(np.stack([errors[measured], stds[measured]]), axis=1)
    assert len(error) >= 70
    coverage = np.mean(error <= 2 * sigma)
    assert 0.9 <= coverage <= 0.99, coverage
    assert np.all(errors[~measured] < 1e-12)  # exact entries (e.g. zero blocks)


@pytest.fixture(scope="module")
def ideal_manila():
    return AerSimulator.from_backend(FakeManilaV2(), noise_model=None)


@pytest.mark.parametrize("method", ["lin_comb", "block_diag"])
def test_runtime_session_isa_one_job(method, ideal_manila, mocker):
    circuit = ansatz()
    values = np.array([[0.3, -0.5, 1.1, 0.2]])
    pass_manager = generate_preset_pass_manager(optimization_level=1, backend=ideal_manila)
    with Session(backend=ideal_manila) as session:
        inner = EstimatorV2(mode=session)
        inner.options.default_shots = 8000
        spy = mocker.spy(inner, "run")
        both = GradientEstimator(
            inner, "param_shift", metric=method, metric_options={"pass_manager": pass_manager}
        )
        isa = pass_manager.run(circuit)
        observable = SparsePauliOp("ZZ").apply_layout(isa.layout)
        data = both.run([(isa, observable, values)]).result()[0].data
    assert spy.call_count == 1
    for pub in spy.call_args.args[0]:
        assert pub.circuit.num_qubits == ideal_manila.num_qubits  # every circuit is ISA
    want = exact(method, circuit, values[0])
    np.testing.assert_array_less(np.abs(data.qfi[0] - want), 5 * data.qfi_stds[0] + 1e-9)


def test_runtime_virtual_circuit_mapped_by_pass_manager(ideal_manila, mocker):
    """A virtual circuit: lin_comb maps every circuit it sends, the centre included."""
    circuit = ansatz()
    values = [0.3, -0.5, 1.1, 0.2]
    pass_manager = generate_preset_pass_manager(optimization_level=1, backend=ideal_manila)
    with Session(backend=ideal_manila) as session:
        inner = EstimatorV2(mode=session)
        inner.options.default_shots = 8000
        spy = mocker.spy(inner, "run")
        qgt = QGTEstimator(inner, "lin_comb", pass_manager=pass_manager)
        data = qgt.run([(circuit, "ZZ", values)]).result()[0].data
    assert spy.call_count == 1
    pubs = spy.call_args.args[0]
    assert all(pub.circuit.num_qubits == ideal_manila.num_qubits for pub in pubs)
    want = exact("lin_comb", circuit, values)
    np.testing.assert_array_less(np.abs(data.qfi - want), 5 * data.qfi_stds + 1e-9)
    assert abs(data.evs - exact_evs(circuit, values)) < 5 * data.stds + 1e-9


def exact_evs(circuit, values) -> float:
    return float(StatevectorEstimator().run([(circuit, "ZZ", values)]).result()[0].data.evs)


def test_reverse_rejects_noisy_aer():
    from qiskit_aer.primitives import EstimatorV2 as AerEstimator

    with pytest.raises(ValueError, match="reverse.*default_precision"):
        QGTEstimator(AerEstimator(options={"default_precision": 0.01}), "reverse")
    QGTEstimator(AerEstimator(), "reverse")  # exact: accepted
