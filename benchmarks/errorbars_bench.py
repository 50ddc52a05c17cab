"""How honest are the error bars? Coverage of ``grad_stds`` on shot-based estimators.

For a two-term observable measured in two bases (``ZZ + 0.8 XI``), ``REPEATS`` independent
param-shift gradients per estimator (fresh simulator seeds); reported against the exact
gradient:

* ``spread/reported``: the observed standard deviation of ``grads`` over the mean reported
  ``grad_stds`` (1 for honest error bars);
* ``cover_2sigma``: the fraction of entries within ``2 grad_stds`` of the exact value (0.954
  for honest Gaussian error bars).

qiskit's ``BackendEstimatorV2`` (what qiskit-ibm-runtime's local testing mode uses) reports
``stds = sum_i |c_i| sigma_i / sqrt(shots)``, a bound that ignores the independence of the
terms measured in different bases; qiskit-aer's ``EstimatorV2`` with ``precision`` adds
Gaussian noise of exactly that size. See docs/session.rst ("Shots and error bars").

Run: ``python -m benchmarks errorbars``.
"""

from __future__ import annotations

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.primitives import BackendEstimatorV2
from qiskit.quantum_info import SparsePauliOp, Statevector

from qprim_grad import GradientEstimator

REPEATS = 200
VALUES = np.array([0.7, -0.4])
OBSERVABLE = SparsePauliOp.from_list([("ZZ", 1.0), ("XI", 0.8)])


def _circuit() -> QuantumCircuit:
    a, b = Parameter("a"), Parameter("b")
    qc = QuantumCircuit(2)
    qc.ry(a, 0)
    qc.rx(b, 1)
    qc.cx(0, 1)
    return qc


def _exact_gradient(qc: QuantumCircuit) -> np.ndarray:
    def ev(x):
        state = Statevector(qc.assign_parameters(x))
        return float(np.real(state.expectation_value(OBSERVABLE)))

    shift = np.eye(len(VALUES)) * np.pi / 2
    return np.array([(ev(VALUES + s) - ev(VALUES - s)) / 2 for s in shift])


def _coverage(name: str, make_estimator, run_kwargs: dict) -> dict:
    qc = _circuit()
    exact = _exact_gradient(qc)
    grads, stds = [], []
    for seed in range(REPEATS):
        data = GradientEstimator(make_estimator(seed)).run([(qc, OBSERVABLE, VALUES)], **run_kwargs)
        data = data.result()[0].data
        grads.append(data.grads)
        stds.append(data.grad_stds)
    grads, stds = np.array(grads), np.array(stds)
    return {
        "bench": "errorbars",
        "method": name,
        "P": len(VALUES),
        "runs": REPEATS,
        "spread/reported": float(np.mean(grads.std(axis=0) / stds.mean(axis=0))),
        "cover_2sigma": float(np.mean(np.abs(grads - exact) <= 2 * stds)),
    }


def run() -> list[dict]:
    from qiskit_aer import AerSimulator

    rows = [
        _coverage(
            "BackendEstimatorV2(Aer)",
            lambda seed: BackendEstimatorV2(
                backend=AerSimulator(seed_simulator=seed), options={"seed_simulator": seed}
            ),
            {"precision": 1 / 64},
        )
    ]
    try:
        from qiskit_aer.primitives import EstimatorV2
    except ImportError:  # pragma: no cover
        return rows
    rows.append(
        _coverage(
            "aer.EstimatorV2(precision)",
            lambda seed: EstimatorV2(options={"run_options": {"seed_simulator": seed}}),
            {"precision": 1 / 64},
        )
    )
    return rows


if __name__ == "__main__":
    from _common import print_table  # type: ignore[import-not-found]

    print_table(run())
