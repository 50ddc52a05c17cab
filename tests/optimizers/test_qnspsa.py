"""QN-SPSA: the iterates of qiskit-algorithms' QNSPSA for a plain loss and the same random
stream; one estimator job and one sampler job per iteration with EstimatorLoss and
``get_fidelity`` (counted with spies on the real primitives); checkpoint/resume; interfaces."""

import warnings

import numpy as np
import pytest
from _failures import Boom, failing_at
from qiskit.circuit.library import real_amplitudes
from qiskit.primitives import StatevectorEstimator, StatevectorSampler
from qiskit.quantum_info import Statevector

from qprim_grad.optimizers import QNSPSA, SPSA, EstimatorLoss, SPSAState

GAINS = {"learning_rate": 0.2, "perturbation": 0.1}
MAXITER = 5


def exact_fidelity(circuit):
    """An independent exact fidelity ``|<ψ(x)|ψ(y)>|^2`` (one or many pairs per call)."""

    def state(x):
        return Statevector(circuit.assign_parameters(np.asarray(x, dtype=float)))

    def fidelity(xs, ys):
        xs = np.reshape(np.asarray(xs, dtype=float), (-1, circuit.num_parameters))
        ys = np.reshape(np.asarray(ys, dtype=float), (-1, circuit.num_parameters))
        return np.array([abs(state(a).inner(state(b))) ** 2 for a, b in zip(xs, ys)])

    return fidelity


@pytest.fixture
def fidelity(circuit):
    return exact_fidelity(circuit)


@pytest.fixture
def plain_loss(loss):
    """The EstimatorLoss as a plain callable (2-D input: several points, as grouping sends)."""
    return lambda x: loss.batch(x) if np.ndim(x) == 2 else loss(x)


# ---- parity with qiskit-algorithms ---------------------------------------------------------
CASES = {
    "calibrated_blocking": {},
    "no_blocking": {"blocking": False, **GAINS},
    "resamplings_delay": {"resamplings": {1: 3, 3: 2}, "hessian_delay": 2, **GAINS},
    "pert_dims": {"perturbation_dims": 2, "regularization": 0.1, **GAINS},
    "gains_array": {"learning_rate": np.linspace(0.3, 0.1, 6), "perturbation": 0.05},
    "fixed_increase": {"allowed_increase": 0.01, "initial_hessian": 2 * np.eye(4), **GAINS},
}


PARITY = [(options, None) for options in CASES.values()] + [
    (CASES["calibrated_blocking"], 3),
    (CASES["resamplings_delay"], 3),
]
IDS = list(CASES) + ["calibrated_blocking-grouped", "resamplings_delay-grouped"]


@pytest.mark.parametrize("options, grouped", PARITY, ids=IDS)
def test_same_iterates_as_qiskit_algorithms(options, grouped, plain_loss, fidelity, x0):
    qa = pytest.importorskip("qiskit_algorithms.optimizers")
    from qiskit_algorithms.utils import algorithm_globals

    def run(optimizer):
        if grouped:
            optimizer.set_max_evals_grouped(grouped)
        return optimizer.minimize(plain_loss, x0)

    theirs_cb, ours_cb = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        algorithm_globals.random_seed = 11
        theirs = run(qa.QNSPSA(fidelity, 6, callback=lambda *a: theirs_cb.append(a), **options))
    ours = run(QNSPSA(fidelity, 6, seed=11, callback=lambda *a: ours_cb.append(a), **options))
    np.testing.assert_allclose(ours.x, theirs.x, atol=1e-10)
    assert ours.fun == pytest.approx(theirs.fun, abs=1e-10)
    assert (ours.nfev, ours.nit) == (theirs.nfev, theirs.nit)
    assert len(ours_cb) == len(theirs_cb) > 0
    for a, b in zip(ours_cb, theirs_cb):
        assert (a[0], a[4]) == (b[0], b[4])
        np.testing.assert_allclose(a[1], b[1], atol=1e-10)
        assert a[2] == pytest.approx(b[2], abs=1e-10)
        assert a[3] == pytest.approx(b[3], abs=1e-10)


def test_batched_equals_sequential_without_blocking(loss, plain_loss, circuit, x0):
    """The batched schedule (EstimatorLoss + get_fidelity) takes the same steps as the
    sequential one when blocking is off and the fidelity is exact."""
    exact = exact_fidelity(circuit)

    class Submitting:  # the exact fidelity with the submit interface of get_fidelity's
        def __call__(self, xs, ys):
            return exact(xs, ys)

        def submit(self, xs, ys):
            values = exact(xs, ys)
            return type("Job", (), {"result": lambda self: values})()

    options = {"blocking": False, "resamplings": 2, "maxiter": MAXITER, "seed": 2, **GAINS}
    seq = QNSPSA(exact, **options).minimize(plain_loss, x0)
    bat = QNSPSA(Submitting(), **options).minimize(loss, x0)
    np.testing.assert_allclose(bat.x, seq.x, atol=1e-12)
    assert seq.nfev == MAXITER * 2 * 6  # qiskit-algorithms' count (final value not counted)
    assert bat.nfev == seq.nfev + MAXITER + 1  # + the centre point of every job
    assert (bat.jobs, bat.fidelity_jobs) == (MAXITER + 1, MAXITER)
    assert (seq.jobs, seq.fidelity_jobs) == (MAXITER * 2 * 2 + 1, MAXITER * 2 * 4)


# ---- jobs per iteration --------------------------------------------------------------------
MODES = {
    "default_blocking": {},
    "blocking_fixed": {"allowed_increase": 0.0},
    "no_blocking": {"blocking": False},
    "resamplings=3": {"resamplings": 3},
    "resamplings_dict": {"resamplings": {1: 4, 3: 2}, "hessian_delay": 2},
    "pert_dims_last_avg": {"perturbation_dims": 2, "last_avg": 2},
    "deferred": {"allowed_increase": 0.0, "blocking_schedule": "deferred"},
}


@pytest.mark.parametrize("options", MODES.values(), ids=MODES.keys())
def test_one_estimator_and_one_sampler_job_per_iteration(loss, circuit, x0, mocker, options):
    sampler = StatevectorSampler(seed=7)
    fidelity = QNSPSA.get_fidelity(circuit, sampler)
    est_spy = mocker.spy(loss.estimator, "run")
    smp_spy = mocker.spy(sampler, "run")
    result = QNSPSA(fidelity, maxiter=MAXITER, seed=3, **GAINS, **options).minimize(loss, x0)
    assert result.nit == MAXITER
    assert est_spy.call_count == MAXITER + 1  # one per iteration + the final point
    # one sampler job per iteration; with the deferred schedule none for an iteration
    # skipped after a rejected step
    history = result.history
    deferred = options.get("blocking_schedule") == "deferred"
    skipped = [i + 1 for i, ok in zip(history.iteration, history.accepted) if not ok and deferred]
    used = [k for k in range(1, MAXITER + 1) if k not in skipped]
    assert smp_spy.call_count == len(used) == result.fidelity_jobs
    assert result.jobs == MAXITER + 1
    resamplings = options.get("resamplings", 1)
    for k, call in zip(used, smp_spy.call_args_list):
        pubs = call.args[0]
        n = resamplings.get(k, 1) if isinstance(resamplings, dict) else resamplings
        assert len(pubs) == 1 and pubs[0][1].shape == (4 * n, 2 * 4)
    loss_points = sum(c.args[0][0][2].shape[0] for c in est_spy.call_args_list)
    fidelity_pairs = sum(c.args[0][0][1].shape[0] for c in smp_spy.call_args_list)
    assert result.nfev == loss_points + fidelity_pairs
    assert result.fun == pytest.approx(loss(result.x))


def test_calibration_is_one_estimator_job(loss, circuit, x0, mocker):
    sampler = StatevectorSampler(seed=7)
    est_spy = mocker.spy(loss.estimator, "run")
    smp_spy = mocker.spy(sampler, "run")
    result = QNSPSA(QNSPSA.get_fidelity(circuit, sampler), maxiter=3, seed=3).minimize(loss, x0)
    # calibration (50 points) + 3 iterations (the first with 25 stddev repeats) + final
    assert est_spy.call_count == 1 + 3 + 1
    assert est_spy.call_args_list[0].args[0][0][2].shape == (50, 4)
    assert est_spy.call_args_list[1].args[0][0][2].shape == (1 + 25 + 2, 4)
    assert 1 <= smp_spy.call_count == result.fidelity_jobs <= 3  # none for the calibration
    assert result.state.gains is not None


def test_termination_checker_stops_without_extra_jobs(loss, circuit, x0, mocker):
    sampler = StatevectorSampler(seed=7)
    smp_spy = mocker.spy(sampler, "run")
    calls = []
    result = QNSPSA(
        QNSPSA.get_fidelity(circuit, sampler),
        maxiter=50,
        seed=1,
        blocking=False,
        termination_checker=lambda *a: calls.append(a) or len(calls) >= 3,
        **GAINS,
    ).minimize(loss, x0)
    # the 4th estimator job measures x_3 and stops: no sampler job for iteration 4
    assert result.nit == 3 and result.jobs == 4 and smp_spy.call_count == 3


# ---- the fidelity --------------------------------------------------------------------------
def test_get_fidelity_matches_statevector_within_shot_noise(circuit):
    rng = np.random.default_rng(0)
    xs, ys = rng.uniform(-1, 1, (2, 12, 4))
    shots = 4000
    fidelity = QNSPSA.get_fidelity(circuit, StatevectorSampler(default_shots=shots, seed=3))
    values = fidelity(xs, ys)
    exact = exact_fidelity(circuit)(xs, ys)
    assert values.shape == (12,)
    stderr = np.sqrt(exact * (1 - exact) / shots) + 1e-3
    assert np.all(np.abs(values - exact) < 4 * stderr)
    assert fidelity(xs[0], xs[0]).tolist() == [1.0]  # U(x)^† U(x) = 1: always all zeros


def test_get_fidelity_transpiles_for_isa_circuits():
    pytest.importorskip("qiskit_aer")
    from qiskit.transpiler import generate_preset_pass_manager
    from qiskit_aer import AerSimulator
    from qiskit_aer.primitives import SamplerV2
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    backend = AerSimulator()  # noiseless, with Manila's basis gates and coupling map
    pm = generate_preset_pass_manager(
        optimization_level=1,
        basis_gates=FakeManilaV2().operation_names,
        coupling_map=FakeManilaV2().coupling_map,
    )
    isa = pm.run(real_amplitudes(3, reps=1))
    fidelity = QNSPSA.get_fidelity(
        isa, SamplerV2(seed=5), transpiler=pm, transpiler_options={"num_processes": 1}
    )
    assert set(fidelity.circuit.count_ops()) <= set(FakeManilaV2().operation_names)
    x = np.linspace(0.1, 0.6, 6)
    exact = exact_fidelity(real_amplitudes(3, reps=1))(x, x + 0.4)[0]
    value = fidelity(x, x + 0.4)[0]
    assert value == pytest.approx(exact, abs=4 * np.sqrt(exact * (1 - exact) / 1024) + 1e-3)
    del backend


def test_bad_fidelity_is_named(circuit, loss, x0):
    with pytest.raises(TypeError, match="fidelity must be a callable"):
        QNSPSA("not a function")
    with pytest.raises(ValueError, match="fidelity returned"):
        QNSPSA(lambda xs, ys: np.ones(3), maxiter=2, seed=1, **GAINS).minimize(
            lambda x: loss(x), x0
        )
    with pytest.raises(TypeError, match="sampler"):
        QNSPSA.get_fidelity(circuit, object())


# ---- checkpoint / resume -------------------------------------------------------------------
@pytest.mark.parametrize("fail", ["estimator", "sampler"])
def test_resume_after_failed_job_is_bit_identical(circuit, observable, x0, mocker, tmp_path, fail):
    options = {"maxiter": 6, "seed": 5, "resamplings": 2}

    def setup():
        sampler = StatevectorSampler(seed=9)
        loss = EstimatorLoss(StatevectorEstimator(seed=4), circuit, observable, precision=0.05)
        return loss, QNSPSA.get_fidelity(circuit, sampler), sampler

    def recorder():
        seen = []
        return seen, lambda n, x, fx, s, a: seen.append((n, x.copy(), fx, s, a))

    full_calls, cb = recorder()
    loss, fidelity, _ = setup()
    full = QNSPSA(fidelity, callback=cb, **options).minimize(loss, x0)

    loss, fidelity, sampler = setup()
    primitive = loss.estimator if fail == "estimator" else sampler
    failing_at(primitive, mocker, 4)
    path = tmp_path / "qnspsa.json"
    first_calls, cb = recorder()
    with pytest.raises(Boom):
        QNSPSA(fidelity, callback=cb, checkpoint=path, **options).minimize(loss, x0)
    assert 0 < SPSAState.load(path).k < 6

    resumed_calls, cb = recorder()
    loss, fidelity, _ = setup()
    resumed = QNSPSA(fidelity, callback=cb, checkpoint=path, **options).resume(loss, path)
    calls = first_calls + resumed_calls
    assert len(calls) == len(full_calls)
    for mine, theirs in zip(calls, full_calls):
        assert mine[0] == theirs[0] and mine[2:] == theirs[2:]
        np.testing.assert_array_equal(mine[1], theirs[1])
    np.testing.assert_array_equal(resumed.x, full.x)
    assert (resumed.fun, resumed.nfev, resumed.nit) == (full.fun, full.nfev, full.nit)
    assert (resumed.jobs, resumed.fidelity_jobs) == (full.jobs, full.fidelity_jobs)


# ---- interfaces ----------------------------------------------------------------------------
def test_signature_and_settings_match_qiskit_algorithms(fidelity, loss, x0):
    qa = pytest.importorskip("qiskit_algorithms.optimizers")
    import inspect

    theirs = inspect.signature(qa.QNSPSA.__init__).parameters
    ours = inspect.signature(QNSPSA.__init__).parameters
    for name, parameter in theirs.items():
        assert name in ours and ours[name].default == parameter.default, name
    q = QNSPSA(fidelity, maxiter=4, seed=2, **GAINS)
    assert isinstance(q, SPSA) and q.second_order and not q.trust_region
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        their_keys = set(qa.QNSPSA(fidelity, **GAINS).settings)
    assert their_keys <= set(q.settings)
    rebuilt = QNSPSA(**q.settings)
    np.testing.assert_array_equal(rebuilt.minimize(loss, x0).x, q.minimize(loss, x0).x)
    assert q.replace(maxiter=2).minimize(loss, x0).nit == 2


def test_scipy_method_progress_and_plugin(loss, circuit, x0, capsys):
    from scipy.optimize import minimize

    from qprim_grad import plugins

    fidelity = QNSPSA.get_fidelity(circuit, StatevectorSampler(seed=1))
    q = QNSPSA(fidelity, seed=4, blocking=False, **GAINS)
    seen = []
    res = minimize(loss, x0, method=q.minimize, callback=seen.append, options={"maxiter": 3})
    assert res.nit == 3 and len(seen) >= 1 and res.jobs == 4
    QNSPSA(q.fidelity, maxiter=2, seed=1, progress=True, **GAINS).minimize(loss, x0)
    err = capsys.readouterr().err
    assert "QNSPSA" in err and "2/2" in err
    assert plugins.load("qnspsa", plugins.OPTIMIZERS) is QNSPSA


def test_vqe_from_qiskit_algorithms(circuit, observable):
    pytest.importorskip("qiskit_algorithms")
    from qiskit_algorithms import VQE

    q = QNSPSA(QNSPSA.get_fidelity(circuit, StatevectorSampler(seed=1)), maxiter=30, seed=2)
    vqe = VQE(StatevectorEstimator(), circuit, q, initial_point=np.full(4, 0.3))
    result = vqe.compute_minimum_eigenvalue(observable)
    exact = np.linalg.eigvalsh(observable.to_matrix()).min()
    assert result.eigenvalue.real < exact + 0.1
