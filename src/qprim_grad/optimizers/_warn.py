"""Warnings that point at the user's line, however deep inside the package they are raised."""

from __future__ import annotations

import sys
import warnings

__all__ = ["warn_user"]


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` with the stack level of the first caller outside ``qprim_grad``."""
    level, frame = 2, sys._getframe(1)  # stacklevel 2 is the frame sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith("qprim_grad"):
        level += 1
        frame = frame.f_back  # type: ignore[assignment]
    warnings.warn(message, category, stacklevel=level)
