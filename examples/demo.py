"""Demo: a gradient computed through GradientEstimator on exact and shot-based primitives."""

import numpy as np
from qiskit.circuit.library import efficient_su2
from qiskit.primitives import StatevectorEstimator
from qiskit.quantum_info import SparsePauliOp

from qprim_grad import GradientEstimator

circuit = efficient_su2(3, reps=1)
observable = SparsePauliOp(["ZZI", "IZZ", "XXX"], [1.0, 1.0, 0.5])
values = np.linspace(0.1, 1.2, circuit.num_parameters)

for method in ("param_shift", "lin_comb", "finite_diff"):
    gradient = GradientEstimator(StatevectorEstimator(), method=method)
    data = gradient.run([(circuit, observable, values)]).result()[0].data
    print(f"{method:>12}: <H> = {float(data.evs):+.6f}  grad[:4] = {np.round(data.grads[:4], 6)}")
