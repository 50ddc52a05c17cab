"""The CI guard itself: an unexpected skip fails the run, an allowed one does not."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def run_suite(tmp_path: Path, test_code: str, strict: str, allowed: str = "()") -> tuple[int, str]:
    shutil.copy(HERE / "_strict_skips.py", tmp_path / "_strict_skips.py")
    source = (tmp_path / "_strict_skips.py").read_text()
    source = source.replace("ALLOWED_SKIPS: tuple[str, ...] = ()", f"ALLOWED_SKIPS = {allowed}")
    (tmp_path / "_strict_skips.py").write_text(source)
    shutil.copy(HERE / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_sample.py").write_text(test_code)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env["QPRIM_GRAD_STRICT_SKIPS"] = strict
    process = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return process.returncode, process.stdout


SKIPPING = """
import pytest

def test_runs():
    assert True

def test_needs_missing_package():
    pytest.importorskip("no_such_package_for_qprim_grad")
"""

MODULE_SKIP = """
import pytest
pytest.importorskip("no_such_package_for_qprim_grad")

def test_never_runs():
    pass
"""


@pytest.mark.parametrize("code", [SKIPPING, MODULE_SKIP], ids=["test", "module"])
def test_unexpected_skip_fails_the_run(tmp_path, code):
    status, output = run_suite(tmp_path, code, strict="1")
    assert status == pytest.ExitCode.TESTS_FAILED, output
    assert "unexpected skips" in output and "no_such_package_for_qprim_grad" in output


def test_allowed_skip_and_relaxed_mode_pass(tmp_path):
    status, output = run_suite(tmp_path, SKIPPING, strict="1", allowed='("no_such_package",)')
    assert status == pytest.ExitCode.OK, output
    status, output = run_suite(tmp_path, SKIPPING, strict="0")
    assert status == pytest.ExitCode.OK, output
    assert "1 skipped" in output
