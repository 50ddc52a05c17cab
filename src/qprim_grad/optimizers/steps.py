"""The pieces of one SPSA iteration, as small pure functions.

Every function here is deterministic given its inputs; randomness enters only through the
explicit :class:`numpy.random.Generator` passed to :func:`bernoulli` / :func:`sample_directions`.

>>> import numpy as np
>>> d1, d2 = sample_directions(np.random.default_rng(1), 2, 3, second_order=False)
>>> d1.shape, d2 is None
((2, 3), True)
>>> pts = perturbation_points(np.zeros(3), 0.1, d1, d2)
>>> pts.shape
(4, 3)
>>> accepts(1.0, 1.2, 0.0), accepts(1.3, 1.2, 0.05)
(True, False)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = [
    "bernoulli",
    "sample_directions",
    "num_resamplings",
    "perturbation_points",
    "estimate",
    "smooth_hessian",
    "make_spd",
    "precondition",
    "clip_to_trust_region",
    "accepts",
    "blocking_tolerance",
    "calibration_points",
    "calibration_scale",
]


def bernoulli(
    rng: np.random.Generator, dim: int, perturbation_dims: int | None = None
) -> np.ndarray:
    """A random direction of ``±1`` entries (``perturbation_dims`` of them if given, others 0).

    Draws from ``rng`` in the same order as qiskit-algorithms' ``bernoulli_perturbation``, so a
    generator seeded like ``algorithm_globals`` gives the same directions.
    """
    if perturbation_dims is None:
        return 1 - 2 * rng.binomial(1, 0.5, size=dim)
    signs = 1 - 2 * rng.binomial(1, 0.5, size=perturbation_dims)
    chosen = rng.choice(dim, size=perturbation_dims, replace=False)
    direction = np.zeros(dim)
    direction[chosen] = signs
    return direction


def sample_directions(
    rng: np.random.Generator,
    num_samples: int,
    dim: int,
    perturbation_dims: int | None = None,
    second_order: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """All directions of one iteration: ``num_samples`` gradient directions, then (2-SPSA)
    as many Hessian directions. Shapes ``(num_samples, dim)``."""
    first = _bernoulli_rows(rng, num_samples, dim, perturbation_dims)
    if not second_order:
        return first, None
    return first, _bernoulli_rows(rng, num_samples, dim, perturbation_dims)


def _bernoulli_rows(
    rng: np.random.Generator, count: int, dim: int, perturbation_dims: int | None
) -> np.ndarray:
    """``count`` calls of :func:`bernoulli` as rows of one array (one draw if all coordinates
    move: numpy's binomial stream is the same drawn at once or row by row)."""
    if perturbation_dims is None:
        return 1 - 2 * rng.binomial(1, 0.5, size=(count, dim))
    return np.array([bernoulli(rng, dim, perturbation_dims) for _ in range(count)]).reshape(
        count, dim
    )


def num_resamplings(resamplings: int | dict[int, int], k: int) -> int:
    """Number of directions at iteration ``k`` (1-based); a dict defaults to 1."""
    if isinstance(resamplings, dict):
        return int(resamplings.get(k, 1))
    return int(resamplings)


def perturbation_points(
    x: np.ndarray, eps: float, first: np.ndarray, second: np.ndarray | None
) -> np.ndarray:
    """Points to evaluate, sample after sample: ``x ± eps d1`` and, for 2-SPSA,
    ``x + eps (d1 + d2)``, ``x + eps (-d1 + d2)``. Shape ``(num_samples * m, dim)``."""
    blocks = [x + eps * first, x - eps * first]
    if second is not None:
        blocks += [x + eps * (first + second), x + eps * (-first + second)]
    return np.stack(blocks, axis=1).reshape(-1, x.size)


def estimate(
    values: np.ndarray, eps: float, first: np.ndarray, second: np.ndarray | None
) -> tuple[float, np.ndarray, np.ndarray | None]:
    """Combine the loss values at :func:`perturbation_points` into
    ``(mean value, gradient estimate, Hessian estimate or None)``."""
    n = first.shape[0]
    vals = np.asarray(values, dtype=float).reshape(n, -1)
    plus, minus = vals[:, 0], vals[:, 1]
    gradient = np.mean(((plus - minus) / (2 * eps))[:, None] * first, axis=0)
    hessian = None
    if second is not None:
        curvature = ((vals[:, 2] - plus) - (vals[:, 3] - minus)) / (2 * eps**2)
        outer = np.einsum("si,sj->sij", first, second)
        hessian = np.mean(curvature[:, None, None] * (outer + outer.transpose(0, 2, 1)) / 2, axis=0)
    return float(np.mean(vals)), gradient, hessian


def smooth_hessian(average: np.ndarray, sample: np.ndarray, k: int) -> np.ndarray:
    """Running average used by 2-SPSA: ``k/(k+1) H + 1/(k+1) sample``."""
    return k / (k + 1) * average + 1 / (k + 1) * sample


def make_spd(matrix: np.ndarray, regularization: float) -> np.ndarray:
    """``sqrt(H H) + regularization * I``: symmetric positive definite for symmetric ``H``.

    Computed with ``scipy.linalg.sqrtm`` exactly as qiskit-algorithms does, so that 2-SPSA
    iterates are bit-identical to its (the real part is taken after the solve)."""
    from scipy.linalg import sqrtm

    absolute = sqrtm(matrix.dot(matrix))
    if np.iscomplexobj(absolute) and not np.any(np.imag(absolute)):
        absolute = np.real(absolute)
    return absolute + regularization * np.identity(matrix.shape[0])


def precondition(
    hessian: np.ndarray,
    gradient: np.ndarray,
    regularization: float,
    lse_solver: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Solve ``make_spd(H) u = g`` for the update direction ``u``."""
    solver = np.linalg.solve if lse_solver is None else lse_solver
    return np.real(solver(make_spd(hessian, regularization), gradient))


def clip_to_trust_region(update: np.ndarray) -> np.ndarray:
    """Rescale ``update`` to norm 1 if it is longer."""
    norm = np.linalg.norm(update)
    return update / norm if norm > 1 else update


def accepts(new_value: float, reference: float, allowed_increase: float) -> bool:
    """Blocking rule: accept unless ``new_value >= reference + allowed_increase``."""
    return bool(new_value < reference + allowed_increase)


def blocking_tolerance(repeated_values: np.ndarray | list[float]) -> float:
    """Blocking's ``allowed_increase`` from repeated losses at one point: twice their
    standard deviation (as qiskit-algorithms)."""
    return 2 * float(np.std(repeated_values))


def calibration_points(
    rng: np.random.Generator, x0: np.ndarray, c: float, steps: int = 25
) -> np.ndarray:
    """``x0 ± c d`` for ``steps`` random directions ``d``; shape ``(2 * steps, dim)``."""
    directions = _bernoulli_rows(rng, steps, x0.size, None)
    return np.stack([x0 + c * directions, x0 - c * directions], axis=1).reshape(-1, x0.size)


def calibration_scale(
    values: np.ndarray, c: float, target_magnitude: float, modelspace: bool = False
) -> float:
    """The learning-rate scale ``a`` that makes the first step ``target_magnitude`` long
    (Kandala et al. 2017, suppl. IV), from the losses at :func:`calibration_points`."""
    pairs = np.asarray(values, dtype=float).reshape(-1, 2)
    # summed left to right, as qiskit-algorithms does (np.mean sums pairwise): same bits
    magnitude = np.float64(sum(np.abs((pairs[:, 0] - pairs[:, 1]) / (2 * c)).tolist(), 0.0))
    magnitude /= len(pairs)
    with np.errstate(divide="ignore"):
        return float(target_magnitude / (magnitude**2 if modelspace else magnitude))
