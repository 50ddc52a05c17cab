"""The quantum geometric tensor: ``QGTEstimator`` against qiskit-algorithms and PennyLane.

On ``efficient_su2(n, reps)`` (RY/RZ layers, reverse-linear CX), in one process, contenders
round-robin (median wall times, so that load drift hits all alike):

* ``reverse_ms``: ``QGTEstimator(StatevectorEstimator(), "reverse")`` end to end (centre
  evs included); ``qa_reverse_ms``: qiskit-algorithms ``ReverseQGT``; ``pl_adjoint_ms``:
  PennyLane ``adjoint_metric_tensor`` on ``default.qubit`` (the real part, as PennyLane
  returns it);
* ``lin_comb_ms``: ``QGTEstimator(StatevectorEstimator(), "lin_comb")``, its ``client_ratio``
  = total / time inside the inner ``StatevectorEstimator`` call (target <= 1.1), and
  ``qa_lin_comb_ms``: qiskit-algorithms ``LinCombQGT`` on ``StatevectorEstimator``;
* ``block_diag_ms``: ``QGTEstimator(StatevectorEstimator(), "block_diag")`` against
  PennyLane ``metric_tensor(approx="block-diag")`` (``pl_block_diag_ms``) and full
  (``pl_full_ms``);
* the ``coverage`` row: +-2 sigma coverage of ``qfi`` by ``qfi_stds`` over >= 500 entries on
  qiskit-aer with ``precision=0.02`` (target 93-97 %).

``max_err`` is the largest difference to the peers' tensors (``lin_comb``: to the exact
tensor; ``qa_lin_comb_err`` is qiskit-algorithms' ``LinCombQGT``'s, whose imaginary parts are
wrong on these circuits). Run: ``python -m benchmarks
metric``. PennyLane columns need the ``bench`` extra (``pip install qprim-grad[bench]``).
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from qiskit.circuit.library import efficient_su2
from qiskit.primitives import StatevectorEstimator

from qprim_grad import QGTEstimator

from ._common import Recorder

REVERSE_CASES = [(4, 3), (6, 3), (8, 11), (12, 7)]  # P = 32, 48, 192, 192
LIN_COMB_CASES = [(4, 3)]
BLOCK_CASES = [(4, 3), (8, 5)]
# The peers' reverse-mode QGTs grow like P^2 state passes (PennyLane's adjoint_metric_tensor
# took 350 s at n=8, P=96 here): they run up to this P; ours runs everywhere.
PEER_MAX_P = 48


def _pennylane(circuit) -> Any:
    """A PennyLane QNode equivalent to ``circuit`` (ry, rz, cx only), or ``None``."""
    try:
        import pennylane as qml
    except ImportError:
        return None
    order = {p: i for i, p in enumerate(circuit.parameters)}
    program = [
        (
            inst.operation.name,
            [circuit.find_bit(q).index for q in inst.qubits],
            order.get(inst.operation.params[0]) if inst.operation.params else None,
        )
        for inst in circuit.data
    ]
    n = circuit.num_qubits
    device = qml.device("default.qubit", wires=n + 1)

    @qml.qnode(device)
    def qnode(params):
        for name, wires, k in program:
            if name == "cx":
                qml.CNOT(wires=wires)
            elif name == "ry":
                qml.RY(params[k], wires=wires[0])
            elif name == "rz":
                qml.RZ(params[k], wires=wires[0])
        return qml.expval(qml.PauliZ(0))

    return qml, qnode


def _timed(contenders: dict[str, Callable[[], Any]], repeats: int) -> dict[str, Any]:
    """Median milliseconds per contender (round-robin) and each one's last output."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    outputs: dict[str, Any] = {}
    for _ in range(repeats):
        for name, function in contenders.items():
            start = time.perf_counter()
            outputs[name] = function()
            times[name].append(time.perf_counter() - start)
    return {
        **{name: 1e3 * statistics.median(t) for name, t in times.items()},
        "_outputs": outputs,
    }


def _qgt(method: str, circuit, values, estimator=None) -> Callable[[], np.ndarray]:
    qgt = QGTEstimator(estimator or StatevectorEstimator(), method)
    pub = (circuit, "Z" * circuit.num_qubits, values)
    return lambda: qgt.run([pub]).result()[0].data.qgt


def _reverse_rows() -> list[dict[str, Any]]:
    rows = []
    for n, reps in REVERSE_CASES:
        circuit = efficient_su2(n, reps=reps)
        P = circuit.num_parameters
        values = np.random.default_rng(n * reps).uniform(-np.pi, np.pi, P)
        contenders: dict[str, Callable[[], Any]] = {"reverse_ms": _qgt("reverse", circuit, values)}
        if P <= PEER_MAX_P:
            try:
                from qiskit_algorithms.gradients import ReverseQGT

                qa = ReverseQGT()
                contenders["qa_reverse_ms"] = lambda: qa.run([circuit], [values]).result().qgts[0]
            except ImportError:
                pass
        pl = _pennylane(circuit) if P <= PEER_MAX_P else None
        if pl is not None:
            qml, qnode = pl
            x = qml.numpy.array(values, requires_grad=True)
            contenders["pl_adjoint_ms"] = lambda: qml.adjoint_metric_tensor(qnode)(x)
        repeats = 3 if P <= 32 else 1
        measured = _timed(contenders, repeats)
        ours = measured["_outputs"]["reverse_ms"]
        row: dict[str, Any] = {"bench": "reverse", "n": n, "P": P}
        row.update({k: v for k, v in measured.items() if not k.startswith("_")})
        errors = [
            np.abs(np.real(out) - ours.real).max() if name == "pl_adjoint_ms" else
            np.abs(out - ours).max()
            for name, out in measured["_outputs"].items() if name != "reverse_ms"
        ]  # fmt: skip
        row["max_err"] = float(max(errors, default=0.0))
        for other in ("qa_reverse_ms", "pl_adjoint_ms"):
            if other in row:
                row[f"speedup_vs_{other[:-3]}"] = row[other] / row["reverse_ms"]
        rows.append(row)
    return rows


def _lin_comb_rows() -> list[dict[str, Any]]:
    rows = []
    for n, reps in LIN_COMB_CASES:
        circuit = efficient_su2(n, reps=reps)
        P = circuit.num_parameters
        values = np.random.default_rng(1).uniform(-np.pi, np.pi, P)
        recorder = Recorder(StatevectorEstimator())
        qgt = QGTEstimator(recorder, "lin_comb")  # type: ignore[arg-type]
        pub = (circuit, "Z" * n, values)
        qgt.run([pub]).result()  # warm the circuit caches
        ratios, totals = [], []
        for _ in range(3):
            recorder.inner_seconds = 0.0
            start = time.perf_counter()
            ours = qgt.run([pub]).result()[0].data.qgt
            total = time.perf_counter() - start
            totals.append(total)
            ratios.append(total / recorder.inner_seconds)
        row: dict[str, Any] = {
            "bench": "lin_comb",
            "n": n,
            "P": P,
            "lin_comb_ms": 1e3 * statistics.median(totals),
            "client_ratio": statistics.median(ratios),
            "inner_pubs": len(recorder.pubs),
        }
        exact = _qgt("reverse", circuit, values)()
        row["max_err"] = float(np.abs(ours - exact).max())  # against the exact tensor
        try:
            from qiskit_algorithms.gradients import LinCombQGT

            qa = LinCombQGT(StatevectorEstimator())
            start = time.perf_counter()
            theirs = qa.run([circuit], [values]).result().qgts[0]
            row["qa_lin_comb_ms"] = 1e3 * (time.perf_counter() - start)
            row["speedup_vs_qa_lin_comb"] = row["qa_lin_comb_ms"] / row["lin_comb_ms"]
            # qiskit-algorithms 0.4's LinCombQGT has wrong imaginary parts on this circuit
            row["qa_lin_comb_err"] = float(np.abs(theirs - exact).max())
        except ImportError:
            pass
        rows.append(row)
    return rows


def _block_rows() -> list[dict[str, Any]]:
    rows = []
    for n, reps in BLOCK_CASES:
        circuit = efficient_su2(n, reps=reps)
        P = circuit.num_parameters
        values = np.random.default_rng(2).uniform(-np.pi, np.pi, P)
        contenders: dict[str, Callable[[], Any]] = {
            "block_diag_ms": _qgt("block_diag", circuit, values),
        }
        pl = _pennylane(circuit)
        if pl is not None:
            qml, qnode = pl
            x = qml.numpy.array(values, requires_grad=True)
            contenders["pl_block_diag_ms"] = lambda: qml.metric_tensor(qnode, approx="block-diag")(
                x
            )
            if P <= 32:
                contenders["pl_full_ms"] = lambda: qml.metric_tensor(
                    qnode, approx=None, aux_wire=n
                )(x)
        measured = _timed(contenders, 3)
        row: dict[str, Any] = {"bench": "block_diag", "n": n, "P": P}
        row.update({k: v for k, v in measured.items() if not k.startswith("_")})
        if "pl_block_diag_ms" in row:
            ours = measured["_outputs"]["block_diag_ms"].real
            row["max_err"] = float(np.abs(measured["_outputs"]["pl_block_diag_ms"] - ours).max())
            row["speedup_vs_pl_block_diag"] = row["pl_block_diag_ms"] / row["block_diag_ms"]
        rows.append(row)
    return rows


def _coverage_row() -> list[dict[str, Any]]:
    """+-2 sigma coverage of ``qfi`` by ``qfi_stds`` on Aer (shots), against the exact QFI."""
    try:
        from qiskit.primitives import BackendEstimatorV2
        from qiskit_aer import AerSimulator
    except ImportError:
        return []
    circuit = efficient_su2(2, reps=1)  # P = 8: 36 distinct entries per row
    values = np.random.default_rng(3).uniform(-np.pi, np.pi, (20, circuit.num_parameters))
    rows = []
    for method in ("lin_comb", "block_diag"):
        inner = BackendEstimatorV2(backend=AerSimulator(seed_simulator=2024))
        start = time.perf_counter()
        data = QGTEstimator(inner, method).run([(circuit, "ZZ", values)], precision=0.02)
        data = data.result()[0].data
        elapsed = time.perf_counter() - start
        exact = QGTEstimator(StatevectorEstimator(), method).run([(circuit, "ZZ", values)])
        want = exact.result()[0].data.qfi
        upper = np.triu_indices(circuit.num_parameters)
        stds = data.qfi_stds[:, upper[0], upper[1]]
        errors = np.abs(data.qfi - want)[:, upper[0], upper[1]]
        measured = stds > 0
        rows.append(
            {
                "bench": f"coverage {method}",
                "n": 2,
                "P": circuit.num_parameters,
                "entries": int(measured.sum()),
                "coverage_2sigma": float(np.mean(errors[measured] <= 2 * stds[measured])),
                "aer_ms": 1e3 * elapsed,
            }
        )
    return rows


def run() -> list[dict[str, Any]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _reverse_rows() + _lin_comb_rows() + _block_rows() + _coverage_row()
