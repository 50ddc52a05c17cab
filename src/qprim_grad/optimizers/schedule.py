"""SPSA's schedule as pure steps over an explicit :class:`~.state.SPSAState` (as optax's
update functions): given the state, which points to evaluate; given their losses, the next
state. Nothing here evaluates a loss, logs, saves or changes its input (new states come from
:func:`dataclasses.replace`); the runner (:mod:`.runner`) does that I/O between the steps.

* **batched** (the loss has ``batch(X)``, e.g. :class:`~.loss.EstimatorLoss`): iteration ``k``
  is one ``batch`` call (one primitive job) holding the loss at the *centre* point ``p_k``
  plus all perturbations around it (every resampling; the two extra 2-SPSA points per
  resampling). ``p_k`` is the step proposed by iteration ``k-1``. The centre value
  decides that step (blocking), and is what ``callback`` and ``termination_checker`` get for
  it. If blocking rejects the step, the perturbations of iteration ``k`` (taken around the
  rejected point) are discarded, the iterate stays, and iteration ``k+1`` starts again from it;
  gains advance as in qiskit-algorithms, where a rejected iteration also uses up its gains.
  A run of ``n`` iterations therefore submits ``n + 1`` jobs: one per iteration plus the final
  one that measures the last proposed point (and, with ``last_avg > 1``, the averaged point);
  calibration adds one job. With blocking and ``allowed_increase=None``, the 25 repetitions
  that estimate the loss' standard deviation ride in the first job.
  Steps: :meth:`Schedule.plan_batch` → job → :meth:`Schedule.absorb_center` →
  :meth:`Schedule.propose_candidate`.
* **sequential** (a plain callable): the order of evaluations of qiskit-algorithms' SPSA,
  with ``max_evals_grouped`` honoured; with the same seed (``algorithm_globals.random_seed``
  there, ``seed=`` here) the iterates are the same. Steps: :meth:`Schedule.directions` →
  evaluations, one direction at a time → :meth:`Schedule.propose` → (the loss at the
  proposal, for blocking or a callback) → :meth:`Schedule.absorb_proposal`.

>>> import numpy as np
>>> from qprim_grad.optimizers.gains import Constant
>>> from qprim_grad.optimizers.iteration import Estimate
>>> from qprim_grad.optimizers.state import SPSAState
>>> schedule = Schedule(maxiter=5, learning_rate=Constant(0.1), perturbation=Constant(0.1))
>>> state = SPSAState.initial(np.zeros(3), np.random.default_rng(1), mode="batched")
>>> before = state.to_dict()
>>> plan = schedule.plan_batch(state)
>>> plan.k, plan.points.shape   # the centre and the two perturbations of iteration 1
(1, (3, 3))
>>> values = np.sum(plan.points**2, axis=1)   # what the runner's one job returns
>>> state1, centre = schedule.absorb_center(state, plan, values)
>>> found = Estimate.of(plan.perturbation_values(values), plan.directions)
>>> state2 = schedule.propose_candidate(state1, plan.directions, found)
>>> state2.k, state2.jobs, state2.nfev, state2.candidate.shape
(1, 1, 3, (3,))
>>> state.to_dict() == before   # every step returned a new state
True
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .gains import Gain
from .iteration import BatchPlan, Center, Directions, Estimate, Step
from .state import SPSAState, generator_from_state
from .steps import (
    accepts,
    blocking_tolerance,
    clip_to_trust_region,
    num_resamplings,
    precondition,
    sample_directions,
    smooth_hessian,
)

__all__ = ["SCHEDULE_OPTIONS", "STDDEV_SAMPLES", "Schedule", "average", "moved_to"]

#: loss evaluations at the initial point that calibrate blocking's ``allowed_increase``
STDDEV_SAMPLES = 25

#: the SPSA options a schedule takes as they are (with ``maxiter``); together they decide
#: which checkpoints a run may resume from
SCHEDULE_OPTIONS = (
    "blocking",
    "trust_region",
    "last_avg",
    "resamplings",
    "perturbation_dims",
    "second_order",
    "regularization",
    "hessian_delay",
)

_local = threading.local()


def _generator_at(rng_state: dict[str, Any]) -> np.random.Generator:
    """A generator in state ``rng_state``; reused per thread (building one costs 25 µs), so
    the caller must read its state back and not keep it."""
    cache = _local.__dict__.setdefault("generators", {})
    generator = cache.get(rng_state["bit_generator"])
    if generator is None:
        generator = cache[rng_state["bit_generator"]] = generator_from_state(rng_state)
    else:
        generator.bit_generator.state = rng_state
    return generator


def _counted(state: SPSAState, plan: BatchPlan, values: np.ndarray) -> dict[str, Any]:
    """The changes of the state once a batched job returned ``values``: the counts, the
    generator after the plan's draws, and ``allowed_increase`` if the job calibrated it."""
    changes: dict[str, Any] = {"rng": plan.rng, "jobs": state.jobs + 1}
    changes["nfev"] = state.nfev + len(values)
    if plan.repeats:
        offset = 1 + plan.num_finals
        changes["allowed_increase"] = blocking_tolerance(values[offset : offset + plan.repeats])
    return changes


def average(state: SPSAState, last_avg: int, extra: np.ndarray | None = None) -> np.ndarray:
    """The mean of the last ``last_avg`` iterates (with ``extra`` as the newest)."""
    steps = list(state.last_steps) + ([] if extra is None else [extra])
    return np.mean(np.asarray(steps[-last_avg:]), axis=0)


def moved_to(state: SPSAState, step: Step, last_avg: int = 1) -> dict[str, Any]:
    """The changes of the state once ``step`` is decided: if accepted, the new iterate (and
    the iterates kept for ``last_avg``). Its history row is the runner's to write (a log)."""
    if not step.accepted:
        return {}
    last_steps = state.last_steps
    if last_avg > 1:
        last_steps = (list(last_steps) + [step.x])[-last_avg:]
    return {"x": step.x, "last_steps": last_steps}


@dataclass(frozen=True)
class Schedule:
    """SPSA's configuration for one run (gains resolved) and its pure steps.

    ``hessian_from_loss=False`` (QN-SPSA) leaves 2-SPSA's Hessian points out of the loss
    points: the curvature comes from elsewhere. ``measure_proposal`` (sequential mode):
    measure the loss at every proposal (blocking or a callback need it).
    ``finals_every_job`` (batched mode, ``last_avg > 1``): every job also measures the
    averaged points, since a termination checker may end the run after any of them."""

    maxiter: int
    learning_rate: Gain
    perturbation: Gain
    blocking: bool = False
    trust_region: bool = False
    last_avg: int = 1
    resamplings: int | dict[int, int] = 1
    perturbation_dims: int | None = None
    second_order: bool = False
    regularization: float = 0.01
    hessian_delay: int = 0
    lse_solver: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    hessian_from_loss: bool = True
    measure_proposal: bool = False
    finals_every_job: bool = False

    @classmethod
    def of(cls, optimizer: Any, learning_rate: Gain, perturbation: Gain, **extra: Any) -> Schedule:
        """The schedule of an :class:`~.spsa.SPSA` (read, not kept) with resolved gains."""
        return cls(
            learning_rate=learning_rate,
            perturbation=perturbation,
            lse_solver=optimizer.lse_solver,
            measure_proposal=optimizer.blocking or optimizer.callback is not None,
            finals_every_job=optimizer.termination_checker is not None,
            maxiter=optimizer.maxiter,
            **{name: getattr(optimizer, name) for name in SCHEDULE_OPTIONS},
            **extra,
        )

    def running(self, state: SPSAState) -> bool:
        """Whether another iteration follows (sequential mode)."""
        return state.k < self.maxiter and not state.stopped

    # ---- next points to evaluate ---------------------------------------------------------
    def directions(self, state: SPSAState, k: int) -> tuple[Directions, dict[str, Any]]:
        """The directions of iteration ``k``, drawn from ``state.rng``; and the generator's
        state after drawing them."""
        eps = self.perturbation.at(k)
        if eps == 0 or not np.isfinite(eps):
            raise ValueError(
                f"perturbation must be finite and non-zero, got {eps!r} (iteration {k})."
            )
        rng = _generator_at(state.rng)
        n = num_resamplings(self.resamplings, k)
        first, second = sample_directions(
            rng, n, state.x.size, self.perturbation_dims, self.second_order
        )
        return Directions(k, eps, first, second), dict(rng.bit_generator.state)

    def plan_batch(self, state: SPSAState) -> BatchPlan:
        """The points of the next batched job."""
        k = state.k + 1
        gradient_now = k <= self.maxiter and not state.stopped
        center = state.candidate if state.candidate is not None else state.x
        finals = self._final_options(state, gradient_now)
        repeats = STDDEV_SAMPLES if self.blocking and state.allowed_increase is None else 0
        blocks = [center[None, :]] + [f[None, :] for f in finals]
        blocks.append(np.repeat(center[None, :], repeats, axis=0))
        directions, rng = None, state.rng
        if gradient_now:
            directions, rng = self.directions(state, k)
            blocks.append(directions.around(center, self.hessian_from_loss))
        points = np.concatenate(blocks)
        return BatchPlan(k, gradient_now, center, len(finals), repeats, directions, points, rng)

    def _final_options(self, state: SPSAState, gradient_now: bool) -> list[np.ndarray]:
        """The averaged points the run may end at after this job (``last_avg > 1``)."""
        if self.last_avg <= 1 or (gradient_now and not self.finals_every_job):
            return []
        pending = state.candidate
        finals = []
        if pending is not None:
            finals.append(average(state, self.last_avg, pending))
        if pending is None or self.blocking:
            finals.append(average(state, self.last_avg))
        return finals

    # ---- absorb results ------------------------------------------------------------------
    def absorb_center(
        self, state: SPSAState, plan: BatchPlan, values: np.ndarray
    ) -> tuple[SPSAState, Center]:
        """Count the job, calibrate ``allowed_increase`` and decide the pending step. A
        rejected step uses up iteration ``plan.k``: its perturbations surrounded the
        rejected point."""
        changes = _counted(state, plan, values)
        allowed_increase = changes.get("allowed_increase", state.allowed_increase)
        f_center = float(values[0])
        finals = values[1 : 1 + plan.num_finals]
        pending = state.candidate
        if pending is None:
            changes["fx"] = f_center if state.fx is None else state.fx
            final = float(finals[0]) if plan.num_finals else None
            return replace(state, **changes), Center(None, True, final)
        accepted = not self.blocking or accepts(f_center, state.fx, allowed_increase)  # type: ignore[arg-type]
        final = float(finals[0 if accepted else 1]) if plan.num_finals else None
        step = Step(state.k, pending, f_center, state.candidate_step, accepted)
        changes.update(candidate=None, fx=f_center if accepted else state.fx)
        changes.update(moved_to(state, step, self.last_avg))
        if not accepted and plan.gradient_now:
            changes["k"] = plan.k
        return replace(state, **changes), Center(step, accepted, final)

    def final_point(self, state: SPSAState, center: Center) -> tuple[np.ndarray, float]:
        """Where a batched run ends: the iterate (or the average) and its loss."""
        if self.last_avg > 1:
            assert center.final_value is not None
            return average(state, self.last_avg), center.final_value
        return state.x, float(state.fx)  # type: ignore[arg-type]

    def propose(
        self, state: SPSAState, directions: Directions, estimate: Estimate
    ) -> tuple[SPSAState, np.ndarray]:
        """Iteration ``k`` done: the state with the smoothed Hessian, and the update."""
        changes, update = self._proposal(state, directions, estimate)
        return replace(state, **changes), update

    def _proposal(
        self, state: SPSAState, directions: Directions, estimate: Estimate
    ) -> tuple[dict[str, Any], np.ndarray]:
        k, gradient, hessian = directions.k, estimate.gradient, state.hessian
        if self.second_order:
            assert hessian is not None and estimate.hessian is not None
            hessian = smooth_hessian(hessian, estimate.hessian, k)
            if k > self.hessian_delay:
                gradient = precondition(hessian, gradient, self.regularization, self.lse_solver)
        if self.trust_region:
            gradient = clip_to_trust_region(gradient)
        update = gradient * self.learning_rate.at(k)
        return {"k": k, "hessian": hessian, "njev": state.njev + 1}, update

    def propose_candidate(
        self, state: SPSAState, directions: Directions, estimate: Estimate
    ) -> SPSAState:
        """Batched mode: the proposal becomes the candidate the next job decides."""
        changes, update = self._proposal(state, directions, estimate)
        step = float(np.linalg.norm(update))
        return replace(state, **changes, candidate=state.x - update, candidate_step=step)

    def absorb_proposal(
        self, state: SPSAState, update: np.ndarray, estimate: Estimate, fx: float | None
    ) -> tuple[SPSAState, Step]:
        """Sequential mode: decide the proposal ``x - update`` whose loss is ``fx`` (``None``
        if not measured)."""
        accepted = not self.blocking or accepts(fx, state.fx, state.allowed_increase)  # type: ignore[arg-type]
        loss = estimate.value if fx is None else fx
        step = Step(state.k, state.x - update, loss, float(np.linalg.norm(update)), accepted)
        changes = moved_to(state, step, self.last_avg)
        if self.blocking and accepted:
            changes["fx"] = fx
        return replace(state, **changes), step

    def final_sequential(self, state: SPSAState) -> np.ndarray:
        """Where a sequential run ends: the iterate or the average of the last ones."""
        return average(state, self.last_avg) if self.last_avg > 1 else state.x
