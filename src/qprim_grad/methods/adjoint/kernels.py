"""State kernels: a block's matrix applied to the stacked states, in place.

The stack ``S`` has shape ``(R, C, 2**n)`` (C-contiguous, writeable): per parameter row ``r``
column 0 is ``ψ_r`` and columns ``1..`` are the ``λ_rm`` (or tangent states). Every kernel is
a :class:`Kernel`: ``apply`` overwrites ``S`` with ``U S`` (``U``: one ``(d, d)`` matrix per
row, or one for all) and ``rho`` computes ``ρ'[r, m] = Tr_rest |λ_rm⟩⟨ψ_r|`` on the block's
qubits. Each kernel is specialised to its block's structure at compile time (dense 2x2 or
4x4 on neighbouring qubits, diagonal, controlled 2x2, dense k-qubit, fixed permutation).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any, Protocol

import numpy as np

from .parallel import PARALLEL_AMPLITUDES, in_halves

__all__ = ["Ctrl", "Dense", "DenseRange", "Diag", "Gather", "Kernel", "linear_kernel"]

_SMALL_DY = 16  # up to this d·stride a gate is applied as one Kronecker-product matmul
_COLUMNWISE = 1 << 18  # from this many amplitudes on, kernels update the stack column-wise
_IN_PLACE = 1 << 14  # from this many amplitudes on, dense one/two-qubit blocks work in place
_CHUNK = 1 << 13  # amplitudes per in-place block (a scratch buffer that stays in cache)
_LARGE_CHUNK = 1 << 15  # the same on states worked on by two threads (fewer hand-offs)


def _chunk(amplitudes: int) -> int:
    return _LARGE_CHUNK if amplitudes >= PARALLEL_AMPLITUDES else _CHUNK


class Kernel(Protocol):
    """Applies one block to the stacked states ``S (R, C, 2**n)``, in place."""

    def apply(self, S: np.ndarray, mat: np.ndarray | None, inverse: bool = False) -> None:
        """``S[r, c] <- mat[r] @ S[r, c]`` on the block's qubits (``mat`` ``(R|1, d, d)``;
        a fixed kernel ignores it and uses ``inverse`` instead)."""
        ...

    def rho(self, S: np.ndarray) -> np.ndarray:
        """``ρ'`` ``(R, C - 1, d, d)`` of the columns ``1..`` against column 0."""
        ...


def linear_kernel(kernel: Any) -> Kernel:
    """A kernel that applies any matrix of the block's shape: a controlled kernel treats the
    uncontrolled part as the identity, right for a unitary but not for a generator."""
    return kernel.dense if isinstance(kernel, Ctrl) else kernel


def _view_shape(n: int, qubits: Sequence[int]) -> tuple[list[int], dict[int, int]]:
    """Shape splitting ``2**n`` at ``qubits`` and the axis of each qubit in it."""
    shape: list[int] = []
    axis: dict[int, int] = {}
    prev = n
    for q in sorted(qubits, reverse=True):
        shape.append(1 << (prev - q - 1))
        axis[q] = len(shape)
        shape.append(2)
        prev = q
    shape.append(1 << prev)
    return shape, axis


def _split(S: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """A view of ``S`` ``(R, C, N)`` with the state axis split as ``shape``."""
    return _reshaped(S, tuple(S.shape[:2]) + tuple(shape))


def _reshaped(S: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``S`` reshaped as a view: raises rather than copy (a kernel writes through it)."""
    view = S.view()
    view.shape = shape
    return view


class DenseRange:
    """A dense matrix on the contiguous qubits ``lo … lo + k - 1`` (one or two of them)."""

    def __init__(self, n: int, lo: int, k: int = 1) -> None:
        self.d = 1 << k
        self.Y = 1 << lo
        self.X = 1 << (n - lo - k)
        self.small = self.d * self.Y <= _SMALL_DY
        self.eye = np.eye(self.Y)[None, None, :, None, :] if self.small else np.empty(0)

    def _kron_t(self, mat: np.ndarray) -> np.ndarray:
        """``kron(mat, 1_Y)^T`` per matrix ``(R|1, dY, dY)``."""
        kron = mat[:, :, None, :, None] * self.eye
        dy = self.d * self.Y
        return kron.reshape(mat.shape[0], dy, dy).swapaxes(-1, -2)

    def apply(self, S: np.ndarray, mat: np.ndarray | None, inverse: bool = False) -> None:
        assert mat is not None
        if S.shape[-1] < _IN_PLACE:  # small: one product, copied back
            S[...] = self._product(S, mat)
        elif self.small:
            self._in_place_small(S, mat)
        else:
            self._in_place_wide(S, mat)

    def _in_place_small(self, S: np.ndarray, mat: np.ndarray) -> None:
        """``S`` updated block by block through a small scratch buffer (kept in cache): no
        state-sized allocation and no extra pass over the state."""
        R, C, N = S.shape
        dy = self.d * self.Y
        kt = self._kron_t(mat).copy()
        rows = _reshaped(S, (R, C * self.X, dy))
        step = max(1, _chunk(N) // dy)
        for r in range(R):
            m = kt[0 if len(kt) == 1 else r]
            in_halves(partial(_rows_times, rows[r], m, step), C * self.X, step, N)

    def _in_place_wide(self, S: np.ndarray, mat: np.ndarray) -> None:
        R, C, N = S.shape
        X, Y, d = self.X, self.Y, self.d
        view = _reshaped(S, (R, C * X, d, Y))
        xs = max(1, _chunk(N) // (d * Y))
        ys = min(Y, max(1, _chunk(N) // d))
        for r in range(R):
            m = mat[0 if len(mat) == 1 else r]
            in_halves(partial(_times_blocks, view[r], m, xs, ys), C * X, xs, N)

    def _product(self, S: np.ndarray, mat: np.ndarray) -> np.ndarray:
        R, C, N = S.shape
        X, Y, d = self.X, self.Y, self.d
        if self.small:  # (rows, d·Y) @ kron(mat, 1_Y)^T: one BLAS call
            kt = self._kron_t(mat)
            if mat.shape[0] == 1:
                return (S.reshape(R * C * X, d * Y) @ kt[0]).reshape(R, C, N)
            return np.matmul(S.reshape(R, C * X, d * Y), kt).reshape(R, C, N)
        return np.matmul(mat[:, None], S.reshape(R, C * X, d, Y)).reshape(R, C, N)

    def rho(self, S: np.ndarray) -> np.ndarray:
        R, C, N = S.shape
        M, Y, d = C - 1, self.Y, self.d
        rows = _reshaped(S, (R, C, self.X, d * Y))

        def part(lo: int, hi: int) -> np.ndarray:
            psi_c = np.conj(rows[:, :1, lo:hi])
            lam = rows[:, 1:, lo:hi]
            if self.small:
                g = psi_c.swapaxes(-1, -2) @ lam  # (R, M, dY, dY)
                return g.reshape(R, M, d, Y, d, Y).diagonal(axis1=3, axis2=5).sum(-1)
            a = psi_c.reshape(R, 1, hi - lo, d, Y)
            return (a @ lam.reshape(R, M, hi - lo, d, Y).swapaxes(-1, -2)).sum(axis=2)

        return sum(in_halves(part, self.X, 1, N))  # type: ignore[return-value]


def _rows_times(rows: np.ndarray, m: np.ndarray, step: int, lo: int, hi: int) -> None:
    """``rows[lo:hi] <- rows[lo:hi] @ m``, ``step`` rows at a time through a scratch buffer."""
    scratch = np.empty((step, rows.shape[-1]), dtype=complex)
    for start in range(lo, hi, step):
        block = rows[start : min(start + step, hi)]
        out = scratch[: len(block)]
        np.matmul(block, m, out=out)
        block[...] = out


def _times_blocks(view: np.ndarray, m: np.ndarray, xs: int, ys: int, lo: int, hi: int) -> None:
    """``view[x] <- m @ view[x]`` for ``x`` in ``[lo, hi)`` (``view`` ``(rows, d, Y)``), in
    blocks of ``xs x d x ys`` through a scratch buffer."""
    d, Y = view.shape[1:]
    scratch = np.empty((xs, d, ys), dtype=complex)
    for x0 in range(lo, hi, xs):
        for y0 in range(0, Y, ys):
            block = view[x0 : min(x0 + xs, hi), :, y0 : y0 + ys]
            out = scratch[: block.shape[0], :, : block.shape[2]]
            np.matmul(m, block, out=out)
            block[...] = out


class Diag:
    """A diagonal matrix on any qubits."""

    def __init__(self, n: int, qubits: tuple[int, ...]) -> None:
        shape, axis = _view_shape(n, qubits)
        self.shape = shape
        self.k = len(qubits)
        order = [axis[q] for q in reversed(qubits)]  # view axis of each tensor axis
        self.to_view = [0] + [1 + int(p) for p in np.argsort(order)]
        self.dshape = [1] * (2 + len(shape))
        for a in order:
            self.dshape[2 + a] = 2
        rank = {a: i for i, a in enumerate(sorted(order))}
        self.to_tensor = [0, 1] + [2 + rank[a] for a in order]
        self.reduce = _reduction(len(shape), {2 + a for a in order})

    def apply(self, S: np.ndarray, mat: np.ndarray | None, inverse: bool = False) -> None:
        assert mat is not None
        diag = np.diagonal(mat, axis1=-2, axis2=-1)
        dt = diag.reshape((mat.shape[0],) + (2,) * self.k).transpose(self.to_view)
        dshape = list(self.dshape)
        dshape[0] = mat.shape[0]
        view = _split(S, self.shape)
        view *= dt.reshape(dshape)

    def rho(self, S: np.ndarray) -> np.ndarray:
        return self.rho_from_product(np.conj(S[:, :1]) * S[:, 1:])

    def rho_from_product(self, product: np.ndarray) -> np.ndarray:
        """``ρ'`` from ``conj(ψ) λ_m`` ``(R, M, N)``. Diagonal unitaries leave that product
        unchanged, so a run of diagonal blocks shares one (see ``passes.backward``)."""
        R, M, _ = product.shape
        d = 1 << self.k
        prod = product.reshape([R, M] + self.shape)
        summed = np.einsum(self.reduce, prod).transpose(self.to_tensor).reshape(R, M, d)
        rho = np.zeros((R, M, d, d), dtype=complex)
        rho[..., np.arange(d), np.arange(d)] = summed
        return rho


def _reduction(num_axes: int, kept: set[int]) -> str:
    """An einsum summing the view axes ``2..`` not in ``kept`` (faster than strided sum())."""
    letters = "abcdefghijklmnopqrstuvwxyz"[: 2 + num_axes]
    kept_letters = "".join(c for i, c in enumerate(letters) if i < 2 or i in kept)
    return f"{letters}->{kept_letters}"


class Dense:
    """A dense matrix on k qubits: move them to the front, multiply, move back."""

    def __init__(self, n: int, qubits: tuple[int, ...]) -> None:
        shape, axis = _view_shape(n, qubits)
        self.shape = shape
        self.k = len(qubits)
        self.order = [2 + axis[q] for q in reversed(qubits)]
        self.front = list(range(2, 2 + self.k))

    def _front(self, S: np.ndarray, C: int) -> np.ndarray:
        view = S.reshape([S.shape[0], C] + self.shape)
        return np.moveaxis(view, self.order, self.front)

    def apply(self, S: np.ndarray, mat: np.ndarray | None, inverse: bool = False) -> None:
        assert mat is not None
        R, d = len(S), 1 << self.k
        for part in _parts(S):
            moved = np.moveaxis(_split(part, self.shape), self.order, self.front)
            product = np.matmul(mat[:, None], moved.reshape(R, part.shape[1], d, -1))
            moved[...] = product.reshape(moved.shape)
            del product  # before the next column's: one state of scratch space

    def rho(self, S: np.ndarray) -> np.ndarray:
        R, C, _ = S.shape
        d = 1 << self.k
        a = self._front(np.conj(S[:, :1]), 1).reshape(R, 1, d, -1)
        b = self._front(S[:, 1:], C - 1).reshape(R, C - 1, d, -1)
        return a @ b.swapaxes(-1, -2)


class Ctrl:
    """A 2x2 matrix on one target where all other qubits of the block are 1."""

    def __init__(
        self, n: int, qubits: tuple[int, ...], controls: tuple[int, ...], target: int
    ) -> None:
        shape, axis = _view_shape(n, qubits)
        self.shape = shape
        self.x_target = False  # a fixed X on the target: swap the halves
        sel: list[Any] = [slice(None)] * (2 + len(shape))
        for c in controls:
            sel[2 + axis[qubits[c]]] = 1
        self.sel = tuple(sel)
        tq = qubits[target]
        t_axis = 2 + axis[tq] - sum(1 for c in controls if axis[qubits[c]] < axis[tq])
        lo: list[Any] = [slice(None)] * (2 + len(shape) - len(controls))
        hi = list(lo)
        lo[t_axis], hi[t_axis] = 0, 1
        self.lo, self.hi = tuple(lo), tuple(hi)
        on = sum(1 << c for c in controls)
        self.rows = [on, on | (1 << target)]
        self.dense = Dense(n, qubits)

    def sub_matrix(self, mat: np.ndarray) -> np.ndarray:
        return mat[..., self.rows, :][..., :, self.rows]

    def apply(self, S: np.ndarray, mat: np.ndarray | None, inverse: bool = False) -> None:
        sub = _split(S, self.shape)[self.sel]
        s0, s1 = sub[self.lo], sub[self.hi]
        if self.x_target:
            tmp = s0.copy()
            s0[...] = s1
            s1[...] = tmp
            return
        assert mat is not None
        m = self.sub_matrix(mat)
        bshape = (m.shape[0],) + (1,) * (s0.ndim - 1)
        m00, m01 = m[:, 0, 0].reshape(bshape), m[:, 0, 1].reshape(bshape)
        m10, m11 = m[:, 1, 0].reshape(bshape), m[:, 1, 1].reshape(bshape)
        new0 = m00 * s0 + m01 * s1
        s1[...] = m10 * s0 + m11 * s1
        s0[...] = new0

    def rho(self, S: np.ndarray) -> np.ndarray:
        return self.dense.rho(S)


class Gather:
    """A fixed permutation with phases over the whole state: ``S'[i] = phase[i] S[perm[i]]``
    (``inverse``: its inverse). Never parameterised, so it has no ``rho``."""

    def __init__(self, perm: np.ndarray, phase: np.ndarray | None) -> None:
        self.perm = perm
        self.phase = phase
        self.inv_perm = np.argsort(perm).astype(perm.dtype)
        self.inv_phase = None if phase is None else np.conj(phase)[self.inv_perm]

    def apply(self, S: np.ndarray, mat: np.ndarray | None = None, inverse: bool = False) -> None:
        perm, phase = (self.inv_perm, self.inv_phase) if inverse else (self.perm, self.phase)
        for part in _parts(S):
            moved = np.take(part, perm, axis=-1)
            if phase is not None:
                moved *= phase
            part[...] = moved
            del moved  # before the next column's: one state of scratch space

    def rho(self, S: np.ndarray) -> np.ndarray:
        raise NotImplementedError("a fixed permutation has no generators")


def _parts(S: np.ndarray) -> list[np.ndarray]:
    """``S`` whole, or on large states its columns one by one (scratch space of one state,
    not of a second stack)."""
    R, C, N = S.shape
    return [S] if C == 1 or N < _COLUMNWISE else [S[:, c : c + 1] for c in range(C)]
