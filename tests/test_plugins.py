"""Entry-point discovery: built-in registrations, a third-party method, a broken plugin, CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.primitives import StatevectorEstimator

from qprim_grad import GradientEstimator, plugins
from qprim_grad.__main__ import main
from qprim_grad.methods import GradientMethodError, available_methods

THIRD_PARTY = '''
"""A third-party gradient method: forward differences with its own default step."""
from qprim_grad.methods.shift import FiniteDiff


class ForwardStep(FiniteDiff):
    name = "forward_step"

    def __init__(self, epsilon=1e-4):
        super().__init__(epsilon=epsilon, scheme="forward")
'''


def make_dist(root: Path, name: str, entry_points: str, module: str | None = None) -> Path:
    """A minimal installed distribution (``*.dist-info``) with ``entry_points`` under ``root``."""
    info = root / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    if module is not None:
        (root / f"{name}.py").write_text(module)
    return root


@pytest.fixture
def third_party(tmp_path, monkeypatch):
    root = make_dist(
        tmp_path / "good",
        "qpg_thirdparty",
        """
        [qprim_grad.gradient_methods]
        forward_step = qpg_thirdparty:ForwardStep
        """,
        THIRD_PARTY,
    )
    monkeypatch.syspath_prepend(str(root))
    yield root
    sys.modules.pop("qpg_thirdparty", None)


@pytest.fixture
def broken(tmp_path):
    return make_dist(
        tmp_path / "broken",
        "qpg_broken",
        """
        [qprim_grad.gradient_methods]
        broken_method = qpg_no_such_module:Method
        """,
    )


def _subprocess(code: str, *paths: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(p) for p in paths] + [env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )


def test_own_methods_and_optimizer_are_registered():
    found = {(p.group, p.name): p for p in plugins.list_plugins()}
    for name in ("param_shift", "finite_diff", "spsa", "lin_comb"):
        info = found[(plugins.GRADIENT_METHODS, name)]
        assert info.package == "qprim-grad" and info.value.startswith("qprim_grad.methods.")
    assert found[(plugins.OPTIMIZERS, "spsa")].value == "qprim_grad.optimizers:SPSA"
    from qprim_grad.optimizers import SPSA

    assert plugins.load("spsa", plugins.OPTIMIZERS) is SPSA


def test_third_party_method_is_found_and_usable(third_party):
    assert "forward_step" in available_methods()
    info = next(p for p in plugins.list_plugins() if p.name == "forward_step")
    assert (info.group, info.value, info.package) == (
        plugins.GRADIENT_METHODS,
        "qpg_thirdparty:ForwardStep",
        "qpg_thirdparty",
    )
    theta = Parameter("theta")
    circuit = QuantumCircuit(1)
    circuit.rx(theta, 0)
    grad = GradientEstimator(StatevectorEstimator(), method="forward_step", epsilon=1e-6)
    assert grad.method.name == "forward_step" and grad.method.options["scheme"] == "forward"
    result = grad.run([(circuit, "Z", [0.4])]).result()
    np.testing.assert_allclose(result[0].data.grads, [-np.sin(0.4)], atol=1e-5)
    assert result[0].metadata["method"] == "forward_step"


def test_broken_plugin_warns_by_name_and_errors_by_name_when_asked_for(broken, monkeypatch):
    monkeypatch.syspath_prepend(str(broken))
    assert "broken_method" in available_methods()  # listed without importing it
    with pytest.warns(plugins.PluginWarning, match="broken_method"):
        infos = plugins.list_plugins(check=True)
    info = next(p for p in infos if p.name == "broken_method")
    assert "qpg_no_such_module" in info.error
    assert all(p.error is None for p in infos if p.package == "qprim-grad")
    with pytest.raises(plugins.PluginError, match="broken_method"):
        GradientEstimator(StatevectorEstimator(), method="broken_method")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # listing lazily and using built-ins: no warning
        GradientEstimator(StatevectorEstimator(), method="param_shift")


def test_broken_plugin_never_breaks_import(broken, third_party):
    code = (
        "import qprim_grad\n"
        "from qprim_grad.methods import available_methods\n"
        "from qprim_grad import GradientEstimator\n"
        "from qiskit.primitives import StatevectorEstimator\n"
        "print(sorted(available_methods()))\n"
        "print(GradientEstimator(StatevectorEstimator(), method='forward_step').method.name)\n"
    )
    done = _subprocess(code, broken, third_party)
    assert done.returncode == 0, done.stderr
    assert "broken_method" in done.stdout and "forward_step" in done.stdout.splitlines()[-1]


def test_unknown_method_lists_known_ones():
    with pytest.raises(GradientMethodError, match="param_shift"):
        GradientEstimator(StatevectorEstimator(), method="no_such_method")


def test_cli_prints_table(capsys):
    assert main(["plugins"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "group", "object", "package", "status"]
    rows = {tuple(line.split()[:4]) for line in lines[2:]}
    assert (
        "param_shift",
        plugins.GRADIENT_METHODS,
        "qprim_grad.methods.shift:ParamShift",
        "qprim-grad",
    ) in rows
    assert ("spsa", plugins.OPTIMIZERS, "qprim_grad.optimizers:SPSA", "qprim-grad") in rows
    assert main(["plugins", "--group", "optimizers"]) == 0
    assert "gradient_methods" not in capsys.readouterr().out


def test_python_m_cli_names_broken_plugin(broken):
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(broken), os.environ.get("PYTHONPATH", "")])
    )
    done = subprocess.run(
        [sys.executable, "-m", "qprim_grad", "plugins"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "lin_comb" in done.stdout and "broken_method" in done.stdout
    assert "broken" in done.stdout.splitlines()[-1] or "broken_method" in done.stderr
    assert "warning" in done.stderr and "broken_method" in done.stderr


def test_cli_strict_exit_code(broken, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(broken))
    assert main(["plugins", "--strict"]) == 1
    assert "broken_method" in capsys.readouterr().err


def test_builtin_names_resolve_without_reading_entry_points(mocker):
    scan = mocker.spy(plugins, "entry_points_of")
    GradientEstimator(StatevectorEstimator(), method="finite_diff", metric="block_diag")
    assert scan.call_count == 0
    with pytest.raises(GradientMethodError, match="unknown gradient method 'no_such'"):
        GradientEstimator(StatevectorEstimator(), method="no_such")
    assert scan.call_count == 1  # an unknown name is looked up among the plugins
