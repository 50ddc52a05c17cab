"""Per batch of parameter rows: every block's matrix, its adjoint and its generators
``K_α = W (∂U_α) U_α^† W^†`` (``W``: the rest of the block), vectorised over rows and over
blocks of the same factor structure (a *group*)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .blocks import Block
from .gates import Template

__all__ = ["BlockMatrices", "Group", "RowMatrices"]


class Group:
    """Parameterised blocks with the same factor structure, evaluated together."""

    def __init__(
        self, members: list[int], blocks: list[Block], slot: dict[tuple[int, int], int]
    ) -> None:
        self.blocks = np.array(members)
        # per factor: ("t", template id, rows in that template's stack) or ("f", fixed stack)
        self.factors: list[tuple[str, Any, Any]] = []
        for f, factor in enumerate(blocks[members[0]].factors):
            if factor.template is None:
                stack = np.stack([np.asarray(blocks[b].factors[f].fixed) for b in members])
                self.factors.append(("f", stack[None], None))
            else:
                rows = np.array([slot[(b, f)] for b in members])
                self.factors.append(("t", id(factor.template), rows))
        self.args = np.array([blocks[b].args for b in members])  # (G, ksum)

    def evaluate(self, stacks: dict[int, tuple[np.ndarray, np.ndarray]]) -> tuple[Any, Any]:
        """The members' matrices ``(R, G, d, d)`` and generators ``(R, G, k, d, d)``."""
        w = None  # W = U_L … U_{i+1}, right to left
        gens: list[np.ndarray] = []
        for kind, ref, rows in reversed(self.factors):
            if kind == "f":
                m = ref
            else:
                m, k = stacks[ref][0][:, rows], stacks[ref][1][:, rows]
                if w is not None:
                    k = w[:, :, None] @ k @ np.conj(w.swapaxes(-1, -2))[:, :, None]
                gens.append(k)
            w = m if w is None else w @ m
        assert w is not None
        gens.reverse()
        return w, np.concatenate(gens, axis=2)


@dataclass
class RowMatrices:
    """Per block its matrix and adjoint (``(R|1, d, d)``; ``None`` for a gather), per group
    the generators ``(R, G, k, d, d)``."""

    mats: list[Any]
    dags: list[Any]
    group_gens: list[np.ndarray]


class BlockMatrices:
    """What a batch's matrices are made of: the fixed blocks' matrices, one stack of
    arguments per template, and the groups."""

    def __init__(self, blocks: list[Block]) -> None:
        self.fixed = [None if b.fixed_matrix is None else b.fixed_matrix[None] for b in blocks]
        self.fixed_dag = [None if m is None else np.conj(m.swapaxes(-1, -2)) for m in self.fixed]
        # template stacks: id -> (template, [(block, factor)])
        self.templates: dict[int, tuple[Template, list[tuple[int, int]]]] = {}
        signatures = self._group_members(blocks)
        slot = {loc: i for _, locs in self.templates.values() for i, loc in enumerate(locs)}
        self.template_args = {
            tid: np.array([blocks[b].factors[f].args for b, f in locs])
            for tid, (_, locs) in self.templates.items()
        }
        self.groups = [Group(members, blocks, slot) for members in signatures]

    def _group_members(self, blocks: list[Block]) -> list[list[int]]:
        """The parameterised blocks grouped by factor structure."""
        signatures: dict[tuple, list[int]] = {}
        for b, block in enumerate(blocks):
            if block.args:
                signatures.setdefault(self._signature(b, block), []).append(b)
        return list(signatures.values())

    def _signature(self, b: int, block: Block) -> tuple:
        """The block's factor structure (registering its templates' stack rows)."""
        signature: list[tuple[str, int]] = []
        for f, factor in enumerate(block.factors):
            if factor.template is None:
                signature.append(("f", block.dim))
            else:
                tid = id(factor.template)
                self.templates.setdefault(tid, (factor.template, []))[1].append((b, f))
                signature.append(("t", tid))
        return tuple(signature)

    def evaluate(self, angles: np.ndarray, traceless: bool) -> RowMatrices:
        """Every block's matrices at gate arguments ``angles (R, A)``; ``traceless`` drops the
        gates' phases (every gate differentiated as an SU(d) gate)."""
        stacks: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for tid, (template, _) in self.templates.items():
            mats, ders = template.evaluate(angles[:, self.template_args[tid]])
            gens = ders @ np.conj(mats.swapaxes(-1, -2))[:, :, None]
            if traceless:
                trace = np.trace(gens, axis1=-2, axis2=-1)[..., None, None]
                gens = gens - trace * (np.eye(template.dim) / template.dim)
            stacks[tid] = (mats, gens)
        out = RowMatrices(list(self.fixed), list(self.fixed_dag), [])
        for group in self.groups:
            w, gens = group.evaluate(stacks)
            out.group_gens.append(gens)
            dag = np.conj(w.swapaxes(-1, -2))
            for g, b in enumerate(group.blocks):
                out.mats[b] = w[:, g]
                out.dags[b] = dag[:, g]
        return out
