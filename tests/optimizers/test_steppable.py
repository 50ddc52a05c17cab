"""The steppable protocol (qiskit-algorithms' names): a user's start/ask/evaluate/tell loop
gives minimize's iterates bit for bit, with our TellData, qiskit-algorithms' or any object
with eval_fun; one ask is one job."""

import numpy as np
import pytest
from qiskit.primitives import StatevectorSampler

from qprim_grad.optimizers import QNSPSA, SPSA, AskData, NaturalGradient, TellData, batched

GAINS = {"learning_rate": 0.3, "perturbation": 0.1}


def user_loop(optimizer, fun, x0, answer):
    """The loop a user writes (async, a scheduler...): ask, evaluate by hand, tell."""
    optimizer.start(fun, x0)
    asks = []
    while optimizer.continue_condition():
        ask = optimizer.ask()
        asks.append(ask)
        optimizer.tell(ask, answer(ask))
    return optimizer.create_result(), asks


def same_run(a, b, jobs=True):
    np.testing.assert_array_equal(a.x, b.x)
    assert a.fun == b.fun
    assert (a.nit, a.nfev) == (b.nit, b.nfev)
    assert not jobs or a.jobs == b.jobs
    assert a.history.loss == b.history.loss and a.history.accepted == b.history.accepted


SPSA_CASES = {
    "plain": {},
    "blocking": {"blocking": True, "learning_rate": 2.0, "perturbation": 0.1},
    "calibrated_blocking": {"blocking": True},
    "second_order_resamplings": {"second_order": True, "resamplings": 2, **GAINS},
    "last_avg_checker": {
        "last_avg": 3,
        "termination_checker": lambda n, x, fx, s, a: fx < -0.5,
        **GAINS,
    },
}


@pytest.mark.parametrize("options", SPSA_CASES.values(), ids=SPSA_CASES.keys())
def test_spsa_batched_user_loop_equals_minimize(loss, x0, options):
    spsa = SPSA(maxiter=8, seed=4, **options)
    expected = spsa.minimize(loss, x0)
    got, asks = user_loop(spsa, loss, x0, lambda a: TellData(eval_fun=loss.batch(a.x_fun)))
    same_run(got, expected)
    assert len(asks) == expected.jobs  # one ask, one job
    assert all(a.x_fun.ndim == 2 and a.x_fun.shape[1] == x0.size for a in asks)


def test_qiskit_algorithms_tell_data(loss, x0):
    steppable = pytest.importorskip("qiskit_algorithms.optimizers.steppable_optimizer")
    spsa = SPSA(maxiter=6, seed=2, blocking=True, **GAINS)
    expected = spsa.minimize(loss, x0)
    got, _ = user_loop(spsa, loss, x0, lambda a: steppable.TellData(eval_fun=loss.batch(a.x_fun)))
    same_run(got, expected)


def test_any_object_with_eval_fun_and_step(x0, quadratic):
    """A plain callable: the asks follow qiskit-algorithms' order (gradient points, then the
    proposal for blocking); ``step()`` and ``evaluate`` are the same loop."""

    class Answer:
        def __init__(self, values):
            self.eval_fun = values

    spsa = SPSA(maxiter=5, seed=9, blocking=True, **GAINS)
    expected = spsa.minimize(quadratic, x0)
    got, asks = user_loop(spsa, quadratic, x0, lambda a: Answer([quadratic(p) for p in a.x_fun]))
    same_run(got, expected, jobs=False)  # the user's answers count one job per ask
    assert got.jobs == len(asks)
    assert [len(a.x_fun) for a in asks[:3]] == [26, 2, 1]  # start (x0 + 25), gradient, proposal
    spsa.start(quadratic, x0)
    while spsa.continue_condition():
        spsa.step()
    same_run(spsa.create_result(), expected)


def test_qnspsa_user_loop_names_the_fidelity_pairs(loss, circuit, x0):
    fidelity = QNSPSA.get_fidelity(circuit, StatevectorSampler(seed=3))
    for blocking in (False, True):
        qn = QNSPSA(fidelity, maxiter=5, seed=1, blocking=blocking, **GAINS)
        expected = qn.minimize(loss, x0)

        exact = QNSPSA.get_fidelity(circuit, StatevectorSampler(seed=3))

        def answer(ask: AskData, exact=exact) -> TellData:
            fun = None if ask.x_fun is None else loss.batch(ask.x_fun)
            fids = None
            if ask.x_fidelity is not None:
                fids = exact(ask.x_fidelity[:, 0], ask.x_fidelity[:, 1])
            return TellData(eval_fun=fun, eval_fidelity=fids)

        got, asks = user_loop(qn, loss, x0, answer)
        same_run(got, expected)
        pairs = [a.x_fidelity for a in asks if a.x_fidelity is not None]
        assert len(pairs) == 5 and all(p.shape == (4, 2, x0.size) for p in pairs)


def test_natural_gradient_user_loop(loss, x0):
    ng = NaturalGradient(stepsize=0.1, maxiter=4, approx="diag")
    expected = ng.minimize(loss, x0)
    ng.start(loss, x0)
    asks = []
    while ng.continue_condition():
        ask = ng.ask()
        asks.append(ask)
        ng.tell(ask, ng.evaluate(ask))
    same_run(ng.create_result(), expected)
    assert all(np.array_equal(a.x_jac, a.x_metric) for a in asks[:-1])
    assert asks[-1].x_jac is None  # the final job measures the loss only


def test_steps_before_start_and_after_the_end(loss, x0):
    spsa = SPSA(maxiter=1, seed=0, **GAINS)
    assert spsa.state is None
    with pytest.raises(RuntimeError, match=r"start\(fun, x0\)"):
        spsa.ask()
    spsa.start(batched(lambda X: np.sum(np.atleast_2d(X) ** 2, axis=1)), x0)
    while spsa.continue_condition():
        spsa.step()
    with pytest.raises(RuntimeError, match="finished"):
        spsa.ask()
    assert spsa.state.done and spsa.create_result().nit == 1


def test_plot_history_names_the_optimizer_counts_apart_and_marks_a_resume(
    loss, circuit, x0, tmp_path
):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from qprim_grad.plotting import plot_history

    fidelity = QNSPSA.get_fidelity(circuit, StatevectorSampler(seed=3, default_shots=64))
    path = tmp_path / "qn.json"
    QNSPSA(fidelity, maxiter=2, seed=1, checkpoint=path, **GAINS).minimize(loss, x0)
    result = QNSPSA(fidelity, maxiter=4, seed=1, **GAINS).resume(loss, path)
    assert result.history.resumed_at == [2]
    loss_ax, step_ax = plot_history(result)
    title = loss_ax.get_title()
    assert title.startswith("QNSPSA: 4 iterations")
    fidelity_evals = 4 * 4  # four pairs per iteration
    assert f"{result.nfev - fidelity_evals} loss evaluations" in title
    assert f"{fidelity_evals} fidelity evaluations" in title
    assert f"{result.jobs} estimator + {result.fidelity_jobs} sampler jobs" in title
    assert f"{result.shots:,} shots" in title and result.shots == 4 * 4 * 64
    assert any(t.get_text().strip() == "resumed" for t in loss_ax.texts)
    shots_ax, _ = plot_history(result, x="shots")
    line = shots_ax.get_lines()[0]
    np.testing.assert_array_equal(
        line.get_xdata(), np.asarray(result.history.shots)[np.asarray(result.history.accepted)]
    )
    ng = NaturalGradient(stepsize=0.1, maxiter=2, approx="diag").minimize(loss, x0)
    assert plot_history(ng)[0].get_title().startswith("NaturalGradient: 2 iterations")
    with pytest.raises(ValueError, match="x='time'"):
        plot_history(ng, x="time")
