"""VQE for a 4-qubit Heisenberg chain, minimised by SPSA through ``EstimatorLoss``.

Runs on qiskit-ibm-runtime local mode: ``FakeManilaV2`` (a noisy simulator of a 5-qubit
device), an ISA circuit from the preset pass manager, the client-side
``qiskit_ibm_runtime.executor_estimator.Estimator`` and a ``Session``. Every SPSA iteration
is one estimator job; progress (calibration included) is logged as it happens. The summary
splits the distance to the exact ground-state energy into device noise, optimizer and
ansatz.

    python examples/vqe_demo.py [--maxiter 60] [--shots 2000]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

import numpy as np
from qiskit.circuit.library import real_amplitudes
from qiskit.primitives import StatevectorEstimator
from qiskit.quantum_info import SparsePauliOp
from qiskit.transpiler import generate_preset_pass_manager
from qiskit_ibm_runtime import Session
from qiskit_ibm_runtime.executor_estimator import Estimator
from qiskit_ibm_runtime.fake_provider import FakeManilaV2
from scipy.optimize import minimize

from qprim_grad import GradientEstimator
from qprim_grad.optimizers import SPSA, EstimatorLoss

LAST_AVG = 5


def heisenberg(num_qubits: int) -> SparsePauliOp:
    """Open XXX chain: sum_i X_i X_{i+1} + Y_i Y_{i+1} + Z_i Z_{i+1}."""
    terms = []
    for i in range(num_qubits - 1):
        for pauli in "XYZ":
            terms.append((pauli * 2, [i, i + 1], 1.0))
    return SparsePauliOp.from_sparse_list(terms, num_qubits=num_qubits)


def best_of_ansatz(ansatz, hamiltonian: SparsePauliOp, starts: list[np.ndarray]) -> float:
    """The lowest energy exact optimisation (L-BFGS, exact gradients) finds for this ansatz,
    from the given starting points: what the ansatz can do without noise."""
    gradient = GradientEstimator(StatevectorEstimator(), method="reverse")

    def energy_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        data = gradient.run([(ansatz, hamiltonian, x)]).result()[0].data
        return float(data.evs), np.asarray(data.grads, dtype=float)

    return min(minimize(energy_and_grad, x, jac=True, method="L-BFGS-B").fun for x in starts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maxiter", type=int, default=60, help="SPSA iterations")
    parser.add_argument("--shots", type=int, default=2000, help="shots per loss evaluation")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    logging.basicConfig(format="  %(message)s", stream=sys.stdout)  # in order with print
    logging.getLogger("qprim_grad.optimizers").setLevel(logging.INFO)

    hamiltonian = heisenberg(4)
    exact = float(np.linalg.eigvalsh(hamiltonian.to_matrix()).min())
    ansatz = real_amplitudes(4, reps=2, entanglement="linear")

    backend = FakeManilaV2()
    isa_ansatz = generate_preset_pass_manager(
        optimization_level=3, backend=backend, seed_transpiler=args.seed
    ).run(ansatz)
    x0 = np.random.default_rng(args.seed).uniform(-0.5, 0.5, ansatz.num_parameters)
    print(
        f"H = 4-qubit Heisenberg chain ({len(hamiltonian)} Pauli terms); ansatz real_amplitudes "
        f"({ansatz.num_parameters} parameters); {args.shots} shots per energy evaluation"
    )

    start = time.perf_counter()
    with Session(backend=backend) as session:
        estimator = Estimator(mode=session)
        estimator.options.default_shots = args.shots
        # local simulation: no simulated TREX readout mitigation (the default level 1 is slow
        # here); on hardware choose the level you need
        estimator.options.resilience_level = 0
        estimator.options.simulator.seed_simulator = args.seed
        # the ISA circuit carries its layout; EstimatorLoss maps the observable onto it
        loss = EstimatorLoss(estimator, isa_ansatz, hamiltonian)
        spsa = SPSA(maxiter=args.maxiter, seed=args.seed, last_avg=LAST_AVG)
        result = spsa.minimize(loss, x0)
    elapsed = time.perf_counter() - start

    noiseless = StatevectorEstimator().run([(ansatz, hamiltonian, result.x)]).result()[0]
    noiseless_energy = float(noiseless.data.evs)
    ansatz_best = best_of_ansatz(ansatz, hamiltonian, [x0, result.x])

    per_iteration = 3  # the point proposed by the previous iteration and 2 perturbed points
    at_end = result.nfev - per_iteration * result.nit
    calibration_jobs = 1 if result.state.gains is not None else 0
    print("\nSummary")
    print(f"  SPSA iterations:   {result.nit}")
    print(
        f"  estimator jobs:    {result.jobs} = {calibration_jobs} calibration + {result.nit} "
        f"iterations (one each) + {result.jobs - calibration_jobs - result.nit} final "
        "evaluation of the returned point"
    )
    print(
        f"  energy evaluations (one = <H> at one parameter point, {args.shots} shots): "
        f"{result.nfev} = {per_iteration} per iteration + {at_end} in the final job"
        + ("; the calibration's 50 come on top" if calibration_jobs else "")
    )
    print(f"  shots:             {loss.shots} in {loss.jobs} jobs (the loss' own count)")
    print(f"  wall time:         {elapsed:.1f} s (calibration and SPSA)")
    print(f"\nEnergy at the returned point (the average of the last {LAST_AVG} iterates):")
    print(f"  measured on FakeManilaV2 (noisy, shot noise): {result.fun:+.4f}")
    print(f"  same point, noiseless (StatevectorEstimator): {noiseless_energy:+.4f}")
    print(f"  lowest this ansatz reaches (exact L-BFGS):    {ansatz_best:+.4f}")
    print(f"  exact ground-state energy:                    {exact:+.4f}")
    print("Where the gap to the exact energy comes from:")
    print(f"  device + shot noise (measured - noiseless):   {result.fun - noiseless_energy:+.4f}")
    print(f"  optimizer (noiseless - ansatz's lowest):      {noiseless_energy - ansatz_best:+.4f}")
    print(f"  ansatz (ansatz's lowest - exact):             {ansatz_best - exact:+.4f}")


if __name__ == "__main__":
    main()
