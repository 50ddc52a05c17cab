"""`GradientJob`: inner job ids, status, cancel, repeatable and thread-safe result."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from qiskit.circuit import Parameter
from qiskit.primitives import StatevectorEstimator
from qiskit.providers import JobStatus

from qprim_grad import GradientEstimator, GradientJobError
from qprim_grad.pipeline.job import GradientJob, InnerJob


@pytest.fixture
def pub():
    from qiskit import QuantumCircuit

    theta = Parameter("theta")
    circuit = QuantumCircuit(1)
    circuit.ry(theta, 0)
    return (circuit, "Z", [0.3])


class FakeJob:
    """A controllable inner job: status strings as qiskit-ibm-runtime jobs return them."""

    def __init__(self, job_id: str, status="QUEUED", result=None, error=None):
        self._id, self._status, self._result, self._error = job_id, status, result, error
        self.release = threading.Event()
        self.cancel_calls = 0

    def job_id(self):
        return self._id

    def status(self):
        return self._status

    def result(self):
        self.release.wait(5)
        if self._error is not None:
            raise self._error
        return self._result

    def cancel(self):
        self.cancel_calls += 1
        self._status = "CANCELLED"


def test_inner_job_ids_and_metadata(pub):
    inner = StatevectorEstimator()
    job = GradientEstimator(inner).run([pub])
    assert len(job.inner_job_ids) == 1
    assert job.inner_job_ids == [j.job_id() for j in job.inner_jobs]
    assert job.metadata["inner_job_ids"] == job.inner_job_ids
    result = job.result()
    assert result.metadata["inner_job_ids"] == job.inner_job_ids
    assert result[0].metadata["inner_job_ids"] == job.inner_job_ids
    assert job.status() == JobStatus.DONE and job.done() and job.in_final_state()
    assert job.job_id() and job.job_id() not in job.inner_job_ids


def test_result_repeatable_and_thread_safe(mocker, pub):
    job = GradientEstimator(StatevectorEstimator()).run([pub])
    finish = mocker.spy(job, "_finish")
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: job.result(), range(16)))
    assert all(r is results[0] for r in results)
    assert finish.call_count == 1
    assert job.result() is results[0]
    np.testing.assert_allclose(results[0][0].data.grads, [-np.sin(0.3)])


def test_status_mirrors_runtime_style_strings():
    jobs = [FakeJob("a", "QUEUED"), FakeJob("b", "RUNNING")]
    job = GradientJob([InnerJob(j, (0,)) for j in jobs], lambda results: results)
    assert job.status() == JobStatus.RUNNING and job.running()
    jobs[1]._status = "QUEUED"
    assert job.status() == JobStatus.QUEUED
    jobs[0]._status = jobs[1]._status = "DONE"
    assert job.status() == JobStatus.DONE
    jobs[0]._status = JobStatus.ERROR  # enum members work too
    assert job.status() == JobStatus.ERROR and job.in_final_state()


def test_cancel_cancels_every_inner_job():
    jobs = [FakeJob("a", "RUNNING"), FakeJob("b", "QUEUED")]
    job = GradientJob([InnerJob(j, (0,)) for j in jobs], lambda results: results)
    assert job.cancel() is True
    assert [j.cancel_calls for j in jobs] == [1, 1]
    assert job.cancelled() and job.status() == JobStatus.CANCELLED


def test_run_does_not_wait_for_inner_jobs(mocker, pub):
    """``run`` returns at once; an unfinished, never-``result()``-ed job blocks nothing."""
    inner = StatevectorEstimator()
    slow = FakeJob("slow", "RUNNING")
    mocker.patch.object(inner, "run", return_value=slow)
    job = GradientEstimator(inner).run([pub])
    assert job.status() == JobStatus.RUNNING and not job.done()
    assert job.inner_job_ids == ["slow"]
    slow.release.set()  # let result() calls of other tests never hang


def test_failed_inner_job_raises_and_error_is_repeatable(mocker, pub):
    inner = StatevectorEstimator()
    original = inner.run

    def run(pubs, **kwargs):
        job = original(pubs, **kwargs)
        mocker.patch.object(job, "result", side_effect=RuntimeError("boom"))
        return job

    mocker.patch.object(inner, "run", side_effect=run)
    job = GradientEstimator(inner).run([pub])
    with pytest.raises(GradientJobError, match="boom") as first:
        job.result()
    with pytest.raises(GradientJobError) as second:
        job.result()
    assert first.value is second.value
    assert job.inner_job_ids[0] in str(first.value)
    assert job.status() == JobStatus.ERROR


def test_finish_error_is_kept_and_reraised():
    """``GradientJob`` stores what ``finish`` raised and gives the same error again."""
    inner = FakeJob("x", "DONE", result=["not a pub result"])
    inner.release.set()
    job = GradientJob([InnerJob(inner, (0,))], lambda results: results[0][0].data)
    with pytest.raises(AttributeError, match="has no attribute 'data'") as first:
        job.result()
    with pytest.raises(AttributeError) as second:
        job.result()
    assert first.value is second.value
    assert job.status() == JobStatus.ERROR


def test_combination_error_is_a_gradient_job_error(mocker, pub):
    """The wrapper's real path: inner pub results the combination cannot use (here without
    ``stds``) become a GradientJobError naming the pub and the cause."""
    from qiskit.primitives import PrimitiveResult, PubResult
    from qiskit.primitives.containers import DataBin

    inner = StatevectorEstimator()
    original = inner.run

    def run(pubs, **kwargs):
        job = original(pubs, **kwargs)
        results = job.result()
        stripped = [PubResult(DataBin(evs=r.data.evs, shape=r.data.shape)) for r in results]
        mocker.patch.object(job, "result", return_value=PrimitiveResult(stripped))
        return job

    mocker.patch.object(inner, "run", side_effect=run)
    job = GradientEstimator(inner).run([pub, pub])
    with pytest.raises(
        GradientJobError,
        match=r"pub 0: could not combine the inner results into gradients: AttributeError",
    ) as info:
        job.result()
    assert isinstance(info.value.__cause__, AttributeError)
    assert "stds" in str(info.value)
    assert job.status() == JobStatus.ERROR
