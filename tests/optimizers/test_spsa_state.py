"""Checkpoint and resume: a run interrupted by a failing job and resumed from its file
(in this process or a new one) repeats the uninterrupted iterates exactly."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from _failures import Boom, failing_at
from qiskit.circuit.library import real_amplitudes
from qiskit.primitives import StatevectorEstimator

from qprim_grad.optimizers import SPSA, EstimatorLoss, SPSAState

OPTIONS = {"maxiter": 8, "seed": 5, "blocking": True, "second_order": True, "resamplings": 2}


def recorder():
    seen = []
    return seen, lambda nfev, x, fx, step, accepted: seen.append((nfev, x.copy(), fx, accepted))


def assert_same_run(resumed_calls, interrupted_calls, full_calls):
    calls = interrupted_calls + resumed_calls
    assert len(calls) == len(full_calls)
    for (n1, x1, f1, a1), (n2, x2, f2, a2) in zip(calls, full_calls):
        assert (n1, a1) == (n2, a2)
        np.testing.assert_array_equal(x1, x2)
        assert f1 == f2


@pytest.mark.parametrize("fail_at", [3, 6])
def test_resume_after_failed_job_batched(circuit, observable, x0, mocker, tmp_path, fail_at):
    path = tmp_path / "spsa.json"
    full_calls, cb = recorder()
    full = SPSA(callback=cb, **OPTIONS).minimize(
        EstimatorLoss(StatevectorEstimator(), circuit, observable), x0
    )

    estimator = StatevectorEstimator()
    failing_at(estimator, mocker, fail_at + 1)  # +1: the calibration job
    first_calls, cb = recorder()
    with pytest.raises(Boom):
        SPSA(callback=cb, checkpoint=path, **OPTIONS).minimize(
            EstimatorLoss(estimator, circuit, observable), x0
        )
    saved = SPSAState.load(path)
    assert saved.k == fail_at - 1 and saved.gains is not None

    resumed_calls, cb = recorder()
    fresh = EstimatorLoss(StatevectorEstimator(), circuit, observable)
    resumed = SPSA(callback=cb, checkpoint=path, **OPTIONS).resume(fresh, path)
    assert_same_run(resumed_calls, first_calls, full_calls)
    np.testing.assert_array_equal(resumed.x, full.x)
    assert resumed.fun == full.fun and resumed.nfev == full.nfev and resumed.nit == full.nit
    assert resumed.history.loss == full.history.loss


def test_resume_sequential(x0, tmp_path, quadratic):
    path = tmp_path / "seq.json"
    full_calls, cb = recorder()
    full = SPSA(callback=cb, **OPTIONS).minimize(quadratic, x0)
    count = {"n": 0}

    def flaky(x):
        count["n"] += 1
        if count["n"] == 120:
            raise Boom
        return quadratic(x)

    first_calls, cb = recorder()
    with pytest.raises(Boom):
        SPSA(callback=cb, checkpoint=path, **OPTIONS).minimize(flaky, x0)
    resumed_calls, cb = recorder()
    resumed = SPSA(callback=cb, **OPTIONS).minimize(quadratic, None, state=path)
    assert_same_run(resumed_calls, first_calls, full_calls)
    np.testing.assert_array_equal(resumed.x, full.x)


def test_resume_in_new_process(tmp_path, x0):
    """The saved file alone (plus the same settings) is enough in a fresh interpreter."""
    path = tmp_path / "state.json"
    circuit = real_amplitudes(2, reps=1)

    def spsa(maxiter, checkpoint=None):
        return SPSA(maxiter=maxiter, seed=3, blocking=True, checkpoint=checkpoint)

    spsa(4, path).minimize(EstimatorLoss(StatevectorEstimator(), circuit, "ZZ"), x0)
    script = textwrap.dedent(
        """
        import json, sys
        from qprim_grad.optimizers import SPSA, EstimatorLoss
        from qiskit.circuit.library import real_amplitudes
        from qiskit.primitives import StatevectorEstimator
        loss = EstimatorLoss(StatevectorEstimator(), real_amplitudes(2, reps=1), "ZZ")
        res = SPSA(maxiter=9, seed=3, blocking=True).resume(loss, sys.argv[1])
        print(json.dumps({"x": res.x.tolist()}))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True
    )
    resumed = json.loads(out.stdout.strip().splitlines()[-1])
    full = spsa(9).minimize(EstimatorLoss(StatevectorEstimator(), circuit, "ZZ"), x0)
    np.testing.assert_array_equal(resumed["x"], full.x)


def test_state_json_roundtrip_exact(tmp_path):
    rng = np.random.default_rng(0)
    rng.random(3)
    state = SPSAState.initial(rng.random(5), rng, "batched", hessian=rng.random((5, 5)))
    state.history.append(1, 0.1234567890123, 0.5, True, 3, 1)
    state.save(tmp_path / "s.json")
    back = SPSAState.load(tmp_path / "s.json")
    np.testing.assert_array_equal(back.x, state.x)
    np.testing.assert_array_equal(back.hessian, state.hessian)
    assert back.history == state.history
    assert back.generator().random() == state.generator().random()
    mt = np.random.Generator(np.random.MT19937(1))
    assert SPSAState.initial(np.zeros(1), mt, "batched").generator().random() == mt.random()


def test_resume_checks(tmp_path, loss, x0, quadratic):
    path = tmp_path / "s.json"
    SPSA(maxiter=2, seed=1, checkpoint=path).minimize(loss, x0)
    with pytest.raises(ValueError, match="batched run"):
        SPSA(maxiter=3, seed=1).minimize(quadratic, None, state=path)
    with pytest.warns(UserWarning, match="different SPSA settings"):
        SPSA(maxiter=3, seed=1, blocking=True).minimize(loss, None, state=path)
    with pytest.raises(ValueError, match="x0 is required"):
        SPSA().minimize(loss, None)
