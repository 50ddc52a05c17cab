"""Fail the run when a test is skipped unexpectedly (a plugin loaded by tests/conftest.py).

CI must run every test: a missing optional dependency that turns a test (or a whole module,
through ``pytest.importorskip``) into a skip would otherwise pass unnoticed. With
``QPRIM_GRAD_STRICT_SKIPS=1`` (set by ``.ci/run`` and tox; ``CI=true`` also turns it on,
``QPRIM_GRAD_STRICT_SKIPS=0`` off) a skip whose reason matches none of
:data:`ALLOWED_SKIPS` makes the run fail, and the summary lists it.
"""

from __future__ import annotations

import os
import re
from typing import Any

import pytest

#: Regular expressions for skip reasons that are expected even in CI (none today: every
#: optional dependency of the tests is in the ``[test]`` extra). Add one with a comment
#: saying why the skip is acceptable.
ALLOWED_SKIPS: tuple[str, ...] = ()


def strict_skips_enabled() -> bool:
    """Whether unexpected skips fail the run."""
    off = ("", "0", "false", "no")
    flag = os.environ.get("QPRIM_GRAD_STRICT_SKIPS")
    if flag is not None:
        return flag.strip().lower() not in off
    return os.environ.get("CI", "").strip().lower() not in off


def _reason(report: Any) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


class StrictSkips:
    """Collects unexpected skips; fails the session if there are any."""

    def __init__(self, allowed: tuple[str, ...] = ALLOWED_SKIPS) -> None:
        self.allowed = allowed
        self.unexpected: list[tuple[str, str]] = []

    def _record(self, report: Any) -> None:
        if not report.skipped or hasattr(report, "wasxfail"):
            return
        reason = _reason(report)
        if not any(re.search(pattern, reason) for pattern in self.allowed):
            self.unexpected.append((report.nodeid, reason))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._record(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self._record(report)  # a module skipped as a whole (importorskip at import)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        passing = (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
        if self.unexpected and session.exitstatus in passing:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.unexpected:
            return
        terminalreporter.section("unexpected skips (QPRIM_GRAD_STRICT_SKIPS)", red=True)
        for nodeid, reason in self.unexpected:
            terminalreporter.line(f"{nodeid}: {reason}")
        terminalreporter.line(
            f"{len(self.unexpected)} skip(s) for a reason not in ALLOWED_SKIPS "
            "(tests/_strict_skips.py): install the [test] extra, or allow the reason there."
        )


def register(config: pytest.Config) -> None:
    """Register the plugin when strict skips are enabled."""
    if strict_skips_enabled():
        config.pluginmanager.register(StrictSkips(), "qprim_grad_strict_skips")
