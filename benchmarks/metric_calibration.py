"""Are the metric's error bars calibrated? ``qfi_stds`` against the exact QFI.

Four random layered circuits (2, 3, 4 and 3 qubits; ``ry``/``rz`` layers and ``cx``
ladders; one random point each), ``REPEATS`` runs on qiskit-aer's ``EstimatorV2`` with
``default_precision=0.02`` (fresh seeds), compared with the exact value of each metric
method (``lin_comb``: the full QFI, ``reverse`` on ``StatevectorEstimator``;
``block_diag`` / ``diag``: the same method on ``StatevectorEstimator``, which computes its
prefixes from statevectors):

* ``cover_2sigma``: fraction of measured entries within ``2 qfi_stds`` of the exact value
  (0.954 for honest Gaussian error bars);
* ``spread/std``: root-mean-square error over root-mean-square reported ``qfi_stds`` (1 for
  honest error bars); ``rms_z``: root-mean-square of ``error / qfi_stds``;
* the same two on the entries whose generator mean is near zero (``|<P>| < 0.1``: QFI
  diagonal within ``0.01`` of its maximum), where a first-order rule fails.

Run: ``python -m benchmarks.metric_calibration``.
"""

from __future__ import annotations

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.primitives import StatevectorEstimator

from qprim_grad import QGTEstimator

REPEATS = 30
PRECISION = 0.02
METHODS = ("lin_comb", "block_diag", "diag")


def random_circuit(num_qubits: int, layers: int, seed: int) -> QuantumCircuit:
    """Layers of ``ry``/``rz`` with random gate choice and a ``cx`` ladder."""
    rng = np.random.default_rng(seed)
    theta = ParameterVector("t", 2 * num_qubits * layers)
    qc = QuantumCircuit(num_qubits)
    k = 0
    for _ in range(layers):
        for _ in range(2):
            for q in range(num_qubits):
                getattr(qc, rng.choice(["rx", "ry", "rz"]))(theta[k], q)
                k += 1
        for q in range(num_qubits - 1):
            qc.cx(q, q + 1)
    return qc


def circuits() -> list[tuple[QuantumCircuit, np.ndarray]]:
    out = []
    for seed, n in enumerate((2, 3, 4, 3)):
        qc = random_circuit(n, 2, seed)
        values = np.random.default_rng(100 + seed).uniform(-np.pi, np.pi, qc.num_parameters)
        out.append((qc, values))
    return out


def _exact(method: str, qc: QuantumCircuit, values: np.ndarray) -> np.ndarray:
    reference = "reverse" if method == "lin_comb" else method
    pub = (qc, "Z" * qc.num_qubits, values)
    return QGTEstimator(StatevectorEstimator(), reference).run([pub]).result()[0].data.qfi


def calibration(method: str, repeats: int = REPEATS) -> dict[str, float]:
    from qiskit_aer.primitives import EstimatorV2

    errors, stds, near_zero, rows = [], [], [], []
    for qc, values in circuits():
        exact = _exact(method, qc, values)
        upper = np.triu_indices(qc.num_parameters)
        # entries whose diagonal is near its maximum 1: <P> near 0 (QFI = 1 - <P>^2)
        diagonal = np.diag(exact)
        small = np.abs(1 - diagonal[upper[0]]) < 0.01
        small &= np.abs(1 - diagonal[upper[1]]) < 0.01
        for seed in range(repeats):
            options = {"default_precision": PRECISION, "run_options": {"seed_simulator": seed}}
            estimator = EstimatorV2(options=options)
            pub = (qc, "Z" * qc.num_qubits, values)
            data = QGTEstimator(estimator, method).run([pub]).result()[0].data
            rows.append(((data.qfi - exact)[upper], data.qfi_stds[upper]))
        err = np.array([e for e, _ in rows])  # (repeats, entries) of this circuit
        std = np.array([s for _, s in rows])
        rows.clear()
        errors.append(err)
        stds.append(std)
        near_zero.append(small)
    err, std = np.concatenate(errors, axis=1), np.concatenate(stds, axis=1)
    near = np.concatenate(near_zero)
    measured = np.all(std > 0, axis=0)

    def summary(select: np.ndarray) -> tuple[float, float, float, int]:
        e, s = err[:, select], std[:, select]
        if not e.size:
            return float("nan"), float("nan"), float("nan"), 0
        cover = float(np.mean(np.abs(e) <= 2 * s))
        ratio = float(np.sqrt(np.mean(e**2) / np.mean(s**2)))
        rms_z = float(np.sqrt(np.mean((e / s) ** 2)))
        return cover, ratio, rms_z, int(e.size)

    cover, ratio, rms_z, count = summary(measured)
    cover0, ratio0, rms_z0, count0 = summary(measured & near)
    return {
        "method": method,
        "entries": count,
        "cover_2sigma": round(cover, 3),
        "spread/std": round(ratio, 3),
        "rms_z": round(rms_z, 3),
        "near0_entries": count0,
        "near0_cover": round(cover0, 3),
        "near0_spread/std": round(ratio0, 3),
        "near0_rms_z": round(rms_z0, 3),
        "max_error_unmeasured": float(np.max(np.abs(err[:, ~measured]), initial=0.0)),
    }


def prepared_ansatz(num_qubits: int = 3, layers: int = 2) -> QuantumCircuit:
    """A fixed preparation (``h`` and a ``cx`` ladder, no parameters), then ``ry``/``rz``
    layers: block_diag's first prefix does not depend on the parameters."""
    theta = ParameterVector("t", 2 * num_qubits * layers)
    qc = QuantumCircuit(num_qubits)
    qc.h(range(num_qubits))
    for q in range(num_qubits - 1):
        qc.cx(q, q + 1)
    k = 0
    for _ in range(layers):
        for gate in (qc.ry, qc.rz):
            for q in range(num_qubits):
                gate(theta[k], q)
                k += 1
        for q in range(num_qubits - 1):
            qc.cx(q, q + 1)
    return qc


def rows_sent(points: int) -> dict[str, int]:
    """Rows sent for the prepared ansatz at ``points`` parameter points (shot-based
    ``StatevectorEstimator``, so that every evaluation is sent)."""
    from qprim_grad import GradientEstimator

    qc = prepared_ansatz()
    values = np.random.default_rng(1).uniform(-1, 1, (points, qc.num_parameters))
    out: dict[str, int] = {"points": points}
    for method in ("block_diag", "diag"):
        estimator = StatevectorEstimator(default_precision=0.01, seed=1)
        for face, wrapper in (
            ("QGTEstimator", QGTEstimator(estimator, method)),
            ("GradientEstimator", GradientEstimator(estimator, "param_shift", metric=method)),
        ):
            result = wrapper.run([(qc, "ZZI", values)]).result()
            out[f"{method}/{face}"] = int(result.metadata["inner_rows"])
    return out


def main() -> None:
    for points in (4, 32):
        print(rows_sent(points))
    rows = [calibration(method) for method in METHODS]
    keys = list(rows[0])
    print(" | ".join(keys))
    for row in rows:
        print(" | ".join(str(row[k]) for k in keys))


if __name__ == "__main__":
    main()
