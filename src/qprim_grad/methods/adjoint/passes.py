"""The forward and backward passes of a compiled circuit over the stacked states.

``adjoint_batch``: expectation values and ``⟨ψ|O_m|∂_α ψ⟩`` for a batch of parameter rows
(one forward pass, one backward pass over ``[ψ, λ_1, …, λ_M]``). ``state_overlaps``: the
quantum geometric tensor's pieces, one forward pass per row carrying every derivative state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from .arguments import GateArguments
from .blocks import Block
from .diagonal import DiagonalRun
from .kernels import Kernel, linear_kernel
from .matrices import BlockMatrices, RowMatrices
from .pauli import apply_observables

__all__ = ["adjoint_batch", "state_overlaps"]


class AdjointProgram(Protocol):
    """What the passes read of a compiled circuit (:class:`.program.AdjointProgram`)."""

    num_qubits: int
    num_args: int
    blocks: list[Block]
    kernels: list[Kernel]  # the blocks' kernels
    phase_args: np.ndarray
    arguments: GateArguments
    matrices: BlockMatrices
    runs: dict[int, DiagonalRun]  # by first block


def adjoint_batch(
    program: AdjointProgram,
    values: np.ndarray,
    observables: Sequence[Sequence[Any]],
    diff: np.ndarray,
    M: int,
    traceless: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Expectation values ``(R, M)`` and ``⟨ψ|O_m|∂_p ψ⟩`` ``(R, M, P)`` for ``values``."""
    R = len(values)
    N = 1 << program.num_qubits
    angles = program.arguments.angles(values)
    jac = program.arguments.jacobian(values, diff)
    rm = program.matrices.evaluate(angles, traceless)
    psi = np.zeros((R, 1, N), dtype=complex)
    psi[:, 0, 0] = 1.0
    _forward(program, psi, rm.mats)
    S = np.zeros((R, M + 1, N), dtype=complex)  # [ψ, λ_1, …, λ_M] per row
    S[:, 0] = psi[:, 0]
    del psi
    apply_observables(S, observables)
    evs = np.einsum("rn,rmn->rm", np.conj(S[:, 0]), S[:, 1:])
    contrib = np.zeros((R, M, program.num_args), dtype=complex)
    if len(diff) == 0:
        return evs, contrib[:, :, :0]
    if program.phase_args.size and not traceless:
        contrib[:, :, program.phase_args] = 1j * np.conj(evs)[..., None]
    rhos = _backward(program, S, rm)
    for group, gens in zip(program.matrices.groups, rm.group_gens, strict=True):
        rho = np.stack([rhos[b] for b in group.blocks], axis=1)  # (R, G, M, d, d)
        # ⟨λ|K|ψ⟩ = Σ_ab K[b, a] conj(ρ'[a, b])
        c = np.einsum("rgkba,rgmab->rmgk", gens, np.conj(rho))
        contrib[:, :, group.args.ravel()] += c.reshape(R, M, -1)
    return evs, contrib @ jac


def _forward(program: AdjointProgram, S: np.ndarray, mats: Sequence[Any]) -> None:
    """Apply every block to ``S`` in place, diagonal runs as one."""
    b = 0
    while b < len(program.kernels):
        run = program.runs.get(b)
        if run is not None:
            run.apply(S, mats[run.start : run.stop])
            b = run.stop
        else:
            program.kernels[b].apply(S, mats[b], False)
            b += 1


def _backward(program: AdjointProgram, S: np.ndarray, rm: RowMatrices) -> list[Any]:
    """Un-apply every block to ``S`` (last first), recording ``ρ'`` ``(R, M, d, d)`` before
    each parameterised block; a diagonal run is un-applied as one, its blocks' ``ρ'`` taken
    from one product ``conj(ψ) λ_m`` (which the run leaves unchanged)."""
    rhos: list[Any] = [None] * len(program.blocks)
    last_blocks = {run.stop - 1: run for run in program.runs.values()}
    b = len(program.blocks) - 1
    while b >= 0:
        run = last_blocks.get(b)
        if run is not None:
            _backward_run(program, run, S, rm, rhos)
            b = run.start - 1
            continue
        if _parameterised(program, rm, b):
            rhos[b] = program.kernels[b].rho(S)
        program.kernels[b].apply(S, rm.dags[b], True)
        b -= 1
    return rhos


def _parameterised(program: AdjointProgram, rm: RowMatrices, b: int) -> bool:
    return rm.mats[b] is not None and program.matrices.fixed[b] is None


def _backward_run(
    program: AdjointProgram, run: DiagonalRun, S: np.ndarray, rm: RowMatrices, rhos: list[Any]
) -> None:
    blocks = range(run.start, run.stop)
    if any(_parameterised(program, rm, b) for b in blocks):
        product = np.conj(S[:, :1]) * S[:, 1:]
        for b, rho in zip(blocks, run.rhos(product), strict=True):
            if _parameterised(program, rm, b):
                rhos[b] = rho
        del product
    run.apply(S, rm.dags[run.start : run.stop])


def state_overlaps(
    program: AdjointProgram, values: np.ndarray, diff: np.ndarray, states_out: Any
) -> tuple[np.ndarray, np.ndarray]:
    """``<d_p psi|d_q psi>`` ``(R, P, P)`` and ``<psi|d_p psi>`` ``(R, P)`` for ``values``
    ``(R, Pc)``; the final states into ``states_out`` when given.

    One forward pass per row: each parameterised block is applied to the state and to the
    derivative states made so far, then appends ``K_a psi`` for its arguments; the chain
    rule maps the ``A`` argument states to ``P`` parameter states, and one matrix product
    gives all inner products.
    """
    R, P = len(values), len(diff)
    gram = np.zeros((R, P, P), dtype=complex)
    mixed = np.zeros((R, P), dtype=complex)
    if R == 0 or P == 0:
        return gram, mixed
    for r in range(R):
        row = values[r : r + 1]
        psi, states, order = _derivative_states(program, row)
        dpsi = program.arguments.jacobian(row, diff)[0][order].T @ states  # (P, N)
        gram[r] = np.conj(dpsi) @ dpsi.T
        mixed[r] = dpsi @ np.conj(psi)
        if states_out is not None:
            states_out[r] = psi
    return gram, mixed


def _derivative_states(
    program: AdjointProgram, row: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """``ψ`` ``(N,)``, the states ``K_a ψ`` carried to the end ``(A', N)`` and their
    arguments ``a`` (``A'`` of them), at parameter values ``row`` ``(1, Pc)``."""
    N = 1 << program.num_qubits
    rm = program.matrices.evaluate(program.arguments.angles(row), True)
    member = {
        int(b): (g, m)
        for g, group in enumerate(program.matrices.groups)
        for m, b in enumerate(group.blocks)
    }
    states = np.zeros((1, 1 + program.num_args, N), dtype=complex)
    states[0, 0, 0] = 1.0
    count, order = 1, list[int]()
    for b, mat in enumerate(rm.mats):
        program.kernels[b].apply(states[:, :count], mat, False)
        if b in member:
            g, m = member[b]
            gens = rm.group_gens[g][0, m]  # (k, d, d)
            made = np.repeat(states[:, :1], len(gens), axis=0)  # (k, 1, N)
            linear_kernel(program.kernels[b]).apply(made, gens)
            states[0, count : count + len(gens)] = made[:, 0]
            count += len(gens)
            order.extend(int(a) for a in program.matrices.groups[g].args[m])
    return states[0, 0], states[0, 1:count], order
