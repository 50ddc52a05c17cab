"""V2 primitives whose jobs run on a Dask cluster (optional extra ``qprim-grad[dask]``).

qiskit-aer's simulators accept an ``executor=`` option (a ``dask.distributed.Client``), but
from qiskit-aer 0.15 on nothing in the run path of its simulators or V2 primitives submits
work to it: the option is stored and ignored (checked with qiskit-aer 0.18: no task reaches
the scheduler). The narrowest route that works is one primitive per worker, driven by Dask
futures: :class:`DaskEstimator` / :class:`DaskSampler` wrap any picklable V2 primitive (an
Aer ``EstimatorV2`` / ``SamplerV2``, a ``StatevectorEstimator``…), send it to every worker
once, and run each ``run(...)`` call as one Dask task on some worker.

Combined with a gradient's job splitting, a large gradient spreads over the cluster::

    from dask.distributed import Client
    from qiskit_aer.primitives import EstimatorV2
    from qprim_grad import GradientEstimator
    from qprim_grad.dask_primitives import DaskEstimator

    client = Client("tcp://scheduler:8786")
    inner = DaskEstimator(client, EstimatorV2())
    gradient = GradientEstimator(inner, max_job_rows=2000)  # several jobs, run in parallel

Results are those of the wrapped primitive on the same pubs (the same seeds give the same
numbers), whatever worker ran them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from qiskit.primitives import BaseEstimatorV2, BasePrimitiveJob, BaseSamplerV2, PrimitiveResult
from qiskit.providers import JobStatus

__all__ = ["DaskEstimator", "DaskJob", "DaskSampler"]

_STATUS = {
    "pending": JobStatus.QUEUED,
    "processing": JobStatus.RUNNING,
    "finished": JobStatus.DONE,
    "error": JobStatus.ERROR,
    "cancelled": JobStatus.CANCELLED,
    "lost": JobStatus.ERROR,
}


def _run_primitive(primitive: Any, pubs: list[Any], kwargs: dict[str, Any]) -> PrimitiveResult:
    """On a worker: the wrapped primitive's result for ``pubs``."""
    return primitive.run(pubs, **kwargs).result()


class DaskJob(BasePrimitiveJob[PrimitiveResult, JobStatus]):
    """A primitive job backed by one Dask future."""

    def __init__(self, future: Any) -> None:
        super().__init__(job_id=str(future.key))
        self._future = future

    @property
    def future(self) -> Any:
        """The ``dask.distributed.Future``."""
        return self._future

    def result(self) -> PrimitiveResult:
        return self._future.result()

    def status(self) -> JobStatus:
        return _STATUS.get(self._future.status, JobStatus.RUNNING)

    def done(self) -> bool:
        return self._future.status == "finished"

    def running(self) -> bool:
        return self.status() == JobStatus.RUNNING

    def cancelled(self) -> bool:
        return self._future.status == "cancelled"

    def in_final_state(self) -> bool:
        return self._future.done()

    def cancel(self) -> bool:
        self._future.cancel()
        return True


class _DaskPrimitive:
    def __init__(self, client: Any, primitive: Any) -> None:
        if not hasattr(client, "submit") or not hasattr(client, "scatter"):
            raise TypeError(f"expected a dask.distributed.Client, got {client!r}")
        if not hasattr(primitive, "run"):
            raise TypeError(f"expected a V2 primitive to run on the workers, got {primitive!r}")
        self._client = client
        self._primitive = primitive
        self._remote: Any = None

    @property
    def client(self) -> Any:
        """The Dask client."""
        return self._client

    @property
    def primitive(self) -> Any:
        """The primitive each worker runs."""
        return self._primitive

    def __getattr__(self, name: str) -> Any:
        # options, default_precision, default_shots... of the wrapped primitive
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._primitive, name)

    def _submit(self, pubs: Iterable[Any], kwargs: dict[str, Any]) -> DaskJob:
        if self._remote is None:  # the primitive goes to every worker once
            self._remote = self._client.scatter(self._primitive, broadcast=True, hash=False)
        future = self._client.submit(_run_primitive, self._remote, list(pubs), kwargs, pure=False)
        return DaskJob(future)


class DaskEstimator(_DaskPrimitive, BaseEstimatorV2):
    """A V2 estimator that runs each job on a Dask worker.

    Args:
        client: a ``dask.distributed.Client``.
        estimator: a picklable V2 estimator (e.g. qiskit-aer ``EstimatorV2``), run by the
            workers.
    """

    def run(self, pubs: Iterable[Any], *, precision: float | None = None) -> DaskJob:
        return self._submit(pubs, {} if precision is None else {"precision": precision})


class DaskSampler(_DaskPrimitive, BaseSamplerV2):
    """A V2 sampler that runs each job on a Dask worker (see :class:`DaskEstimator`)."""

    def run(self, pubs: Iterable[Any], *, shots: int | None = None) -> DaskJob:
        return self._submit(pubs, {} if shots is None else {"shots": shots})
