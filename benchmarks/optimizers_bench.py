"""Every optimizer of the package on two small problems with real shot sampling.

Problems: the 3-qubit Heisenberg chain (``sum XX + YY + ZZ``, ``real_amplitudes(3,
reps=2)``, 9 parameters) and the 3-qubit transverse-field Ising chain (``-sum ZZ - sum X``,
``efficient_su2(3, reps=1)``, 12 parameters). Estimator: qiskit's ``BackendEstimatorV2`` on
``AerSimulator`` at precision 0.03 (1112 shots per measurement basis) unless the optimizer
sets its own; QN-SPSA's fidelity: ``BackendSamplerV2`` at 1024 shots. Every optimizer runs
``MAXITER`` iterations from the same random start per seed; counting proxies add up the jobs
and shots they ask for (parameter sets x bases x shots per basis; sampler: parameter sets x
shots). Columns: median over the seeds of jobs, shots and the final relative energy error
(exact energy of the returned point).

    python -m benchmarks optimizers      (OPT_BENCH_SEEDS, OPT_BENCH_MAXITER to change)
"""

from __future__ import annotations

import os
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from qiskit.circuit.library import efficient_su2, real_amplitudes
from qiskit.primitives import BackendEstimatorV2, BackendSamplerV2, BaseSamplerV2
from qiskit.primitives.containers.sampler_pub import SamplerPub
from qiskit.quantum_info import SparsePauliOp

from benchmarks.shots_bench import CountingEstimator, Problem
from qprim_grad.optimizers import QNSPSA, SPSA, EstimatorLoss, NaturalGradient, ShotAdaptive

PRECISION = 0.03
SAMPLER_SHOTS = 1024
MAXITER = int(os.environ.get("OPT_BENCH_MAXITER", "30"))
SEEDS = int(os.environ.get("OPT_BENCH_SEEDS", "5"))

warnings.filterwarnings("ignore", category=DeprecationWarning)


class CountingSampler(BaseSamplerV2):
    """Passes every job to ``inner``; counts jobs and shots (parameter sets x shots)."""

    def __init__(self, inner: Any, default_shots: int = SAMPLER_SHOTS) -> None:
        self.inner = inner
        self.default_shots = default_shots
        self.jobs = 0
        self.shots = 0

    def run(self, pubs: Any, *, shots: int | None = None) -> Any:
        coerced = [SamplerPub.coerce(pub, shots) for pub in pubs]
        for pub in coerced:
            s = pub.shots if pub.shots is not None else self.default_shots
            self.shots += (int(np.prod(pub.shape)) if pub.shape else 1) * s
        self.jobs += 1
        return self.inner.run(coerced)


def problems() -> list[Problem]:
    from benchmarks.hamiltonians import heisenberg

    heis = heisenberg(3)
    tfim = SparsePauliOp.from_sparse_list(
        [("ZZ", [i, i + 1], -1.0) for i in range(2)] + [("X", [i], -1.0) for i in range(3)],
        num_qubits=3,
    )
    out = []
    for name, op, circuit in (
        ("heisenberg3", heis, real_amplitudes(3, reps=2)),
        ("tfim3", tfim, efficient_su2(3, reps=1)),
    ):
        ground = float(np.linalg.eigvalsh(op.to_matrix())[0])
        out.append(Problem(name, circuit, op, ground))
    return out


def _backend() -> Any:
    from qiskit_aer import AerSimulator

    return AerSimulator(max_parallel_threads=1)


def optimizers(problem: Problem) -> dict[str, Callable[[int, Any], Any]]:
    lipschitz = float(np.sum(np.abs(problem.observable.coeffs)))
    return {
        "SPSA": lambda seed, sampler: SPSA(maxiter=MAXITER, seed=seed),
        "2-SPSA": lambda seed, sampler: SPSA(maxiter=MAXITER, second_order=True, seed=seed),
        "QN-SPSA": lambda seed, sampler: QNSPSA(
            QNSPSA.get_fidelity(problem.circuit, sampler), maxiter=MAXITER, seed=seed
        ),
        "NaturalGradient full": lambda seed, sampler: NaturalGradient(
            stepsize=0.1, approx=None, maxiter=MAXITER, seed=seed
        ),
        "NaturalGradient block_diag": lambda seed, sampler: NaturalGradient(
            stepsize=0.1, approx="block_diag", maxiter=MAXITER, seed=seed
        ),
        "NaturalGradient diag": lambda seed, sampler: NaturalGradient(
            stepsize=0.1, approx="diag", maxiter=MAXITER, seed=seed
        ),
        "ShotAdaptive gcans": lambda seed, sampler: ShotAdaptive(
            stepsize=1 / lipschitz, rule="gcans", maxiter=MAXITER, seed=seed
        ),
    }


def run_one(problem: Problem, name: str, make: Callable[[int, Any], Any], seed: int) -> dict:
    estimator = CountingEstimator(
        BackendEstimatorV2(backend=_backend(), options={"default_precision": PRECISION}),
        problem.bases,
        PRECISION,
    )
    sampler = CountingSampler(
        BackendSamplerV2(backend=_backend(), options={"default_shots": SAMPLER_SHOTS})
    )
    loss = EstimatorLoss(estimator, problem.circuit, problem.observable)
    x0 = np.random.default_rng(seed).uniform(-np.pi, np.pi, problem.circuit.num_parameters)
    result = make(seed, sampler).minimize(loss, x0)
    return {
        "jobs": estimator.jobs + sampler.jobs,
        "shots": estimator.shots + sampler.shots,
        "error": problem.error(result.x),
    }


def run() -> list[dict[str, Any]]:
    rows = []
    for problem in problems():
        for name, make in optimizers(problem).items():
            start = time.perf_counter()
            runs = [run_one(problem, name, make, seed) for seed in range(SEEDS)]
            rows.append(
                {
                    "bench": "optimizers",
                    "problem": problem.name,
                    "optimizer": name,
                    "iterations": MAXITER,
                    "jobs": statistics.median(r["jobs"] for r in runs),
                    "shots_M": statistics.median(r["shots"] for r in runs) / 1e6,
                    "error": statistics.median(r["error"] for r in runs),
                    "seeds": SEEDS,
                    "seconds": time.perf_counter() - start,
                }
            )
            print(rows[-1], flush=True)
    best = {}
    for row in rows:
        key = row["problem"]
        if key not in best or row["error"] < best[key]["error"]:
            best[key] = row
    text = "; ".join(
        f"{k}: lowest error {v['optimizer']} {v['error']:.2%} at {v['shots_M']:.2f} M shots"
        for k, v in best.items()
    )
    rows.append({"summary": f"optimizers ({MAXITER} iterations, {SEEDS} seeds): {text}"})
    return rows


if __name__ == "__main__":
    from benchmarks import format_table

    result = run()
    summaries = [r.pop("summary") for r in result if "summary" in r]
    print(format_table(result))
    print(*summaries, sep="\n")
