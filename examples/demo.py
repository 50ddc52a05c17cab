"""qprim_grad demo.

1. Gradients of an expectation value through ``GradientEstimator`` with three methods on an
   exact simulator, then on IBM Runtime local mode (FakeManilaV2, ISA circuit, Session):
   one estimator job per gradient.
2. A 4-qubit Heisenberg VQE minimised by SPSA through ``EstimatorLoss`` on the same device
   (one job per iteration), printed beside the exact ground-state energy.

    python examples/demo.py [--maxiter 60]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from qiskit.circuit.library import efficient_su2
from qiskit.primitives import StatevectorEstimator
from qiskit.quantum_info import SparsePauliOp
from qiskit.transpiler import generate_preset_pass_manager

from qprim_grad import GradientEstimator


def gradients() -> None:
    circuit = efficient_su2(3, reps=1)
    observable = SparsePauliOp(["ZZI", "IZZ", "XXX"], [1.0, 1.0, 0.5])
    values = np.linspace(0.1, 1.2, circuit.num_parameters)
    print("Gradient of <H> on StatevectorEstimator (first four entries):")
    for method in ("param_shift", "lin_comb", "finite_diff"):
        gradient = GradientEstimator(StatevectorEstimator(), method=method)
        data = gradient.run([(circuit, observable, values)]).result()[0].data
        print(f"  {method:>12}: <H> = {float(data.evs):+.6f}  grad = {np.round(data.grads[:4], 6)}")

    from qiskit_ibm_runtime import EstimatorV2, Session
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    backend = FakeManilaV2()
    isa = generate_preset_pass_manager(optimization_level=1, backend=backend).run(circuit)
    isa_observable = observable.apply_layout(isa.layout)
    with Session(backend=backend) as session:
        estimator = EstimatorV2(mode=session)
        estimator.options.default_shots = 4000
        estimator.options.simulator.seed_simulator = 1
        job = GradientEstimator(estimator, method="param_shift").run(
            [(isa, isa_observable, values)]
        )
        data = job.result()[0].data
    print("Same gradient on FakeManilaV2 (noisy, ISA circuit, Session, one job):")
    print(f"  inner job ids: {job.inner_job_ids}")
    print(f"  grad      = {np.round(data.grads[:4], 3)}")
    print(f"  grad_stds = {np.round(data.grad_stds[:4], 3)}")


def main() -> None:
    parser = argparse.ArgumentParser(description="qprim_grad demo")
    parser.add_argument("--maxiter", type=int, default=60)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    gradients()
    print("\nVQE with SPSA on FakeManilaV2 (one estimator job per iteration):")
    sys.path.insert(0, str(Path(__file__).parent))
    import vqe_demo

    vqe_demo.main(["--maxiter", str(args.maxiter)])


if __name__ == "__main__":
    main()
