"""The job returned by the gradient primitives: wraps the inner job(s) and combines."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from qiskit.primitives import BasePrimitiveJob, PrimitiveResult
from qiskit.providers import JobStatus

from ..errors import GradientJobError

__all__ = ["ForwardingJob", "GradientJob", "InnerJob", "job_id_of"]


def job_id_of(job: Any) -> str:
    """``job.job_id()`` as a string, ``"<unknown>"`` if the job cannot say (an id is
    informative only: never fail on it)."""
    try:
        return str(job.job_id())
    except Exception:
        return "<unknown>"


class ForwardingJob(BasePrimitiveJob):  # type: ignore[misc]
    """A job around another job: status, cancellation and the like are the wrapped job's;
    subclasses say how its ``result()`` is converted."""

    def __init__(self, job: Any, job_id: str) -> None:
        super().__init__(job_id=job_id)
        self._job = job

    def result(self) -> Any:
        raise NotImplementedError

    def status(self) -> Any:
        return self._job.status()

    def done(self) -> bool:
        return cast(bool, self._job.done())

    def running(self) -> bool:
        return cast(bool, self._job.running())

    def cancelled(self) -> bool:
        return cast(bool, self._job.cancelled())

    def in_final_state(self) -> bool:
        return cast(bool, self._job.in_final_state())

    def cancel(self) -> Any:
        return self._job.cancel()


@dataclass(frozen=True)
class InnerJob:
    """One submitted inner job and which of the gradient's pubs it serves."""

    job: Any
    pubs: tuple[int, ...]

    @property
    def job_id(self) -> str:
        return job_id_of(self.job)


def _status_name(status: Any) -> str:
    """``JobStatus`` members and runtime status strings ("QUEUED", ...) alike."""
    return str(getattr(status, "name", status)).upper()


def _inner_status(inner: InnerJob) -> str:
    """An inner job's status name (``ERROR`` if it cannot say)."""
    try:
        return _status_name(inner.job.status())
    except Exception:
        return "ERROR"


def _combined_status(names: list[str]) -> JobStatus:
    """The status of a gradient job whose inner jobs are in states ``names``."""
    for name in ("ERROR", "CANCELLED"):
        if name in names:
            return JobStatus[name]
    if all(name == "DONE" for name in names):
        return JobStatus.DONE
    if "RUNNING" in names:
        return JobStatus.RUNNING
    for name, status in _PENDING.items():
        if name in names:
            return status
    return JobStatus.RUNNING


_PENDING = {
    "INITIALIZING": JobStatus.INITIALIZING,
    "VALIDATING": JobStatus.VALIDATING,
    "QUEUED": JobStatus.QUEUED,
}


class GradientJob(BasePrimitiveJob[PrimitiveResult, JobStatus]):  # type: ignore[misc]
    """A gradient job over one or more inner jobs.

    ``result()`` waits for every inner job, then combines; it may be called repeatedly and
    from several threads (the combination runs once, later calls return the same object or
    raise the same error). Nothing waits until ``result()`` is called. ``status()`` mirrors
    the inner jobs, ``cancel()`` cancels all of them, :attr:`inner_job_ids` gives their ids.
    ``metadata`` holds the method and the inner job ids; after a failure also
    ``failed_job_ids`` and ``finished_job_ids``.
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
        self._error: Exception | None = None

    @property
    def inner_jobs(self) -> tuple[Any, ...]:
        """The jobs submitted to the wrapped primitive."""
        return tuple(inner.job for inner in self._inner_jobs)

    @property
    def inner_job_ids(self) -> list[str]:
        """Ids of the inner jobs (for the provider's dashboard)."""
        return [inner.job_id for inner in self._inner_jobs]

    def _collect(self) -> list[Any]:
        """Every inner job's result; if any fails, a :class:`GradientJobError` naming the
        failed parts and keeping the finished parts' ids (after waiting for all)."""
        results: list[Any] = []
        failures: list[tuple[InnerJob, Exception]] = []
        for inner in self._inner_jobs:
            try:
                results.append(inner.job.result())
            except Exception as exc:
                failures.append((inner, exc))
                results.append(None)
        if failures:
            raise self._failure(failures) from failures[0][1]
        return results

    def _failure(self, failures: list[tuple[InnerJob, Exception]]) -> GradientJobError:
        """The error naming the failed parts; the failed and finished ids in ``metadata``."""
        failed_ids = {id(inner) for inner, _ in failures}
        finished = [i.job_id for i in self._inner_jobs if id(i) not in failed_ids]
        details = "; ".join(
            f"inner job {inner.job_id} (part {self._inner_jobs.index(inner) + 1} of "
            f"{len(self._inner_jobs)}, serving {_pub_list(inner.pubs)}) failed: "
            f"{type(exc).__name__}: {exc}"
            for inner, exc in failures
        )
        self.metadata["failed_job_ids"] = [inner.job_id for inner, _ in failures]
        self.metadata["finished_job_ids"] = finished
        return GradientJobError(
            details + (f"; finished inner jobs: {finished}" if finished else ""),
            failed=[(inner.job_id, inner.pubs) for inner, _ in failures],
            finished_job_ids=finished,
        )

    def result(self) -> PrimitiveResult:
        with self._lock:
            if self._result is None and self._error is None:
                try:
                    self._result = self._finish(self._collect())
                except Exception as exc:
                    self._error = exc
            if self._error is not None:
                raise self._error
            assert self._result is not None
            return self._result

    def status(self) -> JobStatus:
        """The combined status: ERROR or CANCELLED if any inner job is, DONE when all are,
        else RUNNING if any runs, else the earliest pending state."""
        if self._error is not None:
            return JobStatus.ERROR
        return _combined_status([_inner_status(inner) for inner in self._inner_jobs])

    def done(self) -> bool:
        return cast(bool, self.status() == JobStatus.DONE)

    def running(self) -> bool:
        return cast(bool, self.status() == JobStatus.RUNNING)

    def cancelled(self) -> bool:
        return cast(bool, self.status() == JobStatus.CANCELLED)

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


def _pub_list(pubs: tuple[int, ...]) -> str:
    """``pub 0`` / ``pub 0, pub 1``: each index named, so a message can be searched for."""
    return ", ".join(f"pub {index}" for index in pubs) or "no pubs"
