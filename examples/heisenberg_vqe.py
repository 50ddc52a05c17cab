"""VQE for the 4-qubit Heisenberg chain on FakeManilaV2: SPSA, QN-SPSA and natural gradient.

Runs on qiskit-ibm-runtime local mode: ``FakeManilaV2`` (a noisy simulator of a 5-qubit
device), one ``Session``, the client-side ``executor_estimator.Estimator`` and
``executor_sampler.Sampler``, and an ISA ansatz from the preset pass manager. The three
optimizers start from the same point:

* ``SPSA`` (calibrated gains): one estimator job per iteration;
* ``QNSPSA`` (fidelity by compute-uncompute, mapped onto the device by the same pass
  manager): one estimator job and one sampler job per iteration;
* ``NaturalGradient`` (``approx="block_diag"``, ``param_shift`` gradient): loss, gradient and
  block-diagonal metric in one estimator job per iteration.

Each run reports, per iteration, the energy measured at the new point and the jobs and shots
spent so far; a figure shows the three histories (``plot_history``).

    python examples/heisenberg_vqe.py [--maxiter 40] [--shots 2000] [--plot vqe.png]
    python examples/heisenberg_vqe.py --fast        # or QPRIM_EXAMPLE_FAST=1: a quick check

``--fast`` is what the test suite runs: 2 iterations, 200 shots, a one-layer ansatz, fixed
SPSA gains (no calibration job) and FakeManilaV2's target without its noise model (which
costs about a second per job to simulate); ``--noiseless`` alone switches the noise off.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np
from qiskit.circuit.library import real_amplitudes
from qiskit.primitives import BaseEstimatorV2, BaseSamplerV2, StatevectorEstimator
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.primitives.containers.sampler_pub import SamplerPub
from qiskit.quantum_info import SparsePauliOp
from qiskit.transpiler import generate_preset_pass_manager
from qiskit_ibm_runtime import Session
from qiskit_ibm_runtime.executor_estimator import Estimator
from qiskit_ibm_runtime.executor_sampler import Sampler
from qiskit_ibm_runtime.fake_provider import FakeManilaV2

from qprim_grad.optimizers import QNSPSA, SPSA, EstimatorLoss, NaturalGradient


def heisenberg(num_qubits: int) -> SparsePauliOp:
    """Open XXX chain: sum_i X_i X_{i+1} + Y_i Y_{i+1} + Z_i Z_{i+1}."""
    terms = [(p * 2, [i, i + 1], 1.0) for i in range(num_qubits - 1) for p in "XYZ"]
    return SparsePauliOp.from_sparse_list(terms, num_qubits=num_qubits)


class Tally:
    """Jobs and shots sent to the device (shots: parameter sets x shots per set)."""

    def __init__(self) -> None:
        self.jobs = 0
        self.shots = 0


class CountingEstimator(BaseEstimatorV2):
    """Forwards to a V2 estimator, counting jobs and shots in a :class:`Tally`."""

    def __init__(self, inner: Any, tally: Tally, shots: int) -> None:
        self.inner, self.tally, self.shots_per_set = inner, tally, shots

    def run(self, pubs: Any, *, precision: float | None = None) -> Any:
        pubs, self.tally.jobs = list(pubs), self.tally.jobs + 1  # an iterable is read once
        self.tally.shots += sum(EstimatorPub.coerce(p).size for p in pubs) * self.shots_per_set
        return self.inner.run(pubs, precision=precision)


class CountingSampler(BaseSamplerV2):
    """Forwards to a V2 sampler, counting jobs and shots in a :class:`Tally`."""

    def __init__(self, inner: Any, tally: Tally, shots: int) -> None:
        self.inner, self.tally, self.shots_per_set = inner, tally, shots

    def run(self, pubs: Any, *, shots: int | None = None) -> Any:
        pubs, self.tally.jobs = list(pubs), self.tally.jobs + 1  # an iterable is read once
        shots = shots or self.shots_per_set
        self.tally.shots += sum(SamplerPub.coerce(p).size for p in pubs) * shots
        return self.inner.run(pubs, shots=shots)


def reporter(name: str, tally: Tally, rows: list[tuple], quiet: bool) -> Any:
    """A callback printing energy, jobs and shots after every step."""

    def callback(nfev: int, x: np.ndarray, fx: float, stepsize: float, accepted: bool) -> None:
        rows.append((len(rows) + 1, fx, tally.jobs, tally.shots, accepted))
        if not quiet:
            mark = "" if accepted else "  (rejected)"
            print(
                f"{name:>8} it {len(rows):3d}  E = {fx:8.4f}  jobs = {tally.jobs:4d}  "
                f"shots = {tally.shots:9d}{mark}"
            )

    return callback


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--maxiter", type=int, default=40)
    parser.add_argument("--shots", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--plot", default="heisenberg_vqe.png", help="figure file ('' for none)")
    parser.add_argument("--fast", action="store_true", help="2 iterations, 300 shots, no noise")
    parser.add_argument("--noiseless", action="store_true", help="Manila's target, no noise")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.fast or os.environ.get("QPRIM_EXAMPLE_FAST"):
        args.fast, args.noiseless = True, True
        args.maxiter, args.shots = min(args.maxiter, 2), min(args.shots, 200)

    hamiltonian = heisenberg(4)
    exact = float(np.linalg.eigvalsh(hamiltonian.to_matrix()).min())
    ansatz = real_amplitudes(4, reps=1 if args.fast else 2, entanglement="linear")
    backend: Any = FakeManilaV2()
    if args.noiseless:
        from qiskit_aer import AerSimulator

        backend = AerSimulator.from_backend(backend, noise_model=None)
    pass_manager = generate_preset_pass_manager(
        optimization_level=1, backend=backend, seed_transpiler=args.seed
    )
    isa_ansatz = pass_manager.run(ansatz)  # carries its layout: EstimatorLoss maps H onto it
    x0 = np.random.default_rng(args.seed).uniform(-0.3, 0.3, ansatz.num_parameters)

    results: dict[str, Any] = {}
    history: dict[str, list[tuple]] = {}
    start = time.perf_counter()
    with Session(backend=backend) as session:
        estimator = Estimator(mode=session)
        sampler = Sampler(mode=session)
        for primitive in (estimator, sampler):
            primitive.options.default_shots = args.shots
            primitive.options.simulator.seed_simulator = args.seed
        # plain shots, no measurement twirling: level 1 would multiply the circuits run
        estimator.options.resilience_level = 0

        def loss_for(tally: Tally) -> EstimatorLoss:
            counted = CountingEstimator(estimator, tally, args.shots)
            return EstimatorLoss(counted, isa_ansatz, hamiltonian)

        runs = {
            "SPSA": lambda cb, tally: SPSA(
                maxiter=args.maxiter,
                seed=args.seed,
                callback=cb,
                **({"learning_rate": 0.1, "perturbation": 0.1} if args.fast else {}),
            ),
            "QN-SPSA": lambda cb, tally: QNSPSA(
                QNSPSA.get_fidelity(
                    isa_ansatz, CountingSampler(sampler, tally, args.shots), transpiler=pass_manager
                ),
                maxiter=args.maxiter,
                learning_rate=0.05,
                perturbation=0.1,
                regularization=0.1,
                seed=args.seed,
                callback=cb,
            ),
            "NatGrad": lambda cb, tally: NaturalGradient(
                stepsize=0.05,
                approx="block_diag",
                lam=0.01,
                maxiter=args.maxiter,
                gradient_method="param_shift",
                callback=cb,
            ),
        }
        for name, make in runs.items():
            tally, rows = Tally(), []
            optimizer = make(reporter(name, tally, rows, args.quiet), tally)
            result = optimizer.minimize(loss_for(tally), x0)
            result.tally = tally
            results[name], history[name] = result, rows

    ideal = StatevectorEstimator()
    print(f"\nexact ground-state energy: {exact:.4f}   ({time.perf_counter() - start:.1f} s)")
    print(
        f"{'':>8} {'iterations':>10} {'jobs':>6} {'shots':>10} {'E (device)':>10} {'E (ideal)':>10}"
    )
    for name, result in results.items():
        e_ideal = float(ideal.run([(ansatz, hamiltonian, result.x)]).result()[0].data.evs)
        result.ideal_energy = e_ideal
        print(
            f"{name:>8} {result.nit:>10d} {result.tally.jobs:>6d} {result.tally.shots:>10d} "
            f"{result.fun:>10.4f} {e_ideal:>10.4f}"
        )

    if args.plot:
        import matplotlib.pyplot as plt

        from qprim_grad.plotting import plot_history

        fig, axes = plt.subplots(
            2, 3, sharex=True, sharey="row", figsize=(12, 5), height_ratios=(2, 1),
            layout="constrained",
        )  # fmt: skip
        for column, (name, result) in enumerate(results.items()):
            loss_ax, _ = plot_history(
                result,
                ax=(axes[0, column], axes[1, column]),
                title=f"{name}: {result.tally.jobs} jobs, {result.tally.shots} shots",
            )
            loss_ax.axhline(exact, color="k", lw=0.8, ls=":")
            loss_ax.set_ylabel("energy" if column == 0 else "")
        fig.savefig(args.plot, dpi=120)
        plt.close(fig)
        print(f"figure: {args.plot}")
    return {"results": results, "history": history, "exact": exact}


if __name__ == "__main__":
    main()
