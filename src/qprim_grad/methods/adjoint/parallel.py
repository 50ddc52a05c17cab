"""Two threads for the kernels on large states.

From :data:`PARALLEL_AMPLITUDES` amplitudes on, a dense kernel splits its rows into two halves
and works on them in two threads (numpy releases the GIL inside each large product and copy),
as lightning.qubit does with OpenMP from 18 qubits on. Each half works in its own cache-sized
scratch buffer, so memory stays within a few hundred kilobytes per thread. Halves are cut at
fixed, chunk-aligned rows, so results do not depend on thread timing.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["PARALLEL_AMPLITUDES", "in_halves"]

#: states at least this large are worked on by two threads (measured: below, thread hand-offs
#: cost more than they save)
PARALLEL_AMPLITUDES = 1 << 17

T = TypeVar("T")

_TWO_CORES = (os.cpu_count() or 1) >= 2
_POOLS: dict[int, ThreadPoolExecutor] = {}  # per process: a forked child gets its own threads
_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor | None:
    if not _TWO_CORES:
        return None
    pid = os.getpid()
    with _LOCK:
        if pid not in _POOLS:
            _POOLS.clear()
            _POOLS[pid] = ThreadPoolExecutor(2, thread_name_prefix="qprim-grad-adjoint")
        return _POOLS[pid]


def in_halves(work: Callable[[int, int], T], total: int, step: int, amplitudes: int) -> list[T]:
    """``work(lo, hi)`` over the rows ``[0, total)``: in two step-aligned halves on two threads
    when the state has at least :data:`PARALLEL_AMPLITUDES` amplitudes and the machine two
    cores, else in one call."""
    half = (total // 2 // step) * step
    pool = _pool() if amplitudes >= PARALLEL_AMPLITUDES and half else None
    if pool is None:
        return [work(0, total)]
    futures = [pool.submit(work, 0, half), pool.submit(work, half, total)]
    return [future.result() for future in futures]
