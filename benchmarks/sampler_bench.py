"""GradientSampler vs the floor: the inner sampler running exactly the same pubs.

efficient_su2 circuits of 4-12 qubits with P >= 100 parameters, every shift-based method;
target ratio <= 1.15 (post-processing of counts is vectorised).

Run: ``python -m benchmarks.sampler_bench`` (or ``python -m benchmarks`` for all).
"""

from __future__ import annotations

import numpy as np
from qiskit.circuit.library import efficient_su2

from qprim_grad import GradientSampler

try:
    from ._common import Recorder, paired_ratio, print_table
except ImportError:  # run as a script
    from _common import Recorder, paired_ratio, print_table

CASES = [(4, 12), (8, 6), (12, 4)]  # (qubits, reps): P = 104, 112, 120
SHOTS = 2000


def _inner_sampler():
    try:
        from qiskit_aer.primitives import SamplerV2

        return SamplerV2(seed=7), "aer"
    except ImportError:
        from qiskit.primitives import StatevectorSampler

        return StatevectorSampler(seed=7), "statevector"


def run() -> list[dict]:
    rows = []
    rng = np.random.default_rng(3)
    for num_qubits, reps in CASES:
        circuit = efficient_su2(num_qubits, reps=reps)
        circuit.measure_all()
        values = rng.uniform(-1, 1, circuit.num_parameters)
        for method in ["param_shift", "finite_diff", "spsa"]:
            inner, name = _inner_sampler()
            recorder = Recorder(inner)
            gradient = GradientSampler(recorder, method=method)
            pubs = [(circuit, values)]
            gradient.run(pubs, shots=SHOTS).result()
            recorded = recorder.pubs
            floor_sampler, _ = _inner_sampler()
            ratio = paired_ratio(
                lambda: gradient.run(pubs, shots=SHOTS).result(),
                lambda: floor_sampler.run(recorded, shots=SHOTS).result(),
                repeats=5,
            )
            rows.append(
                {
                    "bench": "sampler_vs_inner",
                    "inner": name,
                    "method": method,
                    "qubits": num_qubits,
                    "P": circuit.num_parameters,
                    "ratio": ratio,
                }
            )
    return rows


if __name__ == "__main__":
    print_table(run())
