"""One ``minimize`` call of SPSA: the run loops (batched and sequential), checkpoints, logging,
callback and progress. The optimizer's configuration is read, never written."""

from __future__ import annotations

import copy
import logging
import os
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import NonFiniteLossError
from .compat import global_generator
from .gains import Gain, PowerSeries, as_gain
from .loss import evaluate_batch, evaluate_grouped, is_batched, num_calls
from .progress import Progress
from .result import result_from_state
from .state import SPSAState
from .steps import (
    accepts,
    clip_to_trust_region,
    estimate,
    num_resamplings,
    perturbation_points,
    precondition,
    sample_directions,
    smooth_hessian,
)

if TYPE_CHECKING:
    from .spsa import SPSA

__all__ = ["CALIBRATION_STEPS", "STDDEV_SAMPLES", "Run", "check_finite_loss", "make_rng"]

logger = logging.getLogger("qprim_grad.optimizers")

STDDEV_SAMPLES = 25
CALIBRATION_STEPS = 25


def make_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """The run's generator: a copy of a given one, qiskit-algorithms' global generator for
    ``None`` (when loaded), else ``default_rng(seed)``."""
    if isinstance(seed, np.random.Generator):
        return copy.deepcopy(seed)  # never advance the user's generator
    if seed is None:  # as qiskit-algorithms: its global generator, advanced in its order
        shared = global_generator()
        if shared is not None:
            return shared
    return np.random.default_rng(seed)


def check_finite_loss(values: Any, where: str) -> None:
    """Raise a :class:`NonFiniteLossError` if any loss value is NaN or infinite."""
    values = np.asarray(values, dtype=float)
    bad = ~np.isfinite(values)
    if np.any(bad):
        raise NonFiniteLossError(
            f"SPSA {where}: the loss returned {values[bad][0]} at {int(bad.sum())} of "
            f"{values.size} points; stopping"
        )


class Run:
    """One call of ``minimize``: the optimizer's configuration is read, never written."""

    def __init__(
        self,
        spsa: SPSA,
        fun: Callable[[np.ndarray], float],
        x0: Any,
        state: SPSAState | str | os.PathLike[str] | None,
    ) -> None:
        self.cfg = spsa
        self.fun = fun
        self.batched = is_batched(fun)
        self.mode = "batched" if self.batched else "sequential"
        self.started = time.perf_counter()
        if (spsa.learning_rate is None) != (spsa.perturbation is None):
            raise ValueError("If one of learning rate or perturbation is set, both must be set.")
        if state is None:
            if x0 is None:
                raise ValueError("x0 is required unless a state is given.")
            self.rng = make_rng(spsa.seed)
            self.state = SPSAState.initial(
                np.asarray(x0, dtype=float), self.rng, self.mode, settings=spsa._fingerprint()
            )
            x = self.state.x
            if spsa.second_order:
                self.state.hessian = (
                    np.identity(x.size)
                    if spsa.initial_hessian is None
                    else np.array(spsa.initial_hessian, dtype=float)
                )
        else:
            self.state = state if isinstance(state, SPSAState) else SPSAState.load(state)
            self.state = copy.deepcopy(self.state)
            self.rng = self.state.generator()
            self._check_resume()
            _check_resume_size(self.state, state, x0, fun)
        self.eta: Gain | None = None
        self.eps: Gain | None = None
        if spsa.learning_rate is not None:
            self.eta = as_gain(spsa.learning_rate, "learning_rate")
            self.eps = as_gain(spsa.perturbation, "perturbation")
        elif self.state.gains is not None:
            self.eta = PowerSeries(**self.state.gains["learning_rate"])
            self.eps = PowerSeries(**self.state.gains["perturbation"])
        if self.state.allowed_increase is None:
            self.state.allowed_increase = spsa.allowed_increase
        self.progress = Progress(spsa.maxiter, spsa.progress, self.state.k, type(spsa).__name__)
        self._mark()

    def _check_resume(self) -> None:
        if self.state.mode != self.mode:
            raise ValueError(
                f"The state was saved by a {self.state.mode} run; this loss makes a {self.mode} "
                "run. Resume with the same kind of loss."
            )
        now = self.cfg._fingerprint()
        diff = {k: (v, now.get(k)) for k, v in self.state.settings.items() if now.get(k) != v}
        if diff:
            warnings.warn(
                f"Resuming with different SPSA settings (saved, now): {diff}", stacklevel=4
            )

    # ---- shared helpers ------------------------------------------------------------------
    def _mark(self) -> None:
        """Remember where this iteration starts, for a :class:`NonFiniteLossError`."""
        st = self.state
        self._before = (dict(self.rng.bit_generator.state), st.nfev, st.jobs)

    def _checked(self, values: Any, where: str) -> Any:
        """``values``, or a :class:`NonFiniteLossError` (see :meth:`_attach_state`)."""
        try:
            check_finite_loss(values, where)
        except NonFiniteLossError as exc:
            self._attach_state(exc)
            raise
        return values

    def _attach_state(self, exc: NonFiniteLossError) -> None:
        """Give the error the state before this iteration (as the last checkpoint holds
        it) and say how to resume."""
        st = copy.deepcopy(self.state)
        st.rng, st.nfev, st.jobs = self._before
        exc.state = st
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

    def _sync_rng(self) -> None:
        self.state.rng = dict(self.rng.bit_generator.state)

    def _save(self) -> None:
        self._sync_rng()
        if self.cfg.checkpoint is not None:
            self.state.save(self.cfg.checkpoint)

    def _calibrate(self) -> None:
        grouped = self.cfg._max_evals_grouped
        how = "in one job" if self.batched else "one by one"
        logger.info(
            "SPSA calibration: measuring the loss at %d points %s...", 2 * CALIBRATION_STEPS, how
        )
        self.progress.status(f"calibrating the gains: {2 * CALIBRATION_STEPS} loss evaluations")
        self._mark()
        try:
            eta, eps = self.cfg.calibrate(
                self.fun, self.state.x, max_evals_grouped=grouped, seed=self.rng
            )
        except NonFiniteLossError as exc:
            self._attach_state(exc)
            raise
        self.state.jobs += 1 if self.batched else num_calls(2 * CALIBRATION_STEPS, grouped)
        self.eta, self.eps = eta, eps
        self.state.gains = {"learning_rate": eta.to_dict(), "perturbation": eps.to_dict()}
        self._save()

    def _directions(self, k: int) -> tuple[float, np.ndarray, np.ndarray | None]:
        cfg = self.cfg
        assert self.eps is not None
        eps = self.eps.at(k)
        if eps == 0 or not np.isfinite(eps):
            raise ValueError(
                f"perturbation must be finite and non-zero, got {eps!r} (iteration {k})."
            )
        n = num_resamplings(cfg.resamplings, k)
        first, second = sample_directions(
            self.rng, n, self.state.x.size, cfg.perturbation_dims, cfg.second_order
        )
        return eps, first, second

    def _step(
        self, k: int, values: np.ndarray, eps: float, first: np.ndarray, second: np.ndarray | None
    ) -> tuple[float, np.ndarray]:
        """From the perturbation values of iteration ``k``: (mean value, update)."""
        cfg, st = self.cfg, self.state
        assert self.eta is not None
        value, gradient, hessian = self._estimate(values, eps, first, second)
        if cfg.second_order:
            assert st.hessian is not None and hessian is not None
            st.hessian = smooth_hessian(st.hessian, hessian, k)
            if k > cfg.hessian_delay:
                gradient = precondition(st.hessian, gradient, cfg.regularization, cfg.lse_solver)
        if cfg.trust_region:
            gradient = clip_to_trust_region(gradient)
        st.njev += 1
        return value, gradient * self.eta.at(k)

    def _resolve(
        self, k: int, x: np.ndarray, fx: float, step: float, accepted: bool, t0: float
    ) -> None:
        """Report the step of iteration ``k`` to ``x`` (loss ``fx``): callback, history, log;
        if accepted, move to ``x`` and ask the termination checker."""
        cfg, st = self.cfg, self.state
        if cfg.callback is not None:
            cfg.callback(st.nfev, x, fx, step, accepted)
        st.history.append(k, fx, step, accepted, st.nfev, st.jobs)
        self._log(k, fx, step, accepted, t0)
        if not accepted:
            return
        st.x = x
        self._remember(x)
        if cfg.termination_checker is not None and cfg.termination_checker(
            st.nfev, x, fx, step, True
        ):
            logger.info("SPSA: termination checker stopped the run after iteration %d", k)
            st.stopped = True

    def _remember(self, x: np.ndarray) -> None:
        if self.cfg.last_avg > 1:
            self.state.last_steps.append(x)
            self.state.last_steps = self.state.last_steps[-self.cfg.last_avg :]

    def _average(self, extra: np.ndarray | None = None) -> np.ndarray:
        steps = list(self.state.last_steps) + ([] if extra is None else [extra])
        return np.mean(np.asarray(steps[-self.cfg.last_avg :]), axis=0)

    def _log(self, k: int, loss: float | None, step: float, accepted: bool, t0: float) -> None:
        st = self.state
        logger.info(
            "SPSA iteration %d/%d: loss=%s stepsize=%.4g %s nfev=%d jobs=%d (%.3f s)",
            k,
            self.cfg.maxiter,
            "n/a" if loss is None else f"{loss:.8g}",
            step,
            "accepted" if accepted else "rejected",
            st.nfev,
            st.jobs,
            time.perf_counter() - t0,
        )
        self.progress.update(k, loss)

    def _finish(self, x: np.ndarray, fx: float) -> Any:
        self.progress.close()
        self._save()
        st = self.state
        logger.info(
            "SPSA finished: %d iterations, %d jobs, %d evaluations, loss %.8g in %.2f s",
            st.k,
            st.jobs,
            st.nfev,
            fx,
            time.perf_counter() - self.started,
        )
        return result_from_state(st, x, fx)

    def run(self) -> Any:
        if self.eta is None:
            self._calibrate()
        return self._run_batched() if self.batched else self._run_sequential()

    # ---- hooks (QN-SPSA replaces these: loss points, extra fidelity evaluations) ---------
    def _loss_points(
        self, centre: np.ndarray, eps: float, first: np.ndarray, second: np.ndarray | None
    ) -> np.ndarray:
        """The loss points of one iteration's perturbations around ``centre``."""
        return perturbation_points(centre, eps, first, second)

    def _sample(
        self, x: np.ndarray, eps: float, first: np.ndarray, second: np.ndarray | None
    ) -> list[float]:
        """Sequential mode: evaluate the perturbations of one direction."""
        points = self._loss_points(x, eps, first, second)
        self.state.nfev += len(points)
        return self._evaluate(points)

    def _estimate(
        self, values: np.ndarray, eps: float, first: np.ndarray, second: np.ndarray | None
    ) -> tuple[float, np.ndarray, np.ndarray | None]:
        """(mean value, gradient, Hessian or None) from the values at the loss points."""
        return estimate(values, eps, first, second)

    # ---- sequential schedule (plain callable; qiskit-algorithms' order) ------------------
    def _evaluate(self, points: np.ndarray) -> list[float]:
        self.state.jobs += num_calls(len(points), self.cfg._max_evals_grouped)
        values = evaluate_grouped(self.fun, points, self.cfg._max_evals_grouped)
        return self._checked(values, f"iteration {self.state.k + 1}")

    def _run_sequential(self) -> Any:
        cfg, st = self.cfg, self.state
        self._mark()
        if cfg.blocking and (st.fx is None or st.allowed_increase is None):
            if st.fx is None:
                st.fx = self._evaluate(st.x[None, :])[0]
                st.nfev += 1
            if st.allowed_increase is None:
                repeats = np.repeat(st.x[None, :], STDDEV_SAMPLES, axis=0)
                st.allowed_increase = 2 * float(np.std(self._evaluate(repeats)))
            self._save()
        while st.k < cfg.maxiter and not st.stopped:
            t0 = time.perf_counter()
            k = st.k + 1
            self._mark()
            eps, first, second = self._directions(k)
            values = []
            for i in range(first.shape[0]):  # one call group per direction, as qiskit does
                values += self._sample(
                    st.x, eps, first[i : i + 1], None if second is None else second[i : i + 1]
                )
            estimate_value, update = self._step(k, np.asarray(values), eps, first, second)
            x_next = st.x - update
            step = float(np.linalg.norm(update))
            st.k = k
            fx_next = None  # measured for blocking or the callback, as qiskit-algorithms does
            if cfg.blocking or cfg.callback is not None:
                fx_next = self._evaluate(x_next[None, :])[0]
                st.nfev += 1
            accepted = not cfg.blocking or accepts(fx_next, st.fx, st.allowed_increase)  # type: ignore[arg-type]
            if cfg.blocking and accepted:
                st.fx = fx_next
            loss = estimate_value if fx_next is None else fx_next
            self._resolve(k, x_next, loss, step, accepted, t0)
            self._save()
        x = self._average() if cfg.last_avg > 1 else st.x
        self._mark()
        fx = self._evaluate(x[None, :])[0]
        return self._finish(x, fx)

    # ---- batched schedule (one job per iteration) ----------------------------------------
    def _run_batched(self) -> Any:
        cfg, st = self.cfg, self.state
        while True:
            t0 = time.perf_counter()
            k = st.k + 1
            self._mark()
            gradient_now = k <= cfg.maxiter and not st.stopped
            pending = st.candidate
            centre = pending if pending is not None else st.x
            # points: centre | final-point options | stddev repeats | perturbations
            finals: list[np.ndarray] = []
            if cfg.last_avg > 1 and (not gradient_now or cfg.termination_checker is not None):
                if pending is not None:
                    finals.append(self._average(pending))
                if pending is None or cfg.blocking:
                    finals.append(self._average())
            repeats = STDDEV_SAMPLES if cfg.blocking and st.allowed_increase is None else 0
            blocks = [centre[None, :]] + [f[None, :] for f in finals]
            blocks.append(np.repeat(centre[None, :], repeats, axis=0))
            if gradient_now:
                eps, first, second = self._directions(k)
                blocks.append(self._loss_points(centre, eps, first, second))
            points = np.concatenate(blocks)
            where = f"iteration {k}" if gradient_now else "final evaluation"
            values = self._checked(evaluate_batch(self.fun, points), where)
            st.jobs += 1
            st.nfev += len(points)
            f_centre = float(values[0])
            final_values = values[1 : 1 + len(finals)]
            offset = 1 + len(finals)
            if repeats:
                st.allowed_increase = 2 * float(np.std(values[offset : offset + repeats]))
            offset += repeats

            # 1. decide the step proposed by the previous iteration
            accepted = True
            final_value = None
            if pending is not None:
                accepted = not cfg.blocking or accepts(f_centre, st.fx, st.allowed_increase)  # type: ignore[arg-type]
                if finals:
                    final_value = float(final_values[0 if accepted else 1])
                if accepted:
                    st.fx = f_centre
                st.candidate = None
                self._resolve(st.k, pending, f_centre, st.candidate_step, accepted, t0)
            else:
                if st.fx is None:
                    st.fx = f_centre
                if finals:
                    final_value = float(final_values[0])

            if st.stopped or not gradient_now:
                if cfg.last_avg > 1:
                    assert final_value is not None
                    return self._finish(self._average(), final_value)
                return self._finish(st.x, float(st.fx))  # type: ignore[arg-type]

            st.k = k
            if not accepted:  # perturbations were around the rejected point: discard
                logger.info(
                    "SPSA iteration %d/%d: skipped (its perturbations surrounded the rejected "
                    "point)",
                    k,
                    cfg.maxiter,
                )
                self.progress.update(k, st.fx)
                self._save()
                continue
            _, update = self._step(k, values[offset:], eps, first, second)
            st.candidate = st.x - update
            st.candidate_step = float(np.linalg.norm(update))
            self._save()


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
