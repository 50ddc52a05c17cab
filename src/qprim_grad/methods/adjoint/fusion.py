"""Blocks to kernels: each block gets a kernel specialised to its structure, runs of fixed
permutation or diagonal gates (``cx`` ladders, ``cz``, ``swap``, ``s``…) become one gather over
the state, and dense one-qubit blocks on neighbouring qubits are paired into one 4x4 block."""

from __future__ import annotations

from typing import Any

import numpy as np
from qiskit.circuit import ParameterExpression, QuantumCircuit

from .blocks import Block, Factor, walk_circuit
from .gates import embedded, kron_at
from .kernels import Ctrl, Dense, DenseRange, Diag, Gather, Kernel
from .schedule import DIAGONAL, schedule

__all__ = ["build_blocks"]

_MAX_GATHER_QUBITS = 20  # above, permutation runs stay separate (index arrays get large)

Monomial = tuple[np.ndarray, np.ndarray]


def build_blocks(
    circuit: QuantumCircuit,
) -> tuple[list[Block], list[ParameterExpression], list[int]]:
    """Blocks (with kernels), the gate-argument expressions and the global-phase arguments."""
    walk = walk_circuit(circuit)
    n = circuit.num_qubits
    for block in walk.blocks:
        block.kernel = _kernel_for(block, n)
    blocks = schedule(walk.blocks, _block_class)
    blocks = _gather_runs(blocks, n) if n <= _MAX_GATHER_QUBITS else blocks
    return _pair_neighbours(blocks, n), walk.exprs, walk.phase_args


def _block_class(block: Block) -> int:
    """The scheduling class: diagonal, fixed permutation (gathered later) or other."""
    if isinstance(block.kernel, Diag):
        return DIAGONAL
    if block.fixed_matrix is not None and _monomial(block.fixed_matrix) is not None:
        return 1
    return 2


def _product(block: Block, rng: np.random.Generator | None) -> np.ndarray:
    """The block's matrix, parameterised factors at random arguments from ``rng``."""
    mat = np.eye(block.dim, dtype=complex)
    for f in block.factors:
        if f.template is None:
            mat = f.fixed @ mat
        else:
            assert rng is not None
            mat = f.template.evaluate(rng.uniform(-np.pi, np.pi, len(f.args)))[0] @ mat
    return mat


def _samples(block: Block) -> list[np.ndarray]:
    """The block's matrix (fixed: also stored as ``fixed_matrix``), or at two random points."""
    if all(f.template is None for f in block.factors):
        block.fixed_matrix = _product(block, None)
        return [block.fixed_matrix]
    rng = np.random.default_rng(7)
    return [_product(block, rng) for _ in range(2)]


def _kernel_for(block: Block, n: int) -> Kernel:
    samples = _samples(block)
    if all(np.count_nonzero(m - np.diag(np.diag(m))) == 0 for m in samples):
        return Diag(n, block.qubits)
    k = len(block.qubits)
    if k == 1:
        return DenseRange(n, block.qubits[0])
    controls = _controls(samples, k)
    if len(controls) != k - 1:
        return Dense(n, block.qubits)
    target = next(p for p in range(k) if p not in controls)
    kernel = Ctrl(n, block.qubits, tuple(controls), target)
    sub = kernel.sub_matrix(samples[0])
    kernel.x_target = block.fixed_matrix is not None and np.array_equal(
        sub, np.array([[0, 1], [1, 0]])
    )
    return kernel


def _controls(samples: list[np.ndarray], k: int) -> list[int]:
    """Bit positions that act as controls: where they are 0, every sample is the identity."""
    idx = np.arange(1 << k)
    eye = np.eye(1 << k)

    def controls(pos: int) -> bool:
        zero = idx[(idx >> pos) & 1 == 0]
        return all(
            np.array_equal(m[:, zero], eye[:, zero]) and np.array_equal(m[zero, :], eye[zero, :])
            for m in samples
        )

    return [pos for pos in range(k) if controls(pos)]


def _monomial(mat: np.ndarray) -> Monomial | None:
    """``(σ, u)`` with ``mat[σ[a], a] = u[a]`` the only non-zeros, else ``None``."""
    nonzero = mat != 0
    if not (np.all(nonzero.sum(axis=0) == 1) and np.all(nonzero.sum(axis=1) == 1)):
        return None
    sigma = np.argmax(nonzero, axis=0)
    return sigma, mat[sigma, np.arange(len(sigma))]


def _gather_runs(blocks: list[Block], n: int) -> list[Block]:
    """Merge runs of fixed monomial blocks (moving disjoint blocks before them) into gathers."""
    out: list[Block] = []
    run: list[tuple[Block, Monomial]] = []
    run_qubits: set[int] = set()
    seen: dict[Any, Kernel] = {}  # repeated layers share one index array

    def close() -> None:
        if len(run) == 1:
            out.append(run[0][0])
        elif run:
            out.append(_merged(run, n, seen))
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


def _merged(run: list[tuple[Block, Monomial]], n: int, seen: dict[Any, Kernel]) -> Block:
    """One block applying the run as one gather (shared with an identical earlier run)."""
    qubits = sorted({q for block, _ in run for q in block.qubits})
    key = tuple((b.qubits, np.asarray(b.fixed_matrix).tobytes()) for b, _ in run)
    if key not in seen:
        seen[key] = _gather(run, n)
    return Block(tuple(qubits), [], fixed_matrix=None, kernel=seen[key])


def _gather(run: list[tuple[Block, Monomial]], n: int) -> Gather:
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
    return Gather(perm, None if np.all(phase == 1) else phase)


def _embed(factor: Factor, position: int) -> Factor:
    """``factor`` (2x2) as a 4x4 factor acting on bit ``position`` of a qubit pair."""
    if factor.template is None:
        assert factor.fixed is not None
        return Factor(fixed=kron_at(factor.fixed, position))
    return Factor(template=embedded(factor.template, position), args=factor.args)


def _pairable(a: Block, b: Block | None) -> bool:
    return (
        b is not None
        and isinstance(a.kernel, DenseRange)
        and isinstance(b.kernel, DenseRange)
        and a.kernel.d == b.kernel.d == 2
        and abs(a.qubits[0] - b.qubits[0]) == 1
    )


def _pair_neighbours(blocks: list[Block], n: int) -> list[Block]:
    """Merge consecutive dense one-qubit blocks on neighbouring qubits into one 4x4 block:
    half the passes over the state (they commute, so each keeps its generators)."""
    out: list[Block] = []
    i = 0
    while i < len(blocks):
        a = blocks[i]
        b = blocks[i + 1] if i + 1 < len(blocks) else None
        if b is None or not _pairable(a, b):
            out.append(a)
            i += 1
            continue
        lo = min(a.qubits[0], b.qubits[0])
        factors = [_embed(f, blk.qubits[0] - lo) for blk in (a, b) for f in blk.factors]
        pair = Block((lo, lo + 1), factors)
        _samples(pair)  # sets fixed_matrix when nothing is parameterised
        pair.kernel = DenseRange(n, lo, 2)
        out.append(pair)
        i += 2
    return out
