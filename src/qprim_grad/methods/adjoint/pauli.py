"""Observables for the adjoint engine: sums of Paulis applied to states, never as matrices."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from qiskit.quantum_info import SparseObservable, SparsePauliOp

from ...cache import BoundedCache

__all__ = ["PauliAction", "apply_observable", "apply_observables", "observable_matrix"]

_OBSERVABLES: BoundedCache[PauliAction] = BoundedCache(256)


class PauliAction:
    """An observable ``Σ_c a_c P_c`` applied to states as Pauli actions, never as a matrix.

    Terms are grouped by their X part ``x``; per group one diagonal ``w`` (real when it can
    be) with ``(O ψ)[k] = Σ_x w_x[k] ψ[k ⊕ x]``. The bit flip ``k ⊕ x`` is a reversed view
    of the state's qubit axes, so applying costs one pass per group and no index arrays.
    """

    def __init__(self, op: SparsePauliOp) -> None:
        n = op.num_qubits
        self.num_qubits = n
        self.groups: list[tuple[tuple[int, ...], np.ndarray]] = []
        for x, w in _diagonals(op).items():
            if not np.any(w.imag):
                w = w.real
            axes = tuple(n - 1 - q for q in range(n) if (x >> q) & 1)
            self.groups.append((axes, np.ascontiguousarray(w)))

    def act(self, states: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``O ψ`` for each row of ``states`` ``(K, 2**n)``, into ``out`` if given (C-contiguous,
        not overlapping ``states``). Scratch space: one state, and only for several groups."""
        shape = (len(states),) + (2,) * self.num_qubits
        if out is None:
            out = np.empty(states.shape, dtype=complex)
        dest = out.reshape(shape)
        view = states.reshape(shape)
        scratch = None
        for g, (axes, w) in enumerate(self.groups):
            source = np.flip(view, axis=tuple(1 + a for a in axes)) if axes else view
            if g == 0:
                np.multiply(w.reshape(shape[1:]), source, out=dest)
                continue
            if scratch is None:
                scratch = np.empty(shape, dtype=complex)
            np.multiply(w.reshape(shape[1:]), source, out=scratch)
            dest += scratch
        if not self.groups:
            dest[...] = 0
        return out

    def __matmul__(self, vectors: np.ndarray) -> np.ndarray:
        """``O @ vectors`` for ``vectors (2**n,)`` or ``(2**n, K)``, as a sparse matrix does."""
        vectors = np.asarray(vectors)
        if vectors.ndim == 1:
            return self.act(vectors[None])[0]
        return self.act(np.ascontiguousarray(vectors.T)).T

    def to_matrix(self) -> np.ndarray:
        """Dense matrix (for checks; small ``n`` only)."""
        return self @ np.eye(1 << self.num_qubits, dtype=complex)


def _diagonals(op: SparsePauliOp) -> dict[int, np.ndarray]:
    """Per X mask, the diagonal ``w_x`` (complex, ``(2**n,)``) of the terms with that mask."""
    n = op.num_qubits
    index = np.arange(1 << n, dtype=np.int64)
    bits = 1 << np.arange(n, dtype=np.int64)
    zmasks = op.paulis.z.astype(np.int64) @ bits
    xmasks = op.paulis.x.astype(np.int64) @ bits
    # qiskit: P = (-i)^q Z^z X^x with q the internal phase (Y counted in it)
    factors = op.coeffs * (-1j) ** op.paulis._phase
    groups: dict[int, Any] = {}
    for x, z, a in zip(xmasks.tolist(), zmasks.tolist(), factors.tolist(), strict=True):
        if a == 0:
            continue
        sign = 1.0 - 2.0 * (np.bitwise_count(index & z) & 1) if z else 1.0
        w = groups.get(x)
        groups[x] = a * sign if w is None else w + a * sign
    return {
        x: np.broadcast_to(np.asarray(w, dtype=complex), index.shape) for x, w in groups.items()
    }


def observable_matrix(terms: dict[str, complex], num_qubits: int) -> PauliAction:
    """An observable given as ``{label: coeff}`` as a :class:`PauliAction` (cached).

    Labels are Pauli strings, or any ``SparseObservable`` label (projectors ``0 1 + - r l``).
    The result supports ``op @ vectors`` as a sparse matrix would.
    """
    key = (num_qubits, tuple(sorted(terms.items())))
    return _OBSERVABLES.get(key, None, lambda: _pauli_action(terms, num_qubits))


def _pauli_action(terms: dict[str, complex], num_qubits: int) -> PauliAction:
    items = list(terms.items())
    if not items:
        op = SparsePauliOp.from_list([("I" * num_qubits, 0.0)])
    elif all(set(label) <= set("IXYZ") for label, _ in items):
        op = SparsePauliOp.from_list(items, num_qubits=num_qubits)
    else:
        observable = SparseObservable.from_list(items, num_qubits=num_qubits)
        op = SparsePauliOp.from_sparse_observable(observable)
    return PauliAction(op.simplify(atol=0))


def apply_observable(observable: Any, states: np.ndarray) -> np.ndarray:
    """``O x`` for every row ``x`` of ``states`` ``(K, N)`` (a :class:`PauliAction`, a sparse
    or a dense matrix)."""
    if isinstance(observable, PauliAction):
        return observable.act(states)
    return (observable @ states.T).T


def apply_observables(S: np.ndarray, observables: Sequence[Sequence[Any]]) -> None:
    """``S[r, 1 + m] = O_rm @ S[r, 0]``; one sparse product per distinct observable."""
    where: dict[int, tuple[Any, list[tuple[int, int]]]] = {}
    for r, row in enumerate(observables):
        for m, op in enumerate(row):
            if op is not None:
                where.setdefault(id(op), (op, []))[1].append((r, m))
    for op, locs in where.values():
        if isinstance(op, PauliAction):
            for r, m in locs:  # in place: no temporary stack of states
                op.act(S[r, :1], out=S[r, 1 + m : 2 + m])
        else:  # a sparse or dense matrix
            rows = np.array([r for r, _ in locs])
            cols = np.array([m for _, m in locs])
            S[rows, 1 + cols] = (op @ S[rows, 0].T).T
