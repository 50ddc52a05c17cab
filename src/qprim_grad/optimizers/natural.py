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

from .interface import OptimizerInterface
from .natural_run import NaturalRun, natural_step
from .scipy_adapter import scipy_minimize
from .spsa import CALLBACK, TERMINATIONCHECKER
from .state import SPSAState

__all__ = ["NaturalGradient", "natural_step"]


_APPROX = (None, "block_diag", "diag")


def _has_metric(estimator: Any) -> bool:
    """Whether ``estimator`` already returns a metric (a ``GradientEstimator(...,
    metric=...)``, or any estimator announcing one with a ``metric`` attribute)."""
    from qprim_grad import GradientEstimator

    if isinstance(estimator, GradientEstimator):
        return getattr(estimator, "_metric", None) is not None
    return getattr(estimator, "metric", None) is not None


class NaturalGradient(OptimizerInterface):
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
        rcond: relative cutoff of the pseudo-inverse.
        callback: ``callback(nfev, x, fx, stepsize, accepted)`` once per step (``stepsize``
            is the norm of the step taken, ``fx`` the loss measured at ``x``).
        termination_checker: ``checker(nfev, x, fx, stepsize, accepted) -> bool``; ``True``
            stops the run.
        seed: passed to a randomised gradient method (``"spsa"``) unless its options set one.
        checkpoint: JSON file the state is written to after every iteration; continue with
            :meth:`resume` (or ``minimize(loss, x0, state=path)``).
        progress: show a progress bar.

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
        rcond: float = 1e-10,
        callback: CALLBACK | None = None,
        termination_checker: TERMINATIONCHECKER | None = None,
        seed: int | np.random.Generator | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        progress: bool = False,
    ) -> None:
        _check_arguments(approx, stepsize, lam, maxiter)
        self.stepsize = float(stepsize)
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
        state: SPSAState | str | os.PathLike[str] | None = None,
        **scipy_arguments: Any,
    ) -> Any:
        """Minimise the :class:`~.loss.EstimatorLoss` ``fun`` from ``x0`` (``jac`` and
        ``bounds`` are ignored). ``state`` (an :class:`~.state.SPSAState` or a checkpoint
        path) continues a run.

        Returns an ``OptimizerResult`` with ``x``, ``fun``, ``nfev``, ``njev``, ``nit``,
        ``jobs``, ``history`` and ``state``; as a ``scipy.optimize.minimize`` method, an
        ``OptimizeResult``.
        """
        if scipy_arguments:
            return self._scipy_minimize(fun, x0, jac=jac, bounds=bounds, **scipy_arguments)
        return NaturalRun(self, fun, x0, state).run()

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


def _check_arguments(approx: Any, stepsize: float, lam: float, maxiter: int) -> None:
    if approx not in _APPROX:
        raise ValueError(
            f"approx={approx!r} is not one of None (the full tensor), 'block_diag', 'diag'."
        )
    if not np.isfinite(stepsize) or stepsize <= 0:
        raise ValueError(f"stepsize must be a positive number, got {stepsize!r}.")
    if not np.isfinite(lam) or lam < 0:
        raise ValueError(f"lam must be a non-negative number, got {lam!r}.")
    if int(maxiter) != maxiter or maxiter < 0:
        raise ValueError(f"maxiter must be a non-negative integer, got {maxiter!r}.")
