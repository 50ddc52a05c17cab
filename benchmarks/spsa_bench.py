"""SPSA benchmark: qprim_grad.optimizers.SPSA vs qiskit_algorithms.optimizers.SPSA.

1. Jobs per iteration and client-side time per iteration (everything except the inner
   primitive's ``run(...).result()``) at 100 parameters, for plain, blocking,
   resamplings=3 and second_order. Ours gets the batched ``EstimatorLoss``; qiskit-algorithms
   gets the same loss as a callable that accepts lists of points, with
   ``max_evals_grouped=50`` (what its VQE sets: its best case).
2. Final-loss distribution over 20 seeds on a standard test loss (4-qubit Heisenberg VQE
   energy, StatevectorEstimator with shot-like noise ``precision=0.02``), final loss
   measured exactly at the returned point.

    python benchmarks/spsa_bench.py [--iters 20] [--seeds 20] [--maxiter 100]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

# one BLAS thread: on a small shared machine, threaded BLAS makes a 100x100 eigh take
# 100x longer and the client-time column would measure contention, not SPSA
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from qiskit.circuit.library import real_amplitudes
from qiskit.primitives import StatevectorEstimator
from qiskit.quantum_info import SparsePauliOp

from qprim_grad.optimizers import SPSA, EstimatorLoss

warnings.filterwarnings("ignore", category=DeprecationWarning)

MODES = {
    "plain": {},
    "blocking": {"blocking": True},
    "resamplings=3": {"resamplings": 3},
    "second_order": {"second_order": True},
}


class _Done:
    def __init__(self, result):
        self._result = result

    def result(self):
        return self._result


class TimedEstimator:
    """Counts jobs and the time spent inside the inner primitive (submit and wait)."""

    def __init__(self, inner):
        self.inner = inner
        self.jobs = 0
        self.seconds = 0.0

    def run(self, pubs, *, precision=None):
        t0 = time.perf_counter()
        result = self.inner.run(pubs, precision=precision).result()
        self.seconds += time.perf_counter() - t0
        self.jobs += 1
        return _Done(result)


def heisenberg(n: int) -> SparsePauliOp:
    terms = [(p * 2, [i, i + 1], 1.0) for i in range(n - 1) for p in "XYZ"]
    return SparsePauliOp.from_sparse_list(terms, num_qubits=n)


def grouped(loss: EstimatorLoss):
    """The loss as qiskit-algorithms' VQE hands it over: one point or a list of points."""

    def fun(x):
        x = np.asarray(x, dtype=float)
        return loss.batch(x) if x.ndim == 2 else loss(x)

    return fun


def overhead_table(iters: int) -> list[tuple]:
    from qiskit_algorithms.optimizers import SPSA as QSPSA
    from qiskit_algorithms.utils import algorithm_globals

    circuit = real_amplitudes(10, reps=9)  # 100 parameters
    observable = SparsePauliOp.from_sparse_list(
        [("ZZ", [i, i + 1], 1.0) for i in range(9)], num_qubits=10
    )
    x0 = np.random.default_rng(0).uniform(-1, 1, circuit.num_parameters)
    gains = {"learning_rate": 0.01, "perturbation": 0.05}
    rows = []
    for name, options in MODES.items():
        for who in ("qprim_grad", "qiskit-algorithms"):
            timed = TimedEstimator(StatevectorEstimator())
            loss = EstimatorLoss(timed, circuit, observable)
            t0 = time.perf_counter()
            if who == "qprim_grad":
                result = SPSA(maxiter=iters, seed=1, **gains, **options).minimize(loss, x0)
                final_jobs = 1
            else:
                algorithm_globals.random_seed = 1
                spsa = QSPSA(maxiter=iters, **gains, **options)
                spsa.set_max_evals_grouped(50)
                result = spsa.minimize(grouped(loss), x0)
                final_jobs = 1 + (1 if options.get("blocking") else 0)  # final fun, initial fx
                if options.get("blocking"):
                    final_jobs += 1  # the allowed_increase calibration (25 points, 1 call)
            total = time.perf_counter() - t0
            client = total - timed.seconds
            rows.append(
                (
                    name,
                    who,
                    (timed.jobs - final_jobs) / result.nit,
                    1e3 * client / result.nit,
                    1e3 * timed.seconds / result.nit,
                    100 * client / timed.seconds,
                )
            )
    return rows


def final_losses(seeds: int, maxiter: int, mode: dict) -> tuple[np.ndarray, np.ndarray]:
    from qiskit_algorithms.optimizers import SPSA as QSPSA
    from qiskit_algorithms.utils import algorithm_globals

    circuit = real_amplitudes(4, reps=2, entanglement="linear")
    observable = heisenberg(4)
    exact = EstimatorLoss(StatevectorEstimator(), circuit, observable)
    ours, theirs = [], []
    for seed in range(seeds):
        x0 = np.random.default_rng(1000 + seed).uniform(-1, 1, circuit.num_parameters)
        noisy = StatevectorEstimator(default_precision=0.02, seed=seed)
        loss = EstimatorLoss(noisy, circuit, observable)
        res = SPSA(maxiter=maxiter, seed=seed, **mode).minimize(loss, x0)
        ours.append(exact(res.x))
        noisy = StatevectorEstimator(default_precision=0.02, seed=seed)
        loss = EstimatorLoss(noisy, circuit, observable)
        algorithm_globals.random_seed = seed
        spsa = QSPSA(maxiter=maxiter, **mode)
        spsa.set_max_evals_grouped(50)
        res = spsa.minimize(grouped(loss), x0)
        theirs.append(exact(res.x))
    return np.array(ours), np.array(theirs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--maxiter", type=int, default=100)
    args = parser.parse_args()

    print(f"## Jobs and client time per iteration (100 parameters, {args.iters} iterations)\n")
    print(
        "| mode | optimizer | jobs/iter | client ms/iter | primitive ms/iter | client/primitive |"
    )
    print("|---|---|---|---|---|---|")
    for name, who, jobs, client, prim, ratio in overhead_table(args.iters):
        print(f"| {name} | {who} | {jobs:.2f} | {client:.2f} | {prim:.1f} | {ratio:.1f} % |")

    exact = float(np.linalg.eigvalsh(heisenberg(4).to_matrix()).min())
    print(
        f"\n## Final exact loss over {args.seeds} seeds, 4-qubit Heisenberg VQE "
        f"(ground energy {exact:.4f}), noisy estimator, maxiter={args.maxiter}\n"
    )
    print("| mode | optimizer | mean | median | std | best | worst |")
    print("|---|---|---|---|---|---|---|")
    for name, mode in {"plain": {}, "blocking": {"blocking": True}}.items():
        ours, theirs = final_losses(args.seeds, args.maxiter, mode)
        for who, values in (("qprim_grad", ours), ("qiskit-algorithms", theirs)):
            print(
                f"| {name} | {who} | {values.mean():.4f} | {np.median(values):.4f} | "
                f"{values.std():.4f} | {values.min():.4f} | {values.max():.4f} |"
            )


def run(iters: int = 10, seeds: int = 10, maxiter: int = 60) -> list[dict]:
    """Rows for ``python -m benchmarks`` (fewer iterations and seeds than ``main``)."""
    rows: list[dict] = []
    for name, who, jobs, client, prim, ratio in overhead_table(iters):
        rows.append(
            {
                "bench": "spsa_iteration",
                "method": f"{name}/{who}",
                "jobs_per_iter": jobs,
                "client_ms": client,
                "primitive_ms": prim,
                "client_pct": ratio,
            }
        )
    for name, mode in {"plain": {}, "blocking": {"blocking": True}}.items():
        ours, theirs = final_losses(seeds, maxiter, mode)
        for who, values in (("qprim_grad", ours), ("qiskit-algorithms", theirs)):
            rows.append(
                {
                    "bench": "spsa_final_loss",
                    "method": f"{name}/{who}",
                    "mean": float(values.mean()),
                    "median": float(np.median(values)),
                    "worst": float(values.max()),
                }
            )
    return rows


if __name__ == "__main__":
    main()
