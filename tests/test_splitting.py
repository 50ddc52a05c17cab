"""Large gradients split over several inner jobs (``max_job_rows`` / ``max_pub_rows``)."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit.circuit.library import real_amplitudes
from qiskit.primitives import StatevectorEstimator, StatevectorSampler

from qprim_grad import GradientEstimator, GradientJobError, GradientSampler

METHODS = [
    ("param_shift", {}),
    ("finite_diff", {"epsilon": 1e-3}),
    ("spsa", {"seed": 7, "batch_size": 3}),
    ("lin_comb", {"derivative_type": "complex"}),
]


@pytest.fixture
def circuit():
    return real_amplitudes(3, reps=1)


@pytest.fixture
def pubs(circuit):
    values = np.random.default_rng(0).normal(size=(3, circuit.num_parameters))
    return [(circuit, ["ZZI", "XIX"], values[:, None, :]), (circuit, "ZZZ", values[0])]


def pub_shape(pub):
    """Shape of a coerced inner pub (``EstimatorPub`` / ``SamplerPub``)."""
    return tuple(pub.shape)


def _spy_rows(mocker, estimator):
    """Row count of every inner job submitted to ``estimator``."""
    spy = mocker.spy(estimator, "run")
    return lambda: [
        sum(int(np.prod(pub_shape(p))) for p in call.args[0]) for call in spy.mock_calls
    ]


@pytest.mark.parametrize("method, options", METHODS, ids=[m for m, _ in METHODS])
def test_split_run_equals_unsplit_run(mocker, pubs, method, options):
    reference = GradientEstimator(StatevectorEstimator(), method, **options).run(pubs).result()
    inner = StatevectorEstimator()
    rows = _spy_rows(mocker, inner)
    job = GradientEstimator(inner, method, max_job_rows=5, **options).run(pubs)
    result = job.result()
    sizes = rows()
    assert len(sizes) > 2 and len(job.inner_job_ids) == len(sizes)
    # every job fits, except a centre pub larger than the cap (never cut)
    assert max(sizes) <= 6
    for got, want in zip(result, reference):
        for field in ("evs", "stds", "grads", "grad_stds"):
            np.testing.assert_array_equal(getattr(got.data, field), getattr(want.data, field))
    assert result.metadata["inner_job_ids"] == job.inner_job_ids


def test_one_evaluation_cut_along_points(mocker, circuit):
    """A single pub's shifted points (K = 2 P = 12) are cut into pieces of 4."""
    inner = StatevectorEstimator()
    rows = _spy_rows(mocker, inner)
    values = np.linspace(0, 1, circuit.num_parameters)
    grad = GradientEstimator(inner, max_pub_rows=4)  # the alias
    result = grad.run([(circuit, "ZZZ", values)]).result()
    # the centre and 12 shifted points: 13 rows packed into the fewest jobs of at most 4
    assert sorted(rows()) == [1, 4, 4, 4] and len(rows()) == -(-13 // 4)
    exact = GradientEstimator(StatevectorEstimator()).run([(circuit, "ZZZ", values)]).result()
    np.testing.assert_array_equal(result[0].data.grads, exact[0].data.grads)


def test_no_cap_is_one_job(mocker, pubs):
    inner = StatevectorEstimator()
    spy = mocker.spy(inner, "run")
    GradientEstimator(inner).run(pubs).result()
    assert spy.call_count == 1


def test_sampler_split_concatenates_bit_arrays(mocker, circuit):
    measured = circuit.copy()
    measured.measure_all()
    values = np.random.default_rng(1).normal(size=(2, circuit.num_parameters))
    pub = (measured, values)
    reference = GradientSampler(StatevectorSampler(seed=5)).run([pub], shots=64).result()[0]
    inner = StatevectorSampler(seed=5)
    spy = mocker.spy(inner, "run")
    got = GradientSampler(inner, max_job_rows=6).run([pub], shots=64).result()[0]
    assert spy.call_count > 1
    assert got.data.meas.shape == (2,) and got.data.grads.shape == reference.data.grads.shape
    # shot noise differs between splits (the seed is per job); the structure must not
    assert got.data.grads.num_bits == 3


def test_invalid_cap_and_conflicting_alias():
    with pytest.raises(ValueError, match="positive integer"):
        GradientEstimator(StatevectorEstimator(), max_job_rows=0)
    with pytest.raises(ValueError, match="not both"):
        GradientEstimator(StatevectorEstimator(), max_job_rows=3, max_pub_rows=4)


def test_partial_failure_names_the_part_and_keeps_finished_ids(mocker, pubs):
    inner = StatevectorEstimator()
    original = inner.run
    calls = []

    def run(batch, **kwargs):
        job = original(batch, **kwargs)
        calls.append(job)
        if len(calls) == 2:
            mocker.patch.object(job, "result", side_effect=RuntimeError("device went away"))
        return job

    mocker.patch.object(inner, "run", side_effect=run)
    job = GradientEstimator(inner, max_job_rows=5).run(pubs)
    with pytest.raises(GradientJobError, match="device went away") as info:
        job.result()
    error = info.value
    failed_id = calls[1].job_id()
    ((reported_id, served),) = error.failed
    assert reported_id == failed_id and served
    named = ", ".join(f"pub {index}" for index in served)
    assert (
        failed_id in str(error) and "part 2 of" in str(error) and f"serving {named}" in str(error)
    )
    assert error.finished_job_ids == [j.job_id() for j in calls if j is not calls[1]]
    assert job.metadata["finished_job_ids"] == error.finished_job_ids
    assert job.metadata["failed_job_ids"] == [failed_id]
