"""NaturalGradient: the update x <- x - η pinv(Re g + λI) ∇f against an independent
statevector reference, one job per iteration (counted with a spy on the real estimator),
callback/result/checkpoint as SPSA, clear errors."""

import numpy as np
import pytest
from _failures import failing_at
from qiskit.primitives import (
    BaseEstimatorV2,
    DataBin,
    PrimitiveResult,
    PubResult,
    StatevectorEstimator,
)
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.primitives.primitive_job import PrimitiveJob
from qiskit.quantum_info import SparsePauliOp, Statevector

from qprim_grad.optimizers import EstimatorLoss, NaturalGradient, NaturalGradientState, natural_step

#: the unguarded update x <- x - stepsize pinv(g + lam I) grad (cutoff 1e-10)
PLAIN = {"rcond": 1e-10, "relative_lam": 0.0, "max_step": None}

H = 1e-4


def reference_state(circuit, x):
    return Statevector(circuit.assign_parameters(np.asarray(x, dtype=float))).data


def reference_qgt(circuit, x):
    """<d_i ψ|d_j ψ> - <d_i ψ|ψ><ψ|d_j ψ> from central differences of statevectors."""
    x = np.asarray(x, dtype=float)
    psi = reference_state(circuit, x)
    shifts = H * np.identity(x.size)
    d = np.array(
        [
            (reference_state(circuit, x + s) - reference_state(circuit, x - s)) / (2 * H)
            for s in shifts
        ]
    )
    overlaps = d.conj() @ psi  # <d_i ψ|ψ>
    return d.conj() @ d.T - np.outer(overlaps, overlaps.conj())


def reference_energy(circuit, observable, x):
    state = Statevector(circuit.assign_parameters(np.asarray(x, dtype=float)))
    return float(np.real(state.expectation_value(observable)))


def reference_gradient(circuit, observable, x):
    x = np.asarray(x, dtype=float)
    return np.array(
        [
            (
                reference_energy(circuit, observable, x + s)
                - reference_energy(circuit, observable, x - s)
            )
            / (2 * H)
            for s in H * np.identity(x.size)
        ]
    )


class ReferenceMetricEstimator(BaseEstimatorV2):
    """A V2 estimator returning evs, grads and qgt from the statevector reference (a stand-in
    for any estimator that already carries a metric; ``mask`` zeroes entries)."""

    metric = "reference"

    def __init__(self, mask=None):
        self.mask = mask
        self.calls = 0

    def _one(self, pub):
        values = pub.parameter_values.as_array(pub.circuit.parameters).reshape(
            -1, pub.circuit.num_parameters
        )
        (observable,) = [
            SparsePauliOp.from_list(list(o.items())) for o in np.ravel(pub.observables)
        ]
        x = values[0]
        qgt = reference_qgt(pub.circuit, x)
        if self.mask is not None:
            qgt = qgt * self.mask
        data = DataBin(
            evs=np.array(reference_energy(pub.circuit, observable, x)),
            stds=np.array(0.0),
            grads=reference_gradient(pub.circuit, observable, x),
            qgt=qgt,
            shape=(),
        )
        return PubResult(data)

    def run(self, pubs, *, precision=None):
        self.calls += 1
        coerced = [EstimatorPub.coerce(pub, precision) for pub in pubs]
        job = PrimitiveJob(lambda: PrimitiveResult([self._one(p) for p in coerced]))
        job._submit()
        return job


def reference_run(circuit, observable, x0, stepsize, lam, maxiter, mask=None):
    """The natural-gradient iterates written out directly."""
    x = np.array(x0, dtype=float)
    out = []
    for _ in range(maxiter):
        g = np.real(reference_qgt(circuit, x)) * (1 if mask is None else mask)
        step = (
            stepsize
            * np.linalg.pinv(g + lam * np.identity(x.size), rcond=1e-10)
            @ (reference_gradient(circuit, observable, x))
        )
        x = x - step
        out.append((x.copy(), np.linalg.norm(step)))
    return out


@pytest.mark.parametrize("settings", [PLAIN, {"max_step": None}], ids=["plain", "defaults"])
@pytest.mark.parametrize("lam", [0.0, 0.05])
def test_iterates_equal_the_reference_update(circuit, observable, x0, lam, settings):
    """API.md's update, at the textbook settings and at the default cutoff and
    regularisation (which do not act on this well-conditioned metric; the step cap, which
    warns when it acts, is off: these steps are longer than 0.5)."""
    estimator = ReferenceMetricEstimator()
    loss = EstimatorLoss(estimator, circuit, observable)
    seen = []
    result = NaturalGradient(
        stepsize=0.2, lam=lam, maxiter=5, **settings, callback=lambda *a: seen.append(a)
    ).minimize(loss, x0)
    expected = reference_run(circuit, observable, x0, 0.2, lam, 5)
    assert len(seen) == 5
    for (_nfev, x, fx, step, accepted), (x_ref, step_ref) in zip(seen, expected):
        np.testing.assert_allclose(x, x_ref, atol=1e-8)
        assert step == pytest.approx(step_ref, abs=1e-8)
        assert fx == pytest.approx(reference_energy(circuit, observable, x_ref), abs=1e-10)
        assert accepted
    np.testing.assert_allclose(result.x, expected[-1][0], atol=1e-8)
    assert result.fun == pytest.approx(reference_energy(circuit, observable, result.x))
    assert (result.nit, result.jobs, result.njev, result.nfev) == (5, 6, 5, 6)
    assert estimator.calls == 6  # one job per iteration + the final loss
    assert list(result.history.iteration) == [1, 2, 3, 4, 5]


def test_pseudo_inverse_of_a_singular_metric():
    """Two rotations about the same axis in a row: the metric is singular, the step finite and
    along the gradient's range."""
    from qiskit.circuit import Parameter, QuantumCircuit

    a, b = Parameter("a"), Parameter("b")
    qc = QuantumCircuit(1)
    qc.ry(a, 0)
    qc.ry(b, 0)
    g = np.real(reference_qgt(qc, [0.3, 0.2]))
    assert abs(np.linalg.det(g)) < 1e-8
    grad = reference_gradient(qc, SparsePauliOp("Z"), [0.3, 0.2])
    step = natural_step(grad, g)
    np.testing.assert_allclose(step, np.linalg.pinv(g, rcond=1e-10) @ grad, atol=1e-6)
    assert np.all(np.isfinite(step))
    # ry(a) ry(b) = ry(a + b): g = 1/4 [[1, 1], [1, 1]], the step splits the gradient evenly
    np.testing.assert_allclose(step[0], step[1], atol=1e-6)
    lam = natural_step(grad, g, lam=0.5)
    np.testing.assert_allclose(lam, np.linalg.solve(g + 0.5 * np.identity(2), grad), atol=1e-8)


def test_termination_checker_and_maxiter_zero(circuit, observable, x0):
    estimator = ReferenceMetricEstimator()
    loss = EstimatorLoss(estimator, circuit, observable)
    calls = []
    ng = NaturalGradient(
        stepsize=0.1, maxiter=50, termination_checker=lambda *a: calls.append(a) or len(calls) == 3
    )
    result = ng.minimize(loss, x0)
    assert result.nit == 3 and result.jobs == 4 and estimator.calls == 4
    zero = NaturalGradient(maxiter=0).minimize(loss, x0)
    assert zero.nit == 0 and zero.jobs == 1
    np.testing.assert_array_equal(zero.x, x0)


def test_checkpoint_resume_is_bit_identical(circuit, observable, x0, tmp_path, mocker):
    path = tmp_path / "ng.json"
    full = NaturalGradient(stepsize=0.2, maxiter=6, **PLAIN).minimize(
        EstimatorLoss(ReferenceMetricEstimator(), circuit, observable), x0
    )
    estimator = ReferenceMetricEstimator()
    failing_at(estimator, mocker, 4)
    with pytest.raises(RuntimeError):
        NaturalGradient(stepsize=0.2, maxiter=6, **PLAIN, checkpoint=path).minimize(
            EstimatorLoss(estimator, circuit, observable), x0
        )
    assert NaturalGradientState.load(path).k == 3
    resumed = NaturalGradient(stepsize=0.2, maxiter=6, **PLAIN, checkpoint=path).resume(
        EstimatorLoss(ReferenceMetricEstimator(), circuit, observable), path
    )
    np.testing.assert_array_equal(resumed.x, full.x)
    assert (resumed.fun, resumed.nit, resumed.jobs) == (full.fun, full.nit, full.jobs)
    assert resumed.history.loss == full.history.loss
    with pytest.warns(UserWarning, match="different NaturalGradient settings"):
        NaturalGradient(stepsize=0.3, maxiter=6).resume(
            EstimatorLoss(ReferenceMetricEstimator(), circuit, observable), path
        )


def test_errors_are_named(circuit, observable, x0):
    with pytest.raises(ValueError, match="approx='full'"):
        NaturalGradient(approx="full")
    with pytest.raises(ValueError, match="stepsize"):
        NaturalGradient(stepsize=-1)
    with pytest.raises(ValueError, match="lam"):
        NaturalGradient(lam=-0.1)
    with pytest.raises(TypeError, match="needs an EstimatorLoss"):
        NaturalGradient().minimize(lambda x: 0.0, x0)
    loss = EstimatorLoss(ReferenceMetricEstimator(), circuit, observable)
    with pytest.raises(ValueError, match="x0 has 3 values"):
        NaturalGradient().minimize(loss, x0[:3])

    class NoMetric(ReferenceMetricEstimator):
        def _one(self, pub):
            result = super()._one(pub)
            return PubResult(DataBin(evs=result.data.evs, grads=result.data.grads, shape=()))

    with pytest.raises(TypeError, match="returned no 'qgt'"):
        NaturalGradient(maxiter=1).minimize(EstimatorLoss(NoMetric(), circuit, observable), x0)


def test_settings_replace_scipy_and_plugin(circuit, observable, x0):
    from scipy.optimize import minimize

    from qprim_grad import plugins

    ng = NaturalGradient(stepsize=0.2, approx="diag", lam=0.01, maxiter=4)
    assert NaturalGradient(**ng.settings).settings == ng.settings
    assert ng.replace(maxiter=2).maxiter == 2 and ng.maxiter == 4
    loss = EstimatorLoss(ReferenceMetricEstimator(), circuit, observable)
    seen = []
    res = minimize(loss, x0, method=ng.scipy_method, callback=seen.append, options={"maxiter": 3})
    assert res.nit == 3 and len(seen) == 3 and res.jobs == 4
    assert plugins.load("natural_gradient", plugins.OPTIMIZERS) is NaturalGradient
    assert ng.metric_method(StatevectorEstimator()) == "diag"
    full = NaturalGradient(approx=None)
    assert full.metric_method(StatevectorEstimator()) == "reverse"
    assert full.metric_method(ReferenceMetricEstimator()) == "lin_comb"
    est = ReferenceMetricEstimator()
    assert ng.metric_estimator(est) is est  # carries a metric: used as it is


def test_reference_qgt_is_right_for_one_qubit():
    """Sanity check of the reference: RY(a) then RZ(b) on |0>: g = diag(1/4, sin(a)^2/4)."""
    from qiskit.circuit import Parameter, QuantumCircuit

    a, b = Parameter("a"), Parameter("b")
    qc = QuantumCircuit(1)
    qc.ry(a, 0)
    qc.rz(b, 0)
    g = reference_qgt(qc, [0.7, 0.3])
    np.testing.assert_allclose(np.real(g), np.diag([0.25, np.sin(0.7) ** 2 / 4]), atol=1e-7)


# ---- on GradientEstimator(estimator, method=..., metric=...) --------------------------------
BLOCKS = np.kron(np.identity(2), np.ones((2, 2)))  # real_amplitudes(2, reps=1): 2 layers of 2


@pytest.mark.parametrize(
    "approx, mask",
    [(None, None), ("block_diag", BLOCKS), ("diag", np.identity(4))],
    ids=["full", "block_diag", "diag"],
)
def test_on_statevector_estimator_one_job_per_iteration(
    circuit, observable, x0, mocker, approx, mask
):
    estimator = StatevectorEstimator()
    spy = mocker.spy(estimator, "run")
    loss = EstimatorLoss(estimator, circuit, observable)
    seen = []
    ng = NaturalGradient(
        stepsize=0.1,
        approx=approx,
        lam=0.01,
        maxiter=4,
        **PLAIN,
        callback=lambda *a: seen.append(a),
    )
    result = ng.minimize(loss, x0)
    expected = reference_run(circuit, observable, x0, 0.1, 0.01, 4, mask=mask)
    assert len(seen) == len(expected) == 4  # one callback per iteration
    for got, (x_ref, step_ref) in zip(seen, expected, strict=True):
        np.testing.assert_allclose(got[1], x_ref, atol=1e-6)
        assert got[3] == pytest.approx(step_ref, abs=1e-6)
    assert spy.call_count == result.jobs == 5  # 4 iterations + the final loss
    assert result.fun < loss(x0)


def test_gradient_estimator_with_a_metric_is_used_as_is(circuit, observable, x0, mocker):
    from qprim_grad import GradientEstimator

    inner = StatevectorEstimator()
    mine = GradientEstimator(inner, method="finite_diff", epsilon=1e-6, metric="lin_comb")
    ng = NaturalGradient(stepsize=0.1, approx="diag", maxiter=3, **PLAIN)
    assert ng.metric_estimator(mine) is mine
    spy = mocker.spy(mine, "run")
    result = ng.minimize(EstimatorLoss(mine, circuit, observable), x0)
    assert spy.call_count == 3  # the final loss goes to the inner estimator directly
    full = reference_run(circuit, observable, x0, 0.1, 0.0, 3)  # lin_comb: the full tensor
    np.testing.assert_allclose(result.x, full[-1][0], atol=1e-5)
    plain = GradientEstimator(inner, method="finite_diff")  # no metric: re-wrapped
    wrapped = ng.metric_estimator(plain)
    assert wrapped is not plain and wrapped.estimator is inner


def test_shot_based_aer_one_job_per_iteration(circuit, observable, x0, mocker):
    aer = pytest.importorskip("qiskit_aer.primitives")
    estimator = aer.EstimatorV2(options={"run_options": {"seed_simulator": 3}})
    spy = mocker.spy(estimator, "run")
    loss = EstimatorLoss(estimator, circuit, observable, precision=0.02)
    result = NaturalGradient(stepsize=0.1, lam=0.05, maxiter=5).minimize(loss, x0)
    assert spy.call_count == 6 and result.nit == 5
    exact = reference_energy(circuit, observable, result.x)
    assert exact < reference_energy(circuit, observable, x0) - 0.1


def test_progress_line(circuit, observable, x0, capsys):
    loss = EstimatorLoss(ReferenceMetricEstimator(), circuit, observable)
    NaturalGradient(stepsize=0.1, maxiter=2, progress=True).minimize(loss, x0)
    err = capsys.readouterr().err
    assert "NaturalGradient" in err and "2/2" in err


def tfim_chain(n):
    from qiskit.circuit.library import efficient_su2

    terms = [
        ("".join("Z" if j in (i, i + 1) else "I" for j in range(n)), -1.0) for i in range(n - 1)
    ]
    terms += [("".join("X" if j == i else "I" for j in range(n)), -1.0) for i in range(n)]
    return efficient_su2(n, reps=2), SparsePauliOp.from_list(terms)


@pytest.mark.parametrize("approx", [None, "block_diag", "diag"])
def test_defaults_do_not_diverge_on_a_tfim_chain(approx):
    """The full tensor of efficient_su2(4, reps=2) has eigenvalues down to ~1e-7: the
    relative cutoff and regularisation and the step cap keep the steps short and the energy
    falling (the plain pseudo-inverse takes steps of hundreds of radians there)."""
    circuit, hamiltonian = tfim_chain(4)
    x0 = np.random.default_rng(1).uniform(-np.pi, np.pi, circuit.num_parameters)
    loss = EstimatorLoss(StatevectorEstimator(), circuit, hamiltonian)
    steps = []
    result = NaturalGradient(
        approx=approx, maxiter=5, callback=lambda *a: steps.append(a)
    ).minimize(loss, x0)
    energies = [a[2] for a in steps]
    assert result.fun < loss(x0) - 0.5
    assert max(a[3] for a in steps) <= 0.5 + 1e-12
    assert energies[-1] < energies[0]
    plain = NaturalGradient(approx=approx, maxiter=2, **PLAIN)
    if approx is None:  # the divergence the defaults prevent
        big = []
        plain.replace(callback=lambda *a: big.append(a[3])).minimize(loss, x0)
        assert max(big) > 5  # vs at most 0.5 at the defaults


def test_step_guard_warns_at_the_users_line(loss, x0):
    with pytest.warns(UserWarning, match="shortened to max_step=0.01") as record:
        NaturalGradient(stepsize=0.5, maxiter=2, max_step=0.01).minimize(loss, x0)
    assert record[0].filename == __file__
