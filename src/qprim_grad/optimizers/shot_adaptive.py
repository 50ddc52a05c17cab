r"""Gradient descent with adaptive shots per iteration and per parameter (iCANS, gCANS).

Each iteration measures, in **one** job, the loss and its parameter-shift gradient at the
current point, every gradient component with the shots its rule gave it (parameters with
the same shots share one pub), reads each component's per-shot variance from the reported
``grad_stds`` and the shots used, updates the running means and chooses the next shots
(:mod:`.shot_rules`). A run of ``n`` iterations submits ``n + 1`` jobs: the last one
measures the loss at the final point.

Shots are *shots per measurement basis* of one circuit evaluation (a pub at precision
:math:`1/\sqrt{s}`); a run counts what its jobs asked for: evaluations x measurement bases
(qubit-wise commuting groups of the observable) x shots per basis.
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from .driver import Driver, make_rng
from .evaluators import warn_frozen_noise
from .interface import OptimizerInterface
from .protocol import AskData
from .shot_adaptive_steps import (
    ShotAdaptiveAsk,
    ShotAdaptiveRecord,
    ShotAdaptiveState,
    ShotAdaptiveSteps,
    ShotAdaptiveTell,
    ShotMeasurer,
    precision_of,
)
from .shot_rules import RULES
from .steppable import Steppable, resume_state

__all__ = [
    "ShotAdaptive",
    "ShotAdaptiveAsk",
    "ShotAdaptiveRecord",
    "ShotAdaptiveState",
    "ShotAdaptiveSteps",
    "ShotAdaptiveTell",
    "precision_of",
]

CALLBACK = Callable[[int, np.ndarray, float, float, bool], None]


# ---- the optimizer ---------------------------------------------------------------------------
class ShotAdaptive(Steppable, OptimizerInterface):
    r"""Gradient descent with adaptive shots per iteration and per parameter.

    Each iteration measures loss and parameter-shift gradient in one job, component
    :math:`i` with :math:`s_i` shots per measurement basis, and steps
    :math:`x_i \leftarrow x_i - \alpha_i g_i`. Running means of the gradient (:math:`\chi`) and
    of each component's per-shot variance (:math:`\xi`, read from the reported ``grad_stds``
    and the shots used), bias-corrected, give the next shots by ``rule``:

    * ``"icans1"`` — iCANS of Kübler, Arrasmith, Cincio, Coles, Quantum 4, 263 (2020):
      :math:`s_i = \lceil \frac{2L\alpha}{2-L\alpha}\,\xi_i/(\chi_i^2 + b\mu^k)\rceil`, capped
      at the shots of the component with the largest expected gain per shot;
    * ``"icans2"`` — the same shots, and each component's learning rate lowered to the one
      maximising its expected gain for those shots,
      :math:`\alpha_i = \min(\alpha, \chi_i^2/(L(\chi_i^2 + \xi_i/s_i)))`;
    * ``"gcans"`` — gCANS of Gu et al., arXiv:2108.10434 (2021): one allocation for the whole
      gradient, shots in proportion to each component's per-shot standard deviation,
      :math:`s_i = \lceil \frac{2L\alpha}{2-L\alpha}\sqrt{\xi_i}\sum_j\sqrt{\xi_j}
      /(\lVert\chi\rVert^2 + b\mu^k)\rceil`.

    All clip to ``[min_shots, max_shots]``. Within each iteration, a ``GradientEstimator``
    with ``allocation="optimal"`` as the loss' estimator spreads each component's shots over
    the observable's measurement groups (the weighted allocation across terms of Arrasmith
    et al., arXiv:2004.06252, Rosalin).

    Args:
        stepsize: the learning rate :math:`\alpha`; must be below :math:`2/L`. ``None``:
            :math:`1/L`.
        rule: ``"icans1"``, ``"icans2"`` or ``"gcans"``.
        min_shots: shots per basis of the first iteration and the least of any component.
        maxiter: number of iterations.
        seed: kept for the optimizers' common signature. The rules are deterministic given
            the measurements, so a run repeats exactly when its estimator does (a seeded
            simulator); no global random state is read.
        callback: ``callback(nfev, x, fx, stepsize, accepted)`` after every iteration, as for
            ``SPSA`` (``fx`` measured at ``x`` before the step, ``stepsize`` the step's length).
        lipschitz: the Lipschitz constant :math:`L` of the gradient. ``None``:
            :math:`\sum_k |c_k|` over the non-identity terms of the loss' observable, a bound
            when every parameter enters one Pauli rotation.
        mu: decay :math:`\mu` of the running means.
        bias: :math:`b`, keeps the first shots finite where the gradient is still near zero.
        max_shots: most shots per basis for one component (``None``: no cap).
        shot_levels: round shots up to a grid of this many values per doubling (at most
            19 % more shots with 4), so that a job has few distinct precisions: parameters
            with equal shots share one pub and one loss evaluation, and ``BackendEstimatorV2``
            runs each distinct precision separately. ``None``: the rule's shots exactly.
        termination_checker: ``checker(nfev, x, fx, stepsize, accepted) -> bool``; ``True``
            stops the run.
        checkpoint: JSON file the state is written to after every iteration.
        progress: show a progress line (iterations, loss, jobs, shots, time left).

    On an exact primitive (qiskit's ``StatevectorEstimator`` at precision 0) every variance
    is zero, every component gets ``min_shots`` and the run counts 0 shots: plain gradient
    descent. ``minimize(loss, x0)`` takes an :class:`~.loss.EstimatorLoss` and is a loop of
    :meth:`ask`, :meth:`evaluate`, :meth:`tell`; the result has ``x``, ``fun``, ``nfev``,
    ``njev``, ``nit``, ``jobs``, ``shots``, ``history`` and ``state``.

    Example:
        >>> import numpy as np
        >>> from qiskit.circuit.library import real_amplitudes
        >>> from qiskit.primitives import StatevectorEstimator
        >>> from qprim_grad.optimizers import EstimatorLoss, ShotAdaptive
        >>> loss = EstimatorLoss(StatevectorEstimator(), real_amplitudes(2, reps=1), "ZZ")
        >>> result = ShotAdaptive(stepsize=0.5, maxiter=30).minimize(loss, np.full(4, 0.3))
        >>> bool(result.fun < -0.99), result.nit, result.jobs, result.shots
        (True, 30, 31, 0)
    """

    def __init__(
        self,
        stepsize: float | None = None,
        rule: str = "gcans",
        min_shots: int = 10,
        maxiter: int = 100,
        seed: int | np.random.Generator | None = None,
        callback: CALLBACK | None = None,
        *,
        lipschitz: float | None = None,
        mu: float = 0.99,
        bias: float = 1e-6,
        max_shots: int | None = None,
        shot_levels: int | None = 4,
        termination_checker: Callable[..., bool] | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        progress: bool = False,
    ) -> None:
        _check_arguments(stepsize, rule, min_shots, maxiter, lipschitz, mu, bias, max_shots)
        if shot_levels is not None and (
            isinstance(shot_levels, bool)
            or not isinstance(shot_levels, (int, np.integer))
            or shot_levels < 1
        ):
            raise ValueError(
                f"shot_levels must be None or a positive integer, got {shot_levels!r}."
            )
        self.stepsize = None if stepsize is None else float(stepsize)
        self.rule = rule
        self.min_shots = int(min_shots)
        self.maxiter = int(maxiter)
        self.seed = seed
        self.callback = callback
        self.lipschitz = None if lipschitz is None else float(lipschitz)
        self.mu = float(mu)
        self.bias = float(bias)
        self.max_shots = None if max_shots is None else int(max_shots)
        self.shot_levels = None if shot_levels is None else int(shot_levels)
        self.termination_checker = termination_checker
        self.checkpoint = checkpoint
        if not isinstance(progress, (bool, np.bool_)):
            raise ValueError(f"ShotAdaptive(progress={progress!r}): give True or False.")
        self.progress = bool(progress)
        self._max_evals_grouped: int | None = None
        self._options: dict[str, Any] = {}
        self._run = None

    @property
    def settings(self) -> dict[str, Any]:
        """Constructor arguments: ``ShotAdaptive(**opt.settings)`` rebuilds it."""
        return {
            name: getattr(self, name)
            for name in inspect.signature(ShotAdaptive.__init__).parameters
            if name != "self"
        }

    def stepsize_for(self, lipschitz: float) -> float:
        """The learning rate: ``stepsize``, or ``1/L`` if unset."""
        return 1.0 / lipschitz if self.stepsize is None else self.stepsize

    label = "ShotAdaptive"
    resume_options = ("stepsize", "rule", "min_shots", "mu", "bias", "max_shots", "shot_levels")

    # ---- the steppable protocol (over the driver's run) -------------------------------------
    def _driver(self, fun: Any, x0: Any, state: Any) -> Driver:
        measurer = ShotMeasurer(fun)
        settings = {name: getattr(self, name) for name in self.resume_options}
        if state is None:
            if x0 is None:
                raise ValueError("x0 is required unless a state is given.")
            x = np.array(x0, dtype=float).reshape(-1)
            if x.size != len(measurer.parameters):
                raise ValueError(
                    f"x0 has {x.size} values, the circuit has {len(measurer.parameters)} "
                    "parameters."
                )
            lipschitz = (
                self.lipschitz if self.lipschitz is not None else _pauli_norm(fun.observable)
            )
            alpha = self.stepsize_for(lipschitz)
            if not alpha * lipschitz < 2:
                raise ValueError(
                    f"stepsize={alpha} is not below 2/L = {2 / lipschitz:.4g} (L="
                    f"{lipschitz:.4g}, the Lipschitz constant of the gradient); choose a smaller "
                    "stepsize (1/L is a safe choice) or pass lipschitz= if your bound is tighter."
                )
            run_state = ShotAdaptiveState.initial(
                x,
                lipschitz,
                alpha,
                self.min_shots,
                make_rng(self.seed),
                settings=settings,
                optimizer=self.label,
            )
        else:
            run_state = resume_state(
                ShotAdaptiveState, state, x0, fun, self.label, settings, None, self.maxiter
            )
        warn_frozen_noise(fun, self.label)
        steps = ShotAdaptiveSteps(
            stepsize=self.stepsize_for(run_state.lipschitz),
            rule=self.rule,
            min_shots=self.min_shots,
            maxiter=self.maxiter,
            mu=self.mu,
            bias=self.bias,
            max_shots=self.max_shots,
            shot_levels=self.shot_levels,
        )
        return self._new_driver(steps, measurer, run_state)

    def tell(self, ask_data: AskData, tell_data: Any) -> None:
        """Take a job's measurements (any object with ``eval_fun``; for an iteration also
        ``eval_jac`` and, under shot noise, ``jac_stds`` and ``jac_shots``)."""
        if not hasattr(tell_data, "eval_fun"):
            raise TypeError(
                f"tell_data must have eval_fun (a TellData), got {type(tell_data).__name__}."
            )
        super().tell(ask_data, tell_data)

    def create_result(self) -> Any:
        """The result where the run stands; ``history`` holds one
        :class:`ShotAdaptiveRecord` per iteration."""
        result = super().create_result()
        result.history = result.state.records()
        return result

    # ---- minimisation ------------------------------------------------------------------------
    def minimize(
        self,
        fun: Any,
        x0: Any,
        jac: Any = None,
        bounds: Any = None,
        *,
        state: ShotAdaptiveState | str | os.PathLike[str] | None = None,
    ) -> Any:
        """Minimise the :class:`~.loss.EstimatorLoss` ``fun`` from ``x0`` (``state``: continue
        a run). One job per iteration, and one for the loss at the final point."""
        self.start(fun, x0, jac, bounds, state=state)
        self._current().run()
        return self.create_result()

    def resume(self, fun: Any, path: str | os.PathLike[str]) -> Any:
        """Continue the run saved in the checkpoint ``path``."""
        return self.minimize(fun, None, state=path)


def _pauli_norm(observable: Any) -> float:
    """:math:`\\sum |c_k|` over the non-identity Pauli terms."""
    paulis = observable.paulis
    identity = ~(np.any(paulis.z, axis=1) | np.any(paulis.x, axis=1))
    total = float(np.sum(np.abs(observable.coeffs)[~identity]))
    if total <= 0:
        raise ValueError(
            "The observable has no non-identity term: its gradient is zero everywhere."
        )
    return total


def _check_arguments(
    stepsize: Any,
    rule: Any,
    min_shots: Any,
    maxiter: Any,
    lipschitz: Any,
    mu: Any,
    bias: Any,
    max_shots: Any,
) -> None:
    def positive(name: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise TypeError(f"{name} must be a number, got {value!r}.")
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a positive finite number, got {value!r}.")

    def integer(name: str, value: Any, least: int) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an integer, got {value!r}.")
        if value < least:
            raise ValueError(f"{name} must be at least {least}, got {value!r}.")

    if stepsize is not None:
        positive("stepsize", stepsize)
    if rule not in RULES:
        raise ValueError(f"rule={rule!r} is not one of {', '.join(map(repr, RULES))}.")
    integer("min_shots", min_shots, 1)
    integer("maxiter", maxiter, 0)
    if lipschitz is not None:
        positive("lipschitz", lipschitz)
    if isinstance(mu, bool) or not isinstance(mu, (int, float)) or not 0 <= mu < 1:
        raise ValueError(f"mu must be a number in [0, 1), got {mu!r}.")
    if isinstance(bias, bool) or not isinstance(bias, (int, float)) or not bias >= 0:
        raise ValueError(f"bias must be a non-negative number, got {bias!r}.")
    if max_shots is not None:
        integer("max_shots", max_shots, 1)
        if max_shots < min_shots:
            raise ValueError(
                f"max_shots={max_shots} is below min_shots={min_shots}; raise max_shots."
            )
