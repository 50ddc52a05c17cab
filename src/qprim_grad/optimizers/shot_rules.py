r"""The shot rules of :class:`~.shot_adaptive.ShotAdaptive`: pure functions of the running
statistics of the gradient.

Notation (Kübler et al. 2020): learning rate :math:`\alpha`, Lipschitz constant :math:`L` of
the gradient, bias-corrected running means :math:`\chi_i` of the gradient component
:math:`i` and :math:`\xi_i` of its *per-shot* variance, decay :math:`\mu`, bias :math:`b`,
iteration :math:`k` (from 0). With :math:`s_i` shots, gradient descent gains at least

.. math:: \gamma_i s_i = (\alpha - L\alpha^2/2)\,\chi_i^2 - L\alpha^2 \xi_i / (2 s_i)

per step in component :math:`i`; the rules choose :math:`s_i` from it.

* ``icans1`` — Kübler, Arrasmith, Cincio, Coles, Quantum 4, 263 (2020):
  :math:`s_i = \lceil \frac{2L\alpha}{2-L\alpha}\,\xi_i / (\chi_i^2 + b\mu^k) \rceil`, capped
  at the shots of the component with the largest expected gain per shot :math:`\gamma_i`.
* ``icans2`` — the same shots; each component's learning rate is also lowered to the one
  that maximises its expected gain for the shots it gets,
  :math:`\alpha_i = \min(\alpha, \chi_i^2 / (L(\chi_i^2 + \xi_i / s_i)))`.
* ``gcans`` — Gu et al., arXiv:2108.10434
  (2021): one allocation for the whole gradient, shots in proportion to each component's
  per-shot standard deviation (the split that minimises the variance of the step for a
  given total), :math:`s_i = \lceil \frac{2L\alpha}{2-L\alpha}\,\sqrt{\xi_i}
  \sum_j \sqrt{\xi_j} / (\lVert\chi\rVert^2 + b\mu^k) \rceil`.

Every rule then clips to ``[min_shots, max_shots]`` and may round up to a grid of few
values (:func:`quantized`). With zero variance (an exact
primitive) every rule gives ``min_shots``.

>>> import numpy as np
>>> chi, xi = np.array([0.5, 0.05]), np.array([1.0, 1.0])
>>> icans_shots(chi, xi, lipschitz=1.0, stepsize=0.5, bias=0.0, mu=0.9, k=3).tolist()
[3, 267]
>>> gcans_shots(chi, xi, lipschitz=1.0, stepsize=0.5, bias=0.0, mu=0.9, k=3).tolist()
[6, 6]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "RULES",
    "ShotPlan",
    "bias_corrected",
    "expected_gain_per_shot",
    "gcans_shots",
    "icans_shots",
    "icans2_stepsizes",
    "next_shots",
    "quantized",
    "running_means",
]

RULES = ("icans1", "icans2", "gcans")


@dataclass(frozen=True)
class ShotPlan:
    """The next iteration's shots per parameter and learning rate per parameter."""

    shots: np.ndarray
    stepsizes: np.ndarray


def running_means(
    chi: np.ndarray, xi: np.ndarray, gradient: np.ndarray, variance: np.ndarray, mu: float
) -> tuple[np.ndarray, np.ndarray]:
    """Exponential running means of the gradient and of its per-shot variance."""
    return mu * chi + (1 - mu) * gradient, mu * xi + (1 - mu) * variance


def bias_corrected(
    chi: np.ndarray, xi: np.ndarray, mu: float, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The running means after ``k + 1`` updates from zero, divided by ``1 - mu**(k + 1)``."""
    scale = 1.0 - mu ** (k + 1)
    return chi / scale, xi / scale


def _factor(lipschitz: float, stepsize: float) -> float:
    return 2 * lipschitz * stepsize / (2 - lipschitz * stepsize)


def _ceil(values: np.ndarray) -> np.ndarray:
    # huge ratios (a vanishing gradient) stay finite; max_shots clips them afterwards
    return np.ceil(np.minimum(values, 2.0**62)).astype(np.int64)


def _allocated(
    spread: np.ndarray, signal: Any, lipschitz: float, stepsize: float, floor: float
) -> np.ndarray:
    """Shots ``ceil(factor * spread / (signal + floor))``; none where ``spread`` is zero."""
    ratio = np.where(spread > 0, spread / (signal + floor), 0.0)
    return _ceil(_factor(lipschitz, stepsize) * ratio)


def icans_shots(
    chi: np.ndarray,
    xi: np.ndarray,
    *,
    lipschitz: float,
    stepsize: float,
    bias: float,
    mu: float,
    k: int,
) -> np.ndarray:
    """iCANS' shots per component (before any cap)."""
    return _allocated(xi, chi**2, lipschitz, stepsize, bias * mu**k)


def gcans_shots(
    chi: np.ndarray,
    xi: np.ndarray,
    *,
    lipschitz: float,
    stepsize: float,
    bias: float,
    mu: float,
    k: int,
) -> np.ndarray:
    """gCANS' shots per component: proportional to the per-shot standard deviation."""
    sigma = np.sqrt(np.maximum(xi, 0.0))
    return _allocated(sigma * sigma.sum(), np.sum(chi**2), lipschitz, stepsize, bias * mu**k)


def expected_gain_per_shot(
    chi: np.ndarray, xi: np.ndarray, shots: np.ndarray, *, lipschitz: float, stepsize: float
) -> np.ndarray:
    """The lower bound on the decrease of the loss per shot, per component."""
    s = np.maximum(shots, 1).astype(float)
    a, L = stepsize, lipschitz
    return ((a - L * a * a / 2) * chi**2 - L * a * a * xi / (2 * s)) / s


def icans2_stepsizes(
    chi: np.ndarray, xi: np.ndarray, shots: np.ndarray, *, lipschitz: float, stepsize: float
) -> np.ndarray:
    """Per-component learning rates maximising the expected gain for the given shots (never
    above ``stepsize``; ``stepsize`` where the statistics are still zero)."""
    s = np.maximum(shots, 1).astype(float)
    denominator = lipschitz * (chi**2 + xi / s)
    with np.errstate(divide="ignore", invalid="ignore"):
        best = np.where(denominator > 0, chi**2 / denominator, stepsize)
    return np.minimum(stepsize, best)


def quantized(shots: np.ndarray, levels: int | None, base: int = 1) -> np.ndarray:
    """``shots`` (each at least ``base``) rounded up to the grid
    ``ceil(base * 2**(j / levels))``: ``levels`` values per doubling, so at most
    ``2**(1/levels) - 1`` more shots, and few distinct shot counts per job (estimators such
    as ``BackendEstimatorV2`` run each one separately). ``None``: unchanged.

    >>> quantized(np.array([10, 11, 12, 100]), 4, base=10).tolist()
    [10, 12, 15, 114]
    """
    shots = np.asarray(shots, dtype=np.int64)
    if levels is None:
        return shots
    j = np.ceil(levels * np.log2(np.maximum(shots, base) / base) - 1e-9)
    grid = np.ceil(base * 2.0 ** (j / levels) - 1e-9).astype(np.int64)
    return np.maximum(grid, shots)


def next_shots(
    rule: str,
    chi: np.ndarray,
    xi: np.ndarray,
    *,
    lipschitz: float,
    stepsize: float,
    bias: float,
    mu: float,
    k: int,
    min_shots: int,
    max_shots: int | None,
    levels: int | None = None,
) -> ShotPlan:
    """The shots (and learning rates) of the next iteration from the bias-corrected means
    ``chi`` and ``xi`` after iteration ``k``."""
    kwargs: dict[str, Any] = {
        "lipschitz": lipschitz,
        "stepsize": stepsize,
        "bias": bias,
        "mu": mu,
        "k": k,
    }
    upper = np.iinfo(np.int64).max if max_shots is None else max_shots
    if rule == "gcans":
        shots = np.clip(gcans_shots(chi, xi, **kwargs), min_shots, upper)
        shots = np.minimum(quantized(shots, levels, min_shots), upper)
        return ShotPlan(shots, np.full(chi.shape, stepsize))
    raw = icans_shots(chi, xi, **kwargs)
    gain = expected_gain_per_shot(chi, xi, raw, lipschitz=lipschitz, stepsize=stepsize)
    cap = max(int(raw[int(np.argmax(gain))]), min_shots)
    clipped = np.clip(raw, min_shots, min(cap, upper))
    shots = np.minimum(quantized(clipped, levels, min_shots), upper)
    if rule == "icans1":
        return ShotPlan(shots, np.full(chi.shape, stepsize))
    rates = icans2_stepsizes(chi, xi, shots, lipschitz=lipschitz, stepsize=stepsize)
    return ShotPlan(shots, rates)
