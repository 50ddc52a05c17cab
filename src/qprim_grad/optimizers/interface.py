"""The parts of qiskit-algorithms' ``Optimizer`` interface that its optimizers inherit there
(support levels, ``set_max_evals_grouped``, ``settings``...): the shim our optimizers share."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from .batching import evaluate_grouped
from .result import OptimizerSupportLevel

__all__ = ["OptimizerInterface"]

logger = logging.getLogger("qprim_grad.optimizers")


class OptimizerInterface:
    """The parts of qiskit-algorithms' ``Optimizer`` interface that SPSA inherits there."""

    _max_evals_grouped: int | None
    _options: dict[str, Any]

    def get_support_level(self) -> dict[str, OptimizerSupportLevel]:
        """Gradient and bounds are ignored, an initial point is required."""
        return {
            "gradient": OptimizerSupportLevel.ignored,
            "bounds": OptimizerSupportLevel.ignored,
            "initial_point": OptimizerSupportLevel.required,
        }

    @property
    def gradient_support_level(self) -> OptimizerSupportLevel:
        return self.get_support_level()["gradient"]

    @property
    def bounds_support_level(self) -> OptimizerSupportLevel:
        return self.get_support_level()["bounds"]

    @property
    def initial_point_support_level(self) -> OptimizerSupportLevel:
        return self.get_support_level()["initial_point"]

    is_gradient_ignored = property(lambda self: self.gradient_support_level == 1)
    is_gradient_supported = property(lambda self: self.gradient_support_level != 0)
    is_gradient_required = property(lambda self: self.gradient_support_level == 3)
    is_bounds_ignored = property(lambda self: self.bounds_support_level == 1)
    is_bounds_supported = property(lambda self: self.bounds_support_level != 0)
    is_bounds_required = property(lambda self: self.bounds_support_level == 3)
    is_initial_point_ignored = property(lambda self: self.initial_point_support_level == 1)
    is_initial_point_supported = property(lambda self: self.initial_point_support_level != 0)
    is_initial_point_required = property(lambda self: self.initial_point_support_level == 3)

    def set_max_evals_grouped(self, limit: int | None) -> None:
        """Points per call of a plain callable (as qiskit-algorithms). A batched loss always
        gets a whole iteration in one call."""
        self._max_evals_grouped = limit

    def set_options(self, **kwargs: Any) -> None:
        """Store options (kept for interface compatibility; SPSA does not read them)."""
        self._options.update(kwargs)

    def print_options(self) -> None:
        for name in sorted(self._options):
            logger.debug("%s = %s", name, self._options[name])

    @property
    def setting(self) -> str:
        lines = [f"Optimizer: {type(self).__name__}"]
        lines += [f"-- {key}: {value}" for key, value in self.settings.items()]
        return "\n".join(lines) + "\n"

    @property
    def settings(self) -> dict[str, Any]:  # pragma: no cover - overridden
        raise NotImplementedError

    @staticmethod
    def wrap_function(function: Callable, args: tuple) -> Callable:
        """``function`` with ``args`` appended to every call."""

        def wrapped(*call_args: Any) -> Any:
            return function(*(call_args + args))

        return wrapped

    @staticmethod
    def gradient_num_diff(
        x_center: np.ndarray,
        f: Callable,
        epsilon: float,
        max_evals_grouped: int | None = None,
    ) -> np.ndarray:
        """Forward-difference gradient of ``f`` at ``x_center``."""
        x_center = np.asarray(x_center, dtype=float)
        f0 = float(np.real(np.asarray(f(x_center)).reshape(-1)[0]))
        shifted = x_center + epsilon * np.identity(x_center.size)
        values = evaluate_grouped(f, shifted, max_evals_grouped)
        return (np.asarray(values) - f0) / epsilon
