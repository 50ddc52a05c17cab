"""Shared pieces of the benchmarks: zero-work primitives, pub recorders, timers."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from qiskit.primitives import BaseEstimatorV2, BaseSamplerV2, PrimitiveResult
from qiskit.primitives.containers import DataBin, EstimatorPub, PubResult
from qiskit.primitives.primitive_job import PrimitiveJob


class ZeroWorkEstimator(BaseEstimatorV2):
    """Coerces pubs and returns zeros; records the time spent inside it."""

    def __init__(self) -> None:
        self.inner_seconds = 0.0

    def run(self, pubs, *, precision=None):
        start = time.perf_counter()
        coerced = [EstimatorPub.coerce(pub, precision) for pub in pubs]
        results = [
            PubResult(
                DataBin(evs=np.zeros(p.shape), stds=np.zeros(p.shape), shape=p.shape),
                metadata={"target_precision": 0.0},
            )
            for p in coerced
        ]
        result = PrimitiveResult(results, metadata={})
        job = PrimitiveJob(lambda: result)
        job._submit()
        self.inner_seconds += time.perf_counter() - start
        return job


class Recorder:
    """Wraps a primitive: records the pubs of each run and the time spent inside it
    (submission plus ``result()``)."""

    def __init__(self, primitive: BaseEstimatorV2 | BaseSamplerV2) -> None:
        self.primitive = primitive
        self.pubs: list[Any] = []
        self.inner_seconds = 0.0

    def run(self, pubs, **kwargs):
        self.pubs = list(pubs)
        start = time.perf_counter()
        job = self.primitive.run(self.pubs, **kwargs)
        self.inner_seconds += time.perf_counter() - start
        recorder = self

        class _Timed:
            def __getattr__(self, name):
                return getattr(job, name)

            def result(self):
                begin = time.perf_counter()
                out = job.result()
                recorder.inner_seconds += time.perf_counter() - begin
                return out

        return _Timed()


def median_time(function: Callable[[], Any], repeats: int = 5) -> float:
    """Median wall time in seconds over ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def paired_ratio(ours: Callable[[], Any], floor: Callable[[], Any], repeats: int = 5) -> float:
    """Median of ``time(ours) / time(floor)`` over alternating runs (robust to load drift
    on a shared machine)."""
    ratios = []
    for _ in range(repeats):
        start = time.perf_counter()
        ours()
        mid = time.perf_counter()
        floor()
        end = time.perf_counter()
        ratios.append((mid - start) / (end - mid))
    return statistics.median(ratios)


def print_table(rows: list[dict]) -> None:
    if not rows:
        return
    keys = list(dict.fromkeys(k for row in rows for k in row))
    cells = [[_fmt(row.get(k, "")) for k in keys] for row in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    print("  ".join(k.ljust(w) for k, w in zip(keys, widths)))
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths)))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)
