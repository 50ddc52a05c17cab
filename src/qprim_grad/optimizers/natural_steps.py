"""Quantum natural gradient descent as pure steps over a frozen
:class:`~.state.NaturalGradientState` (the driver, :mod:`.driver`, does the I/O).

Iteration ``k`` is one job: at the centre (the step proposed by iteration ``k - 1``) the
loss, its gradient and the metric ``g = Re qgt`` (``x_fun``, ``x_jac``, ``x_metric`` of one
ask). The loss decides nothing (a natural-gradient step is always taken) but is what callback
and termination checker get for the step. A run of ``n`` iterations submits ``n + 1`` jobs,
the last measuring only the loss at the final point.

The step is ``stepsize * natural_step(grad, g, ...)``, shortened to ``max_step`` (a warning
says so, once per run) when longer: the guard that keeps a nearly singular metric from
throwing the iterate away.

>>> import numpy as np
>>> from qprim_grad.optimizers.protocol import TellData
>>> from qprim_grad.optimizers.state import NaturalGradientState
>>> steps = NaturalSteps(stepsize=0.5, maxiter=3)
>>> state = NaturalGradientState.initial(np.ones(2), np.random.default_rng(0))
>>> ask = steps.ask(state)
>>> ask.x_jac.tolist(), ask.x_metric.tolist()
([1.0, 1.0], [1.0, 1.0])
>>> told = TellData(eval_fun=[2.0], eval_jac=np.ones(2), eval_metric=np.identity(2))
>>> steps.tell(state, ask, told).state.candidate.tolist()
[0.5, 0.5]
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ._warn import warn_user
from .iteration import Step
from .precision import FixedPrecision, PrecisionRule
from .protocol import AskData
from .spsa_steps import Told
from .state import NaturalGradientState

__all__ = ["NaturalSteps", "natural_step"]


def natural_step(
    gradient: np.ndarray,
    metric: np.ndarray,
    lam: float = 0.0,
    rcond: float = 1e-10,
    relative_lam: float = 0.0,
) -> np.ndarray:
    """``pinv(Re metric + (lam + relative_lam * λ_max) I) @ gradient``: the natural-gradient
    direction.

    The metric is symmetrised; ``λ_max`` is its largest eigenvalue, so ``relative_lam``
    regularises in proportion to the metric's scale; eigenvalues below ``rcond`` times the
    largest are dropped (a pseudo-inverse, so redundant parameters do not blow the step up).

    >>> natural_step(np.array([1.0, 2.0]), np.diag([0.25, 0.0]))
    array([4., 0.])
    >>> natural_step(np.array([1.0, 2.0]), np.diag([0.25, 0.0]), lam=1.0)
    array([0.8, 2. ])
    >>> natural_step(np.array([1.0, 2.0]), np.diag([0.25, 0.0]), relative_lam=1.0)
    array([2., 8.])
    """
    g = np.real(np.asarray(metric, dtype=complex))
    g = (g + g.T) / 2
    if g.size == 0:
        return np.zeros(0)
    scale = relative_lam * max(float(np.max(np.linalg.eigvalsh(g))), 0.0) if relative_lam else 0.0
    g = g + (lam + scale) * np.identity(g.shape[0])
    return np.asarray(np.linalg.pinv(g, rcond=rcond, hermitian=True) @ gradient, dtype=float)


@dataclass(frozen=True)
class NaturalSteps:
    """The natural gradient's configuration for one run and its pure steps."""

    stepsize: float
    maxiter: int
    lam: float = 0.0
    rcond: float = 1e-10
    relative_lam: float = 0.0
    max_step: float | None = None
    precision: PrecisionRule = FixedPrecision(None)

    def init(self, x0: np.ndarray, rng: np.random.Generator, **fields: Any) -> NaturalGradientState:
        return NaturalGradientState.initial(x0, rng, **fields)

    def ask(self, state: NaturalGradientState) -> AskData | None:
        if state.done:
            return None
        k = state.k + 1
        more = k <= self.maxiter and not state.stopped
        center = state.candidate if state.candidate is not None else state.x
        if not more:  # the final point: the loss only
            return AskData(x_fun=center[None, :], nfev=1, iteration=state.k, plan=False)
        return AskData(
            x_fun=center[None, :],
            x_jac=center,
            x_metric=center,
            precision=self.precision.at(k, state.precision),
            nfev=1,
            iteration=k,
            plan=True,
        )

    def step_for(self, gradient: np.ndarray, metric: np.ndarray) -> tuple[np.ndarray, float]:
        """The step ``x_next = x - step`` (guarded) and the length it had before the guard."""
        direction = natural_step(gradient, metric, self.lam, self.rcond, self.relative_lam)
        step = self.stepsize * direction
        norm = float(np.linalg.norm(step))
        if self.max_step is not None and norm > self.max_step:
            return step * (self.max_step / norm), norm
        return step, norm

    def tell(self, state: NaturalGradientState, ask: AskData, told: Any) -> Told:
        fx = float(np.asarray(told.eval_fun, dtype=float).reshape(-1)[0])
        more = bool(ask.plan)
        changes: dict[str, Any] = {"nfev": state.nfev + ask.nfev, "njev": state.njev + int(more)}
        steps: tuple[Step, ...] = ()
        if state.candidate is not None:
            steps = (Step(state.k, state.candidate, fx, state.candidate_step, True),)
            changes.update(x=state.candidate, candidate=None)
        changes.update(fx=fx)
        decided = replace(state, **changes)
        decided = replace(decided, result_x=decided.x, result_fx=fx)
        if not more:
            return Told(replace(decided, done=True), steps, decided)
        p = state.x.size
        gradient = np.asarray(told.eval_jac, dtype=float).reshape(p)
        metric = np.real(np.asarray(told.eval_metric)).reshape(p, p)
        step, length = self.step_for(gradient, metric)
        guarded = self.max_step is not None and length > self.max_step
        if guarded and not decided.guarded:
            warn_user(
                f"NaturalGradient iteration {ask.iteration}: the step was {length:.3g} long "
                f"and was shortened to max_step={self.max_step} (a large stepsize, or a metric "
                "nearly singular along the gradient). Lower stepsize, or raise relative_lam or "
                "rcond, if this happens often."
            )
        new = replace(
            decided,
            k=state.k + 1,
            candidate=decided.x - step,
            candidate_step=float(np.linalg.norm(step)),
            guarded=decided.guarded + int(guarded),
        )
        return Told(new, steps, decided)

    def stop(self, decided: NaturalGradientState) -> NaturalGradientState:
        return replace(decided, stopped=True, done=True)
