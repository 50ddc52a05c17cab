"""GradientEstimator client cost (wall time minus time inside the inner primitive).

* client cost per method and P (efficient_su2 circuits), cold (new circuit) and warm;
  qiskit-algorithms' ParamShift/SPSA gradients on the same zero-work estimator if installed;
* ratios on a real StatevectorEstimator: gradient run / inner run of the same rows.

Run: ``python -m benchmarks.estimator_bench`` (or ``python -m benchmarks`` for all).
"""

from __future__ import annotations

import time

import numpy as np
from qiskit.circuit.library import efficient_su2
from qiskit.primitives import StatevectorEstimator

from qprim_grad import GradientEstimator

try:
    from ._common import Recorder, ZeroWorkEstimator, paired_ratio, print_table
except ImportError:  # run as a script
    from _common import Recorder, ZeroWorkEstimator, paired_ratio, print_table

SIZES = [(4, 1), (8, 5), (10, 19), (10, 49), (20, 49)]  # P = 16, 96, 400, 1000, 2000
METHODS = ["param_shift", "finite_diff", "spsa", "lin_comb"]


def _client_ms(make_run, inner: ZeroWorkEstimator) -> float:
    inner.inner_seconds = 0.0
    start = time.perf_counter()
    make_run()
    return (time.perf_counter() - start - inner.inner_seconds) * 1e3


def client_cost() -> list[dict]:
    rows = []
    rng = np.random.default_rng(0)
    for num_qubits, reps in SIZES:
        num = efficient_su2(num_qubits, reps=reps).num_parameters
        values = rng.uniform(-1, 1, num)
        observable = "Z" * num_qubits
        for method in METHODS:
            if method == "lin_comb" and num > 400:
                continue  # P circuits of size O(P): quadratic by nature
            inner = ZeroWorkEstimator()
            gradient = GradientEstimator(inner, method=method)
            circuit = efficient_su2(num_qubits, reps=reps)  # fresh object: cold cache
            run = lambda: gradient.run([(circuit, observable, values)]).result()  # noqa: E731
            cold = _client_ms(run, inner)
            warm = sorted(_client_ms(run, inner) for _ in range(5))[2]
            rows.append(
                {"bench": "client", "method": method, "P": num, "cold_ms": cold, "warm_ms": warm}
            )
        rows.extend(_qiskit_algorithms_rows(num_qubits, reps, values, observable))
    return rows


def _qiskit_algorithms_rows(num_qubits, reps, values, observable) -> list[dict]:
    try:
        from qiskit_algorithms.gradients import (
            ParamShiftEstimatorGradient,
            SPSAEstimatorGradient,
        )
    except ImportError:
        return []
    from qiskit.quantum_info import SparsePauliOp

    rows = []
    circuit = efficient_su2(num_qubits, reps=reps)
    num = circuit.num_parameters
    for name, cls in [("qa_param_shift", ParamShiftEstimatorGradient), ("qa_spsa", None)]:
        inner = ZeroWorkEstimator()
        gradient = cls(inner) if cls else SPSAEstimatorGradient(inner, epsilon=1e-6, seed=1)
        obs = SparsePauliOp(observable)
        run = lambda g=gradient: g.run([circuit], [obs], [values]).result()  # noqa: E731
        run()
        repeats = 1 if num >= 1000 else 3
        warm = sorted(_client_ms(run, inner) for _ in range(repeats))[repeats // 2]
        rows.append({"bench": "client", "method": name, "P": num, "cold_ms": "", "warm_ms": warm})
    return rows


def ratios() -> list[dict]:
    """Gradient wall time / the inner StatevectorEstimator on exactly the same rows."""
    rows = []
    rng = np.random.default_rng(1)
    cases = [
        ("spsa", efficient_su2(12, reps=3), 1, {}),
        ("spsa", efficient_su2(12, reps=3), 1, {"batch_size": 4}),
        ("param_shift", efficient_su2(4, reps=1), 32, {}),
        ("finite_diff", efficient_su2(4, reps=1), 32, {}),
        ("lin_comb", efficient_su2(4, reps=1), 32, {}),
    ]
    for method, circuit, num_rows, options in cases:
        recorder = Recorder(StatevectorEstimator())
        gradient = GradientEstimator(recorder, method=method, **options)
        values = rng.uniform(-1, 1, (num_rows, circuit.num_parameters))
        pubs = [(circuit, "Z" * circuit.num_qubits, values)]
        gradient.run(pubs).result()
        inner_pubs = recorder.pubs
        inner = StatevectorEstimator()
        ratio = paired_ratio(
            lambda g=gradient, p=pubs: g.run(p).result(),
            lambda i=inner, p=inner_pubs: i.run(p).result(),
            repeats=3,
        )
        name = method + (f"(batch={options['batch_size']})" if options else "")
        rows.append(
            {
                "bench": "vs_inner",
                "method": name,
                "P": circuit.num_parameters,
                "rows": num_rows,
                "ratio": ratio,
            }
        )
    return rows


def run() -> list[dict]:
    return client_cost() + ratios()


if __name__ == "__main__":
    print_table(run())
