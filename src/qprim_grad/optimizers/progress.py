"""The progress line of an optimizer run (tqdm if installed, else a line on stderr)."""

from __future__ import annotations

import sys

__all__ = ["Progress"]


class Progress:
    """A progress line on stderr (tqdm if installed)."""

    def __init__(self, total: int, enabled: bool, start: int, name: str = "SPSA") -> None:
        self.bar = None
        self.name = name
        self.enabled = enabled
        self.total = total
        if not enabled:
            return
        try:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=start, desc=name, leave=True)
        except ImportError:
            self.bar = None

    def update(self, k: int, loss: float | None) -> None:
        if not self.enabled:
            return
        text = "" if loss is None else f"loss={loss:.6g}"
        if self.bar is not None:
            self.bar.n = k
            self.bar.set_postfix_str(text)
            self.bar.refresh()
        else:
            sys.stderr.write(f"\r{self.name} {k}/{self.total} {text}   ")
            sys.stderr.flush()

    def status(self, text: str) -> None:
        """Show ``text`` while something other than an iteration runs (the calibration)."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix_str(text)
            self.bar.refresh()
        else:
            sys.stderr.write(f"\r{self.name} {text}   ")
            sys.stderr.flush()

    def close(self) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.close()
        else:
            sys.stderr.write("\n")
