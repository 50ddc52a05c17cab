"""qprim_grad benchmarks, run together by ``python -m benchmarks``.

Registry: every module ``benchmarks/<name>_bench.py`` exposes ``run() -> list[dict]``, one dict
per table row (the keys are the columns; use the same key names across modules where the
meaning is the same: ``bench``, ``method``, ``n``, ``P``, ``*_ms``, ``ratio``…). A module is
found by its file name; nothing else to register. ``python -m benchmarks reverse estimator``
runs only the modules whose name contains one of the words.
"""

from __future__ import annotations

import importlib
import pkgutil
import time
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["discover", "format_table", "run_all"]

_SUFFIX = "_bench"


def discover(patterns: Iterable[str] = ()) -> list[str]:
    """Names of the benchmark modules (``*_bench``), filtered by substring ``patterns``."""
    patterns = list(patterns)
    names = sorted(
        info.name
        for info in pkgutil.iter_modules([str(Path(__file__).parent)])
        if info.name.endswith(_SUFFIX)
    )
    return [n for n in names if not patterns or any(p in n for p in patterns)]


def run_all(patterns: Iterable[str] = (), *, verbose: bool = True) -> list[dict[str, Any]]:
    """Run the selected modules in this process; every row gets a ``suite`` column. A
    failing module contributes one row with its ``error`` instead of stopping the run."""
    rows: list[dict[str, Any]] = []
    for name in discover(patterns):
        suite = name[: -len(_SUFFIX)]
        start = time.perf_counter()
        try:
            module = importlib.import_module(f"{__name__}.{name}")
            produced = list(module.run())
        except Exception as exc:  # noqa: BLE001 - report and go on with the other suites
            if verbose:
                traceback.print_exc()
            produced = [{"error": f"{type(exc).__name__}: {exc}"}]
        if verbose:
            print(f"[{suite}: {len(produced)} rows in {time.perf_counter() - start:.1f} s]")
        rows.extend({"suite": suite, **row} for row in produced)
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def format_table(rows: list[dict[str, Any]]) -> str:
    """One plain-text table over all rows (columns in first-seen order, blanks where absent)."""
    if not rows:
        return "(no rows)"
    keys = list(dict.fromkeys(k for row in rows for k in row))
    cells = [[_cell(row.get(k)) for k in keys] for row in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    lines = ["  ".join(k.ljust(w) for k, w in zip(keys, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(
        "  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)).rstrip() for c in cells
    )
    return "\n".join(lines)
