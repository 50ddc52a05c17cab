"""examples/heisenberg_vqe.py in its fast mode, in-process and with warnings as errors: the
three optimizers run in one runtime Session on FakeManilaV2's target, with the documented jobs
per iteration, and draw the plot."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import pytest

pytest.importorskip("qiskit_aer")
pytest.importorskip("qiskit_ibm_runtime")
pytest.importorskip("matplotlib")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "heisenberg_vqe.py"


@pytest.fixture(autouse=True)
def _agg_backend():
    import matplotlib

    backend = matplotlib.get_backend()
    matplotlib.use("Agg")
    yield
    matplotlib.use(backend)


def test_fast_mode_runs_with_one_job_per_iteration(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("heisenberg_vqe", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    figure = tmp_path / "vqe.png"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # as tests/test_examples.py runs every example
        out = module.main(["--fast", "--plot", str(figure)])
    results, history = out["results"], out["history"]
    assert set(results) == {"SPSA", "QN-SPSA", "NatGrad"}
    for name, result in results.items():
        assert result.nit == 2 and len(history[name]) == 2
    # fixed gains: one estimator job per iteration + the final point
    assert results["SPSA"].tally.jobs == 3
    # QN-SPSA: one estimator job per iteration + final, one sampler job per used iteration
    qn = results["QN-SPSA"]
    assert (qn.jobs, qn.tally.jobs) == (3, 3 + qn.fidelity_jobs) and 1 <= qn.fidelity_jobs <= 2
    # natural gradient: loss, gradient and block-diagonal metric in one job per iteration
    assert results["NatGrad"].tally.jobs == 3
    assert figure.stat().st_size > 0
    printed = capsys.readouterr().out
    assert "exact ground-state energy: -6.4641" in printed and "NatGrad it   2" in printed
