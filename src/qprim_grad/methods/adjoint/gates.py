"""Gates for the adjoint engine: exact matrices and exact trigonometric-polynomial templates.

Every parameterised gate of Qiskit's standard library is, in each argument, a trigonometric
polynomial of frequency at most 1 in ``θ`` (entries built from ``cos θ/2``, ``sin θ/2``,
``exp(±iθ/2)``, ``exp(iθ)``). Sampling the gate's own matrix on a 5-point grid per argument
and taking a discrete Fourier transform gives ``U(θ) = Σ_m F_m exp(i m·θ/2)`` with
``|m_j| <= 2`` exactly (verified at random points), hence exact, vectorised matrices and
derivatives. Gates that are not of this form (``RVGate``) or have no matrix are decomposed by
the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from qiskit.circuit import Gate, Instruction, ParameterExpression
from qiskit.circuit.library import get_standard_gate_name_mapping

from ...cache import BoundedCache

__all__ = ["Template", "embedded", "fixed_matrix", "numeric", "template"]

_GRID = 5  # samples per argument: exact for |m| <= 2 in exp(i m θ/2)
_MAX_SYMBOLIC_ARGS = 4  # larger gates are decomposed (5**k matrix evaluations per template)
_CACHE_SIZE = 256


@dataclass(frozen=True)
class Template:
    """``U(θ) = Σ_K coeffs[K] · exp(i freqs[K]·θ / 2)`` for a gate with ``k`` free arguments."""

    dim: int
    freqs: np.ndarray  # (K, k) integers in [-2, 2]
    coeffs: np.ndarray  # (K, dim * dim)

    def evaluate(self, angles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Matrices ``(..., d, d)`` and derivatives ``(..., k, d, d)`` at ``angles (..., k)``."""
        d = self.dim
        phases = np.exp(0.5j * (angles @ self.freqs.T))  # (..., K)
        mats = (phases @ self.coeffs).reshape(angles.shape[:-1] + (d, d))
        weights = phases[..., None, :] * (0.5j * self.freqs.T)  # (..., k, K)
        ders = (weights @ self.coeffs).reshape(angles.shape[:-1] + (self.freqs.shape[1], d, d))
        return mats, ders

    def second(self, angles: np.ndarray) -> np.ndarray:
        """Second derivatives ``(k, k, d, d)`` at ``angles (k,)``."""
        d, k = self.dim, self.freqs.shape[1]
        phases = np.exp(0.5j * (angles @ self.freqs.T))  # (K,)
        f = self.freqs.T  # (k, K)
        weights = -0.25 * f[:, None, :] * f[None, :, :] * phases  # (k, k, K)
        return (weights @ self.coeffs).reshape(k, k, d, d)


# Keyed by value (gate class, name, size, control state, fixed parameters): an entry depends
# on nothing else, so an edited circuit never meets a stale one.
_TEMPLATES: BoundedCache[Template | None] = BoundedCache(_CACHE_SIZE)
_FIXED: BoundedCache[np.ndarray | None] = BoundedCache(_CACHE_SIZE)
# Keyed by (id(template), position); the entry holds its template, so the id stays unique.
_EMBEDDED: BoundedCache[tuple[Template, Template]] = BoundedCache(_CACHE_SIZE)


def _matrix(gate: Instruction) -> np.ndarray | None:
    """The matrix of ``gate``, or ``None`` if it has none."""
    try:
        return np.asarray(gate.to_matrix(), dtype=complex)
    except Exception:  # noqa: BLE001 - any failure means "no usable matrix"
        return None


def _matrix_at(op: Gate, params: Sequence[Any]) -> np.ndarray | None:
    """The matrix of ``op`` with its parameters replaced by ``params``, or ``None``."""
    try:
        gate = op.to_mutable()
        gate.params = list(params)
    except Exception:  # noqa: BLE001
        return None
    return _matrix(gate)


def numeric(value: Any) -> Any:
    """A bound parameter expression as a number (real when it is); other values unchanged."""
    if isinstance(value, ParameterExpression):
        value = complex(value.numeric())
        return value.real if value.imag == 0 else value
    return value


#: Qiskit's standard gate classes: their matrix depends on their name, parameters and control
#: state alone
_STANDARD_GATES = frozenset(g.base_class for g in get_standard_gate_name_mapping().values())


def _library_key(op: Instruction, symbolic: tuple[int, ...] = ()) -> tuple[Any, ...] | None:
    """Cache key of a standard gate with its ``symbolic`` arguments left free (``None``: the
    gate is not a standard one, or its parameters are not hashable)."""
    if getattr(op, "base_class", None) not in _STANDARD_GATES:  # its matrix depends on more
        return None
    fixed = tuple(None if i in symbolic else numeric(p) for i, p in enumerate(op.params))
    key = (type(op), op.name, op.num_qubits, getattr(op, "ctrl_state", None), fixed, symbolic)
    try:
        hash(key)
    except TypeError:
        return None
    return key


def fixed_matrix(op: Instruction) -> np.ndarray | None:
    """Matrix of a gate without free parameters (cached for library gates)."""
    return _FIXED.get(_library_key(op), None, lambda: _matrix(op) if isinstance(op, Gate) else None)


def template(op: Gate, symbolic: tuple[int, ...]) -> Template | None:
    """Fourier template of ``op`` in its ``symbolic`` arguments (``None`` if not exact)."""
    return _TEMPLATES.get(_library_key(op, symbolic), None, lambda: _build_template(op, symbolic))


def embedded(base: Template, position: int) -> Template:
    """A 2x2 template as a 4x4 one acting on bit ``position`` of a qubit pair (cached)."""

    def build() -> tuple[Template, Template]:
        coeffs = np.stack([kron_at(c.reshape(2, 2), position).ravel() for c in base.coeffs])
        return base, Template(4, base.freqs, coeffs)

    return _EMBEDDED.get((id(base), position), None, build)[1]


def kron_at(mat: np.ndarray, position: int) -> np.ndarray:
    """A 2x2 matrix on bit ``position`` (0 or 1) of a qubit pair, as a 4x4 matrix."""
    return np.kron(np.eye(2), mat) if position == 0 else np.kron(mat, np.eye(2))


def _with_arguments(
    op: Gate, base: list[Any], symbolic: tuple[int, ...], values: Sequence[float] | np.ndarray
) -> np.ndarray | None:
    args = list(base)
    for pos, value in zip(symbolic, values, strict=True):
        args[pos] = float(value)
    return _matrix_at(op, args)


def _build_template(op: Gate, symbolic: tuple[int, ...]) -> Template | None:
    k = len(symbolic)
    if k > _MAX_SYMBOLIC_ARGS:
        return None
    base = [0.0 if i in symbolic else numeric(p) for i, p in enumerate(op.params)]
    grid = 4 * np.pi * np.arange(_GRID) / _GRID  # θ = 2t, t = 2πl/5
    mats = [_with_arguments(op, base, symbolic, grid[list(idx)]) for idx in _grid_points(k)]
    if any(m is None for m in mats):
        return None
    dim = len(mats[0])  # type: ignore[arg-type]
    samples = np.array(mats).reshape((_GRID,) * k + (dim, dim))
    spectrum = np.fft.fftn(samples, axes=tuple(range(k))) / _GRID**k
    spectrum = spectrum.reshape(-1, dim * dim)
    ms = np.array(_grid_points(k), dtype=float).reshape(-1, k)
    ms[ms > _GRID // 2] -= _GRID
    keep = np.abs(spectrum).max(axis=1) > 1e-13
    found = Template(dim, ms[keep], spectrum[keep])
    return found if _verified(found, op, base, symbolic) else None


def _grid_points(k: int) -> list[tuple[int, ...]]:
    return list(np.ndindex(*(_GRID,) * k))


def _verified(found: Template, op: Gate, base: list[Any], symbolic: tuple[int, ...]) -> bool:
    """Whether ``found`` is the gate's matrix at random points (``RVGate`` is not of the
    polynomial form, for example)."""
    rng = np.random.default_rng(1234)
    for _ in range(2):
        theta = rng.uniform(-np.pi, np.pi, size=len(symbolic))
        exact = _with_arguments(op, base, symbolic, theta)
        approx, _ = found.evaluate(theta)
        if exact is None or not np.allclose(approx, exact, rtol=0, atol=1e-12):
            return False
    return True
