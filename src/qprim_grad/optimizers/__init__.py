"""SPSA on Qiskit primitives: one job per iteration, seeded, resumable.

>>> import numpy as np
>>> from qiskit.circuit.library import real_amplitudes
>>> from qiskit.primitives import StatevectorEstimator
>>> from qprim_grad.optimizers import SPSA, EstimatorLoss
>>> loss = EstimatorLoss(StatevectorEstimator(), real_amplitudes(2, reps=1), "ZZ")
>>> result = SPSA(maxiter=20, learning_rate=0.3, perturbation=0.1, seed=2).minimize(
...     loss, np.full(4, 0.4))
>>> result.nit, result.jobs
(20, 21)
"""

from ..compat import register_optimizers
from .batching import BatchedLoss, batched, evaluate_grouped, is_batched
from .gains import Constant, FromIterator, Gain, PowerSeries, Table, as_gain
from .loss import EstimatorLoss, LossBatch, LossGradient
from .natural import NaturalGradient
from .natural_steps import natural_step
from .precision import AdaptivePrecision
from .protocol import AskData, TellData
from .qnspsa import FIDELITY, QNSPSA, CircuitFidelity, FidelityJob
from .result import OptimizerResult, OptimizerSupportLevel
from .shot_adaptive import ShotAdaptive
from .spsa import CALLBACK, SPSA, TERMINATIONCHECKER
from .state import History, NaturalGradientState, SPSAHistory, SPSAState, load_state

# qiskit-algorithms' and qiskit-machine-learning's isinstance checks pass for ours
# (qprim_grad.compat: imports those packages when installed)
register_optimizers({"SPSA": SPSA, "QNSPSA": QNSPSA})

__all__ = [
    "SPSA",
    "QNSPSA",
    "NaturalGradient",
    "ShotAdaptive",
    "natural_step",
    "CircuitFidelity",
    "FidelityJob",
    "FIDELITY",
    "EstimatorLoss",
    "LossBatch",
    "LossGradient",
    "BatchedLoss",
    "batched",
    "is_batched",
    "evaluate_grouped",
    "SPSAState",
    "SPSAHistory",
    "NaturalGradientState",
    "History",
    "load_state",
    "AskData",
    "TellData",
    "AdaptivePrecision",
    "Gain",
    "Constant",
    "PowerSeries",
    "Table",
    "FromIterator",
    "as_gain",
    "OptimizerResult",
    "OptimizerSupportLevel",
    "CALLBACK",
    "TERMINATIONCHECKER",
]
