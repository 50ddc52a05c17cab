"""GradientEstimator against independently computed gradients, on real primitives."""

from __future__ import annotations

import numpy as np
import pytest
from _reference import expectation, expectation_gradient
from qiskit import QuantumCircuit
from qiskit.circuit import Gate, Parameter, ParameterVector
from qiskit.circuit.library import XXPlusYYGate, efficient_su2
from qiskit.primitives import BaseEstimatorV2, StatevectorEstimator
from qiskit.quantum_info import SparsePauliOp

from qprim_grad import GradientEstimator, GradientJobError, GradientMethodError

EXACT = {"param_shift": {}, "lin_comb": {}}
APPROX = {
    "finite_diff": {"epsilon": 1e-6},
    "finite_diff_fwd": {"epsilon": 1e-7, "scheme": "forward"},
    "finite_diff_bwd": {"epsilon": 1e-7, "scheme": "backward"},
}
ALL_METHODS = ["param_shift", "lin_comb", "finite_diff", "spsa"]


def _method(name: str) -> tuple[str, dict]:
    options = {**EXACT, **APPROX}.get(name, {})
    return name.split("_fwd")[0].split("_bwd")[0], options


def _gate_circuit(gate: str) -> tuple[QuantumCircuit, list[Parameter]]:
    a, b, c = Parameter("a"), Parameter("b"), Parameter("c")
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.ry(0.4, 1)
    qc.rx(0.3, 0)
    if gate in ("rx", "ry", "rz", "p"):
        getattr(qc, gate)(a, 0)
        getattr(qc, gate)(2 * a + b, 1)
    elif gate in ("rxx", "ryy", "rzz", "rzx", "crx", "cry", "crz", "cp"):
        getattr(qc, gate)(a, 0, 1)
        getattr(qc, gate)(a * b, 1, 0)
    elif gate in ("u", "u3"):
        qc.u(a, b, c, 0)
        qc.u(b, 0.2, a + c, 1)
    elif gate == "r":
        qc.r(a, b, 0)
        qc.r(c, a, 1)
    elif gate == "cu":
        qc.cu(a, b, c, 0.3, 0, 1)
    elif gate == "xx_plus_yy":
        qc.append(XXPlusYYGate(a, b), [0, 1])
    qc.cx(0, 1)
    qc.ry(b, 0)
    return qc, list(qc.parameters)


GATES = ["rx", "ry", "rz", "p", "rxx", "ryy", "rzz", "rzx", "crx", "cry", "crz", "cp", "u", "r"]
GATES += ["cu", "xx_plus_yy"]
OBSERVABLE = SparsePauliOp(["ZZ", "XI", "IY", "XZ"], [1.0, 0.5, -0.3, 0.2])


@pytest.mark.parametrize("gate", GATES)
@pytest.mark.parametrize("method", ["param_shift", "lin_comb", "finite_diff"])
def test_each_gate_family_matches_reference(gate, method):
    circuit, params = _gate_circuit(gate)
    values = np.linspace(0.3, 1.1, len(params))
    name, options = _method(method)
    estimator = GradientEstimator(StatevectorEstimator(), method=name, **options)
    data = estimator.run([(circuit, OBSERVABLE, values)]).result()[0].data
    reference = expectation_gradient(circuit, OBSERVABLE, values)
    tolerance = 1e-8 if method in EXACT else 1e-5
    np.testing.assert_allclose(data.grads, reference, atol=tolerance)
    assert data.grads.shape == (len(params),)
    np.testing.assert_allclose(data.evs, expectation(circuit, OBSERVABLE, values), atol=1e-12)
    np.testing.assert_array_equal(data.grad_stds, 0.0)


ROTATIONS = ["rx", "ry", "rz", "p", "rxx", "ryy", "rzz", "rzx", "crx", "cry", "crz", "cp", "u"]


def _random_circuit(num_qubits: int, depth: int, seed: int) -> QuantumCircuit:
    rng = np.random.default_rng(seed)
    theta = ParameterVector("t", 4)
    pool = list(theta) + [2 * theta[0] - theta[1], theta[2] * theta[3], theta[1] + 0.3]
    qc = QuantumCircuit(num_qubits)
    for _ in range(depth):
        gate = rng.choice(ROTATIONS)
        qubits = [int(q) for q in rng.choice(num_qubits, size=2, replace=False)]
        angle = pool[rng.integers(len(pool))]
        if gate == "u":
            qc.u(angle, pool[rng.integers(len(pool))], 0.1, qubits[0])
        elif gate in ("rx", "ry", "rz", "p"):
            getattr(qc, gate)(angle, qubits[0])
        else:
            getattr(qc, gate)(angle, *qubits)
        if rng.random() < 0.3:
            qc.cx(*qubits)
        if rng.random() < 0.3:
            qc.h(qubits[0])
    for p in theta:  # every parameter appears at least once
        if p not in qc.parameters:
            qc.ry(p, 0)
    return qc


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("method", ["param_shift", "lin_comb"])
def test_random_circuits_exact_methods(seed, method):
    num_qubits = 2 + seed % 4
    circuit = _random_circuit(num_qubits, 10, seed)
    rng = np.random.default_rng(100 + seed)
    values = rng.uniform(-np.pi, np.pi, circuit.num_parameters)
    labels = ["".join(rng.choice(list("IXYZ"), num_qubits)) for _ in range(3)]
    observable = SparsePauliOp(labels, rng.normal(size=3))
    estimator = GradientEstimator(StatevectorEstimator(), method=method)
    grads = estimator.run([(circuit, observable, values)]).result()[0].data.grads
    np.testing.assert_allclose(grads, expectation_gradient(circuit, observable, values), atol=1e-8)


def test_broadcasting_values_and_observables_arrays():
    circuit = efficient_su2(2, reps=1)
    num = circuit.num_parameters
    rng = np.random.default_rng(7)
    values = rng.uniform(-1, 1, (2, 3, num))
    observables = [[SparsePauliOp("ZZ")], [SparsePauliOp(["XI", "IY"], [0.5, 1.0])]]  # (2, 1)
    for method in ["param_shift", "lin_comb", "finite_diff", "spsa"]:
        options = {"seed": 1} if method == "spsa" else {}
        estimator = GradientEstimator(StatevectorEstimator(), method=method, **options)
        data = estimator.run([(circuit, observables, values)]).result()[0].data
        assert data.evs.shape == (2, 3)
        assert data.grads.shape == (2, 3, num)
        assert data.grad_stds.shape == (2, 3, num)
        if method == "spsa":
            continue
        for i in range(2):
            for j in range(3):
                reference = expectation_gradient(circuit, observables[i][0], values[i, j])
                np.testing.assert_allclose(data.grads[i, j], reference, atol=1e-5)


def test_observable_array_broadcast_against_single_parameter_row():
    circuit = efficient_su2(2, reps=1)
    values = np.linspace(0, 1, circuit.num_parameters)
    observables = ["ZI", "IZ", "XX"]
    data = GradientEstimator(StatevectorEstimator()).run([(circuit, observables, values)])
    data = data.result()[0].data
    assert data.grads.shape == (3, circuit.num_parameters)
    for k, label in enumerate(observables):
        np.testing.assert_allclose(
            data.grads[k], expectation_gradient(circuit, label, values), atol=1e-8
        )


def test_parameters_subset_in_given_order_and_per_pub():
    circuit, params = _gate_circuit("u")
    a, b, c = params
    values = [0.2, 0.9, 0.4]
    estimator = GradientEstimator(StatevectorEstimator())
    reference = expectation_gradient(circuit, OBSERVABLE, values, [c, a])
    result = estimator.run([(circuit, OBSERVABLE, values)], parameters=[c, a]).result()
    np.testing.assert_allclose(result[0].data.grads, reference, atol=1e-8)
    assert result[0].metadata["parameters"] == [c, a]
    per_pub = estimator.run(
        [(circuit, OBSERVABLE, values), (circuit, OBSERVABLE, values)], parameters=[[b], None]
    ).result()
    assert per_pub[0].data.grads.shape == (1,)
    assert per_pub[1].data.grads.shape == (3,)


def test_spsa_is_reproducible_and_unbiased_on_average():
    circuit = efficient_su2(2, reps=1)
    values = np.linspace(0.1, 0.9, circuit.num_parameters)
    run = lambda seed, batch: (  # noqa: E731
        GradientEstimator(StatevectorEstimator(), method="spsa", seed=seed, batch_size=batch)
        .run([(circuit, "ZZ", values)])
        .result()[0]
        .data.grads
    )
    np.testing.assert_array_equal(run(3, 2), run(3, 2))
    assert not np.allclose(run(3, 2), run(4, 2))
    reference = expectation_gradient(circuit, "ZZ", values)
    batch = 4000
    estimate = run(5, batch)
    # each entry: g_j + sum_{k != j} d_j d_k g_k averaged over the batch
    spread = np.sqrt((np.sum(reference**2) - reference**2) / batch)
    assert np.all(np.abs(estimate - reference) <= 5 * spread + 1e-6)


def test_one_inner_job_for_all_pubs(mocker):
    inner = StatevectorEstimator()
    spy = mocker.spy(inner, "run")
    circuit = efficient_su2(2, reps=1)
    pubs = [(circuit, "ZZ", np.zeros(circuit.num_parameters)), (circuit, ["XX", "YY"], [0.3] * 8)]
    for method in ALL_METHODS:
        spy.reset_mock()
        job = GradientEstimator(inner, method=method).run(pubs)
        job.result()
        assert spy.call_count == 1, method
        assert job.result()[0].metadata["inner_job_ids"] == job.inner_job_ids


def test_isa_style_circuit_reaches_inner_primitive_unchanged(mocker):
    theta = ParameterVector("t", 2)
    circuit = QuantumCircuit(2)
    circuit.rz(theta[0], 0)
    circuit.sx(0)
    circuit.rz(theta[1], 1)
    circuit.ecr(0, 1)
    inner = StatevectorEstimator()
    spy = mocker.spy(inner, "run")
    for method in ["param_shift", "finite_diff", "spsa"]:
        GradientEstimator(inner, method=method).run([(circuit, "ZX", [0.3, 0.5])]).result()
        pubs = spy.call_args.args[0]
        assert all(pub.circuit is circuit for pub in pubs), method


def test_metadata_names_method_options_and_jobs():
    circuit = efficient_su2(2, reps=1)
    estimator = GradientEstimator(StatevectorEstimator(), method="finite_diff", epsilon=1e-3)
    job = estimator.run([(circuit, "ZZ", np.zeros(8))])
    result = job.result()
    meta = result[0].metadata
    assert meta["method"] == "finite_diff"
    assert meta["method_options"] == {"epsilon": 1e-3, "scheme": "central"}
    assert meta["inner_job_ids"] and meta["inner_job_ids"] == job.inner_job_ids
    assert "target_precision" in meta  # the inner estimator's metadata is kept


def test_gradient_estimator_is_a_v2_estimator():
    estimator = GradientEstimator(StatevectorEstimator(default_precision=0.01))
    assert isinstance(estimator, BaseEstimatorV2)
    assert estimator.default_precision == 0.01  # forwarded to the wrapped estimator


def test_circuit_without_parameters_gives_empty_gradient():
    circuit = QuantumCircuit(1)
    circuit.h(0)
    data = GradientEstimator(StatevectorEstimator()).run([(circuit, "X")]).result()[0].data
    assert data.grads.shape == (0,)
    assert float(data.evs) == pytest.approx(1.0)


# --- errors -----------------------------------------------------------------------------


def test_error_parameter_not_in_circuit():
    circuit, _ = _gate_circuit("rx")
    with pytest.raises(ValueError, match="'zeta' is not a parameter of the circuit"):
        GradientEstimator(StatevectorEstimator()).run(
            [(circuit, "ZZ", [0.1, 0.2])], parameters=[Parameter("zeta")]
        )


def test_error_names_gate_that_cannot_be_differentiated():
    theta = Parameter("theta")
    circuit = QuantumCircuit(1)
    circuit.append(Gate("mystery", 1, [theta]), [0])
    for method in ["param_shift", "lin_comb"]:
        with pytest.raises(GradientMethodError, match="'mystery'.*finite_diff"):
            GradientEstimator(StatevectorEstimator(), method=method).run([(circuit, "Z", [0.1])])


@pytest.mark.parametrize(
    "method, options, message",
    [
        ("finite_diff", {"epsilon": 0}, "epsilon must be a positive"),
        ("finite_diff", {"epsilon": -1e-3}, "epsilon must be a positive"),
        ("finite_diff", {"scheme": "sideways"}, "unknown finite-difference scheme 'sideways'"),
        ("spsa", {"epsilon": 0.0}, "epsilon must be a positive"),
        ("spsa", {"batch_size": 0}, "batch_size must be a positive"),
        ("lin_comb", {"derivative_type": "diagonal"}, "unknown derivative_type"),
        ("param_shift", {"epsilon": 0.1}, "does not accept options"),
        ("magic", {}, "unknown gradient method 'magic'; known methods: .*param_shift"),
    ],
)
def test_error_invalid_options(method, options, message):
    with pytest.raises(GradientMethodError, match=message):
        GradientEstimator(StatevectorEstimator(), method=method, **options)


def test_error_values_last_axis_mismatch():
    circuit, _ = _gate_circuit("rx")  # two parameters
    with pytest.raises(ValueError, match="pub 0"):
        GradientEstimator(StatevectorEstimator()).run([(circuit, "ZZ", [[0.1, 0.2, 0.3]])])


class _FailingEstimator(BaseEstimatorV2):
    def run(self, pubs, *, precision=None):
        job = StatevectorEstimator().run(pubs, precision=precision)

        def fail():
            raise RuntimeError("backend exploded")

        job.result = fail
        return job


def test_error_failed_inner_job_is_raised_from_result_with_cause():
    circuit, _ = _gate_circuit("rx")
    job = GradientEstimator(_FailingEstimator()).run([(circuit, "ZZ", [0.1, 0.2])])
    with pytest.raises(GradientJobError, match=r"pub 0\b.*backend exploded") as info:
        job.result()
    assert isinstance(info.value.__cause__, RuntimeError)


def test_error_unbound_parameters_are_named():
    a, b = Parameter("a"), Parameter("b")
    circuit = QuantumCircuit(1)
    circuit.ry(a, 0)
    circuit.rz(b, 0)
    estimator = GradientEstimator(StatevectorEstimator())
    with pytest.raises(ValueError, match=r"pub 0: .*Unbound parameters: \['b'\]"):
        estimator.run([(circuit, "Z", {"a": 0.1})])
    with pytest.raises(ValueError, match=r"pub 0: .*parameters, in order: \['a', 'b'\]"):
        estimator.run([(circuit, "Z")])


def test_error_a_sampler_is_not_an_estimator():
    from qiskit.primitives import StatevectorSampler

    with pytest.raises(TypeError, match="use GradientSampler"):
        GradientEstimator(StatevectorSampler())


def test_evs_and_stds_are_the_inner_estimators_own_with_a_seeded_primitive():
    circuit = efficient_su2(2, reps=1)
    rng = np.random.default_rng(4)
    pubs = [
        (circuit, "ZZ", rng.uniform(size=8)),
        (circuit, ["XX", "YZ"], rng.uniform(size=(3, 1, 8))),
    ]
    alone = StatevectorEstimator(default_precision=0.05, seed=9).run(pubs).result()
    inner = StatevectorEstimator(default_precision=0.05, seed=9)
    wrapped = GradientEstimator(inner).run(pubs).result()
    for mine, theirs in zip(wrapped, alone):
        np.testing.assert_array_equal(mine.data.evs, theirs.data.evs)
        np.testing.assert_array_equal(mine.data.stds, theirs.data.stds)


def test_only_named_primitive_attributes_are_forwarded():
    estimator = GradientEstimator(StatevectorEstimator(default_precision=0.01, seed=3))
    assert estimator.default_precision == 0.01
    assert estimator.face.primitive is estimator.estimator
    with pytest.raises(AttributeError, match="'GradientEstimator' object has no attribute 'seed'"):
        _ = estimator.seed  # an attribute of the wrapped estimator, not forwarded
