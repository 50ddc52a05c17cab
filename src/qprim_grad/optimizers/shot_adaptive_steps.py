r"""ShotAdaptive's pure steps and its measurer: the data the protocol exchanges, the frozen
state, the steps over it (:class:`ShotAdaptiveSteps`) and the one job per iteration of loss
and parameter-shift gradient (:class:`ShotMeasurer`). The optimizer itself is
:class:`~.shot_adaptive.ShotAdaptive`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from .iteration import Step
from .protocol import AskData
from .shot_rules import bias_corrected, next_shots, running_means
from .spsa_steps import Told
from .state import RunState

__all__ = [
    "ShotAdaptiveAsk",
    "ShotAdaptiveRecord",
    "ShotAdaptiveState",
    "ShotAdaptiveSteps",
    "ShotAdaptiveTell",
    "ShotMeasurer",
    "precision_of",
]


# ---- data the protocol exchanges -----------------------------------------------------------
@dataclass(frozen=True)
class ShotAdaptiveAsk(AskData):
    """One iteration's request (one job): the loss at ``x_fun`` (shape ``(1, P)``) and, unless
    ``x_jac`` is ``None`` (the final loss-only job), the gradient there, component ``i`` with
    ``shots[i]`` shots per basis, i.e. at precision ``precisions[i]``."""

    shots: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    precisions: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass(frozen=True)
class ShotAdaptiveTell:
    """What a job measured: ``eval_fun`` the loss; ``eval_jac`` the gradient;
    ``jac_stds`` its standard errors (zeros: an exact primitive); ``jac_shots`` the shots per
    basis each component was measured with; ``shots`` what the job asked for in all."""

    eval_fun: float
    eval_jac: np.ndarray | None = None
    jac_stds: np.ndarray | None = None
    jac_shots: np.ndarray | None = None
    shots: int = 0


@dataclass(frozen=True)
class ShotAdaptiveRecord:
    """One iteration of the history: loss measured at ``x`` (before the step), the step's
    length, the shots per basis given to each parameter, the shots and jobs so far."""

    k: int
    fx: float
    step: float
    parameter_shots: tuple[int, ...]
    shots: int
    jobs: int


@dataclass(frozen=True)
class ShotAdaptiveState(RunState):
    """Where a :class:`ShotAdaptive` run stands (see :class:`~.state.RunState` for the rest):
    running means ``chi`` (gradient) and ``xi`` (per-shot variances), the next shots per
    parameter, the per-parameter learning rates, the Lipschitz constant, the shots per basis
    of the last centre evaluations and the shots each parameter got in every iteration.
    Resuming from the state after iteration ``k`` gives the iterates of the uninterrupted
    run (with the same measurements)."""

    FORMAT: ClassVar[str] = "qprim_grad.shot_adaptive_state/2"
    LABEL: ClassVar[str] = "ShotAdaptive"

    chi: np.ndarray = field(default_factory=lambda: np.zeros(0))
    xi: np.ndarray = field(default_factory=lambda: np.zeros(0))
    shots_next: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    stepsizes: np.ndarray = field(default_factory=lambda: np.zeros(0))
    lipschitz: float = 1.0
    center_shots: int = 0
    parameter_shots: tuple[tuple[int, ...], ...] = ()

    @classmethod
    def initial(
        cls,
        x0: np.ndarray,
        lipschitz: float,
        stepsize: float,
        min_shots: int,
        rng: np.random.Generator | None = None,
        **fields: Any,
    ) -> ShotAdaptiveState:
        p = x0.size
        rng = np.random.default_rng(0) if rng is None else rng
        return cls(
            x=np.array(x0, dtype=float),
            rng=dict(rng.bit_generator.state),
            chi=np.zeros(p),
            xi=np.zeros(p),
            shots_next=np.full(p, min_shots, dtype=np.int64),
            stepsizes=np.full(p, float(stepsize)),
            lipschitz=float(lipschitz),
            **fields,
        )

    @property
    def finished(self) -> bool:
        """The run is over (its final loss measured)."""
        return self.done

    def records(self) -> tuple[ShotAdaptiveRecord, ...]:
        """The history as one record per iteration."""
        h = self.history
        return tuple(
            ShotAdaptiveRecord(k, fx, step, tuple(int(s) for s in shots), total, jobs)
            for k, fx, step, shots, total, jobs in zip(
                h.iteration, h.loss, h.stepsize, self.parameter_shots, h.shots, h.jobs
            )
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShotAdaptiveState:
        state = super().from_dict(data)
        return replace(
            state,
            chi=np.asarray(state.chi, dtype=float),
            xi=np.asarray(state.xi, dtype=float),
            shots_next=np.asarray(state.shots_next, dtype=np.int64),
            stepsizes=np.asarray(state.stepsizes, dtype=float),
            parameter_shots=tuple(tuple(int(s) for s in row) for row in state.parameter_shots),
        )


# ---- the pure steps --------------------------------------------------------------------------
def precision_of(shots: np.ndarray) -> np.ndarray:
    """The precision a pub needs for ``shots`` per basis: ``1/sqrt(shots)``, nudged so that
    ``ceil(1 / precision**2)`` (how estimators turn precision into shots) gives ``shots``."""
    return (1.0 + 1e-12) / np.sqrt(np.asarray(shots, dtype=float))


@dataclass(frozen=True)
class ShotAdaptiveSteps:
    """ShotAdaptive's configuration for one run (``stepsize`` resolved: :math:`\alpha`) and
    its pure steps over a frozen :class:`ShotAdaptiveState`."""

    stepsize: float
    rule: str
    min_shots: int
    maxiter: int
    mu: float
    bias: float
    max_shots: int | None
    shot_levels: int | None

    def ask(self, state: ShotAdaptiveState) -> ShotAdaptiveAsk | None:
        """Loss and gradient at the current point with the rule's shots; after the last
        iteration (or a stop), the loss alone at the final point."""
        if state.done:
            return None
        x = np.copy(state.x)
        k = state.k + 1
        if state.k >= self.maxiter or state.stopped:
            shots = np.array([max(state.center_shots, self.min_shots)])
            return ShotAdaptiveAsk(
                x_fun=x[None], nfev=1, iteration=k, shots=shots, precisions=precision_of(shots)
            )
        shots = np.copy(state.shots_next)
        return ShotAdaptiveAsk(
            x_fun=x[None],
            x_jac=x,
            nfev=1,
            iteration=k,
            shots=shots,
            precisions=precision_of(shots),
        )

    def tell(self, state: ShotAdaptiveState, ask: AskData, told: Any) -> Told:
        fx = float(np.asarray(told.eval_fun, dtype=float).reshape(-1)[0])
        if ask.x_jac is None:  # the final job: the loss at the final point
            final = replace(
                state, fx=fx, nfev=state.nfev + ask.nfev, result_x=state.x, result_fx=fx
            )
            return Told(replace(final, done=True), (), final)
        gradient = getattr(told, "eval_jac", None)
        if gradient is None:
            raise ValueError("tell_data of an iteration needs eval_jac (the gradient).")
        gradient = np.asarray(gradient, dtype=float).reshape(state.x.shape)
        stds = getattr(told, "jac_stds", None)
        stds = np.zeros_like(gradient) if stds is None else np.asarray(stds, dtype=float)
        used = getattr(told, "jac_shots", None)
        used = state.shots_next if used is None else np.asarray(used)
        variance = stds.reshape(gradient.shape) ** 2 * used.reshape(gradient.shape)
        step = state.stepsizes * gradient
        chi, xi = running_means(state.chi, state.xi, gradient, variance, self.mu)
        chi_hat, xi_hat = bias_corrected(chi, xi, self.mu, state.k)
        plan = next_shots(
            self.rule,
            chi_hat,
            xi_hat,
            lipschitz=state.lipschitz,
            stepsize=self.stepsize,
            bias=self.bias,
            mu=self.mu,
            k=state.k,
            min_shots=self.min_shots,
            max_shots=self.max_shots,
            levels=self.shot_levels,
        )
        size = float(np.linalg.norm(step))
        decided = replace(
            state,
            x=state.x - step,
            k=state.k + 1,
            chi=chi,
            xi=xi,
            shots_next=plan.shots,
            stepsizes=plan.stepsizes,
            fx=fx,
            nfev=state.nfev + ask.nfev,
            njev=state.njev + 1,
            center_shots=int(sum(set(int(s) for s in state.shots_next))),
            parameter_shots=state.parameter_shots + (tuple(int(s) for s in state.shots_next),),
        )
        return Told(decided, (Step(state.k + 1, np.copy(state.x), fx, size, True),), decided)

    def stop(self, decided: ShotAdaptiveState) -> ShotAdaptiveState:
        """A stop leaves one job: the loss at the final point."""
        return replace(decided, stopped=True)


# ---- measuring -------------------------------------------------------------------------------
def _is_exact(estimator: Any) -> bool:
    """qiskit's ``StatevectorEstimator`` at its default precision 0 (exact values; a precision
    above 0 would only add synthetic Gaussian noise)."""
    from qiskit.primitives import StatevectorEstimator

    return isinstance(estimator, StatevectorEstimator) and not estimator.default_precision


def _occurrences(circuit: Any) -> dict[Any, int]:
    """How many gates each parameter enters (one shift pair each under parameter shift)."""
    counts: dict[Any, int] = {}
    for instruction in circuit.data:
        for value in instruction.operation.params:
            for parameter in getattr(value, "parameters", ()):
                counts[parameter] = counts.get(parameter, 0) + 1
    return counts


class ShotMeasurer:
    """One job of loss and gradient for an :class:`~.loss.EstimatorLoss`."""

    def __init__(self, loss: Any) -> None:
        from qprim_grad import GradientEstimator

        for name in ("estimator", "circuit", "observable"):
            if not hasattr(loss, name):
                raise TypeError(
                    "ShotAdaptive needs an EstimatorLoss(estimator, circuit, observable) (it "
                    f"measures the gradient on the circuit), not {type(loss).__name__}."
                )
        estimator = loss.estimator
        if hasattr(loss, "gradient_estimator"):  # an EstimatorLoss: its own, allocation and all
            estimator = loss.gradient_estimator()
        elif not isinstance(estimator, GradientEstimator):
            estimator = GradientEstimator(estimator, "param_shift")
        self.estimator = estimator
        self.exact = _is_exact(estimator.estimator)
        self.loss = loss
        self.parameters = list(loss.circuit.parameters)
        counts = _occurrences(loss.circuit)
        self.pairs = np.array([counts.get(p, 1) for p in self.parameters])
        self.bases = len(loss.observable.group_commuting(qubit_wise=True))

    def _pubs(self, x: np.ndarray, groups: list[np.ndarray], shots: list[int]) -> list[Any]:
        loss = self.loss
        if self.exact:
            return [(loss.circuit, loss.observable, x) for _ in groups]
        return [(loss.circuit, loss.observable, x, float(precision_of(np.array(s)))) for s in shots]

    def evaluate(self, ask: AskData) -> ShotAdaptiveTell:
        """The driver's evaluator: :meth:`measure`."""
        if not isinstance(ask, ShotAdaptiveAsk):
            raise TypeError(f"ShotAdaptive asks with a ShotAdaptiveAsk, got {type(ask).__name__}.")
        return self.measure(ask)

    def measure(self, ask: ShotAdaptiveAsk) -> ShotAdaptiveTell:
        x = np.asarray(ask.x_fun, dtype=float).reshape(-1)
        if ask.x_jac is None:  # the loss only, at the shots of the last iteration's centres
            groups, shots = [np.zeros(0, dtype=int)], [int(ask.shots.sum())]
        else:
            values = np.asarray(ask.shots)
            shots = sorted(set(int(s) for s in values))
            groups = [np.flatnonzero(values == s) for s in shots]
        names = [[self.parameters[i] for i in g] for g in groups]
        result = self.estimator.run(self._pubs(x, groups, shots), parameters=names).result()
        evs = np.array([float(np.asarray(r.data.evs).reshape(())) for r in result])
        stds = np.array([float(np.asarray(r.data.stds).reshape(())) for r in result])
        basis_shots = np.array(shots)
        fx = _combined(evs, stds)
        counted = 0
        if not self.exact:
            rows = np.array([1 + 2 * int(self.pairs[g].sum()) for g in groups])
            counted = int(self.bases * np.sum(rows * basis_shots))
        counted = int(result.metadata.get("shots", counted)) if not self.exact else 0
        if ask.x_jac is None:
            return ShotAdaptiveTell(eval_fun=fx, shots=counted)
        p = len(self.parameters)
        grads, grad_stds, used = np.zeros(p), np.zeros(p), np.zeros(p, dtype=np.int64)
        for g, r, s in zip(groups, result, basis_shots):
            grads[g] = np.asarray(r.data.grads, dtype=float).reshape(-1)
            grad_stds[g] = np.asarray(r.data.grad_stds, dtype=float).reshape(-1)
            used[g] = s
        return ShotAdaptiveTell(fx, grads, grad_stds, used, counted)


def _combined(evs: np.ndarray, stds: np.ndarray) -> float:
    """The inverse-variance weighted mean of the pubs' loss values (plain mean if exact)."""
    if np.all(stds > 0):
        weights = 1.0 / stds**2
        return float(np.sum(weights * evs) / np.sum(weights))
    return float(np.mean(evs))
