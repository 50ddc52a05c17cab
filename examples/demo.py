"""qprim_grad demo.

1. Gradients of an expectation value through ``GradientEstimator`` with three methods on an
   exact simulator, then on IBM Runtime local mode (FakeManilaV2, ISA circuit, Session, the
   client-side ``executor_estimator.Estimator``): one estimator job per gradient.
2. A 4-qubit Heisenberg VQE minimised by SPSA through ``EstimatorLoss`` on the same device
   (one job per iteration), with the distance to the exact ground-state energy split into
   device noise, optimizer and ansatz (``vqe_demo.py``).

    python examples/demo.py [--maxiter 60] [--shots 2000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from qiskit.circuit.library import efficient_su2
from qiskit.primitives import StatevectorEstimator
from qiskit.quantum_info import SparsePauliOp
from qiskit.transpiler import generate_preset_pass_manager

from qprim_grad import GradientEstimator

SHOWN = 4  # gradient entries printed


def gradients(shots: int) -> None:
    circuit = efficient_su2(3, reps=1)
    observable = SparsePauliOp(["ZZI", "IZZ", "XXX"], [1.0, 1.0, 0.5])
    values = np.linspace(0.1, 1.2, circuit.num_parameters)
    num = circuit.num_parameters
    print(f"1. Gradient of <H> for efficient_su2(3) ({num} parameters), H = {observable.paulis}")
    print(f"   exact simulator (StatevectorEstimator); d<H>/dθ_j for j = 0..{SHOWN - 1}:")
    exact = None
    for method in ("param_shift", "lin_comb", "finite_diff"):
        gradient = GradientEstimator(StatevectorEstimator(), method=method)
        result = gradient.run([(circuit, observable, values)]).result()
        data = result[0].data
        exact = data.grads if exact is None else exact
        grad = np.round(data.grads[:SHOWN], 6)
        spent = result.metadata["shots"]  # exact: none
        print(f"   {method:>12}: <H> = {float(data.evs):+.6f}  grad = {grad}  shots = {spent}")

    from qiskit_ibm_runtime import Session
    from qiskit_ibm_runtime.executor_estimator import Estimator
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    backend = FakeManilaV2()
    isa = generate_preset_pass_manager(optimization_level=1, backend=backend).run(circuit)
    isa_observable = observable.apply_layout(isa.layout)
    with Session(backend=backend) as session:
        estimator = Estimator(mode=session)
        estimator.options.default_shots = shots
        # local simulation: no simulated TREX readout mitigation (the default level 1 is slow
        # here); on hardware choose the level you need
        estimator.options.resilience_level = 0
        estimator.options.simulator.seed_simulator = 1
        job = GradientEstimator(estimator, method="param_shift").run(
            [(isa, isa_observable, values)]
        )
        result = job.result()
        data = result[0].data
    print(
        f"\n   FakeManilaV2 (noisy simulator of a 5-qubit device), ISA circuit, Session, {shots} "
        f"shots per point and measurement basis: one estimator job for {1 + 2 * num} parameter "
        "points (the centre and 2 shifts per parameter)"
    )
    print(f"   runtime job id:             {job.inner_job_ids[0]}")
    print(f"   shots the job asked for:    {result.metadata['shots']} (the run's own count)")
    print(f"   grad (noisy):               {np.round(data.grads[:SHOWN], 3)}")
    print(f"   grad_stds (shot noise):     {np.round(data.grad_stds[:SHOWN], 3)}")
    print(f"   exact grad (from above):    {np.round(exact[:SHOWN], 3)}")
    print("   (differences beyond ~2 grad_stds come from the device's gate and readout noise)")


def main() -> None:
    parser = argparse.ArgumentParser(description="qprim_grad demo")
    parser.add_argument("--maxiter", type=int, default=60, help="SPSA iterations of the VQE")
    parser.add_argument(
        "--shots", type=int, default=2000, help="shots per energy evaluation (gradient: twice)"
    )
    args = parser.parse_args()
    gradients(shots=2 * args.shots)  # 4000 by default
    print("\n2. VQE with SPSA on FakeManilaV2 (one estimator job per iteration):")
    sys.path.insert(0, str(Path(__file__).parent))
    import vqe_demo

    vqe_demo.main(["--maxiter", str(args.maxiter), "--shots", str(args.shots)])


if __name__ == "__main__":
    main()
