"""One ``NaturalGradient.minimize``: the pure steps (:func:`natural_step`,
:func:`measured_center`, :func:`proposed`) and the I/O around them (one job per iteration,
checkpoints, callback, log), on the shell SPSA's run uses (:class:`~.runbase.RunBase`)."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .iteration import Step
from .runbase import RunBase, make_rng
from .schedule import moved_to
from .state import SPSAState

if TYPE_CHECKING:
    from .natural import NaturalGradient

__all__ = ["NaturalRun", "measured_center", "natural_step", "proposed"]

logger = logging.getLogger("qprim_grad.optimizers")


def natural_step(
    gradient: np.ndarray, metric: np.ndarray, lam: float = 0.0, rcond: float = 1e-10
) -> np.ndarray:
    """``pinv(Re metric + lam I) @ gradient``: the natural-gradient direction.

    The metric is symmetrised; eigenvalues below ``rcond`` times the largest are dropped
    (a pseudo-inverse, so redundant parameters do not blow the step up).

    >>> natural_step(np.array([1.0, 2.0]), np.diag([0.25, 0.0]))
    array([4., 0.])
    >>> natural_step(np.array([1.0, 2.0]), np.diag([0.25, 0.0]), lam=1.0)
    array([0.8, 2. ])
    """
    g = np.real(np.asarray(metric))
    g = (g + g.T) / 2 + lam * np.identity(g.shape[0])
    return np.asarray(np.linalg.pinv(g, rcond=rcond, hermitian=True) @ gradient, dtype=float)


def _check_loss(loss: Any) -> None:
    for name in ("estimator", "circuit", "observable"):
        if not hasattr(loss, name):
            raise TypeError(
                "NaturalGradient needs an EstimatorLoss(estimator, circuit, observable) "
                f"(it measures gradient and metric on the circuit), not {type(loss).__name__}."
            )


def measured_center(
    state: SPSAState, fx: float, with_gradient: bool
) -> tuple[SPSAState, Step | None]:
    """The state after a job measured ``fx`` at the centre (the pending candidate, if any,
    is taken: natural gradient never rejects); and the decided step or ``None``."""
    changes: dict[str, Any] = {
        "jobs": state.jobs + 1,
        "nfev": state.nfev + 1,
        "njev": state.njev + int(with_gradient),
        "fx": fx,
    }
    pending = state.candidate
    if pending is None:
        return replace(state, **changes), None
    step = Step(state.k, pending, fx, state.candidate_step, True)
    return replace(state, **changes, candidate=None, **moved_to(state, step)), step


def proposed(
    state: SPSAState, cfg: NaturalGradient, gradient: np.ndarray, metric: np.ndarray
) -> SPSAState:
    """Iteration ``k + 1`` done: its step becomes the candidate the next job measures."""
    step = cfg.stepsize * natural_step(gradient, metric, cfg.lam, cfg.rcond)
    return replace(
        state,
        k=state.k + 1,
        candidate=state.x - step,
        candidate_step=float(np.linalg.norm(step)),
    )


class NaturalRun(RunBase):
    """One ``minimize``: I/O around :func:`measured_center` and :func:`proposed`."""

    cfg: NaturalGradient
    _stop_message = "NaturalGradient: termination checker stopped after iteration %d"
    resume_options = ("stepsize", "approx", "lam", "rcond")

    def __init__(self, cfg: NaturalGradient, loss: Any, x0: Any, state: Any) -> None:
        _check_loss(loss)
        super().__init__(cfg)
        self.loss = loss
        self.estimator = cfg.metric_estimator(loss.estimator)
        self.state = self._fresh_state(x0) if state is None else self._resumed_state(state)
        self._start_progress()

    def _fresh_state(self, x0: Any) -> SPSAState:
        if x0 is None:
            raise ValueError("x0 is required unless a state is given.")
        x = np.array(x0, dtype=float).reshape(-1)
        if x.size != self.loss.num_parameters:
            raise ValueError(
                f"x0 has {x.size} values, the circuit has {self.loss.num_parameters} parameters."
            )
        rng = make_rng(self.cfg.seed)
        return SPSAState.initial(x, rng, "natural", settings=self._settings())

    def _resumed_state(self, given: Any) -> SPSAState:
        state = self._given_state(given)
        if state.mode != "natural":
            raise ValueError(
                f"The state was saved by a {state.mode} SPSA run, not NaturalGradient."
            )
        self._warn_changed_settings(state, "NaturalGradient")
        return state

    def _measure(self, x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Loss, gradient and metric at ``x``: one job."""
        loss = self.loss
        pub = (loss.circuit, loss.observable, x)
        data = self.estimator.run([pub], precision=loss.precision).result()[0].data
        for field in ("grads", "qgt"):
            if not hasattr(data, field):
                raise TypeError(
                    f"{type(self.estimator).__name__} returned no {field!r}; NaturalGradient "
                    "needs an estimator with gradient and metric (GradientEstimator(..., "
                    "metric=...))."
                )
        p = loss.num_parameters
        value = float(np.asarray(data.evs).reshape(()))
        gradient = np.asarray(data.grads, dtype=float).reshape(p)
        metric = np.real(np.asarray(data.qgt)).reshape(p, p)
        return value, gradient, metric

    def run(self) -> Any:
        cfg = self.cfg
        while True:
            t0 = time.perf_counter()
            more = self.state.k < cfg.maxiter and not self.state.stopped
            pending = self.state.candidate
            center = pending if pending is not None else self.state.x
            if more:
                fx, gradient, metric = self._measure(center)
            else:  # the final point: the loss only (the inner estimator, no gradient points)
                fx = float(self.loss(center))
            self.state, step = measured_center(self.state, fx, more)
            if step is not None:
                self._report(step, t0)
            if self.state.stopped or not more:
                return self._finish(np.copy(self.state.x), self.state.fx)  # type: ignore[arg-type]
            self.state = proposed(self.state, cfg, gradient, metric)
            self._save()

    def _log_step(self, step: Step, t0: float) -> None:
        logger.info(
            "NaturalGradient iteration %d/%d: loss=%.8g stepsize=%.4g jobs=%d (%.3f s)",
            step.k,
            self.cfg.maxiter,
            step.fx,
            step.size,
            self.state.jobs,
            time.perf_counter() - t0,
        )

    def _log_finished(self, fx: float) -> None:
        st = self.state
        logger.info(
            "NaturalGradient finished: %d iterations, %d jobs, loss %.8g in %.2f s",
            st.k,
            st.jobs,
            fx,
            time.perf_counter() - self.started,
        )
