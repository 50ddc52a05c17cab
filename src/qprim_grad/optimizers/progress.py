"""The progress line of an optimizer run: iterations, loss, jobs, shots and the time left
(tqdm if installed, else a line on stderr)."""

from __future__ import annotations

import sys
import time

__all__ = ["Progress", "describe"]


def describe(loss: float | None, jobs: int, shots: int) -> str:
    """The counters the line shows.

    >>> describe(-1.25, 12, 40960)
    'loss=-1.25 jobs=12 shots=40,960'
    """
    text = "" if loss is None else f"loss={loss:.6g} "
    return f"{text}jobs={jobs} shots={shots:,}"


def _eta(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """A progress line on stderr (tqdm if installed)."""

    def __init__(self, total: int, enabled: bool, start: int, name: str = "SPSA") -> None:
        self.bar = None
        self.name = name
        self.enabled = enabled
        self.total = total
        self.start = start
        self.t0 = time.perf_counter()
        self.closed = False
        if not enabled:
            return
        try:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=start, desc=name, leave=True)
        except ImportError:
            self.bar = None

    def line(self, k: int, text: str) -> str:
        """The plain line: iterations, counters and the estimated time left."""
        done = k - self.start
        eta = ""
        if done > 0 and k < self.total:
            left = (time.perf_counter() - self.t0) / done * (self.total - k)
            eta = f" ETA {_eta(left)}"
        return f"{self.name} {k}/{self.total} {text}{eta}"

    def update(self, k: int, loss: float | None, jobs: int = 0, shots: int = 0) -> None:
        if not self.enabled or self.closed:
            return
        text = describe(loss, jobs, shots)
        if self.bar is not None:
            self.bar.n = k
            self.bar.set_postfix_str(text)
            self.bar.refresh()
        else:
            sys.stderr.write(f"\r{self.line(k, text)}   ")
            sys.stderr.flush()

    def status(self, text: str) -> None:
        """Show ``text`` while something other than an iteration runs (the calibration)."""
        if not self.enabled or self.closed:
            return
        if self.bar is not None:
            self.bar.set_postfix_str(text)
            self.bar.refresh()
        else:
            sys.stderr.write(f"\r{self.name} {text}   ")
            sys.stderr.flush()

    def close(self) -> None:
        if not self.enabled or self.closed:
            return
        self.closed = True
        if self.bar is not None:
            self.bar.close()
        else:
            sys.stderr.write("\n")
