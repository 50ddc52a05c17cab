"""SPSA and 2-SPSA with one primitive job per iteration, seeded and resumable.

A batched loss (``loss.batch(X)``, e.g. :class:`~.loss.EstimatorLoss`) gets one job per
iteration; a plain callable is evaluated in qiskit-algorithms' order. With the same seed the
iterates equal qiskit-algorithms' SPSA's in both cases (blocking included).
:mod:`.spsa_steps` describes the schedules.

This module holds the configuration and the run; the static methods ``calibrate`` and
``estimate_stddev`` are in :mod:`.spsa_compat`, the pure steps of a run in :mod:`.spsa_steps`,
its I/O in the generic :mod:`.driver`, the steppable protocol in :mod:`.steppable`, the
qiskit-algorithms ``Optimizer`` shim in :mod:`.interface`, the scipy adapter in
:mod:`.scipy_adapter`.

>>> import numpy as np
>>> from qprim_grad.optimizers import SPSA, batched
>>> loss = batched(lambda X: np.sum(np.atleast_2d(X) ** 2, axis=1))
>>> spsa = SPSA(maxiter=50, learning_rate=0.1, perturbation=0.1, seed=1)
>>> result = spsa.minimize(loss, [1.0, -1.0])
>>> bool(result.fun < 1e-2), result.nit, result.jobs
(True, 50, 51)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any, SupportsFloat

import numpy as np

from ..compat import global_generator
from .batching import is_batched
from .driver import Driver, make_rng
from .evaluators import LossEvaluator, check_precision_support, warn_frozen_noise
from .gains import as_gain, check_gains
from .interface import OptimizerInterface
from .precision import as_precision_rule
from .scipy_adapter import scipy_minimize
from .spsa_compat import SPSACompat
from .spsa_steps import SCHEDULE_OPTIONS, SPSASteps
from .state import SPSAState
from .steppable import Steppable, resume_state

__all__ = ["SPSA", "CALLBACK", "TERMINATIONCHECKER"]

#: ``callback(nfev, x, fx, stepsize, accepted)``
CALLBACK = Callable[[int, np.ndarray, float, SupportsFloat, bool], None]
#: ``termination_checker(nfev, x, fx, stepsize, accepted) -> stop?``
TERMINATIONCHECKER = Callable[[int, np.ndarray, float, SupportsFloat, bool], bool]


class SPSA(SPSACompat, Steppable, OptimizerInterface):
    r"""Simultaneous perturbation stochastic approximation (SPSA, and 2-SPSA).

    Arguments, defaults and meaning are those of ``qiskit_algorithms.optimizers.SPSA``:

    Args:
        maxiter: maximum number of iterations.
        blocking: accept a step only if the loss does not increase by ``allowed_increase``
            or more.
        allowed_increase: blocking tolerance; ``None`` calibrates it to twice the standard
            deviation of 25 loss evaluations at the initial point.
        trust_region: rescale updates longer than 1 to length 1.
        learning_rate: float, array (entry ``k-1`` for iteration ``k``) or callable returning
            an iterator. Give both ``learning_rate`` and ``perturbation`` or neither (then
            :meth:`calibrate` picks power series).
        perturbation: finite-difference magnitude ``c_k``; same forms as ``learning_rate``.
        last_avg: return the average of the last ``last_avg`` iterates.
        resamplings: directions per gradient estimate: an int, or ``{iteration: n}``
            (default 1 for iterations not listed).
        perturbation_dims: perturb only this many randomly chosen coordinates.
        second_order: 2-SPSA: also estimate the Hessian and precondition with it.
        regularization: added to the Hessian's absolute value (default 0.01).
        hessian_delay: precondition only from iteration ``hessian_delay + 1`` on.
        lse_solver: ``solver(A, b)`` for the preconditioning (default ``numpy.linalg.solve``).
        initial_hessian: starting Hessian average (default identity).
        callback: ``callback(nfev, x, fx, stepsize, accepted)`` once per proposed step.
        termination_checker: ``checker(nfev, x, fx, stepsize, accepted) -> bool``; ``True``
            stops after an accepted step.
        seed: int or ``numpy.random.Generator`` (copied; never advanced). ``None``: fresh
            entropy per run.
        checkpoint: path of a JSON file the state is written to after every iteration;
            continue with ``minimize(fun, x0, state=path)`` (or :meth:`resume`).
        progress: show a progress bar with jobs, shots and time left (tqdm if installed,
            else a stderr line).
        precision: each iteration's precision (the target standard error of every loss
            value): ``None`` (the estimator's own), a number, a callable
            ``iteration -> precision`` or ``"adaptive"`` (:mod:`.precision`). Needs a loss that
            takes a precision (:class:`~.loss.EstimatorLoss`).
        blocking_schedule: with a batched loss and blocking, ``"exact"`` (each job also
            measures the perturbations around the current iterate, so the iterates are
            qiskit-algorithms') or ``"deferred"`` (a rejected step uses up the next iteration).

    ``minimize`` never changes these attributes; all run data live in an
    :class:`~.state.SPSAState`. The optimizer is steppable (``start``, ``ask``, ``tell``, ...;
    :mod:`.steppable`); :mod:`.spsa_steps` describes the one-job-per-iteration schedule.

    Example:
        >>> import numpy as np
        >>> from qiskit.circuit.library import real_amplitudes
        >>> from qiskit.primitives import StatevectorEstimator
        >>> from qprim_grad.optimizers import SPSA, EstimatorLoss
        >>> loss = EstimatorLoss(StatevectorEstimator(), real_amplitudes(2, reps=1), "ZZ")
        >>> result = SPSA(maxiter=30, seed=5).minimize(loss, np.full(4, 0.3))
        >>> bool(result.fun < -0.9), result.jobs   # 1 calibration + 30 iterations + 1 final
        (True, 32)
    """

    def __init__(
        self,
        maxiter: int = 100,
        blocking: bool = False,
        allowed_increase: float | None = None,
        trust_region: bool = False,
        learning_rate: float | np.ndarray | Callable[[], Iterator] | None = None,
        perturbation: float | np.ndarray | Callable[[], Iterator] | None = None,
        last_avg: int = 1,
        resamplings: int | dict[int, int] = 1,
        perturbation_dims: int | None = None,
        second_order: bool = False,
        regularization: float | None = None,
        hessian_delay: int = 0,
        lse_solver: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
        initial_hessian: np.ndarray | None = None,
        callback: CALLBACK | None = None,
        termination_checker: TERMINATIONCHECKER | None = None,
        *,
        seed: int | np.random.Generator | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        progress: bool = False,
        precision: float | Callable[[int], float] | str | None = None,
        blocking_schedule: str = "exact",
    ) -> None:
        check_gains(maxiter, learning_rate, perturbation)
        as_precision_rule(precision)  # a bad precision fails here, not in the run
        if blocking_schedule not in ("exact", "deferred"):
            raise ValueError(
                f"blocking_schedule={blocking_schedule!r} is not 'exact' (qiskit-algorithms' "
                "iterates: the job also measures the perturbations around the current iterate) "
                "or 'deferred' (a rejected step uses up the next iteration)."
            )
        self.precision, self.blocking_schedule = precision, blocking_schedule
        self.maxiter, self.blocking, self.allowed_increase = maxiter, blocking, allowed_increase
        self.learning_rate, self.perturbation = learning_rate, perturbation
        self.trust_region, self.last_avg = trust_region, last_avg
        self.resamplings, self.perturbation_dims = resamplings, perturbation_dims
        self.second_order, self.hessian_delay = second_order, hessian_delay
        self.regularization = 0.01 if regularization is None else regularization
        self.lse_solver, self.initial_hessian = lse_solver, initial_hessian
        self.callback, self.termination_checker = callback, termination_checker
        self.seed, self.checkpoint, self.progress = seed, checkpoint, progress
        self._max_evals_grouped: int | None = None
        self._options: dict[str, Any] = {}

    # ---- configuration -------------------------------------------------------------------
    @property
    def settings(self) -> dict[str, Any]:
        """Constructor arguments (callable gains expanded to ``maxiter`` values), so that
        ``SPSA(**spsa.settings)`` rebuilds the optimizer."""

        def expand(spec: Any) -> Any:
            if callable(spec):
                gain = as_gain(spec, "gain")
                return np.array([gain.at(k) for k in range(1, self.maxiter + 1)])
            return spec

        return {
            "maxiter": self.maxiter,
            "learning_rate": expand(self.learning_rate),
            "perturbation": expand(self.perturbation),
            "trust_region": self.trust_region,
            "blocking": self.blocking,
            "allowed_increase": self.allowed_increase,
            "resamplings": self.resamplings,
            "perturbation_dims": self.perturbation_dims,
            "second_order": self.second_order,
            "hessian_delay": self.hessian_delay,
            "regularization": self.regularization,
            "lse_solver": self.lse_solver,
            "initial_hessian": self.initial_hessian,
            "callback": self.callback,
            "termination_checker": self.termination_checker,
            "last_avg": self.last_avg,
            "seed": self.seed,
            "precision": self.precision,
            "blocking_schedule": self.blocking_schedule,
        }

    # ---- minimisation --------------------------------------------------------------------
    def minimize(
        self,
        fun: Callable[[np.ndarray], float],
        x0: np.ndarray | None,
        jac: Callable[[np.ndarray], np.ndarray] | None = None,
        bounds: list[tuple[float, float]] | None = None,
        *,
        state: SPSAState | str | os.PathLike[str] | None = None,
        **scipy_arguments: Any,
    ) -> Any:
        """Minimise ``fun`` from ``x0`` (``jac`` and ``bounds`` are ignored, as in
        qiskit-algorithms).

        ``fun`` is a plain callable or a batched loss (``fun.batch(X)``, one job per iteration).
        ``state`` (an :class:`~.state.SPSAState` or the path of a checkpoint) continues a run;
        ``x0`` is then ignored (a ``ValueError`` if its size, or the loss', differs from the
        checkpoint's). A loss value that is NaN or infinite stops the run with a
        :class:`NonFiniteLossError` whose ``state`` resumes from the last finite iterate.

        Returns an ``OptimizerResult`` (qiskit-algorithms' if installed) with ``x``, ``fun``,
        ``nfev``, ``njev``, ``nit`` and ``jobs``, ``history`` (:class:`~.state.SPSAHistory`),
        ``state`` (the final :class:`~.state.SPSAState`).

        Called by ``scipy.optimize.minimize(fun, x0, method=spsa.minimize)`` (scipy passes
        ``args``, ``callback``, ``options``...), it behaves as :attr:`scipy_method` and
        returns a scipy ``OptimizeResult``.
        """
        if scipy_arguments:
            assert x0 is not None, "scipy always passes x0"
            return self._scipy_minimize(fun, x0, jac=jac, bounds=bounds, **scipy_arguments)
        return self._driver(fun, x0, state).run()

    # ---- the run: pure steps (spsa_steps) under the generic driver ----------------------
    label = "SPSA"
    #: 2-SPSA's Hessian from loss points; QN-SPSA's from the fidelity
    curvature = "loss"

    def _steps(self, batched: bool) -> SPSASteps:
        eta = None if self.learning_rate is None else as_gain(self.learning_rate, "learning_rate")
        eps = None if self.perturbation is None else as_gain(self.perturbation, "perturbation")
        return SPSASteps(
            maxiter=self.maxiter,
            learning_rate=eta,
            perturbation=eps,
            batched=batched,
            lse_solver=self.lse_solver,
            curvature=self.curvature,
            measure_proposal=self.blocking or self.callback is not None,
            finals_every_job=self.termination_checker is not None,
            fidelity_after_verdict=self.blocking or self.termination_checker is not None,
            blocking_schedule=self.blocking_schedule,
            precision=as_precision_rule(self.precision),
            **{name: getattr(self, name) for name in SCHEDULE_OPTIONS},
        )

    def _evaluator(self, fun: Any) -> Any:
        return LossEvaluator(fun, self._max_evals_grouped)

    def _settings(self) -> dict[str, Any]:
        settings = {}
        for name in SCHEDULE_OPTIONS:
            value = getattr(self, name)
            is_dict = isinstance(value, dict)
            settings[name] = {str(k): v for k, v in value.items()} if is_dict else value
        return settings

    def _check_problem(self, fun: Any, x0: Any) -> None:
        """Checks of the loss against the optimizer, before anything runs."""
        check_precision_support(fun, self.precision, self.label)

    def _driver(self, fun: Any, x0: Any, state: Any) -> Driver:
        """The run of ``minimize(fun, x0, state=state)``: steps, evaluator and state."""
        if (self.learning_rate is None) != (self.perturbation is None):
            raise ValueError("If one of learning rate or perturbation is set, both must be set.")
        batched = is_batched(fun)
        steps = self._steps(batched)
        self._check_problem(fun, x0)
        shared = None
        if state is None:
            if x0 is None:
                raise ValueError("x0 is required unless a state is given.")
            rng = make_rng(self.seed)
            if self.seed is None and rng is global_generator():
                shared = rng
            x = np.asarray(x0, dtype=float)
            hessian = None
            if self.second_order:
                given = self.initial_hessian
                hessian = np.identity(x.size) if given is None else np.array(given, dtype=float)
            run_state: SPSAState = steps.init(
                x,
                rng,
                hessian=hessian,
                allowed_increase=self.allowed_increase,
                settings=self._settings(),
                optimizer=self.label,
            )
        else:
            mode = "batched" if batched else "sequential"
            run_state = resume_state(
                SPSAState, state, x0, fun, self.label, self._settings(), mode, self.maxiter
            )
            if run_state.allowed_increase is None and self.allowed_increase is not None:
                run_state = replace(run_state, allowed_increase=self.allowed_increase)
        warn_frozen_noise(fun, self.label)
        return Driver(
            steps,
            self._evaluator(fun),
            run_state,
            label=self.label,
            maxiter=self.maxiter,
            callback=self.callback,
            termination_checker=self.termination_checker,
            checkpoint=self.checkpoint,
            progress=self.progress,
            shared_rng=shared,
        )

    def resume(self, fun: Callable[[np.ndarray], float], path: str | os.PathLike[str]) -> Any:
        """Continue the run saved in the checkpoint ``path``."""
        return self.minimize(fun, None, state=path)

    @property
    def scipy_method(self) -> Callable[..., Any]:
        """This optimizer as a custom method of ``scipy.optimize.minimize``.

        ``options`` (e.g. ``{"maxiter": 50}``) override constructor arguments; scipy's
        ``callback`` gets ``intermediate_result`` (an ``OptimizeResult``) or ``xk`` after
        every accepted step and may raise ``StopIteration`` to stop.

        >>> import numpy as np
        >>> from scipy.optimize import minimize
        >>> spsa = SPSA(learning_rate=0.1, perturbation=0.1, seed=0)
        >>> res = minimize(lambda x: float(x @ x), [1.0, 1.0], method=spsa.scipy_method,
        ...                options={"maxiter": 40})
        >>> bool(res.fun < 1e-2), res.nit
        (True, 40)
        """
        return self._scipy_minimize

    def _scipy_minimize(self, fun: Callable[..., float], x0: np.ndarray, **kwargs: Any) -> Any:
        """``scipy.optimize.minimize``'s custom-method call (see :mod:`.scipy_adapter`)."""
        return scipy_minimize(self, fun, x0, **kwargs)
