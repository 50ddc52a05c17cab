"""Nothing silently wrong for the metric family and its neighbours: non-unitary circuits,
option types, exact-only methods on noisy simulators, edge pubs and Dask clients."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.primitives import StatevectorEstimator, StatevectorSampler
from qiskit_aer.primitives import EstimatorV2 as AerEstimator

from qprim_grad import GradientEstimator, GradientMethodError, QGTEstimator

A, B = Parameter("a"), Parameter("b")
METRICS = ["lin_comb", "block_diag", "diag", "reverse"]
GRADIENTS = ["param_shift", "finite_diff", "lin_comb", "spsa", "reverse"]


def _non_unitary(kind: str) -> QuantumCircuit:
    qc = QuantumCircuit(2, 1)
    qc.rx(A, 0)
    qc.cx(0, 1)
    if kind == "reset":
        qc.reset(0)
    elif kind == "measure":
        qc.measure(0, 0)
    else:  # classical control
        qc.measure(0, 0)
        with qc.if_test((qc.clbits[0], 1)):
            qc.x(1)
    qc.ry(B, 0)
    qc.rx(B, 1)
    return qc


NAMED = {"reset": "'reset'", "measure": "mid-circuit measurement", "if_else": "measurement"}


# --- operations no method differentiates through --------------------------------------------
@pytest.mark.parametrize("kind", ["reset", "measure", "if_else"])
@pytest.mark.parametrize("metric", METRICS)
def test_metric_refuses_non_unitary_circuits(metric, kind):
    qgt = QGTEstimator(StatevectorEstimator(), metric)
    with pytest.raises(GradientMethodError, match=f"metric {metric!r}.*{NAMED[kind]}"):
        qgt.run([(_non_unitary(kind), "ZZ", [0.3, 0.2])])


@pytest.mark.parametrize("kind", ["reset", "measure", "if_else"])
@pytest.mark.parametrize("method", GRADIENTS)
def test_estimator_gradient_refuses_non_unitary_circuits(method, kind):
    grad = GradientEstimator(AerEstimator(), method)
    with pytest.raises(GradientMethodError, match=f"method {method!r}.*{NAMED[kind]}"):
        grad.run([(_non_unitary(kind), "ZZ", [0.3, 0.2])])


def test_classical_control_is_named_when_it_comes_first():
    qc = QuantumCircuit(2, 1)
    qc.rx(A, 0)
    with qc.if_test((qc.clbits[0], 1)):
        qc.x(1)
    with pytest.raises(GradientMethodError, match="operation 'if_else' \\(instruction 1"):
        QGTEstimator(StatevectorEstimator(), "block_diag").run([(qc, "ZZ", [0.3])])


def test_final_measurements_and_initial_resets_are_allowed():
    qc = QuantumCircuit(1, 1)
    qc.reset(0)  # an unused qubit: a no-op
    qc.rx(A, 0)
    qc.measure(0, 0)
    qc.measure(0, 0)  # measured twice at the end: still final
    for metric in ["lin_comb", "block_diag", "diag"]:
        result = QGTEstimator(AerEstimator(), metric).run([(qc, "Z", [0.4])]).result()
        np.testing.assert_allclose(result[0].data.qgt, [[0.25]], atol=1e-12)


# --- option types ------------------------------------------------------------------------------
@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("value", ["False", "True", 0, 1.0, None])
def test_phase_fix_must_be_a_bool(metric, value):
    with pytest.raises(
        GradientMethodError, match=f"phase_fix must be True or False, got {value!r}"
    ):
        QGTEstimator(StatevectorEstimator(), metric, phase_fix=value)


def test_phase_fix_numpy_bool_is_a_bool():
    qgt = QGTEstimator(StatevectorEstimator(), "diag", phase_fix=np.bool_(False))
    assert qgt.metric.phase_fix is False


# --- reverse needs exact values ----------------------------------------------------------------
def _one_qubit() -> QuantumCircuit:
    qc = QuantumCircuit(1)
    qc.rx(A, 0)
    return qc


def test_reverse_gradient_refuses_aer_default_precision_at_construction():
    noisy = AerEstimator(options={"default_precision": 0.02})
    with pytest.raises(GradientMethodError, match="method='reverse'.*precision=0.02.*param_shift"):
        GradientEstimator(noisy, "reverse")


@pytest.mark.parametrize("metric_of", ["GradientEstimator", "QGTEstimator"])
def test_reverse_refuses_aer_run_precision_at_run(metric_of):
    if metric_of == "QGTEstimator":
        wrapper = QGTEstimator(AerEstimator(), "reverse")
        match = "metric 'reverse'.*precision=0.01.*'lin_comb', 'block_diag' or 'diag'"
    else:
        wrapper = GradientEstimator(AerEstimator(), "reverse")
        match = "method='reverse'.*precision=0.01.*param_shift"
    with pytest.raises(GradientMethodError, match=match):
        wrapper.run([(_one_qubit(), "Z", [0.1])], precision=0.01)
    with pytest.raises(GradientMethodError, match=match):
        wrapper.run([(_one_qubit(), "Z", [0.1], 0.01)])  # the pub's own precision


def test_reverse_metric_refuses_aer_run_precision_next_to_a_gradient():
    grad = GradientEstimator(AerEstimator(), "param_shift", metric="reverse")
    with pytest.raises(GradientMethodError, match="metric 'reverse'.*precision=0.05"):
        grad.run([(_one_qubit(), "Z", [0.1])], precision=0.05)


def test_reverse_on_aer_at_precision_zero_is_exact():
    grad = GradientEstimator(AerEstimator(), "reverse")
    result = grad.run([(_one_qubit(), "Z", [0.1], 0.0)], precision=0.1).result()
    np.testing.assert_allclose(result[0].data.grads, [-np.sin(0.1)], atol=1e-12)


# --- Dask wrappers -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def closed_client():
    from dask import distributed

    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    )
    client = distributed.Client(cluster)
    from qprim_grad.dask_primitives import DaskEstimator

    made_before = DaskEstimator(client, StatevectorEstimator())
    client.close()
    cluster.close()
    return client, made_before


def test_dask_closed_client_is_named_at_construction_and_run(closed_client):
    from qprim_grad.dask_primitives import DaskEstimator, DaskSampler

    client, made_before = closed_client
    with pytest.raises(ValueError, match="Dask client is closed.*new dask.distributed.Client"):
        DaskEstimator(client, StatevectorEstimator())
    with pytest.raises(ValueError, match="Dask client is closed"):
        DaskSampler(client, StatevectorSampler())
    with pytest.raises(ValueError, match="Dask client is closed"):
        made_before.run([(_one_qubit(), "Z", [0.1])])


def test_dask_wrappers_refuse_the_other_kind_at_construction(closed_client):
    from qprim_grad.dask_primitives import DaskEstimator, DaskSampler

    class OpenClient:  # the kind check comes before any use of the client
        status = "running"
        submit = scatter = None

    with pytest.raises(TypeError, match="DaskEstimator runs an estimator.*use DaskSampler"):
        DaskEstimator(OpenClient(), StatevectorSampler())
    with pytest.raises(TypeError, match="DaskSampler runs a sampler.*use DaskEstimator"):
        DaskSampler(OpenClient(), StatevectorEstimator())
    with pytest.raises(TypeError, match="client must be a dask.distributed.Client, got 3"):
        DaskEstimator(3, StatevectorEstimator())


# --- edge pubs ---------------------------------------------------------------------------------
@pytest.mark.parametrize("metric", METRICS)
def test_metric_of_a_circuit_without_parameters_is_empty(metric):
    qc = QuantumCircuit(1)
    qc.h(0)
    result = QGTEstimator(StatevectorEstimator(), metric).run([(qc, ["Z", "X"])]).result()
    assert result[0].data.qgt.shape == (2, 0, 0)
    assert result[0].data.qfi_stds.shape == (2, 0, 0)
    np.testing.assert_allclose(result[0].data.evs, [0.0, 1.0], atol=1e-12)


def _two_rotations() -> QuantumCircuit:
    qc = QuantumCircuit(2)
    qc.rx(A, 0)
    qc.ry(B, 1)
    qc.cx(0, 1)
    return qc


@pytest.mark.parametrize("metric", METRICS)
def test_metric_pubs_may_leave_the_observable_out(metric):
    qc, x = _two_rotations(), [0.3, 1.1]
    qgt = QGTEstimator(StatevectorEstimator(), metric)
    with_z = qgt.run([(qc, "ZZ", x)]).result()[0].data.qgt
    values = np.array([x, [0.5, -0.2], [1.0, 2.0]])
    for pub in [(qc, x), (qc, None, x), (qc, {A: x[0], B: x[1]}), (qc, None, x, 0.0)]:
        data = qgt.run([pub]).result()[0].data
        np.testing.assert_allclose(data.qgt, with_z, atol=1e-10)
        np.testing.assert_allclose(data.evs, 1.0, atol=1e-12)  # the identity's
    data = qgt.run([(qc, values)]).result()[0].data
    assert data.qgt.shape == (3, 2, 2) and data.evs.shape == (3,)
    # rx(a) on |0>: 1/4; ry(b) on |0>: 1/4 (independent qubits before the cx)
    np.testing.assert_allclose(data.qgt, np.broadcast_to(np.eye(2) / 4, (3, 2, 2)), atol=1e-10)


# --- an inner pub without parameters is evaluated once ------------------------------------------
def _prepared_layers(n: int = 3, layers: int = 2) -> QuantumCircuit:
    """A fixed preparation (no parameters), then layers of ry / rz and a cx ladder."""
    from qiskit.circuit import ParameterVector

    theta = ParameterVector("t", 2 * n * layers)
    qc = QuantumCircuit(n)
    qc.h(range(n))
    for q in range(n - 1):
        qc.cx(q, q + 1)
    k = 0
    for _ in range(layers):
        for gate in (qc.ry, qc.rz):
            for q in range(n):
                gate(theta[k], q)
                k += 1
        for q in range(n - 1):
            qc.cx(q, q + 1)
    return qc


@pytest.mark.parametrize("metric", ["block_diag", "diag"])
@pytest.mark.parametrize("face", ["QGTEstimator", "GradientEstimator"])
def test_constant_prefix_is_sent_once_and_broadcast(metric, face):
    qc = _prepared_layers()
    values = np.random.default_rng(1).uniform(-1, 1, (4, qc.num_parameters))
    pub = (qc, "ZZI", values)

    def wrap(estimator):
        if face == "QGTEstimator":
            return QGTEstimator(estimator, metric)
        return GradientEstimator(estimator, "param_shift", metric=metric)

    exact = wrap(StatevectorEstimator()).run([pub]).result()[0].data.qgt  # no circuit sent
    result = wrap(AerEstimator()).run([pub]).result()
    np.testing.assert_allclose(result[0].data.qgt, exact, atol=1e-10)
    # 4 layers of 3 rotations: 6 Paulis and products per layer (3 without pairs for diag);
    # the first layer's prefix has no parameters: 1 row instead of 4
    labels = 6 if metric == "block_diag" else 3
    gradient_rows = 0 if face == "QGTEstimator" else 4 * 2 * qc.num_parameters
    expected = 4 + labels * (1 + 3 * 4) + gradient_rows
    assert result.metadata["inner_rows"] == expected


# --- every option checked at construction -------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"method": None}, GradientMethodError, "needs a metric method.*got None"),
        ({"method": 3}, GradientMethodError, "3 is not a metric method"),
        ({"method": "nope"}, GradientMethodError, "unknown metric method 'nope'"),
        ({"max_job_rows": True}, ValueError, "max_job_rows must be a positive integer, got True"),
        ({"max_job_rows": 0}, ValueError, "max_job_rows must be a positive integer, got 0"),
        ({"method": "diag", "epsilon": 0.1}, GradientMethodError, "does not accept.*epsilon"),
        ({"derivative_type": 3}, GradientMethodError, "unknown derivative_type 3"),
        ({"method": "block_diag", "pass_manager": "pm"}, GradientMethodError, "pass_manager"),
        ({"coupling_map": "x"}, GradientMethodError, "coupling_map must be.*got 'x'"),
        ({"method": "reverse", "phase_fix": "yes"}, GradientMethodError, "phase_fix"),
    ],
)
def test_qgt_estimator_options_are_checked_at_construction(kwargs, error, match):
    with pytest.raises(error, match=match):
        QGTEstimator(StatevectorEstimator(), **kwargs)


def test_coupling_map_as_qubit_pairs_is_accepted():
    from qiskit.transpiler import CouplingMap

    qgt = QGTEstimator(StatevectorEstimator(), "lin_comb", coupling_map=[[0, 1], [1, 2]])
    assert isinstance(qgt.metric._lin_comb.placement.coupling, CouplingMap)


def test_metric_options_must_be_a_dict():
    with pytest.raises(TypeError, match="metric_options must be a dict.*got \\[1\\]"):
        GradientEstimator(StatevectorEstimator(), metric="diag", metric_options=[1])
    with pytest.raises(GradientMethodError, match="metric 'diag': phase_fix"):
        GradientEstimator(StatevectorEstimator(), metric="diag", metric_options={"phase_fix": 0})


@pytest.mark.parametrize("face", ["gradient", "qgt", "gradient+metric"])
def test_parameter_free_pub_with_rows_runs_once_on_aer(face):
    qc = QuantumCircuit(1)
    qc.h(0)
    wrapper = {
        "gradient": lambda: GradientEstimator(AerEstimator()),
        "qgt": lambda: QGTEstimator(AerEstimator(), "diag"),
        "gradient+metric": lambda: GradientEstimator(AerEstimator(), metric="block_diag"),
    }[face]()
    result = wrapper.run([(qc, ["X", "Z"], np.zeros((3, 1, 0)))]).result()
    np.testing.assert_allclose(result[0].data.evs, [[1.0, 0.0]] * 3, atol=1e-12)
    assert result[0].data.evs.shape == (3, 2)
    assert result.metadata["inner_rows"] == 2  # one row per observable, not per value row


@pytest.mark.parametrize("facade", ["LinCombQGT", "ReverseQGT"])
def test_seed_compatible_qgt_checks_phase_fix(facade):
    import qprim_grad.gradients as qg

    args = () if facade == "ReverseQGT" else (StatevectorEstimator(),)
    with pytest.raises(GradientMethodError, match=f"{facade}: phase_fix must be True or False"):
        getattr(qg, facade)(*args, phase_fix="False")
