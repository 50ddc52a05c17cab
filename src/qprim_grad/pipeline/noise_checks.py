"""Warnings about the inner primitive's noise: correlated seeded Aer noise, tiny steps."""

from __future__ import annotations

import warnings
from typing import Any

from ..errors import CorrelatedNoiseWarning, SmallStepWarning
from ..methods.backends import aer_estimator

__all__ = ["warn_seeded_noise", "warn_small_step"]


def _aer_estimator_seed(primitive: Any) -> Any:
    """``seed_simulator`` of a qiskit-aer ``EstimatorV2`` (``None`` if not one or unseeded)."""
    aer = aer_estimator(primitive)
    return None if aer is None else aer.options.run_options.get("seed_simulator")


def warn_seeded_noise(
    primitive: Any, method: Any, works: list[Any], run_kwargs: dict[str, Any]
) -> bool:
    """Warn (true: warned) when ``primitive``, a seeded qiskit-aer ``EstimatorV2``, would give
    correlated noise to the pubs one gradient of ``method`` combines.

    qiskit-aer draws the Gaussian noise of ``precision > 0`` from a generator seeded with
    ``seed_simulator`` afresh for every pub, so pubs of equal shape get identical noise.
    ``lin_comb`` (one pub per Hadamard test) and forward/backward ``finite_diff`` (centre and
    shifted pub) then combine correlated estimates.
    """
    seed = _aer_estimator_seed(primitive)
    if seed is None:
        return False
    default = getattr(primitive.options, "default_precision", 0.0) or 0.0
    run_precision = run_kwargs.get("precision")
    for work in works:
        plan = work.plan
        combined = sum(e.weights is not None for e in plan.evaluations)
        combined += plan.center_weights is not None
        precision = work.pub.precision
        if precision is None:
            precision = run_precision if run_precision is not None else default
        if combined >= 2 and precision > 0:
            warnings.warn(
                f"qiskit-aer's EstimatorV2 with seed_simulator={seed!r} draws the same noise "
                f"for every pub of equal shape; method {method.name!r} combines "
                f"{combined} pubs into each gradient of pub {work.task.index}, so their noise "
                "is correlated and grad_stds (which assume independent estimates) can be off "
                "by about sqrt(2) or hide a real error. Drop seed_simulator, or use "
                "'param_shift', 'spsa' or central 'finite_diff' (one pub per gradient).",
                CorrelatedNoiseWarning,
                stacklevel=4,
            )
            return True
    return False


def warn_small_step(method: Any, noisy: bool) -> None:
    """Warn when a finite-difference-like method runs with a tiny ``epsilon`` on a noisy
    primitive: the gradient's error then grows like ``std / epsilon``."""
    epsilon = getattr(method, "epsilon", None)
    if noisy and isinstance(epsilon, float) and epsilon < 1e-3:
        warnings.warn(
            f"method {method.name!r} with epsilon={epsilon:g} on a shot-based primitive: the "
            f"gradient's standard error grows like std/epsilon (see grad_stds); use an "
            f"epsilon of about 0.1-0.5 (the larger, the more shot noise), or method='param_shift'",
            SmallStepWarning,
            stacklevel=5,  # the line of GradientJob.result that combines,
        )
