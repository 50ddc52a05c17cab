"""A large gradient on qiskit-aer spread over a Dask cluster: 2 workers against 1 (issue 16).

``efficient_su2(12, reps=3)`` (P = 96), 8 parameter sets, observable ``Z…Z``:
``param_shift`` needs 8 × 193 = 1544 rows. ``GradientEstimator(DaskEstimator(client, aer),
max_job_rows=200)`` cuts them into 8 inner jobs that the cluster's workers run in parallel
(each worker runs its own qiskit-aer ``EstimatorV2`` with one thread). Clusters are
``dask.distributed.LocalCluster`` with worker processes; ``identical`` compares every field
with the single-process run (the same Aer estimator, the same job splitting). The last line
reads ``dask: 2 workers vs 1: speed-up X.XX, identical: True|False``.
Run: ``python -m benchmarks dask`` (needs the ``dask`` extra).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from qiskit.circuit.library import efficient_su2

from qprim_grad import GradientEstimator

NUM_QUBITS, REPS, SETS, MAX_JOB_ROWS = 12, 3, 8, 200


def _aer() -> Any:
    from qiskit_aer.primitives import EstimatorV2

    return EstimatorV2(options={"backend_options": {"max_parallel_threads": 1}})


def _fields(result: Any) -> list[np.ndarray]:
    data = result[0].data
    return [np.asarray(getattr(data, name)) for name in ("evs", "stds", "grads", "grad_stds")]


def run() -> list[dict]:
    from dask.distributed import Client, LocalCluster

    from qprim_grad.dask_primitives import DaskEstimator

    circuit = efficient_su2(NUM_QUBITS, reps=REPS)
    values = np.random.default_rng(0).uniform(-1, 1, (SETS, circuit.num_parameters))
    pubs = [(circuit, "Z" * NUM_QUBITS, values)]
    local = GradientEstimator(_aer(), max_job_rows=MAX_JOB_ROWS)
    start = time.perf_counter()
    reference = _fields(local.run(pubs).result())
    rows: list[dict[str, Any]] = [
        {"bench": "dask", "workers": 0, "seconds": time.perf_counter() - start, "jobs": None}
    ]
    for workers in (1, 2):
        with (
            LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            gradient = GradientEstimator(DaskEstimator(client, _aer()), max_job_rows=MAX_JOB_ROWS)
            gradient.run(pubs).result()  # warm up: the estimator reaches every worker
            start = time.perf_counter()
            result = gradient.run(pubs).result()
            seconds = time.perf_counter() - start
        same = all(np.array_equal(a, b) for a, b in zip(_fields(result), reference))
        rows.append(
            {
                "bench": "dask",
                "workers": workers,
                "seconds": seconds,
                "jobs": len(result.metadata["inner_job_ids"]),
                "rows": result.metadata["inner_rows"],
                "identical": same,
            }
        )
    one, two = rows[1], rows[2]
    rows[-1]["summary"] = (
        f"dask: 2 workers vs 1: speed-up {one['seconds'] / two['seconds']:.2f}, "
        f"identical: {bool(one['identical'] and two['identical'])}"
    )
    return rows


if __name__ == "__main__":
    from benchmarks import format_table

    table = run()
    print(format_table([{k: v for k, v in r.items() if k != "summary"} for r in table]))
    print(table[-1]["summary"])
