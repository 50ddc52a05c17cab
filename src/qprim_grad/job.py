"""The job returned by the gradient primitives: wraps the inner job(s) and combines."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from qiskit.primitives import BasePrimitiveJob, PrimitiveResult
from qiskit.providers import JobStatus

__all__ = ["GradientJob", "GradientJobError", "InnerJob"]


class GradientJobError(RuntimeError):
    """An inner job failed, or its results could not be combined into gradients."""


@dataclass(frozen=True)
class InnerJob:
    """One submitted inner job and which of the gradient's pubs it serves."""

    job: Any
    pubs: tuple[int, ...]

    @property
    def job_id(self) -> str:
        try:
            return str(self.job.job_id())
        except Exception:  # a job id is informative; never fail on it
            return "<unknown>"


def _status_name(status: Any) -> str:
    return str(getattr(status, "name", status)).upper()


class GradientJob(BasePrimitiveJob[PrimitiveResult, JobStatus]):
    """A gradient job. ``result()`` waits for the inner job(s), then combines; it may be
    called repeatedly and from several threads (the combination runs once).
    """

    def __init__(
        self,
        inner_jobs: Sequence[InnerJob],
        finish: Callable[[list[Any]], PrimitiveResult],
        **kwargs: Any,
    ) -> None:
        super().__init__(job_id=str(uuid.uuid4()), **kwargs)
        self._inner_jobs = tuple(inner_jobs)
        self._finish = finish
        self._lock = threading.Lock()
        self._result: PrimitiveResult | None = None
        self._error: BaseException | None = None

    @property
    def inner_jobs(self) -> tuple[Any, ...]:
        """The jobs submitted to the wrapped primitive."""
        return tuple(inner.job for inner in self._inner_jobs)

    @property
    def inner_job_ids(self) -> list[str]:
        """Ids of the inner jobs (for the provider's dashboard)."""
        return [inner.job_id for inner in self._inner_jobs]

    def _collect(self) -> list[Any]:
        results: list[Any] = []
        for inner in self._inner_jobs:
            try:
                results.append(inner.job.result())
            except Exception as exc:
                done = [
                    other.job_id for other in self._inner_jobs if other is not inner and _ok(other)
                ]
                raise GradientJobError(
                    f"inner job {inner.job_id} (serving pubs {list(inner.pubs)}) failed: "
                    f"{type(exc).__name__}: {exc}"
                    + (f"; finished inner jobs: {done}" if done else "")
                ) from exc
        return results

    def result(self) -> PrimitiveResult:
        with self._lock:
            if self._result is None and self._error is None:
                try:
                    self._result = self._finish(self._collect())
                except BaseException as exc:
                    self._error = exc
            if self._error is not None:
                raise self._error
            assert self._result is not None
            return self._result

    def status(self) -> JobStatus:
        names = [_status_name(inner.job.status()) for inner in self._inner_jobs]
        for name in ("ERROR", "CANCELLED"):
            if name in names:
                return JobStatus[name]
        if all(name == "DONE" for name in names):
            return JobStatus.DONE
        if "RUNNING" in names:
            return JobStatus.RUNNING
        if "QUEUED" in names:
            return JobStatus.QUEUED
        return JobStatus.INITIALIZING if "INITIALIZING" in names else JobStatus.RUNNING

    def done(self) -> bool:
        return self.status() == JobStatus.DONE

    def running(self) -> bool:
        return self.status() == JobStatus.RUNNING

    def cancelled(self) -> bool:
        return self.status() == JobStatus.CANCELLED

    def in_final_state(self) -> bool:
        return self.status() in (JobStatus.DONE, JobStatus.CANCELLED, JobStatus.ERROR)

    def cancel(self) -> bool:
        """Cancel every inner job; true if all accepted the cancellation."""
        outcomes = []
        for inner in self._inner_jobs:
            try:
                outcome = inner.job.cancel()
            except Exception:
                outcome = False
            outcomes.append(outcome is not False)
        return all(outcomes)


def _ok(inner: InnerJob) -> bool:
    try:
        return _status_name(inner.job.status()) == "DONE"
    except Exception:
        return False
