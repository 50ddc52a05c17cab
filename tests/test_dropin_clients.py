"""qiskit-algorithms' and qiskit-machine-learning's own clients run unchanged with
our classes and give what they give with their own (each test runs the real client twice)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from _reference import probability_gradient
from qiskit import ClassicalRegister, QuantumCircuit
from qiskit.circuit import Parameter, ParameterVector
from qiskit.circuit.library import efficient_su2, real_amplitudes
from qiskit.primitives import StatevectorEstimator, StatevectorSampler
from qiskit.primitives.containers import EstimatorPub
from qiskit.quantum_info import SparsePauliOp

import qprim_grad.gradients as ours
from qprim_grad import GradientEstimator, GradientJobError, GradientSampler
from qprim_grad.optimizers import SPSA

qa = pytest.importorskip("qiskit_algorithms")
theirs = pytest.importorskip("qiskit_algorithms.gradients")
qa_opt = pytest.importorskip("qiskit_algorithms.optimizers")
qml_primitives = pytest.importorskip("qiskit_machine_learning.primitives")

from qiskit_algorithms.utils import algorithm_globals  # noqa: E402

HAMILTONIAN = SparsePauliOp.from_list([("ZZ", 1.0), ("XI", 0.4), ("IX", -0.3)])


class CountingEstimator(StatevectorEstimator):
    """A StatevectorEstimator that counts its jobs."""

    def __init__(self) -> None:
        super().__init__()
        self.jobs = 0

    def run(self, pubs, *, precision=None):
        self.jobs += 1
        return super().run(pubs, precision=precision)


class CountingSampler(StatevectorSampler):
    """A seeded StatevectorSampler that counts its jobs."""

    def __init__(self, seed: int = 5) -> None:
        super().__init__(seed=seed)
        self.jobs = 0

    def run(self, pubs, *, shots=None):
        self.jobs += 1
        return super().run(pubs, shots=shots)


def _seeded(seed: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        algorithm_globals.random_seed = seed


def _two_registers() -> QuantumCircuit:
    a, b = Parameter("a"), Parameter("b")
    circuit = QuantumCircuit(2)
    circuit.add_register(ClassicalRegister(1, "x"))
    circuit.add_register(ClassicalRegister(1, "y"))
    circuit.ry(a, 0)
    circuit.rx(b, 1)
    circuit.cx(0, 1)
    circuit.ry(2 * a, 1)  # a shared parameter: a rewritten (replacement) centre
    circuit.measure(0, 0)
    circuit.measure(1, 1)
    return circuit


# --- exact-probability samplers ------------------------------------------------------------------
def test_facade_on_qml_default_sampler_gives_exact_gradients():
    theta = Parameter("theta")
    circuit = QuantumCircuit(1)
    circuit.ry(theta, 0)
    circuit.measure_all()
    got = ours.ParamShiftSamplerGradient(qml_primitives.QMLSampler()).run([circuit], [[0.7]])
    gradient = got.result().gradients[0][0]
    want = probability_gradient(circuit, [0.7])[0]
    assert gradient == pytest.approx({0: want[0], 1: want[1]}, abs=1e-12)


@pytest.mark.parametrize("method", ["param_shift", "lin_comb", "finite_diff"])
def test_gradient_sampler_on_exact_probabilities(method):
    circuit = _two_registers()
    values = np.array([[0.7, 0.2], [-0.4, 1.1]])
    sampler = GradientSampler(qml_primitives.QMLSampler(), method, max_job_rows=3)
    result = sampler.run([(circuit, values)]).result()[0]
    want = np.stack([probability_gradient(circuit, v) for v in values])
    atol = 1e-5 if method == "finite_diff" else 1e-12
    np.testing.assert_allclose(result.data.grads.to_dense(), want, atol=atol)
    assert not np.any(result.data.grad_stds.values)  # exact: no shot noise
    assert len(result.metadata["inner_job_ids"]) > 1  # split jobs are joined as well
    assert result.data.x.get_probabilities(0)  # the sampler's own containers come back


def test_unknown_register_type_is_named():
    class ListSampler(StatevectorSampler):
        def run(self, pubs, *, shots=None):
            from qiskit.primitives import DataBin, PrimitiveJob, PrimitiveResult
            from qiskit.primitives.containers import SamplerPubResult

            results = super().run(pubs, shots=shots).result()
            out = PrimitiveResult(
                [SamplerPubResult(DataBin(meas=[0, 1], shape=r.data.shape)) for r in results]
            )
            job = PrimitiveJob(lambda: out)
            job._submit()
            return job

    circuit = QuantumCircuit(1)
    circuit.ry(Parameter("t"), 0)
    circuit.measure_all()
    with pytest.raises(GradientJobError, match="register 'meas'.*builtins.list.*BitArray"):
        GradientSampler(ListSampler()).run([(circuit, [0.3])]).result()


def test_sampler_qnn_with_default_sampler_equals_theirs():
    qml_nn = pytest.importorskip("qiskit_machine_learning.neural_networks")
    qml_grad = pytest.importorskip("qiskit_machine_learning.gradients")
    x, w = ParameterVector("x", 2), ParameterVector("w", 3)
    circuit = QuantumCircuit(2)
    circuit.rx(x[0], 0)
    circuit.rx(x[1], 1)
    circuit.ry(w[0], 0)
    circuit.cx(0, 1)
    circuit.ry(w[1], 1)
    circuit.rz(w[2], 0)
    circuit.ry(w[2], 0)
    circuit.measure_all()

    def qnn(gradient_class):
        network = qml_nn.SamplerQNN(
            circuit=circuit, input_params=list(x), weight_params=list(w), input_gradients=True
        )  # no sampler given: qiskit-machine-learning's exact default sampler
        assert isinstance(network.sampler, qml_primitives.QMLSampler)  # exact by default
        network.gradient = gradient_class(network.sampler)
        return network

    inputs, weights = np.array([[0.1, -0.4], [0.7, 0.2]]), np.array([0.3, -0.2, 0.8])
    want = qnn(qml_grad.ParamShiftSamplerGradient).backward(inputs, weights)
    got = qnn(ours.ParamShiftSamplerGradient).backward(inputs, weights)
    for g, t in zip(got, want):
        np.testing.assert_allclose(g, t, atol=1e-12)


# --- DerivativeType ------------------------------------------------------------------------------
def test_derivative_type_members_equal_theirs():
    for member in ours.DerivativeType:
        other = theirs.DerivativeType[member.name]
        assert member == other and other == member
        assert hash(member) == hash(other) and {other: 1}[member] == 1
        assert ours.DerivativeType(other) is member
        assert ours.as_derivative_type(member.value.upper()) is member
    assert ours.DerivativeType.REAL != theirs.DerivativeType.IMAG
    with pytest.raises(ValueError, match="unknown derivative type 'both'"):
        ours.as_derivative_type("both")


def _qgt_circuit() -> QuantumCircuit:
    a, b = Parameter("a"), Parameter("b")
    circuit = QuantumCircuit(2)
    circuit.ry(a, 0)
    circuit.rx(b, 1)
    circuit.cx(0, 1)
    circuit.rz(a, 1)
    return circuit


@pytest.mark.parametrize("name", ["REAL", "IMAG", "COMPLEX"])
def test_their_qgts_take_our_derivative_type(name):
    circuit, values = _qgt_circuit(), [[0.3, 0.4]]
    reference = theirs.ReverseQGT(derivative_type=theirs.DerivativeType[name])
    want = reference.run([circuit], values).result().qgts[0]
    for qgt in [
        theirs.LinCombQGT(StatevectorEstimator(), derivative_type=ours.DerivativeType[name]),
        theirs.ReverseQGT(derivative_type=ours.DerivativeType[name]),
    ]:
        np.testing.assert_allclose(qgt.run([circuit], values).result().qgts[0], want, atol=1e-10)


@pytest.mark.parametrize("name", ["REAL", "IMAG", "COMPLEX"])
def test_our_gradients_take_their_derivative_type(name):
    circuit, values = _qgt_circuit(), [[0.3, 0.4]]
    observable = SparsePauliOp.from_list([("ZZ", 1.0), ("XY", 0.3)])
    reference = theirs.ReverseEstimatorGradient(derivative_type=theirs.DerivativeType[name])
    want = reference.run([circuit], [observable], values).result().gradients[0]
    their_type = theirs.DerivativeType[name]
    for gradient in [
        ours.LinCombEstimatorGradient(StatevectorEstimator(), derivative_type=their_type),
        ours.ReverseEstimatorGradient(derivative_type=their_type),
        ours.ReverseEstimatorGradient(derivative_type=name.lower()),
    ]:
        got = gradient.run([circuit], [observable], values).result().gradients[0]
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, atol=1e-10)
    primitive = GradientEstimator(StatevectorEstimator(), "lin_comb", derivative_type=their_type)
    grads = primitive.run([(circuit, observable, values[0])]).result()[0].data.grads
    np.testing.assert_allclose(grads, want, atol=1e-10)


# --- optimizers inside qiskit-algorithms' clients ------------------------------------------------
def test_our_spsa_passes_their_optimizer_checks():
    qml_opt = pytest.importorskip("qiskit_machine_learning.optimizers")
    assert isinstance(SPSA(), qa_opt.Optimizer) and isinstance(SPSA(), qa_opt.SPSA)
    assert isinstance(SPSA(), qml_opt.Optimizer) and isinstance(SPSA(), qml_opt.SPSA)
    assert not callable(SPSA())  # VQE would otherwise call it and never batch


def test_pvqd_with_our_spsa_equals_theirs():
    from qiskit_algorithms.state_fidelities import ComputeUncompute

    ansatz = efficient_su2(2, reps=1)

    def evolve(optimizer):
        _seeded(3)
        pvqd = qa.PVQD(
            ComputeUncompute(StatevectorSampler(seed=1)),
            ansatz,
            np.full(ansatz.num_parameters, 0.1),
            StatevectorEstimator(),
            optimizer=optimizer,
            num_timesteps=2,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy's sparse-format notices
            return pvqd.evolve(qa.TimeEvolutionProblem(HAMILTONIAN, time=0.2))

    options = {"maxiter": 3, "learning_rate": 0.1, "perturbation": 0.1}
    want = evolve(qa_opt.SPSA(**options))
    got = evolve(SPSA(**options))  # seed=None: algorithm_globals, as theirs
    np.testing.assert_allclose(got.parameters, want.parameters, atol=1e-12)


def _vqe(optimizer, gradient=None):
    estimator = CountingEstimator()
    vqe = qa.VQE(
        estimator,
        real_amplitudes(2, reps=1),
        optimizer,
        gradient=gradient,
        initial_point=np.full(4, 0.3),
    )
    _seeded(11)
    return vqe.compute_minimum_eigenvalue(HAMILTONIAN), estimator.jobs


@pytest.mark.parametrize("blocking", [False, True])
def test_vqe_with_our_spsa_batches_like_theirs(blocking):
    want, want_jobs = _vqe(qa_opt.SPSA(maxiter=5, blocking=blocking))
    spsa = SPSA(maxiter=5, blocking=blocking)
    got, got_jobs = _vqe(spsa)
    # calibration 1, (blocking: start value 1, noise estimate 1,) per iteration 1 (+1), final 1
    assert got_jobs == want_jobs == 5 * (1 + blocking) + 2 + 2 * blocking
    assert got.eigenvalue == want.eigenvalue  # bit-identical iterates
    np.testing.assert_array_equal(got.optimal_point, want.optimal_point)
    assert spsa._max_evals_grouped is None  # VQE restores what it set


def test_vqe_with_our_qnspsa_equals_theirs():
    from qprim_grad.optimizers import QNSPSA

    ansatz = real_amplitudes(2, reps=1)

    def run(cls):
        sampler, estimator = CountingSampler(seed=3), CountingEstimator()
        optimizer = cls(
            cls.get_fidelity(ansatz, sampler), maxiter=4, learning_rate=0.1, perturbation=0.1
        )
        _seeded(7)
        vqe = qa.VQE(estimator, ansatz, optimizer, initial_point=np.full(4, 0.3))
        return vqe.compute_minimum_eigenvalue(HAMILTONIAN).eigenvalue, estimator.jobs, sampler.jobs

    assert run(QNSPSA) == run(qa_opt.QNSPSA)  # same value, estimator and sampler job counts


def test_vqe_with_aqgd_and_our_gradient_equals_theirs():
    want, _ = _vqe(
        qa_opt.AQGD(maxiter=4), theirs.ParamShiftEstimatorGradient(StatevectorEstimator())
    )
    got, _ = _vqe(qa_opt.AQGD(maxiter=4), ours.ParamShiftEstimatorGradient(StatevectorEstimator()))
    assert got.eigenvalue == pytest.approx(want.eigenvalue, abs=1e-10)
    np.testing.assert_allclose(got.optimal_point, want.optimal_point, atol=1e-10)


def test_sampling_vqe_with_our_spsa_batches_like_theirs():
    diagonal = SparsePauliOp.from_list([("ZZ", 1.0), ("ZI", -0.5)])
    ansatz = real_amplitudes(2, reps=1)

    def run(optimizer):
        sampler = CountingSampler()
        vqe = qa.SamplingVQE(sampler, ansatz, optimizer, initial_point=np.full(4, 0.3))
        _seeded(2)
        return vqe.compute_minimum_eigenvalue(diagonal), sampler.jobs

    want, want_jobs = run(qa_opt.SPSA(maxiter=4))
    got, got_jobs = run(SPSA(maxiter=4))
    assert got_jobs == want_jobs <= 4 + 3
    assert got.eigenvalue == want.eigenvalue


def test_vqd_with_our_spsa_batches_like_theirs():
    from qiskit_algorithms.state_fidelities import ComputeUncompute

    def run(optimizer):
        estimator = CountingEstimator()
        vqd = qa.VQD(
            estimator,
            ComputeUncompute(StatevectorSampler(seed=1)),
            real_amplitudes(2, reps=1),
            optimizer,
            k=2,
            initial_point=np.full(4, 0.3),
        )
        _seeded(4)
        return vqd.compute_eigenvalues(HAMILTONIAN), estimator.jobs

    want, want_jobs = run(qa_opt.SPSA(maxiter=3))
    got, got_jobs = run(SPSA(maxiter=3))
    assert got_jobs == want_jobs
    np.testing.assert_array_equal(got.eigenvalues, want.eigenvalues)


def test_qml_trainer_with_our_spsa_equals_theirs():
    qml_nn = pytest.importorskip("qiskit_machine_learning.neural_networks")
    qml_alg = pytest.importorskip("qiskit_machine_learning.algorithms")
    qml_opt = pytest.importorskip("qiskit_machine_learning.optimizers")
    from qiskit_machine_learning.utils import algorithm_globals as qml_globals

    x, w = ParameterVector("x", 2), ParameterVector("w", 2)
    circuit = QuantumCircuit(2)
    circuit.ry(x[0], 0)
    circuit.ry(x[1], 1)
    circuit.cx(0, 1)
    circuit.ry(w[0], 0)
    circuit.ry(w[1], 1)
    features = np.array([[0.1, 0.5], [1.2, -0.3], [-0.7, 0.9], [0.4, 0.4]])
    labels = np.array([1, -1, 1, -1])

    def fit(optimizer):
        estimator = CountingEstimator()
        qnn = qml_nn.EstimatorQNN(
            circuit=circuit,
            estimator=estimator,
            observables=SparsePauliOp("ZZ"),
            input_params=list(x),
            weight_params=list(w),
            default_precision=0.0,
        )
        classifier = qml_alg.NeuralNetworkClassifier(
            qnn, optimizer=optimizer, initial_point=np.array([0.2, -0.1])
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            qml_globals.random_seed = 9
        classifier.fit(features, labels)
        return classifier.weights, estimator.jobs

    options = {"maxiter": 4, "learning_rate": 0.1, "perturbation": 0.1}
    _seeded(None)  # only qiskit-machine-learning's global generator is seeded
    want, want_jobs = fit(qml_opt.SPSA(**options))
    got, got_jobs = fit(SPSA(**options))  # seed=None: their global generator, in their order
    np.testing.assert_array_equal(got, want)
    assert got_jobs == want_jobs  # their objective takes one point per call: no batching
    explicit, _ = fit(SPSA(seed=9, **options))  # seed= wins; default_rng(9) is their stream
    np.testing.assert_array_equal(explicit, want)


def test_seed_none_follows_algorithm_globals_and_seed_wins():
    def quadratic(x):
        return float(np.sum((x - 0.5) ** 2))

    x0 = np.array([0.1, -0.3, 0.7])
    _seeded(21)
    want = qa_opt.SPSA(maxiter=6).minimize(quadratic, x0)
    _seeded(21)
    got = SPSA(maxiter=6).minimize(quadratic, x0)
    np.testing.assert_array_equal(got.x, want.x)
    _seeded(21)
    explicit = SPSA(maxiter=6, seed=5).minimize(quadratic, x0)
    assert not np.array_equal(explicit.x, want.x)
    np.testing.assert_array_equal(explicit.x, SPSA(maxiter=6, seed=5).minimize(quadratic, x0).x)


# --- variational time evolution ------------------------------------------------------------------
def test_gradient_carries_their_attributes_and_honours_a_changed_type():
    estimator = StatevectorEstimator()
    gradient = ours.LinCombEstimatorGradient(estimator)
    assert gradient._estimator is estimator
    circuit, values = _qgt_circuit(), [[0.3, 0.4]]
    observable = SparsePauliOp.from_list([("ZZ", 1.0), ("XY", 0.3)])
    real = gradient.run([circuit], [observable], values).result().gradients[0]
    gradient._derivative_type = theirs.DerivativeType.IMAG  # as their McLachlan principle does
    imag = gradient.run([circuit], [observable], values).result().gradients[0]
    want = theirs.ReverseEstimatorGradient(derivative_type=theirs.DerivativeType.IMAG)
    np.testing.assert_allclose(
        imag, want.run([circuit], [observable], values).result().gradients[0], atol=1e-10
    )
    assert not np.allclose(real, imag)
    assert gradient.derivative_type is ours.DerivativeType.IMAG
    sampler = StatevectorSampler()
    assert ours.ParamShiftSamplerGradient(sampler)._sampler is sampler
    shift = ours.ParamShiftEstimatorGradient(estimator)
    shift._derivative_type = "imag"
    with pytest.raises(ValueError, match="real derivatives only.*LinCombEstimatorGradient"):
        shift.run([circuit], [observable], values)


def _evolution_problem(time_dependent: bool):
    if not time_dependent:
        return qa.TimeEvolutionProblem(HAMILTONIAN, 0.3, aux_operators=[HAMILTONIAN])
    t = Parameter("t")  # zero at t=0: the first step sees an all-zero observable
    hamiltonian = SparsePauliOp(["ZZ", "XI"], [t, 0.5 * t])
    return qa.TimeEvolutionProblem(hamiltonian, 0.3, t_param=t)


@pytest.mark.parametrize(
    "kind, time_dependent", [("imaginary", False), ("real", False), ("real", True)]
)
def test_var_qite_qrte_with_our_gradient_equals_theirs(kind, time_dependent):
    from qiskit_algorithms.time_evolvers import variational

    ansatz = efficient_su2(2, reps=1)
    x0 = np.linspace(0.1, 0.8, ansatz.num_parameters)
    principle = {
        "imaginary": variational.ImaginaryMcLachlanPrinciple,
        "real": variational.RealMcLachlanPrinciple,
    }[kind]
    evolver = qa.VarQITE if kind == "imaginary" else qa.VarQRTE

    def evolve(module):
        gradient = module.LinCombEstimatorGradient(StatevectorEstimator())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "changed to imaginary" notice
            chosen = principle(gradient=gradient)
        run = evolver(ansatz, x0, chosen, StatevectorEstimator(), num_timesteps=3)
        return np.array(run.evolve(_evolution_problem(time_dependent)).parameter_values)

    want, got = evolve(theirs), evolve(ours)
    np.testing.assert_allclose(got, want, atol=1e-10)
    assert np.abs(got[-1] - x0).max() > 1e-3  # it did evolve (no swallowed error)


def test_zero_observable_gives_zero_gradients():
    circuit = _qgt_circuit()
    zero = SparsePauliOp(["ZZ", "ZZ"], [0.5, -0.5])
    for cls in [ours.LinCombEstimatorGradient, ours.ParamShiftEstimatorGradient]:
        result = cls(StatevectorEstimator()).run(
            [circuit, circuit], [zero, HAMILTONIAN], [[0.3, 0.4]] * 2
        )
        gradients = result.result().gradients
        np.testing.assert_array_equal(gradients[0], [0.0, 0.0])
        assert np.any(gradients[1])


# --- qiskit-algorithms' gradient names -----------------------------------------------------------
def test_reverse_estimator_gradient_in_vqe_equals_theirs():
    from qiskit_algorithms.optimizers import L_BFGS_B

    want, _ = _vqe(L_BFGS_B(maxiter=10), theirs.ReverseEstimatorGradient())
    got, _ = _vqe(L_BFGS_B(maxiter=10), ours.ReverseEstimatorGradient())
    assert got.eigenvalue == pytest.approx(want.eigenvalue, abs=1e-10)
    assert set(theirs.__all__) <= set(ours.__all__)  # every name of theirs


# --- estimator wrappers written for tuples -------------------------------------------------------
def test_inner_pubs_index_like_tuples_and_stay_pubs():
    seen = []

    class TupleWrapper(StatevectorEstimator):
        def run(self, pubs, *, precision=None):
            pubs = list(pubs)
            seen.extend(pubs)
            circuit, observables, values, _ = pubs[0]  # unpacks like a tuple
            assert pubs[0][0] is circuit and len(pubs[0]) == 4
            return super().run([(p[0], p[1], p[2], p[3]) for p in pubs], precision=precision)

    circuit = real_amplitudes(2, reps=1)
    values = np.linspace(0, 1, 4)
    got = GradientEstimator(TupleWrapper()).run([(circuit, "ZZ", values)]).result()[0]
    want = GradientEstimator(StatevectorEstimator()).run([(circuit, "ZZ", values)]).result()[0]
    np.testing.assert_allclose(got.data.grads, want.data.grads, atol=1e-12)
    assert all(isinstance(pub, EstimatorPub) for pub in seen)
    assert EstimatorPub.coerce(seen[0]) is seen[0]  # no second coercion


def test_registration_and_result_type_do_not_depend_on_import_order():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from qprim_grad.optimizers import SPSA\n"
        "result = SPSA(maxiter=1, seed=1).minimize(lambda x: float(x @ x), [0.5, 0.5])\n"
        "from qiskit_algorithms.optimizers import SPSA as QA, OptimizerResult\n"
        "from qiskit_machine_learning.optimizers import SPSA as QML\n"
        "assert isinstance(SPSA(), QA) and isinstance(SPSA(), QML)\n"
        "assert type(result) is OptimizerResult, type(result)\n"
    )
    for first in ["", "import qiskit_algorithms.optimizers\n"]:
        subprocess.run([sys.executable, "-c", first + code], check=True, timeout=120)
    assert not any(type(f).__module__.startswith("qprim_grad") for f in sys.meta_path)


def test_derivative_type_equals_only_the_peers_enums():
    from enum import Enum

    class DerivativeType(Enum):  # same name and values, not a peer's enum
        REAL = "real"

    assert ours.DerivativeType.REAL != DerivativeType.REAL
    assert DerivativeType.REAL != ours.DerivativeType.REAL
    qml_type = pytest.importorskip("qiskit_machine_learning.gradients").DerivativeType
    for member in ours.DerivativeType:
        assert (
            member == qml_type[member.name] and ours.DerivativeType(qml_type[member.name]) is member
        )
    with pytest.raises(ValueError, match="unknown derivative type"):
        ours.DerivativeType(DerivativeType.REAL)
