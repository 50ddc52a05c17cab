"""Calibration of the metric's error bars (``qfi_stds``) on shot-based estimators, entries
with ``<P> = 0`` included: qiskit-aer's ``EstimatorV2`` with ``default_precision`` (Gaussian
noise of that std) and real shot sampling (``BackendEstimatorV2`` on ``AerSimulator``)."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.primitives import BackendEstimatorV2, StatevectorEstimator
from qiskit_aer import AerSimulator
from qiskit_aer.primitives import EstimatorV2 as AerEstimator

from qprim_grad import QGTEstimator

SAMPLING = ["lin_comb", "block_diag", "diag"]


def zero_means() -> QuantumCircuit:
    """``rx``/``ry`` on phases of ``|00>``: their generators' means are exactly zero."""
    t = ParameterVector("t", 4)
    qc = QuantumCircuit(2)
    qc.rz(t[0], 0)
    qc.rz(t[1], 1)
    qc.rx(t[2], 0)
    qc.ry(t[3], 1)
    return qc


def layered() -> QuantumCircuit:
    """Three layers on three qubits: zero means in the first, generic ones after."""
    t = ParameterVector("t", 9)
    qc = QuantumCircuit(3)
    for layer in range(3):
        for q in range(3):
            (qc.rx, qc.ry, qc.rx)[(q + layer) % 3](t[3 * layer + q], q)
        qc.cx(0, 1)
        qc.cx(1, 2)
    return qc


def exact_qfi(method: str, circuit: QuantumCircuit, values: np.ndarray) -> np.ndarray:
    """lin_comb: the full QFI; block_diag / diag: the approximation, from statevectors."""
    reference = "reverse" if method == "lin_comb" else method
    pub = (circuit, "Z" * circuit.num_qubits, values)
    return QGTEstimator(StatevectorEstimator(), reference).run([pub]).result()[0].data.qfi


def independent_entries(qfi, stds, exact) -> tuple[np.ndarray, np.ndarray]:
    """Errors and stds of the measured upper-triangle entries, each independent estimate
    once (an inner pub without parameters is evaluated once for every row)."""
    upper = np.triu_indices(qfi.shape[-1])
    errors = (qfi - exact)[..., upper[0], upper[1]].ravel()
    sigma = stds[..., upper[0], upper[1]].ravel()
    measured = sigma > 0
    pairs = np.unique(np.stack([errors[measured], sigma[measured]]), axis=1)
    return pairs[0], pairs[1]


@pytest.mark.parametrize("method", SAMPLING)
def test_zero_mean_entries_are_unbiased(method):
    """``<P> = 0``: ``1 - <P>^2`` from ``P^2 - sigma^2`` (``P^2`` alone is biased by
    ``sigma^2``, many standard errors over 400 rows)."""
    circuit = zero_means()
    values = np.random.default_rng(3).uniform(-np.pi, np.pi, (400, 4))
    inner = AerEstimator(options={"default_precision": 0.02, "run_options": {"seed_simulator": 11}})
    data = QGTEstimator(inner, method).run([(circuit, "ZZ", values)]).result()[0].data
    for k in (2, 3):  # the rx / ry entries, QFI exactly 1
        estimates, stds = data.qfi[:, k, k], data.qfi_stds[:, k, k]
        standard_error = np.sqrt(np.mean(stds**2) / len(estimates))
        assert abs(np.mean(estimates) - 1.0) < 3 * standard_error, (k, np.mean(estimates) - 1)
        # the spread of 1 - P^2 at P = 0 is sqrt(2) sigma^2 (times 4 c^2 = 1): second order
        # (the sample std of a chi-square variable over 400 rows: ~10 % standard error)
        assert np.std(estimates) == pytest.approx(np.sqrt(2) * 0.02**2, rel=0.3)
        assert np.all(stds >= np.sqrt(2) * 0.02**2 * (1 - 1e-9))


def _calibration(method, circuit, values, inner, **run) -> tuple[float, float, int]:
    data = QGTEstimator(inner, method).run([(circuit, "Z" * circuit.num_qubits, values)], **run)
    data = data.result()[0].data
    errors, stds = independent_entries(data.qfi, data.qfi_stds, exact_qfi(method, circuit, values))
    coverage = float(np.mean(np.abs(errors) <= 2 * stds))
    spread = float(np.sqrt(np.mean(errors**2) / np.mean(stds**2)))
    return coverage, spread, len(errors)


@pytest.mark.parametrize("method", SAMPLING)
def test_calibrated_on_aer_default_precision(method):
    circuit = layered()
    values = np.random.default_rng(8).uniform(-np.pi, np.pi, (40, circuit.num_parameters))
    inner = AerEstimator(options={"default_precision": 0.02, "run_options": {"seed_simulator": 5}})
    coverage, spread, count = _calibration(method, circuit, values, inner)
    assert count >= 200
    assert 0.90 <= coverage <= 0.99, coverage
    assert 0.8 <= spread <= 1.2, spread


@pytest.mark.parametrize("method, rows", [("lin_comb", 5), ("block_diag", 30), ("diag", 40)])
def test_calibrated_with_real_shot_sampling(method, rows):
    """Shots: the pieces of one entry share their measurement basis (and shots), which the
    propagation treats as independent: a looser band on the spread."""
    circuit = layered()
    values = np.random.default_rng(9).uniform(-np.pi, np.pi, (rows, circuit.num_parameters))
    inner = BackendEstimatorV2(backend=AerSimulator(seed_simulator=17))
    coverage, spread, count = _calibration(method, circuit, values, inner, precision=0.05)
    assert count >= 100
    assert 0.90 <= coverage <= 0.99, coverage
    assert 0.7 <= spread <= 1.3, spread


def test_reverse_is_exact_with_zero_stds():
    circuit = layered()
    values = np.random.default_rng(8).uniform(-np.pi, np.pi, (3, circuit.num_parameters))
    data = QGTEstimator(AerEstimator(), "reverse").run([(circuit, "ZZZ", values)]).result()[0]
    assert not np.any(data.data.qfi_stds) and not np.any(data.data.qgt_stds)
    from _reference import state_qgt

    for row, x in zip(data.data.qgt, values, strict=True):
        np.testing.assert_allclose(row, state_qgt(circuit, x), atol=1e-7)
