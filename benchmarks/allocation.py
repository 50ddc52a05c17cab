"""Allocation within a run: shots x error of a gradient, ``"optimal"`` against ``"uniform"``.

Not a benchmark module by itself (no ``_bench`` suffix): the shots benchmark calls
:func:`gradient_at_equal_error`. Real shot sampling: qiskit's ``BackendEstimatorV2`` on a
seeded ``AerSimulator`` (``ceil(1 / precision**2)`` shots per measurement basis). The
``real_amplitudes`` ansatz is evaluated at random points; the exact gradient comes from
``StatevectorEstimator``. A short warm-up run teaches the optimal allocation its per-shot
deviations. The figure of merit is ``shots x MSE`` (MSE over every gradient entry and
point against the exact gradient): the shots each allocation needs for the same error are
proportional to it, so ``ratio = (shots x MSE)_uniform / (shots x MSE)_optimal`` is how many
times fewer shots ``"optimal"`` needs at equal error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from qiskit.circuit.library import real_amplitudes
from qiskit.primitives import BackendEstimatorV2, StatevectorEstimator
from qiskit.quantum_info import SparsePauliOp

from qprim_grad import GradientEstimator

from . import hamiltonians

__all__ = ["gradient_at_equal_error", "sampling_estimator", "HAMILTONIANS"]

#: name -> (builder, ansatz repetitions, target precision); the ratio does not depend on the
#: precision (shots x MSE is scale-free), which only sets the run time
HAMILTONIANS: dict[str, tuple[Callable[[], SparsePauliOp], int, float]] = {
    "lih": (hamiltonians.lih, 1, 0.02),
    "h2o": (hamiltonians.h2o, 1, 0.02),
    "heisenberg": (lambda: hamiltonians.heisenberg(6), 1, 0.05),
}


def sampling_estimator(seed: int) -> BackendEstimatorV2:
    """``BackendEstimatorV2`` on an ``AerSimulator`` whose every ``run`` draws a fresh seed
    from ``seed`` (a fixed ``seed_simulator`` restarts one random stream in each call, and
    ``BackendEstimatorV2`` makes one call per distinct shot count: pubs of one job would
    share random numbers, which real shots never do)."""
    from qiskit_aer import AerSimulator

    class ReseededSimulator(AerSimulator):
        def __init__(self, **options: Any) -> None:
            super().__init__(max_parallel_threads=1, **options)
            self._seeds = np.random.default_rng(seed)

        def run(self, circuits: Any, **options: Any) -> Any:
            options["seed_simulator"] = int(self._seeds.integers(2**31))
            return super().run(circuits, **options)

    return BackendEstimatorV2(backend=ReseededSimulator())


def gradient_at_equal_error(
    names: tuple[str, ...] = ("lih", "h2o", "heisenberg"),
    *,
    points: int = 12,
    precision: float | None = None,
    seed: int = 7,
) -> list[dict[str, Any]]:
    """One row per Hamiltonian and allocation: qubits, terms, groups, shots per gradient,
    MSE, ``shots_x_mse`` and the ``ratio`` to uniform (``precision``: the target of every
    run, default: the Hamiltonian's in :data:`HAMILTONIANS`)."""
    rows = []
    for name in names:
        build, reps, default_precision = HAMILTONIANS[name]
        target = default_precision if precision is None else precision
        observable = build()
        circuit = real_amplitudes(observable.num_qubits, reps=reps)
        rng = np.random.default_rng(seed)
        xs = rng.uniform(-np.pi, np.pi, (points, circuit.num_parameters))
        exact = (
            GradientEstimator(StatevectorEstimator(), "reverse")
            .run([(circuit, observable, xs)])
            .result()[0]
            .data.grads
        )
        groups = len(observable.group_commuting(qubit_wise=True))
        measured = {}
        for allocation in ("uniform", "optimal"):
            grad = GradientEstimator(sampling_estimator(seed), allocation=allocation)
            warm = rng.uniform(-np.pi, np.pi, circuit.num_parameters)
            grad.run([(circuit, observable, warm)], precision=target).result()  # warm-up
            start = time.perf_counter()
            shots, errors = 0, []
            for x, truth in zip(xs, exact):
                result = grad.run([(circuit, observable, x)], precision=target).result()
                shots += result.metadata["shots"]
                errors.append(result[0].data.grads - truth)
            mse = float(np.mean(np.square(errors)))
            measured[allocation] = shots / points * mse
            rows.append(
                {
                    "bench": "gradient_at_equal_error",
                    "hamiltonian": name,
                    "n": observable.num_qubits,
                    "terms": len(observable),
                    "groups": groups,
                    "P": circuit.num_parameters,
                    "allocation": allocation,
                    "precision": target,
                    "shots": shots // points,
                    "mse": mse,
                    "shots_x_mse": measured[allocation],
                    "ratio": measured["uniform"] / measured[allocation],
                    "seconds": time.perf_counter() - start,
                }
            )
    return rows
