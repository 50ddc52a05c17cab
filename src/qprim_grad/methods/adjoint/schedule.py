"""The order blocks are applied in: as the circuit allows, grouped into runs of one class.

Blocks on disjoint qubits commute, and so do diagonal blocks; nothing else moves past a block
it shares a qubit with. Within those limits the scheduler emits runs of one class at a time
(diagonal, fixed permutation, other), each sorted by qubit, so that diagonal runs fuse
(:mod:`.diagonal`), permutations gather into one index array and neighbouring one-qubit
blocks pair into 4x4 blocks. A layered ansatz (rotations, then an ``rzz`` or ``cx`` chain)
becomes one run per layer and class instead of an alternation of single blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .blocks import Block

__all__ = ["schedule"]

DIAGONAL = 0  # the class of diagonal blocks: these commute with each other


def _dependencies(blocks: Sequence[Block], classes: Sequence[int]) -> list[set[int]]:
    """Per block, the earlier blocks it must follow."""
    last: dict[int, int] = {}  # per qubit: its last non-diagonal block
    since: dict[int, list[int]] = {}  # per qubit: the diagonal blocks after that one
    deps: list[set[int]] = []
    for j, block in enumerate(blocks):
        mine: set[int] = set()
        for q in block.qubits:
            if q in last:
                mine.add(last[q])
            if classes[j] == DIAGONAL:
                since.setdefault(q, []).append(j)
            else:
                mine.update(since.pop(q, []))
                last[q] = j
        deps.append(mine)
    return deps


def schedule(blocks: Sequence[Block], classify: Callable[[Block], int]) -> list[Block]:
    """``blocks`` reordered into runs of one class (``classify``: small ints, ``0`` for
    diagonal blocks), each run sorted by lowest qubit; the first ready class goes first."""
    classes = [classify(block) for block in blocks]
    waits = [0] * len(blocks)
    unlocks: list[list[int]] = [[] for _ in blocks]
    for j, deps in enumerate(_dependencies(blocks, classes)):
        waits[j] = len(deps)
        for i in deps:
            unlocks[i].append(j)
    ready: dict[int, list[int]] = {c: [] for c in set(classes)}
    for j in range(len(blocks)):
        if waits[j] == 0:
            ready[classes[j]].append(j)
    order: list[int] = []
    kind = classes[0] if blocks else DIAGONAL
    while any(ready.values()):
        if not ready[kind]:
            kind = min((c for c in ready if ready[c]), key=lambda c: min(ready[c]))
        batch = sorted(ready[kind], key=lambda j: (min(blocks[j].qubits), j))
        ready[kind] = []
        for j in batch:
            order.append(j)
            for k in unlocks[j]:
                waits[k] -= 1
                if waits[k] == 0:
                    ready[classes[k]].append(k)
    return [blocks[j] for j in order]
