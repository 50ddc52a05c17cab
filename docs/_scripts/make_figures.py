"""Generate the figures of the documentation from real runs.

    python docs/_scripts/make_figures.py          # writes docs/_static/spsa_history.png

The SPSA history figure: a VQE for a 4-qubit Heisenberg chain on qiskit-ibm-runtime's local
testing mode (FakeManilaV2, a noisy simulator of a 5-qubit device) in a Session, with an
ISA circuit, calibrated gains and blocking. Needs the ``runtime`` and ``plot`` extras.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from qiskit.circuit.library import real_amplitudes  # noqa: E402
from qiskit.quantum_info import SparsePauliOp  # noqa: E402
from qiskit.transpiler import generate_preset_pass_manager  # noqa: E402
from qiskit_ibm_runtime import EstimatorV2, Session  # noqa: E402
from qiskit_ibm_runtime.fake_provider import FakeManilaV2  # noqa: E402

from qprim_grad.optimizers import SPSA, EstimatorLoss  # noqa: E402
from qprim_grad.plotting import plot_history  # noqa: E402

STATIC = Path(__file__).resolve().parents[1] / "_static"


def heisenberg_chain(num_qubits: int) -> SparsePauliOp:
    """Sum of XX + YY + ZZ over neighbouring qubits of an open chain."""
    terms = [
        (pauli * 2, [i, i + 1], 1.0) for i in range(num_qubits - 1) for pauli in ("X", "Y", "Z")
    ]
    return SparsePauliOp.from_sparse_list(terms, num_qubits=num_qubits)


def spsa_history(maxiter: int, shots: int, seed: int) -> None:
    backend = FakeManilaV2()
    hamiltonian = heisenberg_chain(4)
    ansatz = real_amplitudes(4, reps=2, entanglement="linear")
    pass_manager = generate_preset_pass_manager(
        optimization_level=3, backend=backend, seed_transpiler=seed
    )
    isa_ansatz = pass_manager.run(ansatz)
    x0 = np.random.default_rng(seed).uniform(-0.5, 0.5, ansatz.num_parameters)

    start = time.perf_counter()
    with Session(backend=backend) as session:
        estimator = EstimatorV2(mode=session)
        estimator.options.default_shots = shots
        estimator.options.simulator.seed_simulator = seed
        loss = EstimatorLoss(estimator, isa_ansatz, hamiltonian)
        result = SPSA(maxiter=maxiter, blocking=True, seed=seed).minimize(loss, x0)
    elapsed = time.perf_counter() - start

    exact = float(np.linalg.eigvalsh(hamiltonian.to_matrix()).min())
    loss_ax, step_ax = plot_history(result)
    loss_ax.axhline(exact, color="0.3", lw=0.8, ls=":", label="exact ground energy")
    loss_ax.legend(loc="upper right", fontsize="small")
    loss_ax.set_ylabel("energy (noisy estimate)")
    path = STATIC / "spsa_history.png"
    loss_ax.figure.savefig(path, dpi=110)
    print(
        f"{path}: {result.nit} iterations, {result.jobs} jobs, {result.nfev} circuit "
        f"evaluations, final {result.fun:.3f} (exact {exact:.3f}), {elapsed:.0f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maxiter", type=int, default=60)
    parser.add_argument("--shots", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    STATIC.mkdir(exist_ok=True)
    spsa_history(args.maxiter, args.shots, args.seed)


if __name__ == "__main__":
    main()
