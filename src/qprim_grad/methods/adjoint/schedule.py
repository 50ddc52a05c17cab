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


class _Ready:
    """The blocks whose dependencies have all been emitted, by class."""

    def __init__(self, blocks: Sequence[Block], classes: list[int]) -> None:
        self.blocks, self.classes = blocks, classes
        deps = _dependencies(blocks, classes)
        self.waits = [len(mine) for mine in deps]
        self.unlocks: list[list[int]] = [[] for _ in blocks]
        for j, mine in enumerate(deps):
            for i in mine:
                self.unlocks[i].append(j)
        self.ready: dict[int, list[int]] = {c: [] for c in set(classes)}
        for j, waiting in enumerate(self.waits):
            if not waiting:
                self.ready[classes[j]].append(j)

    def __bool__(self) -> bool:
        return any(self.ready.values())

    def next_class(self, current: int) -> int:
        """``current`` while it has ready blocks, else the class of the earliest ready one."""
        if self.ready.get(current):
            return current
        return min((c for c in self.ready if self.ready[c]), key=lambda c: min(self.ready[c]))

    def take(self, kind: int) -> list[int]:
        """The ready blocks of ``kind``, by lowest qubit."""
        batch = sorted(self.ready[kind], key=lambda j: (min(self.blocks[j].qubits), j))
        self.ready[kind] = []
        return batch

    def emitted(self, j: int) -> None:
        for k in self.unlocks[j]:
            self.waits[k] -= 1
            if not self.waits[k]:
                self.ready[self.classes[k]].append(k)


def schedule(blocks: Sequence[Block], classify: Callable[[Block], int]) -> list[Block]:
    """``blocks`` reordered into runs of one class (``classify``: small ints, ``0`` for
    diagonal blocks), each run sorted by lowest qubit; the first ready class goes first."""
    classes = [classify(block) for block in blocks]
    ready = _Ready(blocks, classes)
    order: list[int] = []
    kind = classes[0] if blocks else DIAGONAL
    while ready:
        kind = ready.next_class(kind)
        for j in ready.take(kind):
            order.append(j)
            ready.emitted(j)
    return [blocks[j] for j in order]
