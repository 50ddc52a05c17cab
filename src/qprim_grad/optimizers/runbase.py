"""The I/O shell every optimizer run shares: where the state comes from (fresh, given or a
checkpoint), checkpoints, the callback, the termination checker, log lines, the progress
line and the result. The steps between are pure functions over the state (:mod:`.schedule`
for SPSA)."""

from __future__ import annotations

import copy
import logging
import os
import time
import warnings
from dataclasses import replace
from typing import Any

import numpy as np

from ..errors import NonFiniteLossError
from .compat import global_generator
from .iteration import Step
from .progress import Progress
from .result import result_from_state
from .state import SPSAState

__all__ = ["RunBase", "check_finite_loss", "make_rng"]

logger = logging.getLogger("qprim_grad.optimizers")


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


class RunBase:
    """One ``minimize`` call: the optimizer ``cfg`` is read, never written; ``state`` is
    replaced as the run goes (only its history, a log, grows in place)."""

    state: SPSAState
    progress: Progress
    #: the optimizer options a checkpoint records; resuming with other values warns
    resume_options: tuple[str, ...] = ()

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self.started = time.perf_counter()

    # ---- where the state comes from ------------------------------------------------------
    def _given_state(self, state: SPSAState | str | os.PathLike[str]) -> SPSAState:
        """A private copy of the given state, or the checkpoint ``state`` names."""
        loaded = state if isinstance(state, SPSAState) else SPSAState.load(state)
        return copy.deepcopy(loaded)

    def _settings(self) -> dict[str, Any]:
        """The optimizer's :attr:`resume_options`, as a checkpoint stores them."""
        settings = {}
        for name in self.resume_options:
            value = getattr(self.cfg, name)
            is_dict = isinstance(value, dict)
            settings[name] = {str(k): v for k, v in value.items()} if is_dict else value
        return settings

    def _warn_changed_settings(self, saved: SPSAState, label: str) -> None:
        now = self._settings()
        diff = {k: (v, now.get(k)) for k, v in saved.settings.items() if now.get(k) != v}
        if diff:
            warnings.warn(
                f"Resuming with different {label} settings (saved, now): {diff}", stacklevel=5
            )

    def _start_progress(self) -> None:
        self.progress = Progress(self.cfg.maxiter, self.cfg.progress, self.state.k, self.label)

    @property
    def label(self) -> str:
        return type(self.cfg).__name__

    # ---- I/O around the pure steps -------------------------------------------------------
    def _save(self) -> None:
        if self.cfg.checkpoint is not None:
            self.state.save(self.cfg.checkpoint)

    def _report(self, step: Step, t0: float) -> None:
        """Tell the world about a decided step: callback, history row (the run's log, kept
        in the state and appended in place), log line, progress; after an accepted one, ask
        the termination checker."""
        cfg, st = self.cfg, self.state
        if cfg.callback is not None:
            cfg.callback(st.nfev, step.x, step.fx, step.size, step.accepted)
        st.history.append(step.k, step.fx, step.size, step.accepted, st.nfev, st.jobs)
        self._log_step(step, t0)
        self.progress.update(step.k, step.fx)
        if not step.accepted or cfg.termination_checker is None:
            return
        if cfg.termination_checker(self.state.nfev, step.x, step.fx, step.size, True):
            logger.info(self._stop_message, step.k)
            self.state = replace(self.state, stopped=True)

    _stop_message = "SPSA: termination checker stopped the run after iteration %d"

    def _log_step(self, step: Step, t0: float) -> None:
        st = self.state
        logger.info(
            "SPSA iteration %d/%d: loss=%s stepsize=%.4g %s nfev=%d jobs=%d (%.3f s)",
            step.k,
            self.cfg.maxiter,
            f"{step.fx:.8g}",
            step.size,
            "accepted" if step.accepted else "rejected",
            st.nfev,
            st.jobs,
            time.perf_counter() - t0,
        )

    def _log_finished(self, fx: float) -> None:
        st = self.state
        logger.info(
            "SPSA finished: %d iterations, %d jobs, %d evaluations, loss %.8g in %.2f s",
            st.k,
            st.jobs,
            st.nfev,
            fx,
            time.perf_counter() - self.started,
        )

    def _finish(self, x: np.ndarray, fx: float) -> Any:
        self.progress.close()
        self._save()
        self._log_finished(fx)
        return result_from_state(self.state, x, fx)
