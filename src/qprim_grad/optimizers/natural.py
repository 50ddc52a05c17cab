"""Quantum natural gradient descent: one primitive job per iteration.

Iteration ``k`` measures, at the current point ``x`` and in **one** job, the loss, its
gradient and the quantum geometric tensor, through
``GradientEstimator(estimator, method=gradient_method, metric=...)``, and steps

``x <- x - stepsize * pinv(Re qgt + lam * I) @ grad``.

As for SPSA's batched schedule, the job of iteration ``k`` also measures the loss at the point
proposed by iteration ``k - 1``: that value is what ``callback`` and ``termination_checker``
get for that step. A run of ``n`` iterations submits ``n + 1`` jobs, the last one measuring
only the loss at the final point.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from .driver import Driver, make_rng
from .evaluators import MetricEvaluator, warn_frozen_noise
from .interface import OptimizerInterface
from .natural_steps import NaturalSteps
from .precision import as_precision_rule
from .scipy_adapter import scipy_minimize
from .spsa import CALLBACK, TERMINATIONCHECKER
from .state import NaturalGradientState
from .steppable import Steppable, resume_state
from .validation import check_callable, check_int, check_number, check_seed

__all__ = ["NaturalGradient"]


_APPROX = (None, "block_diag", "diag")


def _has_metric(estimator: Any) -> bool:
    """Whether ``estimator`` already returns a metric (a ``GradientEstimator(...,
    metric=...)``, or any estimator announcing one with a ``metric`` attribute)."""
    from qprim_grad import GradientEstimator

    if isinstance(estimator, GradientEstimator):
        return getattr(estimator, "_metric", None) is not None
    return getattr(estimator, "metric", None) is not None


class NaturalGradient(Steppable, OptimizerInterface):
    r"""Quantum natural gradient descent (Stokes et al. 2020) on any V2 estimator.

    Args:
        stepsize: the learning rate :math:`\eta` of ``x <- x - η pinv(g + λI) ∇f``.
        approx: the metric ``g = Re qgt``: ``None`` the full tensor (``"reverse"`` on
            qiskit's exact ``StatevectorEstimator``, else ``"lin_comb"``), ``"block_diag"``
            (exact within layers of commuting gates) or ``"diag"``.
        lam: Tikhonov regularisation :math:`\lambda` added to the metric.
        maxiter: number of iterations.
        gradient_method: the gradient method of the ``GradientEstimator``.
        gradient_options: options of the gradient method (e.g. ``{"epsilon": 0.01}``).
        metric_options: options of the metric method (e.g. ``{"pass_manager": pm}``).
        rcond: relative cutoff of the pseudo-inverse: eigenvalues below ``rcond`` times the
            largest are dropped.
        relative_lam: regularisation relative to the metric's largest eigenvalue (added to
            ``lam``; e.g. ``1e-2`` on shot noise, where small eigenvalues are mostly noise).
        max_step: the longest step taken (Euclidean norm); a longer one is shortened to it,
            with a warning. ``None``: no cap.
        callback: ``callback(nfev, x, fx, stepsize, accepted)`` once per step (``stepsize``
            is the norm of the step taken, ``fx`` the loss measured at ``x``).
        termination_checker: ``checker(nfev, x, fx, stepsize, accepted) -> bool``; ``True``
            stops the run.
        seed: passed to a randomised gradient method (``"spsa"``) unless its options set one.
        checkpoint: JSON file the state is written to after every iteration; continue with
            :meth:`resume` (or ``minimize(loss, x0, state=path)``).
        progress: show a progress bar (jobs, shots, time left).
        precision: each iteration's precision: ``None`` (the estimator's own), a number, a
            callable ``iteration -> precision`` or ``"adaptive"`` (:mod:`.precision`).

    The defaults of ``rcond`` and ``max_step`` keep a nearly singular metric from throwing
    the iterate away (docs: natural gradients); on a well-conditioned metric the step is
    ``stepsize * pinv(Re qgt + lam * I) @ grad``.

    ``minimize(loss, x0)`` takes an :class:`~.loss.EstimatorLoss`. Its estimator is wrapped
    as ``GradientEstimator(estimator, method=gradient_method, metric=...)`` (a
    ``GradientEstimator`` without metric is unwrapped first); an estimator that already
    carries a metric is used as it is (its gradient method and metric win). Each iteration
    is one ``run`` of it: one job on the inner primitive.

    Example:
        >>> import numpy as np
        >>> from qiskit.circuit.library import real_amplitudes
        >>> from qiskit.primitives import StatevectorEstimator
        >>> from qprim_grad.optimizers import NaturalGradient, EstimatorLoss
        >>> loss = EstimatorLoss(StatevectorEstimator(), real_amplitudes(2, reps=1), "ZZ")
        >>> result = NaturalGradient(stepsize=0.1, maxiter=30).minimize(loss, np.full(4, 0.3))
        >>> bool(result.fun < -0.99), result.nit, result.jobs
        (True, 30, 31)
    """

    def __init__(
        self,
        stepsize: float = 0.01,
        approx: str | None = "block_diag",
        lam: float = 0.0,
        maxiter: int = 100,
        gradient_method: Any = "param_shift",
        *,
        gradient_options: dict[str, Any] | None = None,
        metric_options: dict[str, Any] | None = None,
        rcond: float = 1e-4,
        relative_lam: float = 0.0,
        max_step: float | None = 0.5,
        callback: CALLBACK | None = None,
        termination_checker: TERMINATIONCHECKER | None = None,
        seed: int | np.random.Generator | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        progress: bool = False,
        precision: float | Callable[[int], float] | str | None = None,
    ) -> None:
        _check_arguments(locals())
        self.stepsize = float(stepsize)
        self.relative_lam = float(relative_lam)
        self.max_step = None if max_step is None else float(max_step)
        self.precision = precision
        self.approx = approx
        self.lam = float(lam)
        self.maxiter = int(maxiter)
        self.gradient_method = gradient_method
        self.gradient_options = dict(gradient_options or {})
        self.metric_options = dict(metric_options or {})
        self.rcond = rcond
        self.callback = callback
        self.termination_checker = termination_checker
        self.seed = seed
        self.checkpoint = checkpoint
        self.progress = progress
        self._max_evals_grouped: int | None = None
        self._options: dict[str, Any] = {}

    def get_support_level(self) -> dict[str, Any]:
        """The loss supplies gradient and metric; bounds are ignored."""
        return super().get_support_level()

    @property
    def settings(self) -> dict[str, Any]:
        """Constructor arguments: ``NaturalGradient(**ng.settings)`` rebuilds it."""
        return {
            name: getattr(self, name)
            for name in inspect.signature(NaturalGradient.__init__).parameters
            if name != "self"
        }

    def replace(self, **changes: Any) -> NaturalGradient:
        """A copy with some constructor arguments changed."""
        kwargs = self.settings
        unknown = set(changes) - set(kwargs)
        if unknown:
            raise TypeError(f"Unknown NaturalGradient arguments: {sorted(unknown)}")
        kwargs.update(changes)
        return type(self)(**kwargs)

    # ---- the estimator of loss, gradient and metric --------------------------------------
    def metric_method(self, estimator: Any) -> str:
        """The metric method ``approx`` stands for on ``estimator``."""
        if self.approx is not None:
            return self.approx
        from qiskit.primitives import StatevectorEstimator

        return "reverse" if isinstance(estimator, StatevectorEstimator) else "lin_comb"

    def metric_estimator(self, estimator: Any) -> Any:
        """``GradientEstimator(estimator, method=gradient_method, metric=...)`` — or
        ``estimator`` itself if it already carries a metric."""
        if _has_metric(estimator):
            return estimator
        from qprim_grad import GradientEstimator

        if isinstance(estimator, GradientEstimator):
            estimator = estimator.estimator
        options = dict(self.gradient_options)
        if self.gradient_method == "spsa" and "seed" not in options and self.seed is not None:
            options["seed"] = self.seed
        return GradientEstimator(
            estimator,
            method=self.gradient_method,
            metric=self.metric_method(estimator),
            metric_options=self.metric_options or None,
            **options,
        )

    # ---- minimisation --------------------------------------------------------------------
    def minimize(
        self,
        fun: Any,
        x0: Any,
        jac: Any = None,
        bounds: Any = None,
        *,
        state: NaturalGradientState | str | os.PathLike[str] | None = None,
        **scipy_arguments: Any,
    ) -> Any:
        """Minimise the :class:`~.loss.EstimatorLoss` ``fun`` from ``x0`` (``jac`` and
        ``bounds`` are ignored). ``state`` (a :class:`~.state.NaturalGradientState` or a checkpoint
        path) continues a run.

        Returns an ``OptimizerResult`` with ``x``, ``fun``, ``nfev``, ``njev``, ``nit``,
        ``jobs``, ``history`` and ``state``; as a ``scipy.optimize.minimize`` method, an
        ``OptimizeResult``.
        """
        if scipy_arguments:
            return self._scipy_minimize(fun, x0, jac=jac, bounds=bounds, **scipy_arguments)
        return self._driver(fun, x0, state).run()

    label = "NaturalGradient"
    resume_options = ("stepsize", "approx", "lam", "rcond", "relative_lam", "max_step")

    def _steps(self) -> NaturalSteps:
        return NaturalSteps(
            stepsize=self.stepsize,
            maxiter=self.maxiter,
            lam=self.lam,
            rcond=self.rcond,
            relative_lam=self.relative_lam,
            max_step=self.max_step,
            precision=as_precision_rule(self.precision),
        )

    def _driver(self, fun: Any, x0: Any, state: Any) -> Driver:
        _check_loss(fun)
        steps = self._steps()
        settings = {name: getattr(self, name) for name in self.resume_options}
        if state is None:
            if x0 is None:
                raise ValueError("x0 is required unless a state is given.")
            x = np.array(x0, dtype=float).reshape(-1)
            if x.size != fun.num_parameters:
                raise ValueError(
                    f"x0 has {x.size} values, the circuit has {fun.num_parameters} parameters."
                )
            run_state = steps.init(x, make_rng(self.seed), settings=settings, optimizer=self.label)
        else:
            run_state = resume_state(
                NaturalGradientState, state, x0, fun, self.label, settings, None, self.maxiter
            )
        warn_frozen_noise(fun, self.label)
        evaluator = MetricEvaluator(fun, self.metric_estimator(fun.estimator))
        return self._new_driver(steps, evaluator, run_state)

    def resume(self, fun: Any, path: str | os.PathLike[str]) -> Any:
        """Continue the run saved in the checkpoint ``path``."""
        return self.minimize(fun, None, state=path)

    @property
    def scipy_method(self) -> Callable[..., Any]:
        """This optimizer as a method of ``scipy.optimize.minimize`` (``options`` override
        constructor arguments; ``callback`` may raise ``StopIteration``)."""
        return self._scipy_minimize

    def _scipy_minimize(self, fun: Any, x0: Any, args: tuple = (), **kwargs: Any) -> Any:
        if args:
            raise TypeError("NaturalGradient minimizes an EstimatorLoss; it takes no args=.")
        return scipy_minimize(self, fun, x0, name="NaturalGradient", **kwargs)


def _check_loss(loss: Any) -> None:
    for name in ("estimator", "circuit", "observable"):
        if not hasattr(loss, name):
            raise TypeError(
                "NaturalGradient needs an EstimatorLoss(estimator, circuit, observable) "
                f"(it measures gradient and metric on the circuit), not {type(loss).__name__}."
            )


def _check_arguments(options: dict[str, Any]) -> None:
    """Every option's type and range, before anything runs."""
    owner = "NaturalGradient"
    approx = options["approx"]
    if approx not in _APPROX:
        raise ValueError(
            f"{owner}(approx={approx!r}): give None (the full tensor), 'block_diag' or 'diag'."
        )
    check_number(owner, "stepsize", options["stepsize"], positive=True)
    check_number(owner, "lam", options["lam"])
    check_number(owner, "relative_lam", options["relative_lam"])
    check_number(
        owner,
        "rcond",
        options["rcond"],
        need="the relative eigenvalue cutoff must be a finite number in [0, 1).",
    )
    if options["rcond"] >= 1:
        raise ValueError(f"{owner}(rcond={options['rcond']!r}): give a number in [0, 1).")
    check_number(owner, "max_step", options["max_step"], positive=True, none_ok=True)
    check_int(owner, "maxiter", options["maxiter"])
    for name in ("gradient_options", "metric_options"):
        if options[name] is not None and not isinstance(options[name], dict):
            raise ValueError(f"{owner}({name}={options[name]!r}): give a dict or None.")
    gm = options["gradient_method"]
    if not isinstance(gm, str) and not hasattr(gm, "plan") and not callable(gm):
        raise ValueError(
            f"{owner}(gradient_method={gm!r}): give a method name such as 'param_shift' or a "
            "method object."
        )
    for name in ("callback", "termination_checker"):
        check_callable(owner, name, options[name])
    check_seed(owner, options["seed"])
    if not isinstance(options["progress"], (bool, np.bool_)):
        raise ValueError(f"{owner}(progress={options['progress']!r}): give True or False.")
    as_precision_rule(options["precision"])
