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
    inner = DaskEstimator(client, EstimatorV2(), threads_per_job=1)
    gradient = GradientEstimator(inner, max_job_rows=2000)  # several jobs, run in parallel

What travels: the primitive goes to every worker when the wrapper is made; each distinct
circuit goes to every worker once (the wrapper keeps the last :attr:`~DaskEstimator.circuits_kept`,
keyed by content; a circuit object seen before and unchanged is not pickled again to find its
key); a job ships only its parameter values and observables.

Results are those of the wrapped primitive on the same pubs (the same seeds give the same
numbers), whatever worker ran them.
"""

from __future__ import annotations

import copy
import hashlib
import pickle
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, ClassVar

from qiskit.primitives import BaseEstimatorV2, BasePrimitiveJob, BaseSamplerV2, PrimitiveResult
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.primitives.containers.sampler_pub import SamplerPub
from qiskit.providers import JobStatus

from .cache import BoundedCache

__all__ = ["DaskEstimator", "DaskJob", "DaskSampler"]

_STATUS = {
    "pending": JobStatus.QUEUED,
    "processing": JobStatus.RUNNING,
    "finished": JobStatus.DONE,
    "error": JobStatus.ERROR,
    "cancelled": JobStatus.CANCELLED,
    "lost": JobStatus.ERROR,
}


def _run_primitive(
    primitive: Any, pub_type: Any, parts: list[tuple[Any, ...]], kwargs: dict[str, Any]
) -> PrimitiveResult:
    """On a worker: the wrapped primitive's result for the pubs rebuilt from ``parts``."""
    pubs = [pub_type(*fields, validate=False) for fields in parts]
    return primitive.run(pubs, **kwargs).result()


def _content_key(circuit: Any) -> str:
    return hashlib.sha256(pickle.dumps(circuit)).hexdigest()


def _with_threads(primitive: Any, threads: int) -> Any:
    """A copy of a qiskit-aer V2 primitive whose simulator runs with ``threads`` threads."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads_per_job must be a positive integer, got {threads!r}")
    run_options = getattr(getattr(primitive, "options", None), "run_options", None)
    if not isinstance(run_options, dict):
        raise TypeError(
            "threads_per_job sets qiskit-aer's max_parallel_threads (options.run_options); "
            f"{type(primitive).__name__} has no such options"
        )
    pinned = copy.deepcopy(primitive)
    pinned.options.run_options = {**run_options, "max_parallel_threads": threads}
    return pinned


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


def _check_client(client: Any) -> None:
    """A ``dask.distributed.Client`` that is not closed."""
    if not hasattr(client, "submit") or not hasattr(client, "scatter"):
        raise TypeError(
            f"client must be a dask.distributed.Client, got {client!r}; make one with "
            "dask.distributed.Client(...)"
        )
    status = getattr(client, "status", "running")
    if status in ("closing", "closed"):
        raise ValueError(
            f"the Dask client is {status} ({client!r}); open a new dask.distributed.Client "
            "and make the DaskEstimator / DaskSampler with it"
        )


class _DaskPrimitive:
    _pub_type: ClassVar[Any]
    _kind: ClassVar[str]
    _other_kind: ClassVar[Any]
    _other_wrapper: ClassVar[str]
    circuits_kept: ClassVar[int] = 16
    """How many distinct circuits stay scattered on the cluster (least recently used go)."""

    def __init__(self, client: Any, primitive: Any, threads_per_job: int | None = None) -> None:
        _check_client(client)
        name = type(self).__name__
        if isinstance(primitive, self._other_kind):
            raise TypeError(
                f"{name} runs {self._kind} on the workers, got the {type(primitive).__name__}; "
                f"use {self._other_wrapper}(client, {type(primitive).__name__}(...)) for it"
            )
        if not hasattr(primitive, "run"):
            raise TypeError(
                f"{name} needs a V2 {self._kind} to run on the workers (an object with run()), "
                f"got {primitive!r}"
            )
        shipped = (
            primitive if threads_per_job is None else _with_threads(primitive, threads_per_job)
        )
        self._client = client
        self._primitive = primitive
        self._threads_per_job = threads_per_job
        # to every worker now, so that the first job pays neither the transfer nor the imports
        self._remote = client.scatter(shipped, broadcast=True, hash=False)
        self._circuits: OrderedDict[str, Any] = OrderedDict()
        self._circuits_lock = threading.Lock()
        # circuit object -> content key: pickling a large circuit costs more than checking it
        self._content_keys: BoundedCache[str] = BoundedCache(size=self.circuits_kept)

    @property
    def client(self) -> Any:
        """The Dask client."""
        return self._client

    @property
    def primitive(self) -> Any:
        """The primitive each worker runs (before ``threads_per_job`` is applied)."""
        return self._primitive

    @property
    def threads_per_job(self) -> int | None:
        """Threads the simulator of one job may use (``None``: the primitive's own setting)."""
        return self._threads_per_job

    def __getattr__(self, name: str) -> Any:
        # options, default_precision, default_shots... of the wrapped primitive
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._primitive, name)

    def _remote_circuit(self, circuit: Any) -> Any:
        """The circuit's future on the cluster, scattered on its first use."""
        key = self._content_keys.get(id(circuit), circuit, lambda: _content_key(circuit))
        with self._circuits_lock:
            future = self._circuits.pop(key, None)
            if future is None:
                # to every worker: no worker is preferred for holding the circuit
                future = self._client.scatter(circuit, broadcast=True, hash=False)
                while len(self._circuits) >= self.circuits_kept:
                    self._circuits.popitem(last=False)
            self._circuits[key] = future
        return future

    def _submit(self, pubs: Iterable[Any], kwargs: dict[str, Any]) -> DaskJob:
        _check_client(self._client)
        parts = []
        for pub in pubs:
            circuit, *fields = self._pub_fields(self._pub_type.coerce(pub))
            parts.append((self._remote_circuit(circuit), *fields))
        future = self._client.submit(
            _run_primitive, self._remote, self._pub_type, parts, kwargs, pure=False
        )
        return DaskJob(future)

    @staticmethod
    def _pub_fields(pub: Any) -> tuple[Any, ...]:
        raise NotImplementedError


class DaskEstimator(_DaskPrimitive, BaseEstimatorV2):
    """A V2 estimator that runs each job on a Dask worker.

    Args:
        client: a ``dask.distributed.Client``.
        estimator: a picklable V2 estimator (e.g. qiskit-aer ``EstimatorV2``), run by the
            workers.
        threads_per_job: for a qiskit-aer primitive, the simulator threads of one job
            (Aer's ``max_parallel_threads``, set on the workers' copy only). ``None`` keeps the
            primitive's setting: Aer then uses every core of the worker's machine, so several
            workers on one machine compete for its cores; give ``1`` with one single-threaded
            worker per core.
    """

    _pub_type = EstimatorPub
    _kind = "an estimator"
    _other_kind = BaseSamplerV2
    _other_wrapper = "DaskSampler"

    def __init__(self, client: Any, estimator: Any, *, threads_per_job: int | None = None) -> None:
        super().__init__(client, estimator, threads_per_job)

    def run(self, pubs: Iterable[Any], *, precision: float | None = None) -> DaskJob:
        return self._submit(pubs, {} if precision is None else {"precision": precision})

    @staticmethod
    def _pub_fields(pub: EstimatorPub) -> tuple[Any, ...]:
        return pub.circuit, pub.observables, pub.parameter_values, pub.precision


class DaskSampler(_DaskPrimitive, BaseSamplerV2):
    """A V2 sampler that runs each job on a Dask worker (arguments as :class:`DaskEstimator`)."""

    _pub_type = SamplerPub
    _kind = "a sampler"
    _other_kind = BaseEstimatorV2
    _other_wrapper = "DaskEstimator"

    def __init__(self, client: Any, sampler: Any, *, threads_per_job: int | None = None) -> None:
        super().__init__(client, sampler, threads_per_job)

    def run(self, pubs: Iterable[Any], *, shots: int | None = None) -> DaskJob:
        return self._submit(pubs, {} if shots is None else {"shots": shots})

    @staticmethod
    def _pub_fields(pub: SamplerPub) -> tuple[Any, ...]:
        return pub.circuit, pub.parameter_values, pub.shots
