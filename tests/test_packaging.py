"""Packaging metadata and the command line a new user meets first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from qprim_grad.__main__ import main

ROOT = Path(__file__).resolve().parents[1]

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_spdx_license_and_license_file(pyproject):
    project = pyproject["project"]
    assert project["license"] == "Apache-2.0"  # an SPDX expression, not the deprecated table
    for name in project["license-files"]:
        text = (ROOT / name).read_text(encoding="utf-8")
        assert "Apache License" in text and "Version 2.0, January 2004" in text
    # SPDX strings and license-files need setuptools 77 (older ones warn or fail)
    assert "setuptools>=77" in pyproject["build-system"]["requires"]


def test_test_extra_is_complete(pyproject):
    """CI installs [test] only: everything the suite imports (plots included) is in it."""
    test = " ".join(pyproject["project"]["optional-dependencies"]["test"])
    for package in ("matplotlib", "scipy", "qiskit-aer", "qiskit-ibm-runtime", "pytest-mock"):
        assert package in test


def test_no_global_filter_hides_deprecations(pyproject):
    options = pyproject["tool"]["pytest"]["ini_options"]
    assert not any("DeprecationWarning" in f for f in options.get("filterwarnings", []))


def test_no_subcommand_prints_help_and_commands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: qprim-grad")
    assert "commands:" in out and "plugins" in out and "list installed" in out


def test_console_entry_point_without_arguments():
    completed = subprocess.run(
        [sys.executable, "-m", "qprim_grad"], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0 and completed.stderr == ""
    assert "plugins" in completed.stdout and "usage: qprim-grad" in completed.stdout


def test_docs_extra_builds_the_figures(pyproject):
    """``pip install .[docs]`` is enough for ``sphinx-build``: its figures run on runtime
    local mode (Aer) and are drawn with matplotlib."""
    docs = " ".join(pyproject["project"]["optional-dependencies"]["docs"])
    for package in ("sphinx", "furo", "matplotlib", "qiskit-aer", "qiskit-ibm-runtime"):
        assert package in docs


def test_user_extra_all_holds_what_the_examples_use(pyproject):
    """``pip install ".[all]"`` is what the install docs tell a user: simulators, IBM
    Runtime, plots and progress bars, and none of the development tools."""
    extras = pyproject["project"]["optional-dependencies"]
    names = {requirement.split(">")[0].split("=")[0].split("[")[0] for requirement in extras["all"]}
    assert names == {"qiskit-aer", "qiskit-ibm-runtime", "matplotlib", "tqdm"}
    for extra in ("aer", "runtime", "plot", "progress"):
        assert set(extras[extra]) <= set(extras["all"]), extra


def test_release_check_builds_checks_and_runs_the_demo_from_the_wheel(pyproject):
    """CI builds both distributions, checks them with twine, installs the wheel with [all]
    into a clean venv and runs the demo outside the checkout (.ci/release)."""
    release = " ".join(pyproject["project"]["optional-dependencies"]["release"])
    assert "build" in release and "twine" in release
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert '.ci/release "$ROOT"' in ci and '".[release]"' in ci
    script = (ROOT / ".ci" / "release").read_text(encoding="utf-8")
    for step in ("python -m build", "twine check", "venv", '"$WHEEL[all]"', 'cd "$WORK/run"'):
        assert step in script, step
    assert "site-packages" in script  # the demo imports the installed wheel, not src/


def test_version_is_the_changelogs_latest(pyproject):
    import qprim_grad

    version = pyproject["project"]["version"]
    assert qprim_grad.__version__ == version
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    first = next(line for line in changelog.splitlines() if line.startswith("## "))
    assert first.startswith(f"## [{version}] - "), first
