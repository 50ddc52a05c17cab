"""VQE for a 4-qubit Heisenberg chain, minimised by SPSA through ``EstimatorLoss``.

Runs on qiskit-ibm-runtime local mode: ``FakeManilaV2`` (a noisy simulator of a 5-qubit
device), an ISA circuit from the preset pass manager, and a ``Session``. Every SPSA
iteration is one Estimator job; progress is logged per iteration.

    python examples/vqe_demo.py [--maxiter 80] [--shots 2000]
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings

import numpy as np
from qiskit.circuit.library import real_amplitudes
from qiskit.primitives import StatevectorEstimator
from qiskit.quantum_info import SparsePauliOp
from qiskit.transpiler import generate_preset_pass_manager
from qiskit_ibm_runtime import EstimatorV2, Session
from qiskit_ibm_runtime.fake_provider import FakeManilaV2

from qprim_grad.optimizers import SPSA, EstimatorLoss


def heisenberg(num_qubits: int) -> SparsePauliOp:
    """Open XXX chain: sum_i X_i X_{i+1} + Y_i Y_{i+1} + Z_i Z_{i+1}."""
    terms = []
    for i in range(num_qubits - 1):
        for pauli in "XYZ":
            terms.append((pauli * 2, [i, i + 1], 1.0))
    return SparsePauliOp.from_sparse_list(terms, num_qubits=num_qubits)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maxiter", type=int, default=80)
    parser.add_argument("--shots", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.basicConfig(format="%(message)s")
    logging.getLogger("qprim_grad.optimizers").setLevel(logging.INFO)

    hamiltonian = heisenberg(4)
    exact = float(np.linalg.eigvalsh(hamiltonian.to_matrix()).min())
    ansatz = real_amplitudes(4, reps=2, entanglement="linear")

    backend = FakeManilaV2()
    isa_ansatz = generate_preset_pass_manager(optimization_level=3, backend=backend).run(ansatz)
    x0 = np.random.default_rng(args.seed).uniform(-0.5, 0.5, ansatz.num_parameters)

    start = time.perf_counter()
    with Session(backend=backend) as session:
        estimator = EstimatorV2(mode=session)
        estimator.options.default_shots = args.shots
        estimator.options.simulator.seed_simulator = args.seed
        # the ISA circuit carries its layout; EstimatorLoss maps the observable onto it
        loss = EstimatorLoss(estimator, isa_ansatz, hamiltonian)
        spsa = SPSA(maxiter=args.maxiter, seed=args.seed, last_avg=5)
        result = spsa.minimize(loss, x0)

    print(f"\nSPSA: {result.nit} iterations, {result.jobs} estimator jobs, {result.nfev} circuits")
    print(f"VQE energy (noisy FakeManilaV2): {result.fun:.4f}")
    ideal = StatevectorEstimator().run([(ansatz, hamiltonian, result.x)]).result()[0].data.evs
    print(f"same parameters, noiseless:      {float(ideal):.4f}")
    print(f"exact ground-state energy:       {exact:.4f}")
    print(f"time: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
