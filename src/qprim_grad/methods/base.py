"""The method protocol: a gradient method turns a pub
(:class:`~qprim_grad.pipeline.types.PubTask`) into a plan: a
:class:`~qprim_grad.pipeline.types.Plan` (evaluations and their combination) or a
:class:`~qprim_grad.pipeline.types.DirectPlan` (derivatives computed without the inner
primitive).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from ..pipeline.types import MethodPlan, PubTask

__all__ = ["GradientMethod"]


@runtime_checkable
class GradientMethod(Protocol):
    """A gradient method: a name, its options, and a planner."""

    name: str

    @property
    def options(self) -> dict[str, Any]:
        """The method's options, as reported in result metadata."""
        ...

    def plan(self, task: PubTask) -> MethodPlan:
        """Return the evaluations and combination that give the gradient of ``task``
        (:class:`~qprim_grad.pipeline.types.Plan`), or the derivatives computed directly
        (:class:`~qprim_grad.pipeline.types.DirectPlan`)."""
        ...
