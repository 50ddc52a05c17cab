"""Shared fixtures: a small ansatz, exact and shot-based estimators, a job counter."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit.circuit.library import real_amplitudes
from qiskit.primitives import StatevectorEstimator
from qiskit.quantum_info import SparsePauliOp

from qprim_grad.optimizers import EstimatorLoss


@pytest.fixture
def circuit():
    return real_amplitudes(2, reps=1)


@pytest.fixture
def observable():
    return SparsePauliOp.from_list([("ZZ", 1.0), ("XI", 0.5), ("IX", -0.3)])


@pytest.fixture
def estimator():
    return StatevectorEstimator()


@pytest.fixture
def loss(estimator, circuit, observable):
    return EstimatorLoss(estimator, circuit, observable)


@pytest.fixture
def x0():
    return np.array([0.4, -0.3, 0.8, 0.1])


def _quadratic(x):
    x = np.asarray(x, dtype=float)
    return float(np.sum(x**2) + 0.5 * np.sum(np.sin(x)))


@pytest.fixture
def quadratic():
    """A plain, deterministic test loss."""
    return _quadratic
