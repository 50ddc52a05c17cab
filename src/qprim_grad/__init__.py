"""qprim_grad: gradients as Qiskit V2 primitives, and SPSA on primitives.

Example:
    >>> from qiskit.circuit.library import real_amplitudes
    >>> from qiskit.primitives import StatevectorEstimator
    >>> from qprim_grad import GradientEstimator
    >>> circuit = real_amplitudes(2, reps=1)
    >>> job = GradientEstimator(StatevectorEstimator()).run([(circuit, "ZZ", [0.1] * 4)])
    >>> job.result()[0].data.grads.shape
    (4,)
"""

from .errors import (
    AdjointError,
    CorrelatedNoiseWarning,
    GradientJobError,
    GradientMethodError,
    NonFiniteLossError,
    PluginError,
    PluginWarning,
    SmallStepWarning,
)
from .estimator import GradientEstimator
from .pipeline.job import GradientJob
from .qgt import QGTEstimator
from .sampler import GradientSampler, SamplerGradients

__version__ = "0.2.0"

__all__ = [
    "AdjointError",
    "CorrelatedNoiseWarning",
    "GradientEstimator",
    "GradientJob",
    "GradientJobError",
    "GradientMethodError",
    "GradientSampler",
    "NonFiniteLossError",
    "PluginError",
    "PluginWarning",
    "QGTEstimator",
    "SamplerGradients",
    "SmallStepWarning",
    "__version__",
]
