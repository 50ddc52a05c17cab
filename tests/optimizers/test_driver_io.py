"""The driver's I/O: the progress line (jobs, shots, time left), the frozen-noise warning at
the user's line, resuming a finished run spends nothing, a longer run continues it."""

import sys

import numpy as np
import pytest

from qprim_grad.errors import CorrelatedNoiseWarning
from qprim_grad.optimizers import SPSA, EstimatorLoss, NaturalGradient, SPSAState
from qprim_grad.optimizers.progress import Progress

GAINS = {"learning_rate": 0.2, "perturbation": 0.1}


def test_plain_progress_line_shows_jobs_shots_and_eta(loss, x0, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # no tqdm: the plain line
    SPSA(maxiter=4, seed=1, progress=True, **GAINS).minimize(loss, x0)
    err = capsys.readouterr().err
    assert "SPSA 2/4" in err and "jobs=3" in err and "shots=0" in err and "ETA 0:00:" in err


def test_tqdm_progress_shows_jobs_and_shots(loss, x0, capsys):
    pytest.importorskip("tqdm")
    SPSA(maxiter=3, seed=1, progress=True, **GAINS).minimize(loss, x0)
    err = capsys.readouterr().err
    assert "jobs=" in err and "shots=" in err


def test_progress_eta_is_the_mean_time_per_iteration(monkeypatch):
    clock = iter([100.0, 110.0])
    monkeypatch.setattr("qprim_grad.optimizers.progress.time.perf_counter", lambda: next(clock))
    line = Progress(10, False, 0, "SPSA").line(2, "jobs=3 shots=0")
    assert line == "SPSA 2/10 jobs=3 shots=0 ETA 0:00:40"


@pytest.mark.parametrize("make", [lambda: SPSA(maxiter=2, seed=1, **GAINS),
                                  lambda: NaturalGradient(maxiter=1, approx="diag")])  # fmt: skip
def test_frozen_noise_warning_points_at_the_users_line(circuit, observable, x0, make):
    aer = pytest.importorskip("qiskit_aer.primitives")
    estimator = aer.EstimatorV2(
        options={"default_precision": 0.05, "run_options": {"seed_simulator": 3}}
    )
    loss = EstimatorLoss(estimator, circuit, observable)
    with pytest.warns(CorrelatedNoiseWarning, match="same .*noise") as record:
        make().minimize(loss, x0)
    assert record[0].filename == __file__


def test_resuming_a_finished_run_spends_nothing(loss, x0, tmp_path, mocker):
    path = tmp_path / "run.json"
    done = SPSA(maxiter=3, seed=1, checkpoint=path, **GAINS).minimize(loss, x0)
    spy = mocker.spy(loss.estimator, "run")
    again = SPSA(maxiter=3, seed=1, **GAINS).resume(loss, path)
    assert spy.call_count == 0
    np.testing.assert_array_equal(again.x, done.x)
    assert (again.fun, again.jobs, again.nit) == (done.fun, done.jobs, done.nit)
    longer = SPSA(maxiter=5, seed=1, **GAINS).resume(loss, path)
    assert longer.nit == 5 and spy.call_count == 2 + 1
    assert SPSAState.load(path).done


def test_resume_warning_points_at_the_users_line(loss, x0, tmp_path):
    path = tmp_path / "run.json"
    SPSA(maxiter=2, seed=1, checkpoint=path, **GAINS).minimize(loss, x0)
    with pytest.warns(UserWarning, match="different SPSA settings") as record:
        SPSA(maxiter=2, seed=1, blocking=True, **GAINS).resume(loss, path)
    assert record[0].filename == __file__
