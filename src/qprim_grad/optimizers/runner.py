"""One ``minimize`` call of SPSA, as I/O around the pure steps of :mod:`.schedule`: evaluate
(one job per iteration for a batched loss), count, checkpoint, log, callback, progress,
termination checker. The optimizer's configuration is read, never written."""

from __future__ import annotations

import copy
import logging
import os
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import NonFiniteLossError
from .compat import global_generator
from .gains import PowerSeries, as_gain
from .iteration import BatchPlan, Directions, Estimate
from .loss import evaluate_batch, evaluate_grouped, is_batched, num_calls
from .runbase import RunBase, check_finite_loss, make_rng
from .schedule import SCHEDULE_OPTIONS, STDDEV_SAMPLES, Schedule
from .state import SPSAState, generator_from_state
from .steps import blocking_tolerance

if TYPE_CHECKING:
    from .spsa import SPSA

__all__ = [
    "CALIBRATION_STEPS",
    "STDDEV_SAMPLES",
    "Run",
    "check_finite_loss",
    "make_rng",
]

logger = logging.getLogger("qprim_grad.optimizers")

CALIBRATION_STEPS = 25


class Run(RunBase):
    """One call of SPSA's ``minimize``."""

    cfg: SPSA
    #: 2-SPSA's Hessian points are loss points (QN-SPSA takes the curvature elsewhere)
    hessian_from_loss = True
    resume_options = SCHEDULE_OPTIONS

    def __init__(
        self,
        spsa: SPSA,
        fun: Callable[[np.ndarray], float],
        x0: Any,
        state: SPSAState | str | os.PathLike[str] | None,
    ) -> None:
        super().__init__(spsa)
        self.fun = fun
        self.batched = is_batched(fun)
        self.mode = "batched" if self.batched else "sequential"
        if (spsa.learning_rate is None) != (spsa.perturbation is None):
            raise ValueError("If one of learning rate or perturbation is set, both must be set.")
        #: qiskit-algorithms' global generator, when the run draws from it (``seed=None``)
        self._shared: np.random.Generator | None = None
        if state is None:
            self.state = self._fresh_state(x0)
        else:
            self.state = self._given_state(state)
            self._check_resume()
            _check_resume_size(self.state, state, x0, fun)
        if self.state.allowed_increase is None:
            self.state = replace(self.state, allowed_increase=spsa.allowed_increase)
        self.schedule = self._schedule()
        self._start_progress()
        self._mark()

    def _fresh_state(self, x0: Any) -> SPSAState:
        spsa = self.cfg
        if x0 is None:
            raise ValueError("x0 is required unless a state is given.")
        rng = make_rng(spsa.seed)
        if spsa.seed is None and rng is global_generator():
            self._shared = rng
        x = np.asarray(x0, dtype=float)
        hessian = None
        if spsa.second_order:
            given = spsa.initial_hessian
            hessian = np.identity(x.size) if given is None else np.array(given, dtype=float)
        settings = self._settings()
        return SPSAState.initial(x, rng, self.mode, settings=settings, hessian=hessian)

    def _check_resume(self) -> None:
        if self.state.mode != self.mode:
            raise ValueError(
                f"The state was saved by a {self.state.mode} run; this loss makes a {self.mode} "
                "run. Resume with the same kind of loss."
            )
        self._warn_changed_settings(self.state, "SPSA")

    def _schedule(self) -> Schedule | None:
        """The schedule with the given gains, or the calibrated ones of a resumed run
        (``None``: calibrate first)."""
        spsa, gains = self.cfg, self.state.gains
        if spsa.learning_rate is not None:
            eta = as_gain(spsa.learning_rate, "learning_rate")
            eps = as_gain(spsa.perturbation, "perturbation")
        elif gains is not None:
            eta = PowerSeries(**gains["learning_rate"])
            eps = PowerSeries(**gains["perturbation"])
        else:
            return None
        return Schedule.of(spsa, eta, eps, hessian_from_loss=self.hessian_from_loss)

    # ---- the generator, errors, checkpoints ----------------------------------------------
    def _pull_rng(self) -> None:
        """The shared generator may have moved (other code draws from it too)."""
        if self._shared is not None:
            self.state = replace(self.state, rng=dict(self._shared.bit_generator.state))

    def _push_rng(self, rng: dict[str, Any]) -> None:
        if self._shared is not None:
            self._shared.bit_generator.state = rng

    def _mark(self) -> None:
        """Remember where this iteration starts, for a :class:`NonFiniteLossError`."""
        self._pull_rng()
        self._before = self.state

    def _checked(self, values: Any, where: str) -> Any:
        """``values``, or a :class:`NonFiniteLossError` carrying the state to resume from."""
        try:
            check_finite_loss(values, where)
        except NonFiniteLossError as exc:
            self._attach_state(exc)
            raise
        return values

    def _attach_state(self, exc: NonFiniteLossError) -> None:
        """Give the error the state before this iteration (as the last checkpoint holds
        it) and say how to resume."""
        before = self._before
        st = replace(self.state, rng=before.rng, nfev=before.nfev, jobs=before.jobs)
        exc.state = st = copy.deepcopy(st)  # the caller's: nothing of this run shared
        hint = (
            f"the checkpoint {os.fspath(self.cfg.checkpoint)!r} holds"
            if self.cfg.checkpoint is not None
            else "the error's .state holds"
        )
        exc.args = (
            f"{exc.args[0]}. The iterate stays at the last finite one; {hint} the state "
            f"after iteration {st.k}, to resume with minimize(fun, x0, state=...).",
        )
        self.progress.close()

    def _save(self) -> None:
        self._pull_rng()
        super()._save()

    def _calibrate(self) -> Schedule:
        grouped = self.cfg._max_evals_grouped
        how = "in one job" if self.batched else "one by one"
        logger.info(
            "SPSA calibration: measuring the loss at %d points %s...", 2 * CALIBRATION_STEPS, how
        )
        self.progress.status(f"calibrating the gains: {2 * CALIBRATION_STEPS} loss evaluations")
        self._mark()
        rng = self._shared or generator_from_state(self.state.rng)
        try:
            eta, eps = self.cfg.calibrate(
                self.fun, self.state.x, max_evals_grouped=grouped, seed=rng
            )
        except NonFiniteLossError as exc:
            self._attach_state(exc)
            raise
        jobs = 1 if self.batched else num_calls(2 * CALIBRATION_STEPS, grouped)
        gains = {"learning_rate": eta.to_dict(), "perturbation": eps.to_dict()}
        self.state = replace(
            self.state,
            rng=dict(rng.bit_generator.state),
            jobs=self.state.jobs + jobs,
            gains=gains,
        )
        self._save()
        return Schedule.of(self.cfg, eta, eps, hessian_from_loss=self.hessian_from_loss)

    def run(self) -> Any:
        if self.schedule is None:
            self.schedule = self._calibrate()
        return self._run_batched() if self.batched else self._run_sequential()

    # ---- hooks (QN-SPSA: fidelity jobs beside the loss, curvature from the fidelity) ------
    def _before_job(self, plan: BatchPlan) -> None:
        """Batched mode: called between planning and submitting the job."""

    def _sample(self, x: np.ndarray, directions: Directions) -> list[float]:
        """Sequential mode: evaluate the perturbations of one direction."""
        points = directions.around(x, self.hessian_from_loss)
        return self._evaluate(points, nfev=len(points))

    def _estimate(self, values: np.ndarray, directions: Directions) -> Estimate:
        return Estimate.of(values, directions)

    # ---- sequential mode (plain callable; qiskit-algorithms' order) ----------------------
    def _evaluate(self, points: np.ndarray, nfev: int = 0) -> list[float]:
        """The loss at ``points``, counted as ``nfev`` evaluations (qiskit-algorithms counts
        neither the repeats that calibrate blocking nor the final point)."""
        grouped, st = self.cfg._max_evals_grouped, self.state
        jobs = st.jobs + num_calls(len(points), grouped)
        self.state = replace(st, jobs=jobs, nfev=st.nfev + nfev)
        values = evaluate_grouped(self.fun, points, grouped)
        return self._checked(values, f"iteration {self.state.k + 1}")

    def _evaluate_one(self, x: np.ndarray, count: bool = True) -> float:
        return self._evaluate(x[None, :], nfev=int(count))[0]

    def _start_blocking(self) -> None:
        """Blocking's reference loss and tolerance, if the state has none yet."""
        st = self.state
        if st.fx is None:
            fx = self._evaluate_one(st.x)
            self.state = replace(self.state, fx=fx)
        if st.allowed_increase is None:
            repeats = np.repeat(st.x[None, :], STDDEV_SAMPLES, axis=0)
            tolerance = blocking_tolerance(self._evaluate(repeats))
            self.state = replace(self.state, allowed_increase=tolerance)
        self._save()

    def _run_sequential(self) -> Any:
        schedule = self.schedule
        assert schedule is not None
        self._mark()
        if schedule.blocking and (self.state.fx is None or self.state.allowed_increase is None):
            self._start_blocking()
        while schedule.running(self.state):
            t0 = time.perf_counter()
            self._mark()
            directions, rng = schedule.directions(self.state, self.state.k + 1)
            self.state = replace(self.state, rng=rng)
            self._push_rng(rng)
            x = self.state.x
            values: list[float] = []
            for i in range(directions.count):  # one call group per direction, as qiskit
                values += self._sample(x, directions.row(i))
            found = self._estimate(np.asarray(values), directions)
            self.state, update = schedule.propose(self.state, directions, found)
            fx = self._evaluate_one(x - update) if schedule.measure_proposal else None
            self.state, step = schedule.absorb_proposal(self.state, update, found, fx)
            self._report(step, t0)
            self._save()
        self._mark()
        x = schedule.final_sequential(self.state)
        return self._finish(x, self._evaluate_one(x, count=False))

    # ---- batched mode (one job per iteration) --------------------------------------------
    def _run_batched(self) -> Any:
        schedule = self.schedule
        assert schedule is not None
        while True:
            t0 = time.perf_counter()
            self._mark()
            plan = schedule.plan_batch(self.state)
            self._push_rng(plan.rng)
            self._before_job(plan)
            values = self._checked(evaluate_batch(self.fun, plan.points), plan.where)
            self.state, center = schedule.absorb_center(self.state, plan, values)
            if center.step is not None:
                self._report(center.step, t0)
            if self.state.stopped or not plan.gradient_now:
                return self._finish(*schedule.final_point(self.state, center))
            assert plan.directions is not None
            if center.accepted:
                found = self._estimate(plan.perturbation_values(values), plan.directions)
                self.state = schedule.propose_candidate(self.state, plan.directions, found)
            else:
                self._log_skipped(plan.k)
            self._save()

    def _log_skipped(self, k: int) -> None:
        logger.info(
            "SPSA iteration %d/%d: skipped (its perturbations surrounded the rejected point)",
            k,
            self.cfg.maxiter,
        )
        self.progress.update(k, self.state.fx)


def _check_resume_size(state: SPSAState, source: Any, x0: Any, fun: Any) -> None:
    """A checkpoint of another problem: ``x0`` or the loss of another dimension."""
    name = (
        "the given state" if isinstance(source, SPSAState) else f"checkpoint {os.fspath(source)!r}"
    )
    stored = state.x.size
    given = None if x0 is None else np.size(x0)
    if given is None and isinstance(getattr(fun, "num_parameters", None), int):
        given = fun.num_parameters
    if given is not None and given != stored:
        raise ValueError(
            f"Cannot resume from {name}: it stores {stored} parameters, but the given "
            f"{'x0' if x0 is not None else 'loss'} has {given}. Resume with the problem the "
            "checkpoint was saved for, or start a new run without state=."
        )
