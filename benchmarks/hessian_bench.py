"""Second derivatives: a 5-parameter circuit with 42 parameterised gates.

6 qubits, 7 layers of RY or RZ on every qubit (gate ``k`` has the affine argument
``(k % 5 + 1) θ_{k % 5} / 2 + k / 10``) and a CX chain; observable ``Σ Z_i Z_{i+1}``. Rows:

* ``nested param_shift``: ``GradientEstimator(GradientEstimator(StatevectorEstimator()),
  "param_shift")`` with every row sent (the outer sees an opaque estimator): ``(2A + 1)^2``
  rows for ``A = 42`` gate arguments;
* ``nested param_shift, merged``: the same, as users write it; identical rows are evaluated
  once (``2A^2 + 2A + 1``);
* ``reverse Hessian``: ``GradientEstimator(GradientEstimator(StatevectorEstimator(),
  "reverse"), "reverse")``, forward-over-reverse, no circuit evaluations;
* ``pennylane param_shift_hessian``: ``qml.gradients.param_shift_hessian`` of the same
  circuit on ``lightning.qubit`` (if the ``bench`` extra is installed).

``speedup`` is against the first row; ``max_err`` against the reverse Hessian. One run each
(the nested plans take tens of seconds). Run: ``python -m benchmarks hessian``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.primitives import BaseEstimatorV2, StatevectorEstimator
from qiskit.quantum_info import SparsePauliOp

from qprim_grad import GradientEstimator

N, LAYERS, P = 6, 7, 5


def circuit() -> QuantumCircuit:
    theta = ParameterVector("t", P)
    qc = QuantumCircuit(N)
    k = 0
    for layer in range(LAYERS):
        for q in range(N):
            gate = qc.ry if layer % 2 == 0 else qc.rz
            gate((k % P + 1) * 0.5 * theta[k % P] + 0.1 * k, q)
            k += 1
        for q in range(N - 1):
            qc.cx(q, q + 1)
    return qc


def observable() -> SparsePauliOp:
    return SparsePauliOp.from_sparse_list([("ZZ", [i, i + 1], 1.0) for i in range(N - 1)], N)


class Opaque(BaseEstimatorV2):
    """Forwards to another estimator without exposing it (no row merging across levels)."""

    def __init__(self, estimator: Any) -> None:
        self._estimator = estimator

    def run(self, pubs: Any, *, precision: float | None = None) -> Any:
        return self._estimator.run(pubs, precision=precision)


def _pennylane(values: np.ndarray) -> Any:
    try:
        import pennylane as qml

        device = qml.device("lightning.qubit", wires=N)
    except Exception:  # noqa: BLE001 - the bench extra is not installed
        return None

    @qml.qnode(device, diff_method="parameter-shift", max_diff=2)
    def energy(t: Any) -> Any:
        k = 0
        for layer in range(LAYERS):
            for q in range(N):
                gate = qml.RY if layer % 2 == 0 else qml.RZ
                gate((k % P + 1) * 0.5 * t[k % P] + 0.1 * k, wires=q)
                k += 1
            for q in range(N - 1):
                qml.CNOT(wires=[q, q + 1])
        return qml.expval(qml.sum(*[qml.PauliZ(i) @ qml.PauliZ(i + 1) for i in range(N - 1)]))

    x = qml.numpy.array(values, requires_grad=True)
    return lambda: np.asarray(qml.gradients.param_shift_hessian(energy)(x))


def run() -> list[dict]:
    qc, obs = circuit(), observable()
    values = np.random.default_rng(0).uniform(-1, 1, P)
    pub = (qc, obs, values)

    def ours(estimator: Any, method: str) -> Any:
        result = GradientEstimator(estimator, method).run([pub]).result()
        return result[0].data.hessian, result.metadata.get("base_rows")

    contenders: list[tuple[str, Any]] = [
        (
            "nested param_shift",
            lambda: ours(Opaque(GradientEstimator(StatevectorEstimator())), "param_shift"),
        ),
        (
            "nested param_shift, merged",
            lambda: ours(GradientEstimator(StatevectorEstimator()), "param_shift"),
        ),
        (
            "reverse Hessian",
            lambda: ours(GradientEstimator(StatevectorEstimator(), "reverse"), "reverse"),
        ),
    ]
    pennylane = _pennylane(values)
    if pennylane is not None:
        contenders.append(("pennylane param_shift_hessian", lambda: (pennylane(), None)))
    rows = []
    for name, function in contenders:
        start = time.perf_counter()
        hessian, inner_rows = function()
        rows.append(
            {
                "bench": "hessian",
                "method": name,
                "P": P,
                "gates": N * LAYERS,
                "seconds": time.perf_counter() - start,
                "inner_rows": inner_rows,
                "hessian": hessian,
            }
        )
    reference = next(r["hessian"] for r in rows if r["method"] == "reverse Hessian")
    first = rows[0]["seconds"]
    for row in rows:
        row["speedup"] = first / row["seconds"]
        row["max_err"] = float(np.max(np.abs(row.pop("hessian") - reference)))
    return rows


if __name__ == "__main__":
    from benchmarks import format_table

    print(format_table(run()))
