"""Circuits as blocks for the adjoint kernel, and the state kernels that apply them.

A circuit becomes a list of :class:`Block`\\ s: runs of single-qubit gates on one wire are
fused into one block, every other gate is a block of its own, and runs of fixed permutation
or diagonal gates (``cx`` ladders, ``cz``, ``swap``, ``s``…) become one gather over the state.
Each block gets a kernel specialised to its structure at compile time (dense 2x2, diagonal,
controlled 2x2, dense k-qubit, monomial), which applies a matrix to the stacked states
``S (R, C, 2**n)`` and computes ``ρ'[r, m] = Tr_rest |λ_rm⟩⟨ψ_r|`` on the block's qubits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from qiskit.circuit import (
    Barrier,
    ControlFlowOp,
    Delay,
    Gate,
    Instruction,
    ParameterExpression,
    QuantumCircuit,
)

from ._adjoint_gates import Template, fixed_matrix, template
from .errors import AdjointError

__all__ = ["AdjointError", "Block", "Factor", "build_blocks"]

_SMALL_DY = 16  # up to this d·stride a gate is applied as one Kronecker-product matmul
_MAX_GATHER_QUBITS = 20  # above, permutation runs stay separate (index arrays get large)
_COLUMNWISE = 1 << 18  # from this many amplitudes on, kernels update the stack column-wise
_IN_PLACE = 1 << 14  # from this many amplitudes on, dense one/two-qubit blocks work in place
_CHUNK = 1 << 13  # amplitudes per in-place block (a scratch buffer that stays in cache)


@dataclass
class Factor:
    """One gate of a block: a fixed matrix, or a template with global argument indices."""

    fixed: np.ndarray | None = None
    template: Template | None = None
    args: tuple[int, ...] = ()


@dataclass
class Block:
    """Gates applied in order on ``qubits`` (matrix bit ``i`` ↔ ``qubits[i]``)."""

    qubits: tuple[int, ...]
    factors: list[Factor]
    fixed_matrix: np.ndarray | None = None  # product, when no factor is parameterised
    kernel: Any = None

    @property
    def dim(self) -> int:
        return 1 << len(self.qubits)

    @property
    def args(self) -> tuple[int, ...]:
        return tuple(a for f in self.factors for a in f.args)


# --------------------------------------------------------------------------------------------
# Circuit -> blocks
# --------------------------------------------------------------------------------------------


@dataclass
class _Builder:
    """Walks a circuit into blocks, fusing single-qubit runs per wire."""

    blocks: list[Block] = field(default_factory=list)
    exprs: list[ParameterExpression] = field(default_factory=list)
    phase_args: list[int] = field(default_factory=list)
    pending: dict[int, list[Factor]] = field(default_factory=dict)

    def arg(self, expr: ParameterExpression) -> int:
        self.exprs.append(expr)
        return len(self.exprs) - 1

    def flush(self, qubit: int) -> None:
        factors = self.pending.pop(qubit, None)
        if factors:
            self.blocks.append(Block((qubit,), factors))

    def emit(self, qubits: tuple[int, ...], factor: Factor) -> None:
        if len(qubits) == 1:
            self.pending.setdefault(qubits[0], []).append(factor)
            return
        for q in qubits:
            self.flush(q)
        self.blocks.append(Block(qubits, [factor]))

    def add_phase(self, phase: Any) -> None:
        if isinstance(phase, ParameterExpression) and phase.parameters:
            self.phase_args.append(self.arg(phase))

    def walk(self, circuit: QuantumCircuit, qubit_map: Sequence[int]) -> None:
        self.add_phase(circuit.global_phase)
        index = {bit: i for i, bit in enumerate(circuit.qubits)}
        for inst in circuit.data:
            qubits = tuple(qubit_map[index[q]] for q in inst.qubits)
            self.instruction(inst.operation, qubits)

    def instruction(self, op: Instruction, qubits: tuple[int, ...]) -> None:
        if isinstance(op, (Barrier, Delay)):
            return
        if isinstance(op, ControlFlowOp) or op.name in ("measure", "reset", "store"):
            raise AdjointError(
                f"method='reverse' needs a unitary circuit without measurements, resets or "
                f"control flow; found '{op.name}'. Remove it (the estimator measures for you)."
            )
        if op.num_clbits:
            raise AdjointError(f"method='reverse': operation '{op.name}' acts on classical bits")
        symbolic = tuple(
            i
            for i, p in enumerate(op.params)
            if isinstance(p, ParameterExpression) and p.parameters
        )
        if isinstance(op, Gate) and op.num_qubits == 0:  # GlobalPhaseGate
            for i in symbolic:
                self.add_phase(op.params[i])
            return
        if isinstance(op, Gate):
            if not symbolic:
                mat = fixed_matrix(op)
                if mat is not None:
                    self.emit(qubits, Factor(fixed=mat))
                    return
            else:
                found = template(op, symbolic)
                if found is not None:
                    args = tuple(self.arg(op.params[i]) for i in symbolic)
                    self.emit(qubits, Factor(template=found, args=args))
                    return
        try:
            definition = op.definition
        except Exception as exc:  # noqa: BLE001 - qiskit raises various errors here
            raise AdjointError(
                f"method='reverse' cannot differentiate gate '{op.name}': it has no exact "
                f"matrix and no decomposition ({exc}). Use method='param_shift' or "
                f"'finite_diff', or bind its parameters."
            ) from exc
        if definition is None:
            raise AdjointError(
                f"method='reverse' cannot differentiate gate '{op.name}': it has neither a "
                f"matrix nor a definition."
            )
        self.walk(definition, qubits)

    def finish(self) -> None:
        for q in list(self.pending):
            self.flush(q)


def build_blocks(
    circuit: QuantumCircuit,
) -> tuple[list[Block], list[ParameterExpression], list[int]]:
    """Blocks (with kernels), the gate-argument expressions and the global-phase arguments."""
    builder = _Builder()
    builder.walk(circuit, list(range(circuit.num_qubits)))
    builder.finish()
    n = circuit.num_qubits
    for block in builder.blocks:
        block.kernel = _kernel_for(block, n)
    blocks = _gather_runs(builder.blocks, n) if n <= _MAX_GATHER_QUBITS else builder.blocks
    return _pair_neighbours(blocks, n), builder.exprs, builder.phase_args


# --------------------------------------------------------------------------------------------
# Structure analysis
# --------------------------------------------------------------------------------------------


def _samples(block: Block) -> list[np.ndarray]:
    """The block's matrix (fixed), or at two random argument points."""
    if all(f.template is None for f in block.factors):
        mat = np.eye(block.dim, dtype=complex)
        for f in block.factors:
            mat = f.fixed @ mat
        block.fixed_matrix = mat
        return [mat]
    rng = np.random.default_rng(7)
    samples = []
    for _ in range(2):
        mat = np.eye(block.dim, dtype=complex)
        for f in block.factors:
            if f.template is None:
                mat = f.fixed @ mat
            else:
                mat = f.template.evaluate(rng.uniform(-np.pi, np.pi, len(f.args)))[0] @ mat
        samples.append(mat)
    return samples


def _kernel_for(block: Block, n: int) -> Any:
    samples = _samples(block)
    if all(np.count_nonzero(m - np.diag(np.diag(m))) == 0 for m in samples):
        return _Diag(n, block.qubits)
    k = len(block.qubits)
    if k == 1:
        return _DenseRange(n, block.qubits[0])
    idx = np.arange(block.dim)
    eye = np.eye(block.dim)
    controls = [
        pos
        for pos in range(k)
        if all(
            np.array_equal(m[:, zero], eye[:, zero]) and np.array_equal(m[zero, :], eye[zero, :])
            for m in samples
            for zero in [idx[(idx >> pos) & 1 == 0]]
        )
    ]
    if len(controls) == k - 1:
        target = next(p for p in range(k) if p not in controls)
        kernel = _Ctrl(n, block.qubits, tuple(controls), target)
        sub = kernel.sub_matrix(samples[0])
        kernel.x_target = block.fixed_matrix is not None and np.array_equal(
            sub, np.array([[0, 1], [1, 0]])
        )
        return kernel
    return _Dense(n, block.qubits)


def _monomial(mat: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(σ, u)`` with ``mat[σ[a], a] = u[a]`` the only non-zeros, else ``None``."""
    nonzero = mat != 0
    if not (np.all(nonzero.sum(axis=0) == 1) and np.all(nonzero.sum(axis=1) == 1)):
        return None
    sigma = np.argmax(nonzero, axis=0)
    return sigma, mat[sigma, np.arange(len(sigma))]


def _gather_runs(blocks: list[Block], n: int) -> list[Block]:
    """Merge runs of fixed monomial blocks (moving disjoint blocks before them) into gathers."""
    out: list[Block] = []
    run: list[tuple[Block, tuple[np.ndarray, np.ndarray]]] = []
    run_qubits: set[int] = set()
    seen: dict[Any, _Gather] = {}  # repeated layers share one index array

    def close() -> None:
        if len(run) == 1:
            out.append(run[0][0])
        elif run:
            key = tuple((b.qubits, np.asarray(b.fixed_matrix).tobytes()) for b, _ in run)
            merged = _merged(run, n, seen.get(key))
            seen[key] = merged.kernel
            out.append(merged)
        run.clear()
        run_qubits.clear()

    for block in blocks:
        mono = None if block.fixed_matrix is None else _monomial(block.fixed_matrix)
        if mono is not None:
            run.append((block, mono))
            run_qubits.update(block.qubits)
            continue
        if run_qubits & set(block.qubits):
            close()
        out.append(block)  # disjoint from the open run: commutes past it
    close()
    return out


def _merged(
    run: list[tuple[Block, tuple[np.ndarray, np.ndarray]]], n: int, kernel: Any = None
) -> Block:
    qubits = sorted({q for block, _ in run for q in block.qubits})
    merged = Block(tuple(qubits), [], fixed_matrix=None)
    if kernel is not None:
        merged.kernel = kernel
        return merged
    index = np.arange(1 << n, dtype=np.int32)
    perm = index.copy()
    phase = np.ones(1 << n, dtype=complex)
    for block, (sigma, u) in run:
        local = np.zeros_like(index)
        rest = index.copy()
        for j, q in enumerate(block.qubits):
            local |= ((index >> q) & 1) << j
            rest &= ~(1 << q)
        source = np.argsort(sigma)[local]  # σ^{-1}(b)
        block_perm = rest.copy()
        for j, q in enumerate(block.qubits):
            block_perm |= ((source >> j) & 1) << q
        perm = perm[block_perm]
        phase = u[source] * phase[block_perm]
    merged.kernel = _Gather(perm, None if np.all(phase == 1) else phase)
    return merged


_EMBEDDED: dict[tuple[int, int], tuple[Template, Template]] = {}


def _embed(factor: Factor, position: int) -> Factor:
    """``factor`` (2x2) as a 4x4 factor acting on bit ``position`` of a qubit pair."""

    def kron(mat: np.ndarray) -> np.ndarray:
        return np.kron(np.eye(2), mat) if position == 0 else np.kron(mat, np.eye(2))

    if factor.template is None:
        assert factor.fixed is not None
        return Factor(fixed=kron(factor.fixed))
    key = (id(factor.template), position)
    if key not in _EMBEDDED:  # keeps the template alive, so its id stays unique
        t = factor.template
        coeffs = np.stack([kron(c.reshape(2, 2)).ravel() for c in t.coeffs])
        _EMBEDDED[key] = (t, Template(4, t.freqs, coeffs))
    return Factor(template=_EMBEDDED[key][1], args=factor.args)


def _pair_neighbours(blocks: list[Block], n: int) -> list[Block]:
    """Merge consecutive dense one-qubit blocks on neighbouring qubits into one 4x4 block:
    half the passes over the state (they commute, so each keeps its generators)."""
    out: list[Block] = []
    i = 0
    while i < len(blocks):
        a = blocks[i]
        b = blocks[i + 1] if i + 1 < len(blocks) else None
        if (
            b is not None
            and isinstance(a.kernel, _DenseRange)
            and isinstance(b.kernel, _DenseRange)
            and a.kernel.d == b.kernel.d == 2
            and abs(a.qubits[0] - b.qubits[0]) == 1
        ):
            lo = min(a.qubits[0], b.qubits[0])
            factors = [_embed(f, blk.qubits[0] - lo) for blk in (a, b) for f in blk.factors]
            pair = Block((lo, lo + 1), factors)
            _samples(pair)  # sets fixed_matrix when nothing is parameterised
            pair.kernel = _DenseRange(n, lo, 2)
            out.append(pair)
            i += 2
            continue
        out.append(a)
        i += 1
    return out


# --------------------------------------------------------------------------------------------
# Kernels: S has shape (R, C, 2**n); column 0 is ψ, columns 1.. are the λ_m
# --------------------------------------------------------------------------------------------


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


class _DenseRange:
    """A dense matrix on the contiguous qubits ``lo … lo + k - 1`` (one or two of them)."""

    def __init__(self, n: int, lo: int, k: int = 1) -> None:
        self.d = 1 << k
        self.Y = 1 << lo
        self.X = 1 << (n - lo - k)
        self.small = self.d * self.Y <= _SMALL_DY
        self.eye = np.eye(self.Y)[None, None, :, None, :] if self.small else np.empty(0)

    def apply(self, S: np.ndarray, mat: np.ndarray, inverse: bool = False) -> np.ndarray:
        if S.flags.c_contiguous and S.flags.writeable and S.shape[-1] >= _IN_PLACE:
            return self._in_place(S, mat)
        return self._apply(S, mat)

    def _in_place(self, S: np.ndarray, mat: np.ndarray) -> np.ndarray:
        """``S`` updated block by block through a small scratch buffer (kept in cache): no
        state-sized allocation and no extra pass over the state."""
        R, C, _ = S.shape
        X, Y, d = self.X, self.Y, self.d
        if self.small:
            kron = mat[:, :, None, :, None] * self.eye
            kt = kron.reshape(mat.shape[0], d * Y, d * Y).swapaxes(-1, -2).copy()
            rows = S.reshape(R, C * X, d * Y)
            step = max(1, _CHUNK // (d * Y))
            scratch = np.empty((step, d * Y), dtype=complex)
            for r in range(R):
                m = kt[0 if len(kt) == 1 else r]
                for start in range(0, C * X, step):
                    block = rows[r, start : start + step]
                    out = scratch[: len(block)]
                    np.matmul(block, m, out=out)
                    block[...] = out
            return S
        view = S.reshape(R, C * X, d, Y)
        xs = max(1, _CHUNK // (d * Y))
        ys = min(Y, max(1, _CHUNK // d))
        scratch = np.empty((xs, d, ys), dtype=complex)
        for r in range(R):
            m = mat[0 if len(mat) == 1 else r]
            for x0 in range(0, C * X, xs):
                for y0 in range(0, Y, ys):
                    block = view[r, x0 : x0 + xs, :, y0 : y0 + ys]
                    out = scratch[: block.shape[0], :, : block.shape[2]]
                    np.matmul(m, block, out=out)
                    block[...] = out
        return S

    def _apply(self, S: np.ndarray, mat: np.ndarray) -> np.ndarray:
        R, C, N = S.shape
        X, Y, d = self.X, self.Y, self.d
        if self.small:  # (rows, d·Y) @ kron(mat, 1_Y)^T: one BLAS call
            kron = mat[:, :, None, :, None] * self.eye
            kt = kron.reshape(mat.shape[0], d * Y, d * Y).swapaxes(-1, -2)
            if mat.shape[0] == 1:
                return (S.reshape(R * C * X, d * Y) @ kt[0]).reshape(R, C, N)
            return np.matmul(S.reshape(R, C * X, d * Y), kt).reshape(R, C, N)
        return np.matmul(mat[:, None], S.reshape(R, C * X, d, Y)).reshape(R, C, N)

    def rho(self, S: np.ndarray) -> np.ndarray:
        R, C, _ = S.shape
        M, X, Y, d = C - 1, self.X, self.Y, self.d
        psi_c = np.conj(S[:, :1])
        lam = S[:, 1:]
        if self.small:
            a = psi_c.reshape(R, 1, X, d * Y).swapaxes(-1, -2)
            g = a @ lam.reshape(R, M, X, d * Y)  # (R, M, dY, dY)
            return g.reshape(R, M, d, Y, d, Y).diagonal(axis1=3, axis2=5).sum(-1)
        a = psi_c.reshape(R, 1, X, d, Y)
        return (a @ lam.reshape(R, M, X, d, Y).swapaxes(-1, -2)).sum(axis=2)


class _Diag:
    """A diagonal matrix on any qubits, applied in place."""

    def __init__(self, n: int, qubits: tuple[int, ...]) -> None:
        shape, axis = _view_shape(n, qubits)
        self.shape = shape
        k = len(qubits)
        order = [axis[q] for q in reversed(qubits)]  # view axis of each tensor axis
        self.to_view = [0] + [1 + int(p) for p in np.argsort(order)]
        self.dshape = [1] * (2 + len(shape))
        for q in qubits:
            self.dshape[2 + axis[q]] = 2
        self.k = k
        kept = sorted(2 + axis[q] for q in qubits)
        self.sum_axes = tuple(i for i in range(2, 2 + len(shape)) if i not in kept)
        rank = {a: i for i, a in enumerate(sorted(order))}
        self.to_tensor = [0, 1] + [2 + rank[a] for a in order]
        letters = "abcdefghijklmnopqrstuvwxyz"[: 2 + len(shape)]
        kept_letters = "".join(letters[i] for i in range(len(letters)) if i not in self.sum_axes)
        self.reduce = f"{letters}->{kept_letters}"  # einsum: faster than strided sum()

    def apply(self, S: np.ndarray, mat: np.ndarray, inverse: bool = False) -> np.ndarray:
        R, C, _ = S.shape
        diag = np.diagonal(mat, axis1=-2, axis2=-1)
        dt = diag.reshape((mat.shape[0],) + (2,) * self.k).transpose(self.to_view)
        dshape = list(self.dshape)
        dshape[0] = mat.shape[0]
        view = S.reshape([R, C] + self.shape)
        view *= dt.reshape(dshape)
        return S

    def rho(self, S: np.ndarray) -> np.ndarray:
        return self.rho_from_product(np.conj(S[:, :1]) * S[:, 1:])

    def rho_from_product(self, product: np.ndarray) -> np.ndarray:
        """``ρ'`` from ``conj(ψ) λ_m`` ``(R, M, N)``. Diagonal unitaries leave that product
        unchanged, so a run of diagonal blocks shares one (see ``AdjointProgram``)."""
        R, M, _ = product.shape
        d = 1 << self.k
        prod = product.reshape([R, M] + self.shape)
        summed = np.einsum(self.reduce, prod).transpose(self.to_tensor).reshape(R, M, d)
        rho = np.zeros((R, M, d, d), dtype=complex)
        rho[..., np.arange(d), np.arange(d)] = summed
        return rho


class _Dense:
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

    def apply(self, S: np.ndarray, mat: np.ndarray, inverse: bool = False) -> np.ndarray:
        return _columnwise(self._apply, S, mat)

    def _apply(self, S: np.ndarray, mat: np.ndarray) -> np.ndarray:
        R, C, N = S.shape
        moved = self._front(S, C)
        flat = moved.reshape(R, C, 1 << self.k, -1)
        out = np.matmul(mat[:, None], flat).reshape(moved.shape)
        return np.ascontiguousarray(np.moveaxis(out, self.front, self.order)).reshape(R, C, N)

    def rho(self, S: np.ndarray) -> np.ndarray:
        R, C, _ = S.shape
        d = 1 << self.k
        a = self._front(np.conj(S[:, :1]), 1).reshape(R, 1, d, -1)
        b = self._front(S[:, 1:], C - 1).reshape(R, C - 1, d, -1)
        return a @ b.swapaxes(-1, -2)


class _Ctrl:
    """A 2x2 matrix on one target where all other qubits of the block are 1 (in place)."""

    def __init__(
        self, n: int, qubits: tuple[int, ...], controls: tuple[int, ...], target: int
    ) -> None:
        shape, axis = _view_shape(n, qubits)
        self.shape = shape
        self.controls, self.target = controls, target
        self.x_target = False
        sel: list[Any] = [slice(None)] * (2 + len(shape))
        for c in controls:
            sel[2 + axis[qubits[c]]] = 1
        self.sel = tuple(sel)
        tq = qubits[target]
        t_axis = 2 + axis[tq] - sum(1 for c in controls if axis[qubits[c]] < axis[tq])
        ndim = 2 + len(shape) - len(controls)
        lo: list[Any] = [slice(None)] * ndim
        hi: list[Any] = [slice(None)] * ndim
        lo[t_axis], hi[t_axis] = 0, 1
        self.lo, self.hi = tuple(lo), tuple(hi)
        on = sum(1 << c for c in controls)
        self.rows = [on, on | (1 << target)]
        self.dense = _Dense(n, qubits)

    def sub_matrix(self, mat: np.ndarray) -> np.ndarray:
        return mat[..., self.rows, :][..., :, self.rows]

    def apply(self, S: np.ndarray, mat: np.ndarray, inverse: bool = False) -> np.ndarray:
        R, C, _ = S.shape
        sub = S.reshape([R, C] + self.shape)[self.sel]
        s0, s1 = sub[self.lo], sub[self.hi]
        if self.x_target:
            tmp = s0.copy()
            s0[...] = s1
            s1[...] = tmp
            return S
        m = self.sub_matrix(mat)
        bshape = (m.shape[0],) + (1,) * (s0.ndim - 1)
        m00, m01 = m[:, 0, 0].reshape(bshape), m[:, 0, 1].reshape(bshape)
        m10, m11 = m[:, 1, 0].reshape(bshape), m[:, 1, 1].reshape(bshape)
        new0 = m00 * s0 + m01 * s1
        s1[...] = m10 * s0 + m11 * s1
        s0[...] = new0
        return S

    def rho(self, S: np.ndarray) -> np.ndarray:
        return self.dense.rho(S)


class _Gather:
    """A fixed permutation with phases over the whole state: ``S'[i] = phase[i] S[perm[i]]``."""

    def __init__(self, perm: np.ndarray, phase: np.ndarray | None) -> None:
        self.perm = perm
        self.phase = phase
        self.inv_perm = np.argsort(perm).astype(perm.dtype)
        self.inv_phase = None if phase is None else np.conj(phase)[self.inv_perm]

    def apply(self, S: np.ndarray, mat: Any = None, inverse: bool = False) -> np.ndarray:
        perm, phase = (self.inv_perm, self.inv_phase) if inverse else (self.perm, self.phase)

        def gather(T: np.ndarray, _: Any) -> np.ndarray:
            out = np.take(T, perm, axis=-1)
            if phase is not None:
                out *= phase
            return out

        return _columnwise(gather, S, None)


def _columnwise(apply: Any, S: np.ndarray, mat: Any) -> np.ndarray:
    """``apply(S, mat)``; on large states one column at a time, written back into ``S``, so
    that a pass needs one state vector of scratch space, not a second stack."""
    R, C, N = S.shape
    if C == 1 or N < _COLUMNWISE or not S.flags.writeable or not S.flags.c_contiguous:
        return apply(S, mat)
    for c in range(C):
        S[:, c : c + 1] = apply(S[:, c : c + 1], mat)
    return S
