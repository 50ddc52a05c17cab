"""Acceptance tests for plugin discovery (entry points), the CLI and method objects."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.primitives import StatevectorEstimator

import qprim_grad
import qprim_grad.plugins as plugins
from qprim_grad import GradientEstimator

A = Parameter("a")
BUILTIN = {"param_shift", "finite_diff", "lin_comb", "spsa"}
VENV_BIN = Path(sys.executable).parent


def circ():
    qc = QuantumCircuit(1)
    qc.ry(A, 0)
    return qc


def test_builtin_methods_registered_as_entry_points():
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group="qprim_grad.gradient_methods")}
    assert BUILTIN <= names
    opt = {ep.name for ep in entry_points(group="qprim_grad.optimizers")}
    assert opt


def test_list_plugins_fields():
    infos = plugins.list_plugins()
    rows = {(i.name, i.group) for i in infos}
    for n in BUILTIN:
        assert (n, "qprim_grad.gradient_methods") in rows
    assert any(g == "qprim_grad.optimizers" for _, g in rows)
    for i in infos:
        assert ":" in i.value  # object path module:attr
        assert i.package


def test_load_by_name():
    cls = plugins.load("param_shift")
    est = GradientEstimator(StatevectorEstimator(), method=cls())
    g = est.run([(circ(), "Z", [0.3])]).result()[0].data.grads
    np.testing.assert_allclose(g, [-np.sin(0.3)], atol=1e-10)
    from qprim_grad.optimizers import SPSA

    assert plugins.load("spsa", group="qprim_grad.optimizers") is SPSA


@pytest.mark.parametrize(
    "cmd",
    [
        [str(VENV_BIN / "qprim-grad"), "plugins"],
        [sys.executable, "-m", "qprim_grad", "plugins"],
    ],
)
def test_cli_prints_plugins(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
    for n in BUILTIN:
        assert n in out
    assert "qprim_grad.gradient_methods" in out
    assert "qprim_grad.optimizers" in out
    assert "qprim_grad.methods" in out  # object paths
    assert "qprim-grad" in out or "qprim_grad" in out  # package


def _make_dist(tmp_path: Path, entry_points: str, module_src: str = "") -> Path:
    site = tmp_path / "site"
    dist = site / "thirdparty_grad-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-grad\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    if module_src:
        (site / "thirdparty_grad.py").write_text(textwrap.dedent(module_src))
    return site


def _run_py(site: Path, code: str):
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = str(site) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-W", "always", "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=90,
    )


def test_third_party_method_by_name(tmp_path):
    site = _make_dist(
        tmp_path,
        """
        [qprim_grad.gradient_methods]
        my_fd = thirdparty_grad:MyFD
        """,
        """
        from qprim_grad.methods.shift import FiniteDiff as MyFD
        """,
    )
    proc = _run_py(
        site,
        """
        import numpy as np
        from qiskit import QuantumCircuit
        from qiskit.circuit import Parameter
        from qiskit.primitives import StatevectorEstimator
        from qprim_grad import GradientEstimator
        import qprim_grad.plugins as p
        a = Parameter("a"); qc = QuantumCircuit(1); qc.ry(a, 0)
        g = GradientEstimator(StatevectorEstimator(), method="my_fd", epsilon=1e-6)
        print("GRAD", float(g.run([(qc, "Z", [0.3])]).result()[0].data.grads[0]))
        print("LISTED", any(i.name == "my_fd" and i.package for i in p.list_plugins()))
        """,
    )
    assert proc.returncode == 0, proc.stderr
    grad = float(proc.stdout.split("GRAD")[1].split()[0])
    assert grad == pytest.approx(-np.sin(0.3), abs=1e-6)
    assert "LISTED True" in proc.stdout


def test_broken_third_party_plugin_warns_never_breaks_import(tmp_path):
    site = _make_dist(
        tmp_path,
        """
        [qprim_grad.gradient_methods]
        busted_method = no_such_module_xyz:Thing
        """,
    )
    proc = _run_py(
        site,
        """
        import qprim_grad
        from qprim_grad import GradientEstimator
        import qprim_grad.plugins as p
        infos = p.list_plugins(check=True)
        print("OK", [i.name for i in infos if i.error])
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert "OK" in proc.stdout
    assert "busted_method" in proc.stdout + proc.stderr
    # the CLI still works and names it
    cli = _run_py(
        site,
        "import sys; from qprim_grad.__main__ import main; "
        "sys.argv=['qprim-grad','plugins']; main()",
    )
    assert cli.returncode == 0, cli.stderr
    assert "busted_method" in cli.stdout + cli.stderr
    # loading it by name gives a clear error naming it
    load = _run_py(
        site,
        """
        from qiskit.primitives import StatevectorEstimator
        from qprim_grad import GradientEstimator
        GradientEstimator(StatevectorEstimator(), method="busted_method")
        """,
    )
    assert "busted_method" in load.stderr


def test_version_exposed():
    assert isinstance(qprim_grad.__version__, str)
