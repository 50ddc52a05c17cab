"""Gradients whose inner jobs run on a Dask cluster: ``qprim_grad.dask_primitives``."""

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


def test_each_circuit_reaches_the_cluster_once_and_threads_per_job_pins_aer(
    dask_client, monkeypatch
):
    from qiskit_aer.primitives import EstimatorV2

    from qprim_grad.dask_primitives import DaskEstimator

    scattered = []
    scatter = dask_client.scatter
    monkeypatch.setattr(
        dask_client, "scatter", lambda data, **kw: scattered.append(data) or scatter(data, **kw)
    )
    circuit = efficient_su2(3, reps=1)
    values = np.random.default_rng(6).uniform(-1, 1, (3, circuit.num_parameters))
    aer = EstimatorV2(options={"run_options": {"seed_simulator": 7}})
    inner = DaskEstimator(dask_client, aer, threads_per_job=1)
    assert inner.threads_per_job == 1 and inner.primitive is aer
    assert aer.options.run_options == {"seed_simulator": 7}  # the caller's primitive is untouched
    shipped = scattered[0].options.run_options
    assert shipped == {"seed_simulator": 7, "max_parallel_threads": 1}
    gradient = GradientEstimator(inner, max_job_rows=20)
    for _ in range(2):
        job = gradient.run([(circuit, "ZZI", values)], precision=0.01)
        assert len(job.inner_jobs) > 2
        result = job.result()
    assert len(scattered) == 2  # the primitive, then the circuit once for all jobs of both runs
    local = GradientEstimator(aer, max_job_rows=20).run([(circuit, "ZZI", values)], precision=0.01)
    for name in ("evs", "stds", "grads", "grad_stds"):
        np.testing.assert_array_equal(
            getattr(result[0].data, name), getattr(local.result()[0].data, name)
        )


def test_a_circuit_edited_in_place_is_scattered_again(dask_client, monkeypatch):
    from qprim_grad.dask_primitives import DaskEstimator

    inner = DaskEstimator(dask_client, StatevectorEstimator())
    scattered = []
    scatter = dask_client.scatter
    monkeypatch.setattr(
        dask_client, "scatter", lambda data, **kw: scattered.append(data) or scatter(data, **kw)
    )
    qc = QuantumCircuit(1)
    qc.ry(Parameter("t"), 0)
    for _ in range(2):
        first = inner.run([(qc, "Z", [0.3])]).result()[0].data.evs
    assert len(scattered) == 1
    qc.x(0)  # edited in place: a new content, shipped again
    second = inner.run([(qc, "Z", [0.3])]).result()[0].data.evs
    assert len(scattered) == 2
    np.testing.assert_allclose(second, -first, atol=1e-12)


def test_threads_per_job_needs_an_aer_primitive(dask_client):
    from qiskit_aer.primitives import SamplerV2

    from qprim_grad.dask_primitives import DaskEstimator, DaskSampler

    with pytest.raises(TypeError, match="max_parallel_threads"):
        DaskEstimator(dask_client, StatevectorEstimator(), threads_per_job=1)
    with pytest.raises(ValueError, match="positive integer"):
        DaskSampler(dask_client, SamplerV2(), threads_per_job=0)
    assert DaskSampler(dask_client, SamplerV2(), threads_per_job=2).threads_per_job == 2
