"""Runs of diagonal blocks (``rz``, ``rzz``, ``cz``, ``cp``…), applied and reduced as one.

Diagonal blocks commute, and along a run ``conj(ψ) λ_m`` does not change, so a run costs a
few passes over the state instead of one or two per block: the qubits are cut in two at
``cut``, every block below the cut multiplies into one diagonal of length ``2**cut``, every
block above it into one of length ``2**(n - cut)``, and only blocks that straddle the cut
touch the state on their own. Reductions likewise: the two marginals of ``conj(ψ) λ_m``
serve every block on one side of the cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .blocks import Block
from .kernels import Diag

__all__ = ["DiagonalRun", "diagonal_runs"]

MIN_RUN = 3  # shorter runs are applied block by block


def _cut(n: int, qubit_sets: Sequence[tuple[int, ...]]) -> int:
    """The cut with the fewest straddling blocks, as near the middle as possible."""

    def cost(cut: int) -> tuple[int, int]:
        straddling = sum(min(qs) < cut <= max(qs) for qs in qubit_sets)
        return straddling, abs(2 * cut - n)

    return min(range(1, n), key=cost)


@dataclass(frozen=True)
class DiagonalRun:
    """Blocks ``start … stop - 1``, all diagonal, on an ``n``-qubit state."""

    start: int
    stop: int
    n: int
    cut: int
    sides: tuple[int, ...]  # per block: 0 below the cut, 1 above it, 2 straddling
    kernels: tuple[Diag, ...]  # per block, on its side's qubits (straddling: all n)

    @classmethod
    def build(cls, start: int, blocks: Sequence[Block], n: int) -> DiagonalRun:
        qubit_sets = [block.qubits for block in blocks]
        cut = _cut(n, qubit_sets)
        sides, kernels = [], []
        for qs in qubit_sets:
            if max(qs) < cut:
                sides.append(0)
                kernels.append(Diag(cut, qs))
            elif min(qs) >= cut:
                sides.append(1)
                kernels.append(Diag(n - cut, tuple(q - cut for q in qs)))
            else:
                sides.append(2)
                kernels.append(Diag(n, qs))
        return cls(start, start + len(blocks), n, cut, tuple(sides), tuple(kernels))

    def apply(self, S: np.ndarray, mats: Sequence[np.ndarray]) -> None:
        """``S`` multiplied in place by every block's diagonal matrix (``mats[i]``
        ``(R|1, d, d)`` for block ``start + i``)."""
        R, C, _ = S.shape
        rows = max(len(mat) for mat in mats)
        low = np.ones((rows, 1, 1 << self.cut), dtype=complex)
        high = np.ones((rows, 1, 1 << (self.n - self.cut)), dtype=complex)
        for side, kernel, mat in zip(self.sides, self.kernels, mats, strict=True):
            kernel.apply((low, high, S)[side], mat)
        view = S.reshape(R, C, len(high[0, 0]), len(low[0, 0]))
        view *= low[:, :, None, :]
        view *= high[:, :, :, None]

    def rhos(self, product: np.ndarray) -> list[np.ndarray]:
        """Every block's ``ρ'`` ``(R, M, d, d)`` from ``conj(ψ) λ_m`` ``(R, M, 2**n)``."""
        R, M, _ = product.shape
        view = product.reshape(R, M, 1 << (self.n - self.cut), 1 << self.cut)
        sources = (
            view.sum(axis=2) if 0 in self.sides else None,
            view.sum(axis=3) if 1 in self.sides else None,
            product,
        )
        return [
            kernel.rho_from_product(sources[side])  # type: ignore[arg-type]
            for side, kernel in zip(self.sides, self.kernels, strict=True)
        ]


def diagonal_runs(blocks: Sequence[Block], n: int) -> dict[int, DiagonalRun]:
    """The runs of at least :data:`MIN_RUN` consecutive diagonal blocks, by first block."""
    runs: dict[int, DiagonalRun] = {}
    b = 0
    while b < len(blocks):
        e = b
        while e < len(blocks) and isinstance(blocks[e].kernel, Diag):
            e += 1
        if e - b >= MIN_RUN and n >= 2:
            runs[b] = DiagonalRun.build(b, blocks[b:e], n)
        b = max(e, b + 1)
    return runs
