"""qiskit-algorithms' ``SteppableOptimizer`` names on our optimizers, and where a resumed
run's state comes from.

``start(fun, x0)`` builds the run (a :class:`~.driver.Driver`); ``ask()`` returns every point
of the next job, ``evaluate(ask_data)`` evaluates them, ``tell(ask_data, tell_data)`` takes
the answers, ``step()`` does all three, ``continue_condition()`` says whether another request
follows and ``create_result()`` gives the result; ``state`` is the run's state. ``minimize``
runs the same loop.

>>> import numpy as np
>>> from qprim_grad.optimizers import SPSA, batched
>>> loss = batched(lambda X: np.sum(np.atleast_2d(X) ** 2, axis=1))
>>> spsa = SPSA(maxiter=10, learning_rate=0.1, perturbation=0.1, seed=1)
>>> spsa.start(loss, [1.0, -1.0])
>>> while spsa.continue_condition():
...     ask = spsa.ask()                      # every point of one job
...     spsa.tell(ask, spsa.evaluate(ask))    # or TellData(eval_fun=loss.batch(ask.x_fun))
>>> bool(np.all(spsa.create_result().x == spsa.minimize(loss, [1.0, -1.0]).x))
True
"""

from __future__ import annotations

import copy
import os
from dataclasses import replace
from typing import Any, TypeVar

import numpy as np

from ._warn import warn_user
from .driver import Driver
from .protocol import AskData
from .state import RunState

__all__ = ["Steppable", "resume_state"]

_S = TypeVar("_S", bound=RunState)


class Steppable:
    """The steppable protocol over the :class:`~.driver.Driver` of :meth:`start`'s run."""

    _run: Driver | None = None

    def _driver(self, fun: Any, x0: Any, state: Any) -> Driver:  # pragma: no cover
        raise NotImplementedError

    def _new_driver(self, steps: Any, evaluator: Any, run_state: RunState) -> Driver:
        """A :class:`~.driver.Driver` of ``steps`` and ``evaluator`` from ``run_state``, with
        this optimizer's label, ``maxiter``, callbacks, checkpoint and progress settings."""
        settings: Any = self
        return Driver(
            steps,
            evaluator,
            run_state,
            label=settings.label,
            maxiter=settings.maxiter,
            callback=settings.callback,
            termination_checker=settings.termination_checker,
            checkpoint=settings.checkpoint,
            progress=settings.progress,
        )

    def start(
        self, fun: Any, x0: Any, jac: Any = None, bounds: Any = None, *, state: Any = None
    ) -> None:
        """Start a run of ``fun`` from ``x0`` (or from ``state``, a state or checkpoint)."""
        self._run = self._driver(fun, x0, state)

    def _current(self) -> Driver:
        if self._run is None:
            raise RuntimeError(
                f"{type(self).__name__} has no run to step: call start(fun, x0) first."
            )
        return self._run

    @property
    def state(self) -> RunState | None:
        """The state of the run :meth:`start` began (``None`` before)."""
        return None if self._run is None else self._run.state

    def ask(self) -> AskData:
        """Every point of the next job (see :class:`~.protocol.AskData`)."""
        return self._current().ask()

    def evaluate(self, ask_data: AskData) -> Any:
        """The answers to ``ask_data`` as a :class:`~.protocol.TellData`."""
        return self._current().evaluate(ask_data)

    def tell(self, ask_data: AskData, tell_data: Any) -> None:
        """Take the answers (anything with ``eval_fun``, e.g. qiskit-algorithms' ``TellData``)."""
        self._current().tell(ask_data, tell_data)

    def step(self) -> None:
        """``ask``, ``evaluate`` and ``tell`` once."""
        self._current().step()

    def continue_condition(self) -> bool:
        """Whether the run has another request."""
        return self._current().continue_condition()

    def create_result(self) -> Any:
        """The result where the run stands."""
        return self._current().create_result()


def resume_state(
    cls: type[_S],
    given: Any,
    x0: Any,
    fun: Any,
    label: str,
    settings: dict[str, Any],
    mode: str | None = None,
    maxiter: int | None = None,
) -> _S:
    """A private copy of the given state (or of the checkpoint ``given`` names), checked
    against this run: the optimizer that saved it, the kind of loss, the problem size, the
    settings (a warning if they differ). A finished run continues if ``maxiter`` is larger
    than its iteration count (else resuming it spends nothing)."""
    name = "the given state" if isinstance(given, RunState) else f"checkpoint {os.fspath(given)!r}"
    loaded = given if isinstance(given, RunState) else cls.load(given)
    if not isinstance(loaded, cls):
        raise ValueError(
            f"Cannot resume a {label} run from {name}: it holds a {type(loaded).__name__}."
        )
    state = copy.deepcopy(loaded)
    if state.optimizer is not None and state.optimizer != label:
        raise ValueError(
            f"Cannot resume a {label} run from {name}: it was saved by {state.optimizer}, "
            f"whose state means something else. Resume it with {state.optimizer}, or start "
            f"a new {label} run without state=."
        )
    saved_mode = getattr(state, "mode", None)
    if mode is not None and saved_mode != mode:
        raise ValueError(
            f"The state was saved by a {saved_mode} run; this loss makes a {mode} run. "
            "Resume with the same kind of loss."
        )
    stored = state.x.size
    given_size = None if x0 is None else np.size(x0)
    if given_size is None and isinstance(getattr(fun, "num_parameters", None), int):
        given_size = fun.num_parameters
    if given_size is not None and given_size != stored:
        raise ValueError(
            f"Cannot resume from {name}: it stores {stored} parameters, but the given "
            f"{'x0' if x0 is not None else 'loss'} has {given_size}. Resume with the problem "
            "the checkpoint was saved for, or start a new run without state=."
        )
    diff = {k: (v, settings.get(k)) for k, v in state.settings.items() if settings.get(k) != v}
    if diff:
        warn_user(f"Resuming with different {label} settings (saved, now): {diff}")
    if state.done and not state.stopped and maxiter is not None and state.k < maxiter:
        state = replace(state, done=False, phase="iterate")  # a longer run continues it
    if not state.done:
        state.history.resumed_at.append(state.k)
    return state
