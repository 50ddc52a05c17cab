"""SPSA, 2-SPSA and QN-SPSA as pure steps over a frozen :class:`~.state.SPSAState`:
``ask(state)`` says which points one job evaluates, ``tell(state, ask, told)`` turns their
values into the next state. Nothing here evaluates, logs or saves; the driver
(:mod:`.driver`) does that I/O between the steps.

* **batched** (the loss has ``batch(X)``, e.g. :class:`~.loss.EstimatorLoss`): iteration
  ``k`` is one job holding the loss at the *centre* (the step proposed by iteration ``k-1``)
  and the perturbations of iteration ``k``. The centre value decides that step (blocking) and
  is what ``callback`` and ``termination_checker`` get for it.

  With blocking, ``blocking_schedule="exact"`` (the default) puts the perturbations around
  *both* possible next iterates into the job: around the proposal (used if it is accepted)
  and around the current iterate (used if it is rejected), with the directions drawn once, in
  qiskit-algorithms' order. The iterates and the number of iterations then equal
  qiskit-algorithms' SPSA with the same seed. ``"deferred"`` sends the perturbations around
  the proposal only: a rejected step then uses up the next iteration too (fewer points per
  job, fewer proposals per iteration).

  A run of ``n`` iterations submits ``n + 1`` jobs (the last measures the last proposal and,
  with ``last_avg > 1``, the averaged point); calibration adds one job; with blocking and
  ``allowed_increase=None`` the 25 repetitions that estimate the loss' standard deviation
  ride in the first job. QN-SPSA adds one fidelity (sampler) job per iteration: sent with
  the estimator job without blocking and termination checker, else after the estimator's
  verdict (so it is sent only around the point that is kept).
* **sequential** (a plain callable): the order of evaluations of qiskit-algorithms' SPSA
  (gradient points, then the proposal's loss when blocking or a callback needs it), with
  ``max_evals_grouped`` honoured through :attr:`~.protocol.AskData.groups`.

>>> import numpy as np
>>> from qprim_grad.optimizers.gains import Constant
>>> from qprim_grad.optimizers.protocol import TellData
>>> from qprim_grad.optimizers.state import SPSAState
>>> steps = SPSASteps(maxiter=5, learning_rate=Constant(0.1), perturbation=Constant(0.1))
>>> state = SPSAState.initial(np.zeros(3), np.random.default_rng(1), mode="batched")
>>> ask = steps.ask(state)
>>> ask.x_fun.shape   # the centre and the two perturbations of iteration 1
(3, 3)
>>> new = steps.tell(state, ask, TellData(eval_fun=np.sum(ask.x_fun**2, axis=1))).state
>>> new.k, new.nfev, new.candidate.shape, state.k   # jobs and shots are the driver's to count
(1, 3, (3,), 0)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ._warn import warn_user
from .iteration import BatchPlan, Directions, Step
from .precision import update_statistics
from .protocol import AskData
from .spsa_calibration import CALIBRATED, CALIBRATION_STEPS, STDDEV_SAMPLES, calibrated_gains
from .spsa_iteration import SPSAIteration, Told, average, fidelity_pairs, generator_at, moved_to
from .state import SPSAState
from .steps import accepts, blocking_tolerance, calibration_points

__all__ = [
    "CALIBRATED",
    "CALIBRATION_STEPS",
    "STDDEV_SAMPLES",
    "SCHEDULE_OPTIONS",
    "SPSASteps",
    "Told",
    "calibrated_gains",
    "average",
]

#: the SPSA options a checkpoint records; resuming with other values warns
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


@dataclass(frozen=True)
class SPSASteps(SPSAIteration):
    """SPSA's schedules (batched and sequential) over the steps of :class:`SPSAIteration`."""

    # ---- ask -----------------------------------------------------------------------------
    def ask(self, state: SPSAState) -> AskData | None:
        """The next request, or ``None`` once the run is done."""
        if state.done:
            return None
        if not self._calibrated(state):
            return self._ask_calibration(state)
        if state.phase == "fidelity":
            return self._ask_fidelity(state)
        if self.batched:
            return self._ask_batched(state)
        if state.phase == "start":
            return self._ask_start(state)
        if state.phase == "proposal":
            return AskData(x_fun=state.pending["proposal"][None, :], nfev=1, iteration=state.k)
        if state.phase == "final":
            return AskData(x_fun=self._final_sequential(state)[None, :], iteration=state.k + 1)
        return self._ask_sequential(state)

    def _ask_calibration(self, state: SPSAState) -> AskData:
        """The calibration job, at the first iteration's precision."""
        rng = generator_at(state.rng)
        points = calibration_points(rng, state.x, 0.2, CALIBRATION_STEPS)
        return AskData(
            x_fun=points,
            precision=self._precision(state, 1),
            groups=(len(points),),
            plan=dict(rng.bit_generator.state),
        )

    def _ask_batched(self, state: SPSAState) -> AskData:
        k = state.k + 1
        gradient_now = k <= self.maxiter and not state.stopped
        center = state.candidate if state.candidate is not None else state.x
        finals = self._final_options(state, gradient_now)
        repeats = STDDEV_SAMPLES if self.blocking and state.allowed_increase is None else 0
        blocks = [center[None, :]] + [f[None, :] for f in finals]
        blocks.append(np.repeat(center[None, :], repeats, axis=0))
        directions, rng, size, branches = None, state.rng, 0, 1
        fidelity = None
        if gradient_now:
            directions, rng = self.directions(state, k)
            around = directions.around(center, self.hessian_from_loss)
            size = len(around)
            blocks.append(around)
            two = self.blocking and state.candidate is not None
            if two and self.blocking_schedule == "exact":
                blocks.append(directions.around(state.x, self.hessian_from_loss))
                branches = 2
            if not self.hessian_from_loss and not self.fidelity_after_verdict:
                fidelity = fidelity_pairs(center, directions.around(center))
        points = np.concatenate(blocks)
        plan = BatchPlan(k, gradient_now, len(finals), repeats, directions, size, branches, rng)
        nfev = len(points) + (0 if fidelity is None else len(fidelity))
        return AskData(
            x_fun=points,
            x_fidelity=fidelity,
            precision=self._precision(state, k),
            groups=(len(points),),
            fidelity_groups=None if fidelity is None else (len(fidelity),),
            nfev=nfev,
            iteration=k if gradient_now else k - 1,
            plan=plan,
        )

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

    def _ask_fidelity(self, state: SPSAState) -> AskData:
        d = Directions.from_dict(state.pending["directions"])
        pairs = fidelity_pairs(state.x, d.around(state.x))
        return AskData(
            x_fidelity=pairs, fidelity_groups=(len(pairs),), nfev=len(pairs), iteration=d.k
        )

    def _ask_start(self, state: SPSAState) -> AskData:
        """Sequential blocking: the loss at ``x`` and the repeats for ``allowed_increase``."""
        repeats = STDDEV_SAMPLES if state.allowed_increase is None else 0
        points = np.repeat(state.x[None, :], 1 + repeats, axis=0)
        groups = (1, repeats) if repeats else (1,)
        return AskData(x_fun=points, groups=groups, nfev=1, iteration=state.k + 1)

    def _ask_sequential(self, state: SPSAState) -> AskData:
        k = state.k + 1
        if k > self.maxiter or state.stopped:
            return AskData(x_fun=self._final_sequential(state)[None, :], iteration=k)
        directions, rng = self.directions(state, k)
        per = 2 if not (self.second_order and self.hessian_from_loss) else 4
        points = directions.around(state.x, self.hessian_from_loss)
        fidelity = fidelity_groups = None
        if not self.hessian_from_loss:
            fidelity = fidelity_pairs(state.x, directions.around(state.x))
            fidelity_groups = (4,) * directions.count
        nfev = len(points) + (0 if fidelity is None else len(fidelity))
        return AskData(
            x_fun=points,
            x_fidelity=fidelity,
            precision=self._precision(state, k),
            groups=(per,) * directions.count,
            fidelity_groups=fidelity_groups,
            nfev=nfev,
            iteration=k,
            plan=(directions, rng),
        )

    def _final_sequential(self, state: SPSAState) -> np.ndarray:
        return average(state, self.last_avg) if self.last_avg > 1 else state.x

    # ---- tell ----------------------------------------------------------------------------
    def tell(self, state: SPSAState, ask: AskData, told: Any) -> Told:
        """The next state once ``told`` answered ``ask`` (counts excluded: the driver's)."""
        pairs = 0 if ask.x_fidelity is None else len(ask.x_fidelity)
        state = replace(
            state, nfev=state.nfev + ask.nfev, fidelity_nfev=state.fidelity_nfev + pairs
        )
        if not self._calibrated(state):
            return self._tell_calibration(state, ask, told)
        if state.phase == "fidelity":
            return self._tell_fidelity(state, told)
        if self.batched:
            return self._tell_batched(state, ask, told)
        values = np.asarray(told.eval_fun, dtype=float).reshape(-1)
        if state.phase == "start":
            changes: dict[str, Any] = {"fx": float(values[0]), "phase": "iterate"}
            if state.allowed_increase is None:
                changes["allowed_increase"] = blocking_tolerance(values[1:])
            return Told(replace(state, **changes))
        if state.phase == "proposal":
            return self._tell_proposal(state, float(values[0]))
        if ask.plan is None:  # the final point
            assert ask.x_fun is not None
            done = replace(state, done=True, result_x=ask.x_fun[0], result_fx=float(values[0]))
            return Told(done)
        return self._tell_sequential(state, ask, told)

    def _tell_calibration(self, state: SPSAState, ask: AskData, told: Any) -> Told:
        values = np.asarray(told.eval_fun, dtype=float).reshape(-1)
        eta, eps, failed = calibrated_gains(values)
        if failed:
            warn_user(f"Calibration failed, using {eta.scale} for `a`")
        gains = {"learning_rate": eta.to_dict(), "perturbation": eps.to_dict()}
        note = CALIBRATED % (eta.scale, eta.offset, eta.power, eps.scale, eps.power)
        return Told(replace(state, rng=ask.plan, gains=gains), notes=(note,))

    def _propose(
        self, state: SPSAState, d: Directions, loss_values: np.ndarray, fidelities: Any = None
    ) -> SPSAState:
        """Batched: the proposal becomes the candidate the next job decides."""
        found = self._estimate(loss_values, d, fidelities)
        changes, update = self._update(state, d, found)
        changes["precision"] = self._stats(state, loss_values, d)
        step = float(np.linalg.norm(update))
        return replace(
            state, **changes, candidate=state.x - update, candidate_step=step, pending={}
        )

    def _tell_batched(self, state: SPSAState, ask: AskData, told: Any) -> Told:
        plan: BatchPlan = ask.plan
        values = np.asarray(told.eval_fun, dtype=float).reshape(-1)
        changes: dict[str, Any] = {"rng": plan.rng}
        allowed = state.allowed_increase
        if plan.repeats:
            offset = 1 + plan.num_finals
            allowed = blocking_tolerance(values[offset : offset + plan.repeats])
            changes["allowed_increase"] = allowed
        f_center = float(values[0])
        finals = values[1 : 1 + plan.num_finals]
        pending = state.candidate
        steps: tuple[Step, ...] = ()
        accepted = True
        if pending is None:
            changes["fx"] = f_center if state.fx is None else state.fx
        else:
            accepted = not self.blocking or accepts(f_center, state.fx, allowed)  # type: ignore[arg-type]
            step = Step(state.k, pending, f_center, state.candidate_step, accepted)
            steps = (step,)
            changes.update(candidate=None, fx=f_center if accepted else state.fx)
            changes.update(moved_to(state, step, self.last_avg))
            if accepted and self.blocking and state.fx is not None:
                changes["precision"] = update_statistics(
                    state.precision, change=f_center - state.fx, memory=self.precision_memory
                )
        decided = replace(state, **changes)
        if self.last_avg > 1 and plan.num_finals:
            result_fx = float(finals[0 if accepted else 1])
            decided = replace(
                decided, result_x=average(decided, self.last_avg), result_fx=result_fx
            )
        else:
            decided = replace(decided, result_x=decided.x, result_fx=decided.fx)
        if not plan.gradient_now:
            return Told(replace(decided, done=True), steps, decided)
        d = plan.directions
        assert d is not None
        if not accepted and plan.branches == 1:  # deferred: this iteration is used up
            return Told(replace(decided, k=plan.k), steps, decided)
        branch = 0 if accepted else 1
        loss_values = plan.perturbation_values(values, branch)
        if not self.hessian_from_loss and ask.x_fidelity is None:
            pending_data = {"directions": d.to_dict(), "loss_values": loss_values}
            return Told(replace(decided, phase="fidelity", pending=pending_data), steps, decided)
        return Told(
            self._propose(decided, d, loss_values, getattr(told, "eval_fidelity", None)),
            steps,
            decided,
        )

    def _tell_fidelity(self, state: SPSAState, told: Any) -> Told:
        d = Directions.from_dict(state.pending["directions"])
        loss_values = np.asarray(state.pending["loss_values"], dtype=float)
        proposed = self._propose(state, d, loss_values, getattr(told, "eval_fidelity", None))
        return Told(replace(proposed, phase="iterate"))

    def _tell_sequential(self, state: SPSAState, ask: AskData, told: Any) -> Told:
        directions, rng = ask.plan
        values = np.asarray(told.eval_fun, dtype=float).reshape(-1)
        found = self._estimate(values, directions, getattr(told, "eval_fidelity", None))
        changes, update = self._update(state, directions, found)
        changes.update(rng=rng, precision=self._stats(state, values, directions))
        state = replace(state, **changes)
        if self.measure_proposal:
            size = float(np.linalg.norm(update))
            pending = {"proposal": state.x - update, "stepsize": size}
            return Told(replace(state, phase="proposal", pending=pending))
        step = Step(state.k, state.x - update, found.value, float(np.linalg.norm(update)), True)
        decided = replace(state, **moved_to(state, step, self.last_avg))
        return Told(decided, (step,), decided)

    def _tell_proposal(self, state: SPSAState, fx: float) -> Told:
        proposal = state.pending["proposal"]
        accepted = not self.blocking or accepts(fx, state.fx, state.allowed_increase)  # type: ignore[arg-type]
        step = Step(state.k, proposal, fx, float(state.pending["stepsize"]), accepted)
        changes = moved_to(state, step, self.last_avg)
        if self.blocking and accepted:
            changes["fx"] = fx
        decided = replace(state, **changes, phase="iterate", pending={})
        return Told(decided, (step,), decided)

    # ---- the termination checker's stop ---------------------------------------------------
    def stop(self, decided: SPSAState) -> SPSAState:
        """The run stopped by the termination checker right after ``decided``."""
        if self.batched:
            return replace(decided, stopped=True, done=True)
        return replace(decided, stopped=True, phase="final")
