"""Every exception and warning of qprim_grad, in one place (the lowest layer: imports nothing
from the package).

The classes are public as :mod:`qprim_grad`'s names; :mod:`qprim_grad.methods` (for method
authors) and :mod:`qprim_grad.plugins` also export the ones they raise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "AdjointError",
    "CorrelatedNoiseWarning",
    "GradientJobError",
    "GradientMethodError",
    "NonFiniteLossError",
    "PluginError",
    "PluginWarning",
    "SmallStepWarning",
]


class GradientMethodError(ValueError):
    """A method cannot differentiate the given circuit or options are invalid."""


class AdjointError(ValueError):
    """The circuit cannot be differentiated by the adjoint method."""


class GradientJobError(RuntimeError):
    """An inner job failed, or its results could not be combined into gradients.

    Attributes:
        failed: ``[(job_id, pubs), ...]`` of the inner jobs that failed (``pubs``: indices
            of the gradient's pubs they served).
        finished_job_ids: ids of the inner jobs that finished (their results are kept by
            the provider and can be retrieved by id).
    """

    def __init__(
        self,
        message: str,
        *,
        failed: Sequence[tuple[str, tuple[int, ...]]] = (),
        finished_job_ids: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.failed = list(failed)
        self.finished_job_ids = list(finished_job_ids)


class NonFiniteLossError(ValueError):
    """The loss returned NaN or infinity. ``state`` is the run's state before the failing
    iteration (its iterate is the last finite one, an
    :class:`~qprim_grad.optimizers.state.SPSAState`), ready for ``minimize(..., state=...)``."""

    def __init__(self, message: str, state: Any = None) -> None:
        super().__init__(message)
        self.state = state


class PluginError(ImportError):
    """A plugin is not installed or failed to load."""


class SmallStepWarning(UserWarning):
    """A difference step too small for the inner primitive's shot noise.

    Under shot noise, a finite-difference step ``epsilon`` of about 0.1-0.5 keeps both the
    noise (which grows like ``std / epsilon``) and the bias (``O(epsilon**2)``) small.
    """


class CorrelatedNoiseWarning(UserWarning):
    """The inner primitive gives every pub the same noise, and the method combines several
    pubs into one gradient: ``grad_stds`` (which assume independent estimates) can be off."""


class PluginWarning(UserWarning):
    """A plugin is broken (listed, but cannot be loaded)."""
