"""The qiskit-algorithms-compatible face of :class:`~.spsa.SPSA` that does not run it:
the static methods ``calibrate`` and ``estimate_stddev`` and ``replace``."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from ..compat import global_generator
from ._warn import warn_user
from .batching import evaluate
from .driver import check_finite_loss
from .gains import PowerSeries
from .spsa_calibration import CALIBRATED, CALIBRATION_STEPS, calibrated_gains
from .steps import calibration_points

__all__ = ["SPSACompat"]

logger = logging.getLogger("qprim_grad.optimizers")


class SPSACompat:
    """SPSA's static methods (as in ``qiskit_algorithms.optimizers.SPSA``) and ``replace``."""

    _max_evals_grouped: int | None
    _options: dict[str, Any]

    # ---- qiskit-algorithms static methods -----------------------------------------------
    @staticmethod
    def calibrate(
        loss: Callable[[np.ndarray], float],
        initial_point: np.ndarray,
        c: float = 0.2,
        stability_constant: float = 0,
        target_magnitude: float | None = None,
        alpha: float = 0.602,
        gamma: float = 0.101,
        modelspace: bool = False,
        max_evals_grouped: int | None = 1,
        *,
        seed: int | np.random.Generator | None = None,
    ) -> tuple[PowerSeries, PowerSeries]:
        r"""Calibrate ``a`` of the power series :math:`a_k = a / (A + k + 1)^\alpha`,
        :math:`c_k = c / (k + 1)^\gamma` so that the first step has length
        ``target_magnitude`` (default :math:`2\pi/10`), from 25 random directions.

        A batched loss is evaluated in one call (one job). Returns ``(learning_rate,
        perturbation)`` as :class:`~.gains.PowerSeries`, which are also callables returning
        iterators, as qiskit-algorithms returns them. ``seed`` may be a ``Generator``, which
        is then advanced.

        >>> import numpy as np
        >>> from qprim_grad.optimizers import SPSA
        >>> lr, pert = SPSA.calibrate(lambda x: float(x @ x), np.ones(2), seed=0)
        >>> pert.at(1), round(lr.at(1), 3)
        (0.2, 0.393)
        """
        rng = seed if isinstance(seed, np.random.Generator) else None
        rng = rng or (global_generator() if seed is None else None) or np.random.default_rng(seed)
        x0 = np.asarray(initial_point, dtype=float)
        points = calibration_points(rng, x0, c, CALIBRATION_STEPS)
        values = evaluate(loss, points, max_evals_grouped)
        check_finite_loss(values, "calibration")
        eta, eps, failed = calibrated_gains(
            values, c, stability_constant, target_magnitude, alpha, gamma, modelspace
        )
        if failed:
            warn_user(f"Calibration failed, using {eta.scale} for `a`")
        logger.info(CALIBRATED, eta.scale, stability_constant, alpha, c, gamma)
        return eta, eps

    @staticmethod
    def estimate_stddev(
        loss: Callable[[np.ndarray], float],
        initial_point: np.ndarray,
        avg: int = 25,
        max_evals_grouped: int = 1,
    ) -> float:
        """Standard deviation of ``avg`` evaluations at ``initial_point`` (one job if the
        loss is batched)."""
        points = np.repeat(np.asarray(initial_point, dtype=float)[None, :], avg, axis=0)
        return float(np.std(evaluate(loss, points, max_evals_grouped)))

    def replace(self, **changes: Any) -> Any:
        """A copy with some constructor arguments changed."""
        kwargs = {
            name: getattr(self, name)
            for name in inspect.signature(type(self).__init__).parameters
            if name != "self"
        }
        unknown = set(changes) - set(kwargs)
        if unknown:
            raise TypeError(f"Unknown SPSA arguments: {sorted(unknown)}")
        kwargs.update(changes)
        new = type(self)(**kwargs)
        new._max_evals_grouped = self._max_evals_grouped
        new._options = dict(self._options)
        return new
