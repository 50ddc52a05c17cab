"""Every ``examples/*.py`` runs, in a fresh interpreter, with every warning as an error.

A fast mode (fewer SPSA iterations, fewer shots) keeps the run short; a broken or
deprecated-API example fails here before a user runs it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("qiskit_ibm_runtime")
pytest.importorskip("scipy")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))

#: command-line arguments of the fast mode, per example (none: the example is fast as it is)
FAST = {
    "demo.py": ["--maxiter", "3", "--shots", "300"],
    "vqe_demo.py": ["--maxiter", "3", "--shots", "300"],
    "heisenberg_vqe.py": ["--fast", "--plot", "heisenberg_vqe.png"],
}


def run_example(path: Path, workdir: Path) -> str:
    completed = subprocess.run(
        [sys.executable, "-W", "error", str(path), *FAST.get(path.name, [])],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=workdir,  # files an example writes (figures) land here
    )
    assert completed.returncode == 0, f"{path.name} failed:\n{completed.stderr[-3000:]}"
    assert completed.stderr == "", f"{path.name} wrote to stderr:\n{completed.stderr[-3000:]}"
    return completed.stdout


def test_examples_found():
    assert {"demo.py", "vqe_demo.py"} <= {p.name for p in EXAMPLES}


def test_examples_hide_no_warning():
    for path in EXAMPLES:
        assert "filterwarnings" not in path.read_text(encoding="utf-8"), path.name


#: examples whose fast mode another test already runs: ``demo.py`` calls ``vqe_demo.main``;
#: ``test_example_heisenberg.py`` runs ``heisenberg_vqe.py --fast`` (its run here, in a fresh
#: interpreter with warnings as errors, is in the slow set)
COVERED = {"vqe_demo.py", "heisenberg_vqe.py"}


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, marks=pytest.mark.slow) if p.name in COVERED else p for p in EXAMPLES],
    ids=[p.stem for p in EXAMPLES],
)
def test_example_runs(path, tmp_path):
    out = run_example(path, tmp_path)
    if path.name in ("demo.py", "vqe_demo.py"):
        check_vqe_summary(out, maxiter=3)


def check_vqe_summary(out: str, maxiter: int) -> None:
    """The summary says what each number is, and the numbers add up."""
    calibration = out.index("SPSA calibration: measuring the loss at 50 points in one job")
    assert calibration < out.index("SPSA iteration 1/")  # progress shown before the job
    assert re.search(r"a=\d\.\d{1,4}[,;]", out)  # no 16-digit gains
    jobs = re.search(r"estimator jobs: +(\d+) = 1 calibration \+ (\d+) iterations", out)
    assert jobs and int(jobs[1]) == 1 + int(jobs[2]) + 1 and int(jobs[2]) == maxiter
    evals = re.search(r"energy evaluations .*: (\d+) = 3 per iteration \+ (\d+) in the final", out)
    assert evals and int(evals[1]) == 3 * maxiter + int(evals[2])
    energies = {
        name: float(re.search(rf"{name}.*?: +([+-]\d+\.\d+)", out)[1])
        for name in ("measured on FakeManilaV2", "noiseless", "lowest this ansatz", "exact ground")
    }
    parts = {
        name: float(re.search(rf"{name}.*?: +([+-]\d+\.\d+)", out)[1])
        for name in ("device \\+ shot noise", "optimizer", "ansatz \\(")
    }
    assert energies["exact ground"] == pytest.approx(-6.4641, abs=1e-4)
    assert sum(parts.values()) == pytest.approx(
        energies["measured on FakeManilaV2"] - energies["exact ground"], abs=3e-4
    )
    assert parts["ansatz \\("] >= 0
