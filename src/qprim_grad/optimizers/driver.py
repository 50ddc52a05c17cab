"""The one I/O loop of every optimizer: jobs, counts, shots, checkpoints, callback,
termination checker, log lines and progress, around an algorithm's pure steps.

**How an algorithm plugs in.** An algorithm is a frozen configuration object with

* ``ask(state) -> AskData | None`` — every point of the next job (``None`` once
  ``state.done``); pure, draws randomness only from ``state.rng``;
* ``tell(state, ask, told) -> Told`` — the next state from the answers (``told.eval_fun``,
  ``eval_fidelity``, ``eval_jac``, ``eval_metric``), the steps it decided
  (:class:`~.iteration.Step`, one per proposal: what callback, history and termination
  checker see) and the state right after the last decision; pure, adds ``ask.nfev`` to
  ``state.nfev`` (the driver adds jobs and shots before calling it);
* ``stop(decided) -> state`` — where a stop requested by the termination checker leaves
  the run;

over a frozen :class:`~.state.RunState` subclass (``done``, ``result_x``, ``result_fx`` tell the
driver when and where the run ends). An evaluator (:mod:`.evaluators`) turns an ``AskData``
into a ``TellData``. The optimizer class builds ``Driver(steps, evaluator, state, ...)``;
``minimize`` is :meth:`Driver.run`, which is the loop a user can write with ``ask``,
``evaluate`` and ``tell``.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

import numpy as np

from ..compat import global_generator
from ..errors import NonFiniteLossError
from .iteration import Step
from .progress import Progress
from .protocol import AskData
from .result import make_result
from .state import RunState

__all__ = ["Driver", "Algorithm", "Evaluator", "make_rng", "check_finite", "check_finite_loss"]

logger = logging.getLogger("qprim_grad.optimizers")


class Algorithm(Protocol):
    def ask(self, state: Any) -> AskData | None: ...

    def tell(self, state: Any, ask: AskData, told: Any) -> Any: ...

    def stop(self, decided: Any) -> Any: ...


class Evaluator(Protocol):
    def evaluate(self, ask: AskData) -> Any: ...


def make_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """The run's generator: a copy of a given one; for ``None`` the peers' global generator
    (:func:`qprim_grad.compat.global_generator`, when one is installed); else
    ``default_rng(seed)``."""
    if isinstance(seed, np.random.Generator):
        return copy.deepcopy(seed)  # never advance the user's generator
    if seed is None:  # as qiskit-algorithms: its global generator, advanced in its order
        shared = global_generator()
        if shared is not None:
            return shared
    return np.random.default_rng(seed)


def check_finite(
    values: Any, what: str, where: str, label: str = "SPSA", unit: str = "points"
) -> None:
    """Raise a :class:`NonFiniteLossError` if any of ``values`` is NaN or infinite."""
    values = np.asarray(values, dtype=float)
    bad = ~np.isfinite(values)
    if np.any(bad):
        raise NonFiniteLossError(
            f"{label} {where}: the {what} returned {values[bad][0]} at {int(bad.sum())} of "
            f"{values.size} {unit}; stopping"
        )


def check_finite_loss(values: Any, where: str) -> None:
    """Raise a :class:`NonFiniteLossError` if any loss value is NaN or infinite."""
    check_finite(values, "loss", where)


#: what each answer is called in an error, and what its entries are
_ANSWERS = {
    "eval_fun": ("loss", "points"),
    "eval_fidelity": ("fidelity", "pairs"),
    "eval_jac": ("gradient", "entries"),
    "eval_metric": ("metric", "entries"),
}


class Driver:
    """One run of an optimizer: the algorithm's pure steps with their I/O.

    Args:
        steps: the algorithm (see the module docstring).
        evaluator: turns an ``AskData`` into a ``TellData``.
        state: the run's state (fresh or resumed).
        label: the optimizer's name (log lines, errors, progress).
        maxiter: for the progress line.
        callback: ``callback(nfev, x, fx, stepsize, accepted)`` per decided step.
        termination_checker: ``checker(nfev, x, fx, stepsize, accepted) -> stop?`` after
            every accepted step.
        checkpoint: path the state is written to after every ``tell``.
        progress: show a progress line.
        shared_rng: qiskit-algorithms' global generator when the run draws from it.
    """

    def __init__(
        self,
        steps: Algorithm,
        evaluator: Evaluator,
        state: RunState,
        *,
        label: str,
        maxiter: int,
        callback: Callable[..., Any] | None = None,
        termination_checker: Callable[..., Any] | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        progress: bool = False,
        shared_rng: np.random.Generator | None = None,
    ) -> None:
        self.steps = steps
        self.evaluator = evaluator
        self.state = state
        self.label = label
        self.maxiter = maxiter
        self.callback = callback
        self.termination_checker = termination_checker
        self.checkpoint = checkpoint
        self.shared_rng = shared_rng
        self.started = time.perf_counter()
        self.progress = Progress(maxiter, progress and not state.done, state.k, label)
        self._finished_logged = False

    # ---- qiskit-algorithms' SteppableOptimizer names -------------------------------------
    def continue_condition(self) -> bool:
        """Whether the run has another request."""
        return not self.state.done

    def ask(self) -> AskData:
        """Every point of the next job."""
        if self.shared_rng is not None:  # other code may have drawn from the global generator
            self.state = replace(self.state, rng=dict(self.shared_rng.bit_generator.state))
        ask = self.steps.ask(self.state)
        if ask is None:
            raise RuntimeError(f"The {self.label} run is finished; create_result() has its answer.")
        return ask

    def evaluate(self, ask: AskData) -> Any:
        """The answers to ``ask`` (the loss' jobs; QN-SPSA's sampler job beside them)."""
        return self.evaluator.evaluate(ask)

    def tell(self, ask: AskData, told: Any) -> None:
        """Take the answers to ``ask``: count, decide, call back, checkpoint."""
        t0 = time.perf_counter()
        self._check(ask, told)
        state = self._counted(ask, told)
        result = self.steps.tell(state, ask, told)
        for note in result.notes:
            logger.info(note)
        self.state = result.state
        for step in result.steps:
            if self._report(step, t0):
                self.state = self.steps.stop(result.decided)
                break
        if self.shared_rng is not None:
            self.shared_rng.bit_generator.state = self.state.rng
        self._save()
        if self.state.done:
            self._close()
        else:
            self.progress.update(self.state.k, self.state.fx, self.state.jobs, self.state.shots)

    def step(self) -> None:
        """One ``ask``, its evaluation and ``tell``."""
        ask = self.ask()
        if not ask.iteration and ask.x_fun is not None:  # the calibration job
            how = "in one job" if getattr(self.evaluator, "batched", True) else "one by one"
            n = len(ask.x_fun)
            logger.info("%s calibration: measuring the loss at %d points %s...", self.label, n, how)
            self.progress.status(f"calibrating the gains: {n} loss evaluations")
        self.tell(ask, self.evaluate(ask))

    def create_result(self) -> Any:
        """The result where the run stands (its answer once finished)."""
        st = self.state
        x = st.result_x if st.result_x is not None else st.x
        fx = st.result_fx if st.result_x is not None else st.fx
        fields: dict[str, Any] = {}
        if hasattr(st, "fidelity_jobs"):
            fields["fidelity_jobs"] = st.fidelity_jobs
        return make_result(
            x=np.copy(x),
            fun=fx,
            nfev=st.nfev,
            njev=st.njev,
            nit=st.k,
            jobs=st.jobs,
            shots=st.shots,
            history=copy.deepcopy(st.history),
            state=copy.deepcopy(st),
            **fields,
        )

    def run(self) -> Any:
        """``minimize``: the steppable loop."""
        while self.continue_condition():
            self.step()
        self._close()
        return self.create_result()

    # ---- the I/O around the pure steps ---------------------------------------------------
    def _check(self, ask: AskData, told: Any) -> None:
        """Answers of the wrong size or not finite: an error naming them; the state stays
        where it was (resumable from the error's ``state``)."""
        values = getattr(told, "eval_fun", None)
        if ask.x_fun is not None:
            got = np.asarray(values, dtype=float).reshape(-1) if values is not None else None
            if got is None or got.size != len(ask.x_fun):
                size = "no" if got is None else got.size
                raise ValueError(
                    f"{self.label} {ask.where}: the loss returned {size} values for "
                    f"{len(ask.x_fun)} points."
                )
        if ask.x_fidelity is not None:
            fids = getattr(told, "eval_fidelity", None)
            size = 0 if fids is None else np.size(fids)
            if size != len(ask.x_fidelity):
                raise ValueError(
                    f"{self.label} {ask.where}: the fidelity returned {size} values for "
                    f"{len(ask.x_fidelity)} pairs of points."
                )
        for name, (what, unit) in _ANSWERS.items():
            answer = getattr(told, name, None)
            if answer is None:
                continue
            try:
                check_finite(answer, what, ask.where, self.label, unit)
            except NonFiniteLossError as exc:
                self._attach_state(exc)
                raise

    def _counted(self, ask: AskData, told: Any) -> RunState:
        st = self.state
        jobs = getattr(told, "jobs", None)
        if jobs is None:
            jobs = int(ask.x_fun is not None or ask.x_jac is not None)
        changes: dict[str, Any] = {
            "jobs": st.jobs + int(jobs),
            "shots": st.shots + int(getattr(told, "shots", 0) or 0),
        }
        if hasattr(st, "fidelity_jobs"):
            fjobs = getattr(told, "fidelity_jobs", None)
            if fjobs is None:
                fjobs = int(ask.x_fidelity is not None)
            changes["fidelity_jobs"] = st.fidelity_jobs + int(fjobs)  # type: ignore[attr-defined]
        return replace(st, **changes)

    def _attach_state(self, exc: NonFiniteLossError) -> None:
        """Give the error the state before this request and say how to resume."""
        exc.state = st = copy.deepcopy(self.state)
        hint = (
            f"the checkpoint {os.fspath(self.checkpoint)!r} holds"
            if self.checkpoint is not None
            else "the error's .state holds"
        )
        exc.args = (
            f"{exc.args[0]}. The iterate stays at the last finite one; {hint} the state "
            f"after iteration {st.k}, to resume with minimize(fun, x0, state=...).",
        )
        self.progress.close()

    def _report(self, step: Step, t0: float) -> bool:
        """Callback, history row, log line for a decided step; after an accepted one, the
        termination checker's verdict (true: stop)."""
        st = self.state
        if self.callback is not None:
            self.callback(st.nfev, step.x, step.fx, step.size, step.accepted)
        st.history.append(
            step.k,
            step.fx,
            step.size,
            step.accepted,
            st.nfev,
            st.jobs,
            st.shots,
            getattr(st, "fidelity_jobs", 0),
        )
        logger.info(
            "%s iteration %d/%d: loss=%s stepsize=%.4g %s nfev=%d jobs=%d shots=%d (%.3f s)",
            self.label,
            step.k,
            self.maxiter,
            f"{step.fx:.8g}",
            step.size,
            "accepted" if step.accepted else "rejected",
            st.nfev,
            st.jobs,
            st.shots,
            time.perf_counter() - t0,
        )
        if not step.accepted or self.termination_checker is None:
            return False
        if self.termination_checker(st.nfev, step.x, step.fx, step.size, True):
            logger.info(
                "%s: termination checker stopped the run after iteration %d", self.label, step.k
            )
            return True
        return False

    def _save(self) -> None:
        if self.checkpoint is not None:
            self.state.save(self.checkpoint)

    def _close(self) -> None:
        self.progress.close()
        if self._finished_logged or not self.state.done:
            return
        self._finished_logged = True
        st = self.state
        logger.info(
            "%s finished: %d iterations, %d jobs, %d shots, %d evaluations, loss %s in %.2f s",
            self.label,
            st.k,
            st.jobs,
            st.shots,
            st.nfev,
            st.result_fx,
            time.perf_counter() - self.started,
        )
