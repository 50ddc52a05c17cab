"""The records of qiskit-algorithms' steppable protocol (``ask`` / ``tell``), as our
optimizers fill them.

``ask()`` returns an :class:`AskData`: every point of one job. ``x_fun`` holds the loss
points (shape ``(k, num_params)``); other requests have names of their own: ``x_fidelity``
(QN-SPSA: pairs of points, shape ``(m, 2, num_params)``, whose state fidelity is wanted),
``x_jac`` and ``x_metric`` (the natural gradient: the point where gradient and metric are
wanted). ``tell(ask_data, tell_data)`` takes the answers under the matching ``eval_*`` names:
a :class:`TellData`, qiskit-algorithms' ``TellData(eval_fun=...)`` or any object with those
attributes. ``shots``, ``jobs`` and ``fidelity_jobs`` on the tell data (optional) are added to
the run's counts; without them an answered request counts one job and no shots.

>>> import numpy as np
>>> ask = AskData(x_fun=np.zeros((3, 2)))
>>> ask.x_fun.shape, ask.x_fidelity is None
((3, 2), True)
>>> TellData(eval_fun=np.ones(3)).eval_fun.tolist()
[1.0, 1.0, 1.0]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["AskData", "TellData"]


@dataclass(frozen=True)
class AskData:
    """What one ``ask()`` wants evaluated (one job per request kind).

    Attributes:
        x_fun: loss points, shape ``(k, num_params)`` (``None``: no loss this time).
        x_jac: the point where the gradient is wanted (natural gradient), shape
            ``(num_params,)``.
        x_metric: the point where the metric (``Re qgt``) is wanted, shape ``(num_params,)``.
        x_fidelity: pairs of points, shape ``(m, 2, num_params)``: ``F(pair[0], pair[1])``.
        precision: the target standard error of each loss value (``None``: the loss' own).
        groups: for a plain callable, the sizes of the call groups of ``x_fun`` (in
            qiskit-algorithms' order); a batched loss takes all of ``x_fun`` in one call.
        fidelity_groups: the same for ``x_fidelity``.
        nfev: the evaluations this request counts (qiskit-algorithms' convention).
        iteration: the iteration this request belongs to (for messages).
        plan: the optimizer's own bookkeeping for ``tell`` (opaque).
    """

    x_fun: np.ndarray | None = None
    x_jac: np.ndarray | None = None
    x_metric: np.ndarray | None = None
    x_fidelity: np.ndarray | None = None
    precision: float | None = None
    groups: tuple[int, ...] | None = None
    fidelity_groups: tuple[int, ...] | None = None
    nfev: int = 0
    iteration: int = 0
    plan: Any = None

    @property
    def where(self) -> str:
        return f"iteration {self.iteration}" if self.iteration else "calibration"


@dataclass(frozen=True)
class TellData:
    """The answers to an :class:`AskData` (names as qiskit-algorithms' ``TellData``) and
    what they cost."""

    eval_fun: Any = None
    eval_jac: Any = None
    eval_metric: Any = None
    eval_fidelity: Any = None
    shots: int = 0
    jobs: int | None = None
    fidelity_jobs: int | None = None
