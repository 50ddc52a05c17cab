"""Gradients whose inner jobs run on a Dask cluster (issue 16): ``qprim_grad.dask_primitives``."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.circuit.library import efficient_su2
from qiskit.primitives import StatevectorEstimator

from qprim_grad import GradientEstimator


@pytest.fixture(scope="module")
def dask_client():
    from dask import distributed  # in the test extra: never skipped

    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def test_gradient_over_a_dask_cluster_matches_single_process(dask_client):
    from qiskit_aer.primitives import EstimatorV2

    from qprim_grad.dask_primitives import DaskEstimator, DaskJob

    circuit = efficient_su2(3, reps=1)
    values = np.random.default_rng(5).uniform(-1, 1, (4, circuit.num_parameters))
    pubs = [(circuit, ["ZZI", "XIX"], values[:, None, :])]

    def aer():
        return EstimatorV2(options={"run_options": {"seed_simulator": 7}})

    local = GradientEstimator(aer(), max_job_rows=40).run(pubs, precision=0.01).result()
    spread = GradientEstimator(DaskEstimator(dask_client, aer()), max_job_rows=40)
    job = spread.run(pubs, precision=0.01)
    assert all(isinstance(inner, DaskJob) for inner in job.inner_jobs)
    assert len(job.inner_jobs) > 2
    result = job.result()
    for name in ("evs", "stds", "grads", "grad_stds"):
        np.testing.assert_array_equal(getattr(result[0].data, name), getattr(local[0].data, name))
    assert len(result.metadata["inner_job_ids"]) == len(local.metadata["inner_job_ids"])


def test_dask_sampler_and_bad_client(dask_client):
    from qiskit.primitives import StatevectorSampler

    from qprim_grad import GradientSampler
    from qprim_grad.dask_primitives import DaskEstimator, DaskSampler

    qc = QuantumCircuit(1)
    qc.ry(Parameter("t"), 0)
    qc.measure_all()
    sampler = DaskSampler(dask_client, StatevectorSampler(seed=2))
    mine = GradientSampler(sampler).run([(qc, [0.3])], shots=100).result()[0]
    theirs = GradientSampler(StatevectorSampler(seed=2)).run([(qc, [0.3])], shots=100).result()[0]
    np.testing.assert_array_equal(mine.data.grads.to_dense(), theirs.data.grads.to_dense())
    with pytest.raises(TypeError, match="dask.distributed.Client"):
        DaskEstimator(object(), StatevectorEstimator())
