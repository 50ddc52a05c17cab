"""SPSA and 2-SPSA with one primitive job per iteration, seeded and resumable.

Two schedules share the same pieces (:mod:`.gains`, :mod:`.steps`, :mod:`.state`):

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
* **sequential** (a plain callable): the order of evaluations of qiskit-algorithms' SPSA,
  with ``max_evals_grouped`` honoured; with the same seed (``algorithm_globals.random_seed``
  there, ``seed=`` here) the iterates are the same.

>>> import numpy as np
>>> from qprim_grad.optimizers import SPSA, batched
>>> loss = batched(lambda X: np.sum(np.atleast_2d(X) ** 2, axis=1))
>>> spsa = SPSA(maxiter=50, learning_rate=0.1, perturbation=0.1, seed=1)
>>> result = spsa.minimize(loss, [1.0, -1.0])
>>> bool(result.fun < 1e-2), result.nit, result.jobs
(True, 50, 51)
"""

from __future__ import annotations

import copy
import inspect
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any, SupportsFloat

import numpy as np

from ..errors import NonFiniteLossError
from .compat import global_generator
from .gains import Gain, PowerSeries, as_gain
from .loss import evaluate, evaluate_batch, evaluate_grouped, is_batched, num_calls
from .result import OptimizerSupportLevel, make_result
from .state import SPSAState
from .steps import (
    accepts,
    calibration_points,
    calibration_scale,
    clip_to_trust_region,
    estimate,
    num_resamplings,
    perturbation_points,
    precondition,
    sample_directions,
    smooth_hessian,
)

__all__ = ["SPSA", "CALLBACK", "TERMINATIONCHECKER", "NonFiniteLossError"]

logger = logging.getLogger("qprim_grad.optimizers")

#: ``callback(nfev, x, fx, stepsize, accepted)``
CALLBACK = Callable[[int, np.ndarray, float, SupportsFloat, bool], None]
#: ``termination_checker(nfev, x, fx, stepsize, accepted) -> stop?``
TERMINATIONCHECKER = Callable[[int, np.ndarray, float, SupportsFloat, bool], bool]

_STDDEV_SAMPLES = 25
_CALIBRATION_STEPS = 25
_FINGERPRINT = (
    "blocking",
    "trust_region",
    "last_avg",
    "resamplings",
    "perturbation_dims",
    "second_order",
    "regularization",
    "hessian_delay",
)


def _make_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return copy.deepcopy(seed)  # never advance the user's generator
    if seed is None:  # as qiskit-algorithms: its global generator, advanced in its order
        shared = global_generator()
        if shared is not None:
            return shared
    return np.random.default_rng(seed)


class _OptimizerInterface:
    """The parts of qiskit-algorithms' ``Optimizer`` interface that SPSA inherits there."""

    _max_evals_grouped: int | None
    _options: dict[str, Any]

    def get_support_level(self) -> dict[str, OptimizerSupportLevel]:
        """Gradient and bounds are ignored, an initial point is required."""
        return {
            "gradient": OptimizerSupportLevel.ignored,
            "bounds": OptimizerSupportLevel.ignored,
            "initial_point": OptimizerSupportLevel.required,
        }

    @property
    def gradient_support_level(self) -> OptimizerSupportLevel:
        return self.get_support_level()["gradient"]

    @property
    def bounds_support_level(self) -> OptimizerSupportLevel:
        return self.get_support_level()["bounds"]

    @property
    def initial_point_support_level(self) -> OptimizerSupportLevel:
        return self.get_support_level()["initial_point"]

    is_gradient_ignored = property(lambda self: self.gradient_support_level == 1)
    is_gradient_supported = property(lambda self: self.gradient_support_level != 0)
    is_gradient_required = property(lambda self: self.gradient_support_level == 3)
    is_bounds_ignored = property(lambda self: self.bounds_support_level == 1)
    is_bounds_supported = property(lambda self: self.bounds_support_level != 0)
    is_bounds_required = property(lambda self: self.bounds_support_level == 3)
    is_initial_point_ignored = property(lambda self: self.initial_point_support_level == 1)
    is_initial_point_supported = property(lambda self: self.initial_point_support_level != 0)
    is_initial_point_required = property(lambda self: self.initial_point_support_level == 3)

    def set_max_evals_grouped(self, limit: int | None) -> None:
        """Points per call of a plain callable (as qiskit-algorithms). A batched loss always
        gets a whole iteration in one call."""
        self._max_evals_grouped = limit

    def set_options(self, **kwargs: Any) -> None:
        """Store options (kept for interface compatibility; SPSA does not read them)."""
        self._options.update(kwargs)

    def print_options(self) -> None:
        for name in sorted(self._options):
            logger.debug("%s = %s", name, self._options[name])

    @property
    def setting(self) -> str:
        lines = [f"Optimizer: {type(self).__name__}"]
        lines += [f"-- {key}: {value}" for key, value in self.settings.items()]
        return "\n".join(lines) + "\n"

    @property
    def settings(self) -> dict[str, Any]:  # pragma: no cover - overridden
        raise NotImplementedError

    @staticmethod
    def wrap_function(function: Callable, args: tuple) -> Callable:
        """``function`` with ``args`` appended to every call."""

        def wrapped(*call_args: Any) -> Any:
            return function(*(call_args + args))

        return wrapped

    @staticmethod
    def gradient_num_diff(
        x_center: np.ndarray,
        f: Callable,
        epsilon: float,
        max_evals_grouped: int | None = None,
    ) -> np.ndarray:
        """Forward-difference gradient of ``f`` at ``x_center``."""
        x_center = np.asarray(x_center, dtype=float)
        f0 = float(np.real(np.asarray(f(x_center)).reshape(-1)[0]))
        shifted = x_center + epsilon * np.identity(x_center.size)
        values = evaluate_grouped(f, shifted, max_evals_grouped)
        return (np.asarray(values) - f0) / epsilon


class _Progress:
    """A progress line on stderr (tqdm if installed)."""

    def __init__(self, total: int, enabled: bool, start: int, name: str = "SPSA") -> None:
        self.bar = None
        self.name = name
        self.enabled = enabled
        self.total = total
        if not enabled:
            return
        try:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=start, desc=name, leave=True)
        except ImportError:
            self.bar = None

    def update(self, k: int, loss: float | None) -> None:
        if not self.enabled:
            return
        text = "" if loss is None else f"loss={loss:.6g}"
        if self.bar is not None:
            self.bar.n = k
            self.bar.set_postfix_str(text)
            self.bar.refresh()
        else:
            sys.stderr.write(f"\r{self.name} {k}/{self.total} {text}   ")
            sys.stderr.flush()

    def status(self, text: str) -> None:
        """Show ``text`` while something other than an iteration runs (the calibration)."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix_str(text)
            self.bar.refresh()
        else:
            sys.stderr.write(f"\rSPSA {text}   ")
            sys.stderr.flush()

    def close(self) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.close()
        else:
            sys.stderr.write("\n")


class SPSA(_OptimizerInterface):
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
        progress: show a progress bar (tqdm if installed, else a stderr line).

    ``minimize`` never changes these attributes; all run data live in an
    :class:`~.state.SPSAState`. See the module docstring for the batched one-job-per-iteration
    schedule.

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
    ) -> None:
        for value, name in ((learning_rate, "learning_rate"), (perturbation, "perturbation")):
            if isinstance(value, (list, tuple, np.ndarray)) and len(value) < maxiter:
                raise ValueError(f"Length of {name} is smaller than maxiter ({maxiter}).")
            _check_gain_values(value, name)
        if (learning_rate is None) != (perturbation is None):
            raise ValueError(
                "If one of learning rate or perturbation is set, both must be set "
                "(or neither, to calibrate both)."
            )
        self.maxiter = maxiter
        self.blocking = blocking
        self.allowed_increase = allowed_increase
        self.trust_region = trust_region
        self.learning_rate = learning_rate
        self.perturbation = perturbation
        self.last_avg = last_avg
        self.resamplings = resamplings
        self.perturbation_dims = perturbation_dims
        self.second_order = second_order
        self.regularization = 0.01 if regularization is None else regularization
        self.hessian_delay = hessian_delay
        self.lse_solver = lse_solver
        self.initial_hessian = initial_hessian
        self.callback = callback
        self.termination_checker = termination_checker
        self.seed = seed
        self.checkpoint = checkpoint
        self.progress = progress
        self._max_evals_grouped: int | None = None
        self._options: dict[str, Any] = {}

    # ---- qiskit-algorithms static methods -----------------------------------------------
    @staticmethod
    def calibrate(
        loss: Callable[[np.ndarray], float],
        initial_point: np.ndarray,
        c: float = 0.2,
        stability_constant: float = 0,
        target_magnitude: float | None = None,
        alpha: float = 0.602,
        gamma: float = 0.101,
        modelspace: bool = False,
        max_evals_grouped: int | None = 1,
        *,
        seed: int | np.random.Generator | None = None,
    ) -> tuple[PowerSeries, PowerSeries]:
        r"""Calibrate ``a`` of the power series :math:`a_k = a / (A + k + 1)^\alpha`,
        :math:`c_k = c / (k + 1)^\gamma` so that the first step has length
        ``target_magnitude`` (default :math:`2\pi/10`), from 25 random directions.

        A batched loss is evaluated in one call (one job). Returns ``(learning_rate,
        perturbation)`` as :class:`~.gains.PowerSeries`, which are also callables returning
        iterators, as qiskit-algorithms returns them. ``seed`` may be a ``Generator``, which
        is then advanced.

        >>> import numpy as np
        >>> lr, pert = SPSA.calibrate(lambda x: float(x @ x), np.ones(2), seed=0)
        >>> pert.at(1), round(lr.at(1), 3)
        (0.2, 0.393)
        """
        rng = seed if isinstance(seed, np.random.Generator) else None
        rng = rng or (global_generator() if seed is None else None) or np.random.default_rng(seed)
        x0 = np.asarray(initial_point, dtype=float)
        points = calibration_points(rng, x0, c, _CALIBRATION_STEPS)
        values = evaluate(loss, points, max_evals_grouped)
        _check_finite_loss(values, "calibration")
        target = 2 * np.pi / 10 if target_magnitude is None else target_magnitude
        a = calibration_scale(values, c, target, modelspace)
        if not np.isfinite(a) or a < 1e-10:
            warnings.warn(f"Calibration failed, using {target} for `a`", stacklevel=2)
            a = target
        logger.info(
            "SPSA calibration: learning rate a/(A+k)^alpha with a=%.4g, A=%.4g, alpha=%.4g; "
            "perturbation c/k^gamma with c=%.4g, gamma=%.4g",
            a,
            stability_constant,
            alpha,
            c,
            gamma,
        )
        return PowerSeries(a, alpha, stability_constant + 0.0), PowerSeries(c, gamma)

    @staticmethod
    def estimate_stddev(
        loss: Callable[[np.ndarray], float],
        initial_point: np.ndarray,
        avg: int = 25,
        max_evals_grouped: int = 1,
    ) -> float:
        """Standard deviation of ``avg`` evaluations at ``initial_point`` (one job if the
        loss is batched)."""
        points = np.repeat(np.asarray(initial_point, dtype=float)[None, :], avg, axis=0)
        return float(np.std(evaluate(loss, points, max_evals_grouped)))

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
        }

    def replace(self, **changes: Any) -> Any:
        """A copy with some constructor arguments changed."""
        kwargs = {
            name: getattr(self, name)
            for name in inspect.signature(type(self).__init__).parameters
            if name != "self"
        }
        unknown = set(changes) - set(kwargs)
        if unknown:
            raise TypeError(f"Unknown SPSA arguments: {sorted(unknown)}")
        kwargs.update(changes)
        new = type(self)(**kwargs)
        new._max_evals_grouped = self._max_evals_grouped
        new._options = dict(self._options)
        return new

    def _fingerprint(self) -> dict[str, Any]:
        out = {}
        for name in _FINGERPRINT:
            value = getattr(self, name)
            out[name] = {str(k): v for k, v in value.items()} if isinstance(value, dict) else value
        return out

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
        return self._new_run(fun, x0, state).run()

    def _new_run(self, fun: Callable[[np.ndarray], float], x0: Any, state: Any) -> _Run:
        """The object that runs one ``minimize`` (QN-SPSA supplies its own)."""
        return _Run(self, fun, x0, state)

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

    def _scipy_minimize(
        self,
        fun: Callable[..., float],
        x0: np.ndarray,
        args: tuple = (),
        jac: Any = None,
        hess: Any = None,
        hessp: Any = None,
        bounds: Any = None,
        constraints: Any = (),
        callback: Callable[..., Any] | None = None,
        **options: Any,
    ) -> Any:
        from scipy.optimize import OptimizeResult

        from .loss import batched

        options.pop("tol", None)
        options.pop("disp", None)
        objective: Any = fun
        if args:
            objective = batched(fun, args) if is_batched(fun) else (lambda x: fun(x, *args))
        spsa = self.replace(**options) if options else self
        if callback is not None:
            spsa = spsa.replace(
                termination_checker=_scipy_stopper(callback, self.termination_checker)
            )
        result = spsa.minimize(objective, x0)
        return OptimizeResult(
            x=result.x,
            fun=result.fun,
            nfev=result.nfev,
            njev=result.njev,
            nit=result.nit,
            success=True,
            status=0,
            message="SPSA finished",
            history=result.history,
            jobs=result.jobs,
        )


def _scipy_stopper(callback: Callable[..., Any], inner: TERMINATIONCHECKER | None) -> Callable:
    """A termination checker that forwards to a scipy-style callback."""
    params = inspect.signature(callback).parameters
    new_style = "intermediate_result" in params

    def checker(nfev: int, x: np.ndarray, fx: float, stepsize: Any, accepted: bool) -> bool:
        from scipy.optimize import OptimizeResult

        try:
            if new_style:
                callback(intermediate_result=OptimizeResult(x=np.copy(x), fun=fx, nfev=nfev))
            else:
                callback(np.copy(x))
        except StopIteration:
            return True
        return bool(inner(nfev, x, fx, stepsize, accepted)) if inner is not None else False

    return checker


def _check_gain_values(spec: Any, name: str) -> None:
    """Fixed gains must be finite, and a perturbation non-zero (it divides the estimate)."""
    if spec is None or callable(spec):
        return
    values = np.ravel(np.asarray(spec, dtype=float))
    bad = ~np.isfinite(values)
    if name == "perturbation":
        bad |= values == 0
    if np.any(bad):
        where = "" if np.ndim(spec) == 0 else f" (entry {int(np.argmax(bad))}, iteration "
        where += "" if not where else f"{int(np.argmax(bad)) + 1})"
        need = "finite and non-zero" if name == "perturbation" else "finite"
        raise ValueError(f"{name} must be {need}, got {values[np.argmax(bad)]!r}{where}.")


def _check_finite_loss(values: Any, where: str) -> None:
    """Raise a :class:`NonFiniteLossError` if any loss value is NaN or infinite."""
    values = np.asarray(values, dtype=float)
    bad = ~np.isfinite(values)
    if np.any(bad):
        raise NonFiniteLossError(
            f"SPSA {where}: the loss returned {values[bad][0]} at {int(bad.sum())} of "
            f"{values.size} points; stopping"
        )


class _Run:
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
            self.rng = _make_rng(spsa.seed)
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
        self.progress = _Progress(spsa.maxiter, spsa.progress, self.state.k, type(spsa).__name__)
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
            _check_finite_loss(values, where)
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
            "SPSA calibration: measuring the loss at %d points %s...", 2 * _CALIBRATION_STEPS, how
        )
        self.progress.status(f"calibrating the gains: {2 * _CALIBRATION_STEPS} loss evaluations")
        self._mark()
        try:
            eta, eps = SPSA.calibrate(
                self.fun, self.state.x, max_evals_grouped=grouped, seed=self.rng
            )
        except NonFiniteLossError as exc:
            self._attach_state(exc)
            raise
        self.state.jobs += 1 if self.batched else num_calls(2 * _CALIBRATION_STEPS, grouped)
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
        return make_result(
            x=x,
            fun=fx,
            nfev=st.nfev,
            njev=st.njev,
            nit=st.k,
            jobs=st.jobs,
            history=copy.deepcopy(st.history),
            state=copy.deepcopy(st),
        )

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
                repeats = np.repeat(st.x[None, :], _STDDEV_SAMPLES, axis=0)
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
            repeats = _STDDEV_SAMPLES if cfg.blocking and st.allowed_increase is None else 0
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
