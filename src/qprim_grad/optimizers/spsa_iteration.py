"""SPSA's configuration for one run and the pieces its schedules (:mod:`.spsa_steps`)
share: the directions of an iteration, the gradient and Hessian estimates from their values,
the update they make, and what ``tell`` returns."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .gains import Gain, PowerSeries
from .iteration import Directions, Estimate, Step
from .precision import FixedPrecision, PrecisionRule, update_statistics
from .state import SPSAState, generator_from_state
from .steps import (
    clip_to_trust_region,
    estimate,
    num_resamplings,
    precondition,
    sample_directions,
    smooth_hessian,
)

__all__ = ["SPSAIteration", "Told", "average", "fidelity_pairs", "generator_at", "moved_to"]

_local = threading.local()


def generator_at(rng_state: dict[str, Any]) -> np.random.Generator:
    """A generator in state ``rng_state``; reused per thread (building one costs 25 µs), so
    the caller must read its state back and not keep it."""
    cache = _local.__dict__.setdefault("generators", {})
    generator = cache.get(rng_state["bit_generator"])
    if generator is None:
        generator = cache[rng_state["bit_generator"]] = generator_from_state(rng_state)
    else:
        generator.bit_generator.state = rng_state
    return generator


def average(state: SPSAState, last_avg: int, extra: np.ndarray | None = None) -> np.ndarray:
    """The mean of the last ``last_avg`` iterates (with ``extra`` as the newest)."""
    steps = list(state.last_steps) + ([] if extra is None else [extra])
    return np.mean(np.asarray(steps[-last_avg:]), axis=0)


def moved_to(state: SPSAState, step: Step, last_avg: int) -> dict[str, Any]:
    """The changes of the state once ``step`` is decided: if accepted, the new iterate (and
    the iterates kept for ``last_avg``)."""
    if not step.accepted:
        return {}
    last_steps = state.last_steps
    if last_avg > 1:
        last_steps = (list(last_steps) + [step.x])[-last_avg:]
    return {"x": step.x, "last_steps": last_steps}


def fidelity_pairs(center: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Fidelity pairs ``(center, target)``, shape ``(m, 2, P)``."""
    return np.stack([np.broadcast_to(center, targets.shape), targets], axis=1)


@dataclass(frozen=True)
class Told:
    """What ``tell`` returns: the next state, the steps it decided (for callback, history
    and termination checker), the state right after the last decision (where a stop
    requested by the termination checker leaves the run) and notes for the log."""

    state: Any
    steps: tuple[Step, ...] = ()
    decided: Any = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SPSAIteration:
    """SPSA's configuration for one run and the pure steps its schedules share.

    ``learning_rate``/``perturbation`` ``None``: the first request calibrates them (the
    state then holds the power series). ``curvature``: ``"loss"`` (2-SPSA: Hessian points
    are loss points) or ``"fidelity"`` (QN-SPSA: the Hessian of ``-F/2`` from fidelity
    pairs). ``measure_proposal`` (sequential): measure the loss at every proposal (blocking
    or a callback need it). ``finals_every_job`` (batched, ``last_avg > 1``): every job also
    measures the averaged points, since a termination checker may end the run after any of
    them. ``fidelity_after_verdict`` (batched QN-SPSA): send the fidelity job only once the
    estimator job decided the centre."""

    maxiter: int
    learning_rate: Gain | None
    perturbation: Gain | None
    batched: bool = True
    blocking: bool = False
    trust_region: bool = False
    last_avg: int = 1
    resamplings: int | dict[int, int] = 1
    perturbation_dims: int | None = None
    second_order: bool = False
    regularization: float = 0.01
    hessian_delay: int = 0
    lse_solver: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    curvature: str = "loss"
    measure_proposal: bool = False
    finals_every_job: bool = False
    fidelity_after_verdict: bool = False
    blocking_schedule: str = "exact"
    precision: PrecisionRule = FixedPrecision(None)
    precision_memory: float = 0.8

    @property
    def hessian_from_loss(self) -> bool:
        return self.curvature == "loss"

    def gains(self, state: SPSAState) -> tuple[Gain, Gain]:
        if self.learning_rate is not None and self.perturbation is not None:
            return self.learning_rate, self.perturbation
        assert state.gains is not None
        eta = PowerSeries(**state.gains["learning_rate"])
        return eta, PowerSeries(**state.gains["perturbation"])

    def _calibrated(self, state: SPSAState) -> bool:
        return self.learning_rate is not None or state.gains is not None

    def init(self, x0: np.ndarray, rng: np.random.Generator, **fields: Any) -> SPSAState:
        """The state of a fresh run at ``x0``."""
        phase = "start" if self.blocking and not self.batched else "iterate"
        mode = "batched" if self.batched else "sequential"
        return SPSAState.initial(x0, rng, mode, phase=phase, **fields)

    def directions(self, state: SPSAState, k: int) -> tuple[Directions, dict[str, Any]]:
        """The directions of iteration ``k``, drawn from ``state.rng``; and the generator's
        state after drawing them."""
        eps = self.gains(state)[1].at(k)
        if eps == 0 or not np.isfinite(eps):
            raise ValueError(
                f"perturbation must be finite and non-zero, got {eps!r} (iteration {k})."
            )
        rng = generator_at(state.rng)
        n = num_resamplings(self.resamplings, k)
        first, second = sample_directions(
            rng, n, state.x.size, self.perturbation_dims, self.second_order
        )
        return Directions(k, eps, first, second), dict(rng.bit_generator.state)

    def _precision(self, state: SPSAState, k: int) -> float | None:
        return self.precision.at(k, state.precision)

    def _estimate(
        self, loss_values: np.ndarray, directions: Directions, fidelities: Any = None
    ) -> Estimate:
        d = directions
        if self.hessian_from_loss:
            return Estimate.of(loss_values, d)
        fids = np.asarray(fidelities, dtype=float).reshape(-1)
        if fids.size != 4 * d.count:
            raise ValueError(f"The fidelity returned {fids.size} values for {4 * d.count} pairs.")
        value, gradient, _ = estimate(loss_values, d.eps, d.first, None)
        _, _, curvature = estimate(fids, d.eps, d.first, d.second)
        assert curvature is not None
        return Estimate(value, gradient, -0.5 * curvature)

    def _update(
        self, state: SPSAState, directions: Directions, found: Estimate
    ) -> tuple[dict[str, Any], np.ndarray]:
        """Iteration ``k`` done: the state changes (smoothed Hessian, counters) and the
        update ``x_next = x - update``."""
        k, gradient, hessian = directions.k, found.gradient, state.hessian
        if self.second_order:
            assert hessian is not None and found.hessian is not None
            hessian = smooth_hessian(hessian, found.hessian, k)
            if k > self.hessian_delay:
                gradient = precondition(hessian, gradient, self.regularization, self.lse_solver)
        if self.trust_region:
            gradient = clip_to_trust_region(gradient)
        update = gradient * self.gains(state)[0].at(k)
        return {"k": k, "hessian": hessian, "njev": state.njev + 1}, update

    def _stats(self, state: SPSAState, loss_values: np.ndarray, d: Directions) -> dict[str, float]:
        per = 2 if not (self.second_order and self.hessian_from_loss) else 4
        pairs = np.asarray(loss_values).reshape(d.count, per)
        return update_statistics(
            state.precision, differences=pairs[:, 0] - pairs[:, 1], memory=self.precision_memory
        )
