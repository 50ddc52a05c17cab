"""method="reverse" against PennyLane lightning.qubit adjoint for n = 4..20.

Two circuits, identical in both frameworks, observable ``Σ_i Z_i Z_{i+1}``:

* ``su2``: ``efficient_su2(n, reps=11)`` (RY/RZ layers, reverse-linear CX; P = 24 n);
* ``hea``: 6 layers of RY, RX on every qubit and ``rzz`` on neighbours (P = 6 (3n - 1)).

``reverse_ms``: ``GradientEstimator(StatevectorEstimator(), method="reverse")`` end to end
(evs included; they come from the forward pass); ``lightning_ms``: ``qml.grad`` of a
``lightning.qubit`` QNode with ``diff_method="adjoint"`` (value and gradient). Median wall
times, contenders interleaved; ``ratio`` = reverse / lightning (below 1: we are faster);
``max_err``: largest difference of the gradients. Needs the ``bench`` extra
(``pip install qprim-grad[bench]``). Run: ``python -m benchmarks reverse_scale``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.circuit.library import efficient_su2
from qiskit.primitives import StatevectorEstimator
from qiskit.quantum_info import SparsePauliOp

from qprim_grad import GradientEstimator

from .reverse_bench import _round_robin, pennylane_su2

SIZES = [4, 8, 12, 14, 16, 18, 20]
SU2_REPS = 11
HEA_LAYERS = 6


def zz_chain(n: int) -> SparsePauliOp:
    return SparsePauliOp.from_sparse_list([("ZZ", [i, i + 1], 1.0) for i in range(n - 1)], n)


def su2(n: int) -> QuantumCircuit:
    return efficient_su2(n, reps=SU2_REPS)


def hea(n: int) -> QuantumCircuit:
    theta = ParameterVector("t", HEA_LAYERS * (3 * n - 1))
    qc = QuantumCircuit(n)
    k = 0
    for _ in range(HEA_LAYERS):
        for gate in (qc.ry, qc.rx):
            for q in range(n):
                gate(theta[k], q)
                k += 1
        for q in range(n - 1):
            qc.rzz(theta[k], q, q + 1)
            k += 1
    return qc


def _lightning(kind: str, n: int, values: np.ndarray) -> Callable[[], np.ndarray] | None:
    try:
        import pennylane as qml

        device = qml.device("lightning.qubit", wires=n)
    except Exception:  # noqa: BLE001 - the bench extra is not installed
        return None

    def su2_body(x: Any) -> None:
        pennylane_su2(qml, n, SU2_REPS, x)

    def hea_body(x: Any) -> None:
        k = 0
        for _ in range(HEA_LAYERS):
            for gate in (qml.RY, qml.RX):
                for q in range(n):
                    gate(x[k], wires=q)
                    k += 1
            for q in range(n - 1):
                qml.IsingZZ(x[k], wires=[q, q + 1])
                k += 1

    body = su2_body if kind == "su2" else hea_body

    @qml.qnode(device, diff_method="adjoint")
    def energy(x: Any) -> Any:
        body(x)
        return qml.expval(qml.sum(*[qml.PauliZ(i) @ qml.PauliZ(i + 1) for i in range(n - 1)]))

    x = qml.numpy.array(values, requires_grad=True)
    gradient = qml.grad(energy)
    return lambda: np.asarray(gradient(x))


def _case(kind: str, n: int) -> dict[str, Any]:
    circuit = su2(n) if kind == "su2" else hea(n)
    values = np.random.default_rng(n).uniform(-np.pi, np.pi, circuit.num_parameters)
    pub = (circuit, zz_chain(n), values)
    gradient = GradientEstimator(StatevectorEstimator(), method="reverse")
    contenders: dict[str, tuple[Callable[[], Any], int]] = {}
    repeats = 2 if n >= 18 else 3 if n >= 16 else 5
    contenders["reverse_ms"] = (lambda: gradient.run([pub]).result()[0].data.grads, repeats)
    lightning = _lightning(kind, n, values)
    if lightning is not None:
        contenders["lightning_ms"] = (lightning, repeats)
    results = {name: np.asarray(f()) for name, (f, _) in contenders.items()}  # warm up
    times = _round_robin(contenders)
    row: dict[str, Any] = {"bench": f"reverse-vs-lightning/{kind}", "n": n}
    row["P"] = circuit.num_parameters
    row.update(times)
    if lightning is not None:
        row["ratio"] = times["reverse_ms"] / times["lightning_ms"]
        row["max_err"] = float(np.max(np.abs(results["reverse_ms"] - results["lightning_ms"])))
    return row


def run() -> list[dict]:
    return [_case(kind, n) for kind in ("su2", "hea") for n in SIZES]


if __name__ == "__main__":
    from benchmarks import format_table

    print(format_table(run()))
