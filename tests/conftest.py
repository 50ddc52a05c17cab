"""Suite-wide configuration: unexpected skips fail CI (see tests/_strict_skips.py)."""

from __future__ import annotations

import pytest
from _strict_skips import register


def pytest_configure(config: pytest.Config) -> None:
    register(config)
