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

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ._warn import warn_user
from .gains import Gain, PowerSeries
from .iteration import BatchPlan, Directions, Estimate, Step
from .precision import FixedPrecision, PrecisionRule, update_statistics
from .protocol import AskData
from .spsa_calibration import (
    CALIBRATED,
    CALIBRATION_STEPS,
    STDDEV_SAMPLES,
    calibrated_gains,
)
from .state import SPSAState, generator_from_state
from .steps import (
    accepts,
    blocking_tolerance,
    calibration_points,
    clip_to_trust_region,
    estimate,
    num_resamplings,
    precondition,
    sample_directions,
    smooth_hessian,
)

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


def average(state: SPSAState, last_avg: int, extra: np.ndarray | None = None) -> np.ndarray:
    """The mean of the last ``last_avg`` iterates (with ``extra`` as the newest)."""
    steps = list(state.last_steps) + ([] if extra is None else [extra])
    return np.mean(np.asarray(steps[-last_avg:]), axis=0)


def _moved_to(state: SPSAState, step: Step, last_avg: int) -> dict[str, Any]:
    """The changes of the state once ``step`` is decided: if accepted, the new iterate (and
    the iterates kept for ``last_avg``)."""
    if not step.accepted:
        return {}
    last_steps = state.last_steps
    if last_avg > 1:
        last_steps = (list(last_steps) + [step.x])[-last_avg:]
    return {"x": step.x, "last_steps": last_steps}


def _pairs(center: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Fidelity pairs ``(center, target)``, shape ``(m, 2, P)``."""
    return np.stack([np.broadcast_to(center, targets.shape), targets], axis=1)


@dataclass(frozen=True)
class Told:
    """What ``tell`` returns: the next state, the steps it decided (for callback, history
    and termination checker), the state right after the last decision (where a stop
    requested by the termination checker leaves the run) and notes for the log."""

    state: Any
    steps: tuple[Step, ...] = ()
    decided: Any = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SPSASteps:
    """SPSA's configuration for one run and its pure steps.

    ``learning_rate``/``perturbation`` ``None``: the first request calibrates them (the
    state then holds the power series). ``curvature``: ``"loss"`` (2-SPSA: Hessian points
    are loss points) or ``"fidelity"`` (QN-SPSA: the Hessian of ``-F/2`` from fidelity
    pairs). ``measure_proposal`` (sequential): measure the loss at every proposal (blocking
    or a callback need it). ``finals_every_job`` (batched, ``last_avg > 1``): every job also
    measures the averaged points, since a termination checker may end the run after any of
    them. ``fidelity_after_verdict`` (batched QN-SPSA): send the fidelity job only once the
    estimator job decided the centre."""

    maxiter: int
    learning_rate: Gain | None
    perturbation: Gain | None
    batched: bool = True
    blocking: bool = False
    trust_region: bool = False
    last_avg: int = 1
    resamplings: int | dict[int, int] = 1
    perturbation_dims: int | None = None
    second_order: bool = False
    regularization: float = 0.01
    hessian_delay: int = 0
    lse_solver: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    curvature: str = "loss"
    measure_proposal: bool = False
    finals_every_job: bool = False
    fidelity_after_verdict: bool = False
    blocking_schedule: str = "exact"
    precision: PrecisionRule = FixedPrecision(None)
    precision_memory: float = 0.8

    @property
    def hessian_from_loss(self) -> bool:
        return self.curvature == "loss"

    def gains(self, state: SPSAState) -> tuple[Gain, Gain]:
        if self.learning_rate is not None and self.perturbation is not None:
            return self.learning_rate, self.perturbation
        assert state.gains is not None
        eta = PowerSeries(**state.gains["learning_rate"])
        return eta, PowerSeries(**state.gains["perturbation"])

    def _calibrated(self, state: SPSAState) -> bool:
        return self.learning_rate is not None or state.gains is not None

    def init(self, x0: np.ndarray, rng: np.random.Generator, **fields: Any) -> SPSAState:
        """The state of a fresh run at ``x0``."""
        phase = "start" if self.blocking and not self.batched else "iterate"
        mode = "batched" if self.batched else "sequential"
        return SPSAState.initial(x0, rng, mode, phase=phase, **fields)

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
        rng = _generator_at(state.rng)
        points = calibration_points(rng, state.x, 0.2, CALIBRATION_STEPS)
        return AskData(
            x_fun=points,
            precision=self._precision(state, 1),
            groups=(len(points),),
            plan=dict(rng.bit_generator.state),
        )

    def directions(self, state: SPSAState, k: int) -> tuple[Directions, dict[str, Any]]:
        """The directions of iteration ``k``, drawn from ``state.rng``; and the generator's
        state after drawing them."""
        eps = self.gains(state)[1].at(k)
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

    def _precision(self, state: SPSAState, k: int) -> float | None:
        return self.precision.at(k, state.precision)

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
                fidelity = _pairs(center, directions.around(center))
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
        pairs = _pairs(state.x, d.around(state.x))
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
            fidelity = _pairs(state.x, directions.around(state.x))
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

    def _estimate(
        self, loss_values: np.ndarray, directions: Directions, fidelities: Any = None
    ) -> Estimate:
        d = directions
        if self.hessian_from_loss:
            return Estimate.of(loss_values, d)
        fids = np.asarray(fidelities, dtype=float).reshape(-1)
        if fids.size != 4 * d.count:
            raise ValueError(f"The fidelity returned {fids.size} values for {4 * d.count} pairs.")
        value, gradient, _ = estimate(loss_values, d.eps, d.first, None)
        _, _, curvature = estimate(fids, d.eps, d.first, d.second)
        assert curvature is not None
        return Estimate(value, gradient, -0.5 * curvature)

    def _update(
        self, state: SPSAState, directions: Directions, found: Estimate
    ) -> tuple[dict[str, Any], np.ndarray]:
        """Iteration ``k`` done: the state changes (smoothed Hessian, counters) and the
        update ``x_next = x - update``."""
        k, gradient, hessian = directions.k, found.gradient, state.hessian
        if self.second_order:
            assert hessian is not None and found.hessian is not None
            hessian = smooth_hessian(hessian, found.hessian, k)
            if k > self.hessian_delay:
                gradient = precondition(hessian, gradient, self.regularization, self.lse_solver)
        if self.trust_region:
            gradient = clip_to_trust_region(gradient)
        update = gradient * self.gains(state)[0].at(k)
        return {"k": k, "hessian": hessian, "njev": state.njev + 1}, update

    def _stats(self, state: SPSAState, loss_values: np.ndarray, d: Directions) -> dict[str, float]:
        per = 2 if not (self.second_order and self.hessian_from_loss) else 4
        pairs = np.asarray(loss_values).reshape(d.count, per)
        return update_statistics(
            state.precision, differences=pairs[:, 0] - pairs[:, 1], memory=self.precision_memory
        )

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
            changes.update(_moved_to(state, step, self.last_avg))
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
        decided = replace(state, **_moved_to(state, step, self.last_avg))
        return Told(decided, (step,), decided)

    def _tell_proposal(self, state: SPSAState, fx: float) -> Told:
        proposal = state.pending["proposal"]
        accepted = not self.blocking or accepts(fx, state.fx, state.allowed_increase)  # type: ignore[arg-type]
        step = Step(state.k, proposal, fx, float(state.pending["stepsize"]), accepted)
        changes = _moved_to(state, step, self.last_avg)
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
