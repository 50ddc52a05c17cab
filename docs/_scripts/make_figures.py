"""Generate the figures of the documentation from real runs.

``sphinx-build`` runs this (``docs/conf.py``, HTML builders) before reading the pages; a
figure is made again only when it is missing or older than this script. By hand::

    python docs/_scripts/make_figures.py [--force]      # writes docs/_figures/*.png

* ``spsa_history.png`` — a VQE for a 4-qubit Heisenberg chain on qiskit-ibm-runtime's local
  testing mode (FakeManilaV2, a noisy simulator of a 5-qubit device) through the executor
  ``Estimator`` in a Session, with an ISA circuit, calibrated gains and blocking;
* ``gradient.png`` — a parameter-shift gradient on the same device (4000 shots) with its
  ``grad_stds`` error bars, next to the exact gradient;
* ``qgt.png`` — the quantum geometric tensor of a small ansatz from ``QGTEstimator``
  (when the package has it).

Needs the ``runtime`` and ``plot`` extras.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

FIGURES = Path(__file__).resolve().parents[1] / "_figures"
SEED = 11


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _estimator(mode, shots: int):
    from qiskit_ibm_runtime.executor_estimator import Estimator

    estimator = Estimator(mode=mode)
    estimator.options.default_shots = shots
    estimator.options.resilience_level = 0  # local simulation: no simulated TREX
    estimator.options.simulator.seed_simulator = SEED
    return estimator


def heisenberg_chain(num_qubits: int):
    """Sum of XX + YY + ZZ over neighbouring qubits of an open chain."""
    from qiskit.quantum_info import SparsePauliOp

    terms = [
        (pauli * 2, [i, i + 1], 1.0) for i in range(num_qubits - 1) for pauli in ("X", "Y", "Z")
    ]
    return SparsePauliOp.from_sparse_list(terms, num_qubits=num_qubits)


def spsa_history(path: Path, maxiter: int = 60, shots: int = 2000) -> str:
    from qiskit.circuit.library import real_amplitudes
    from qiskit.transpiler import generate_preset_pass_manager
    from qiskit_ibm_runtime import Session
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    from qprim_grad.optimizers import SPSA, EstimatorLoss
    from qprim_grad.plotting import plot_history

    backend = FakeManilaV2()
    hamiltonian = heisenberg_chain(4)
    ansatz = real_amplitudes(4, reps=2, entanglement="linear")
    pass_manager = generate_preset_pass_manager(
        optimization_level=3, backend=backend, seed_transpiler=SEED
    )
    isa_ansatz = pass_manager.run(ansatz)
    x0 = np.random.default_rng(SEED).uniform(-0.5, 0.5, ansatz.num_parameters)
    with Session(backend=backend) as session:
        loss = EstimatorLoss(_estimator(session, shots), isa_ansatz, hamiltonian)
        result = SPSA(maxiter=maxiter, blocking=True, seed=SEED).minimize(loss, x0)

    exact = float(np.linalg.eigvalsh(hamiltonian.to_matrix()).min())
    loss_ax, _ = plot_history(result)
    loss_ax.axhline(exact, color="0.3", lw=0.8, ls=":", label="exact ground energy")
    loss_ax.legend(loc="upper right", fontsize="small")
    loss_ax.set_ylabel("energy (noisy estimate)")
    loss_ax.figure.savefig(path, dpi=110)
    return (
        f"{result.nit} iterations, {result.jobs} jobs, final energy {result.fun:.3f} "
        f"(exact {exact:.3f})"
    )


def gradient(path: Path, shots: int = 4000) -> str:
    from qiskit.circuit.library import efficient_su2
    from qiskit.primitives import StatevectorEstimator
    from qiskit.quantum_info import SparsePauliOp
    from qiskit.transpiler import generate_preset_pass_manager
    from qiskit_ibm_runtime import Session
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    from qprim_grad import GradientEstimator
    from qprim_grad.plotting import plot_gradient

    backend = FakeManilaV2()
    ansatz = efficient_su2(2, reps=1)
    hamiltonian = SparsePauliOp.from_list([("ZZ", 1.0), ("XI", 0.4), ("IX", 0.4)])
    values = np.linspace(-0.8, 0.8, ansatz.num_parameters)
    isa = generate_preset_pass_manager(optimization_level=1, backend=backend).run(ansatz)
    with Session(backend=backend) as session:
        gradient = GradientEstimator(_estimator(session, shots))
        result = gradient.run([(isa, hamiltonian.apply_layout(isa.layout), values)]).result()
    exact = GradientEstimator(StatevectorEstimator()).run([(ansatz, hamiltonian, values)])
    exact_grads = exact.result()[0].data.grads
    ax = plot_gradient(
        result[0],
        reference=exact_grads,
        title=f"parameter shift on FakeManilaV2, {shots} shots (reference: exact)",
    )
    ax.figure.savefig(path, dpi=110)  # plot_gradient's figure lays itself out
    return f"max |noisy - exact| = {np.max(np.abs(result[0].data.grads - exact_grads)):.3f}"


def qgt(path: Path) -> str | None:
    try:
        from qprim_grad import QGTEstimator  # type: ignore[attr-defined]
    except ImportError:
        return None
    from qiskit.circuit.library import real_amplitudes
    from qiskit.primitives import StatevectorEstimator

    from qprim_grad.plotting import plot_qgt

    ansatz = real_amplitudes(3, reps=2)
    values = np.linspace(-1.0, 1.0, ansatz.num_parameters)
    estimator = QGTEstimator(StatevectorEstimator(), method="lin_comb")
    result = estimator.run([(ansatz, "ZZZ", values)]).result()
    ax = plot_qgt(result[0], title="Re QGT of real_amplitudes(3, reps=2) (lin_comb, exact)")
    ax.figure.savefig(path, dpi=110)
    return f"{ansatz.num_parameters} x {ansatz.num_parameters}"


#: file name -> function drawing it (returns a one-line summary, or None if unavailable)
MAKERS: dict[str, Callable[[Path], str | None]] = {
    "spsa_history.png": spsa_history,
    "gradient.png": gradient,
    "qgt.png": qgt,
}


def build(force: bool = False, log: Callable[[str], None] = print) -> None:
    """Make every figure that is missing or older than this script."""
    FIGURES.mkdir(exist_ok=True)
    _pyplot()  # the Agg backend before anything draws
    script_time = Path(__file__).stat().st_mtime
    for name, maker in MAKERS.items():
        path = FIGURES / name
        if not force and path.exists() and path.stat().st_mtime >= script_time:
            continue
        start = time.perf_counter()
        # the primitives log every pass at INFO; a package of the docs theme (accessible-
        # pygments) sets the root logger to INFO on import: keep the build output readable
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.WARNING)
        try:
            summary = maker(path)
        finally:
            root.setLevel(level)
        _pyplot().close("all")
        if summary is None:
            log(f"figure {name}: not available in this version, skipped")
        else:
            log(f"figure {name}: {summary} ({time.perf_counter() - start:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="make every figure again")
    args = parser.parse_args()
    build(force=args.force)


if __name__ == "__main__":
    main()
