"""method="reverse" (adjoint) against param_shift and against the peers, on efficient_su2.

Per circuit (``efficient_su2(n, reps)``, observable ``Z`` on qubit 0), median wall times of:

* ``reverse_ms`` / ``reverse_aer_ms``: ``GradientEstimator(inner, method="reverse")`` end to
  end, ``inner`` = ``StatevectorEstimator`` / qiskit-aer ``EstimatorV2`` (evs included);
* ``kernel_ms``: the adjoint gradient alone (compiled-circuit cache warm, no evs);
* ``param_shift_ms`` / ``param_shift_aer_ms``: ``method="param_shift"`` on the same inners
  (only where it takes seconds, not minutes);
* ``qa_reverse_ms``: qiskit-algorithms ``ReverseEstimatorGradient`` (if installed);
* ``lightning_ms``: PennyLane ``lightning.qubit`` with ``diff_method="adjoint"``, value and
  gradient through ``qml.grad`` (if installed);

and the ratios ours / theirs (below 1: we are faster). Contenders run round-robin so that load
drift on a shared machine hits all of them alike. ``max_err`` is the largest difference to
the peers' gradients. Run: ``python -m benchmarks reverse``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from qiskit.circuit.library import efficient_su2
from qiskit.primitives import StatevectorEstimator
from qiskit.quantum_info import SparsePauliOp

from qprim_grad import GradientEstimator
from qprim_grad.methods.adjoint import compile_circuit, observable_matrix

CASES = [(4, 1), (4, 11), (8, 12), (12, 16), (16, 12)]  # P = 16, 96, 208, 408, 416
_RATIOS = [
    ("reverse_ms", "lightning_ms"),
    ("reverse_aer_ms", "lightning_ms"),
    ("kernel_ms", "lightning_ms"),
    ("reverse_ms", "qa_reverse_ms"),
    ("reverse_ms", "param_shift_ms"),
    ("reverse_aer_ms", "param_shift_aer_ms"),
]


def _aer_estimator() -> Any:
    try:
        from qiskit_aer.primitives import EstimatorV2
    except ImportError:
        return None
    return EstimatorV2()


def _qa_reverse(circuit, observable, values) -> Callable[[], np.ndarray] | None:
    try:
        from qiskit_algorithms.gradients import ReverseEstimatorGradient
    except ImportError:
        return None
    gradient = ReverseEstimatorGradient()
    op = SparsePauliOp(observable)
    return lambda: gradient.run([circuit], [op], [values]).result().gradients[0]


def pennylane_su2(qml: Any, num_qubits: int, reps: int, x: Any) -> None:
    """``efficient_su2(num_qubits, reps)`` in PennyLane (wire i = qiskit qubit i)."""
    k = 0
    for layer in range(reps + 1):
        for gate in (qml.RY, qml.RZ):
            for q in range(num_qubits):
                gate(x[k], wires=q)
                k += 1
        if layer < reps:
            for q in range(num_qubits - 2, -1, -1):
                qml.CNOT(wires=[q, q + 1])


def _lightning(num_qubits: int, reps: int, values: np.ndarray) -> Callable[[], Any] | None:
    """The same circuit in PennyLane (wire i = qiskit qubit i), adjoint gradient."""
    try:
        import pennylane as qml
    except ImportError:
        return None
    try:
        device = qml.device("lightning.qubit", wires=num_qubits)
    except Exception:  # noqa: BLE001 - lightning not installed
        return None

    @qml.qnode(device, diff_method="adjoint")
    def energy(x):
        pennylane_su2(qml, num_qubits, reps, x)
        return qml.expval(qml.PauliZ(0))

    x = qml.numpy.array(values, requires_grad=True)
    gradient = qml.grad(energy)
    return lambda: np.asarray(gradient(x))


def _round_robin(contenders: dict[str, tuple[Callable[[], Any], int]]) -> dict[str, float]:
    """Median ms per contender; each runs its own number of repeats, interleaved."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for i in range(max(r for _, r in contenders.values())):
        for name, (function, repeats) in contenders.items():
            if i < repeats:
                start = time.perf_counter()
                function()
                times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def _case(num_qubits: int, reps: int) -> dict[str, Any]:
    circuit = efficient_su2(num_qubits, reps=reps)
    num = circuit.num_parameters
    values = np.random.default_rng(num).uniform(-np.pi, np.pi, num)
    observable = "I" * (num_qubits - 1) + "Z"
    pub = (circuit, observable, values)
    big = num_qubits >= 16
    repeats = 2 if big else 5
    contenders: dict[str, tuple[Callable[[], Any], int]] = {}

    def through(inner: Any, method: str) -> Callable[[], Any]:
        gradient = GradientEstimator(inner, method=method)
        return lambda: gradient.run([pub]).result()[0].data.grads

    contenders["reverse_ms"] = (through(StatevectorEstimator(), "reverse"), repeats)
    aer = _aer_estimator()
    if aer is not None:
        contenders["reverse_aer_ms"] = (through(aer, "reverse"), repeats)
    program = compile_circuit(circuit)
    matrix = observable_matrix({observable: 1.0}, num_qubits)
    contenders["kernel_ms"] = (
        lambda: 2 * program.gradients(values[None], [[matrix]], list(range(num))).real[0, 0],
        repeats,
    )
    if num_qubits <= 8:
        contenders["param_shift_ms"] = (through(StatevectorEstimator(), "param_shift"), 1)
    if aer is not None and num_qubits <= 12:
        contenders["param_shift_aer_ms"] = (through(_aer_estimator(), "param_shift"), 1)
    qa = None if big else _qa_reverse(circuit, observable, values)
    if qa is not None:
        contenders["qa_reverse_ms"] = (qa, 3)
    lightning = _lightning(num_qubits, reps, values)
    if lightning is not None:
        contenders["lightning_ms"] = (lightning, repeats)
    # warm up (compiled-circuit caches, JIT-free but first-call imports) and cross-check
    results = {name: np.asarray(function()) for name, (function, _) in contenders.items()}
    ours = results["reverse_ms"]
    errors = [np.max(np.abs(ours - results[k])) for k in results if k != "reverse_ms"]
    times = _round_robin(contenders)
    row: dict[str, Any] = {"bench": "reverse", "n": num_qubits, "P": num}
    row.update(times)
    for ours_key, theirs in _RATIOS:
        if ours_key in times and theirs in times:
            row[f"{ours_key[:-3]}/{theirs[:-3]}"] = times[ours_key] / times[theirs]
    row["max_err"] = float(max(errors)) if errors else None
    return row


def run() -> list[dict]:
    return [_case(n, reps) for n, reps in CASES]


if __name__ == "__main__":
    from benchmarks import format_table

    print(format_table(run()))
