"""SPSA's calibration: the power series it picks from the losses at
:func:`~.steps.calibration_points`, and the sizes of its calibration jobs.

>>> import numpy as np
>>> from qprim_grad.optimizers.steps import calibration_points
>>> points = calibration_points(np.random.default_rng(0), np.ones(2), 0.2, CALIBRATION_STEPS)
>>> eta, eps, failed = calibrated_gains(np.sum(points**2, axis=1))
>>> eps.at(1), round(eta.at(1), 3), failed
(0.2, 0.393, False)
"""

from __future__ import annotations

import numpy as np

from .gains import PowerSeries
from .steps import calibration_scale

__all__ = ["CALIBRATED", "CALIBRATION_STEPS", "STDDEV_SAMPLES", "calibrated_gains"]

#: random directions of the calibration (each measured at ``±c``)
CALIBRATION_STEPS = 25
#: loss evaluations at the initial point that calibrate blocking's ``allowed_increase``
STDDEV_SAMPLES = 25

#: the log line of a calibration
CALIBRATED = (
    "SPSA calibration: learning rate a/(A+k)^alpha with a=%.4g, A=%.4g, alpha=%.4g; "
    "perturbation c/k^gamma with c=%.4g, gamma=%.4g"
)


def calibrated_gains(
    values: np.ndarray,
    c: float = 0.2,
    stability_constant: float = 0.0,
    target_magnitude: float | None = None,
    alpha: float = 0.602,
    gamma: float = 0.101,
    modelspace: bool = False,
) -> tuple[PowerSeries, PowerSeries, bool]:
    """The power series SPSA's calibration picks from the losses at
    :func:`~.steps.calibration_points`; the flag says whether it fell back to
    ``a = target_magnitude``."""
    target = 2 * np.pi / 10 if target_magnitude is None else target_magnitude
    a = calibration_scale(values, c, target, modelspace)
    failed = not np.isfinite(a) or a < 1e-10
    if failed:
        a = target
    return PowerSeries(a, alpha, stability_constant + 0.0), PowerSeries(c, gamma), failed
