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
from .kernels import Diag, Kernel
from .matrices import BlockMatrices, RowMatrices
from .pauli import apply_observables

__all__ = ["adjoint_batch", "state_overlaps"]

_MIN_FUSED_RUN = 3  # diagonal runs at least this long are applied as one diagonal


class AdjointProgram(Protocol):
    """What the passes read of a compiled circuit (:class:`.program.AdjointProgram`)."""

    num_qubits: int
    num_args: int
    blocks: list[Block]
    kernels: list[Kernel]  # the blocks' kernels
    phase_args: np.ndarray
    arguments: GateArguments
    matrices: BlockMatrices
    run_start: list[int]
    run_length: list[int]


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
    for kernel, mat in zip(program.kernels, rm.mats, strict=True):
        kernel.apply(psi, mat, False)
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


def _backward(program: AdjointProgram, S: np.ndarray, rm: RowMatrices) -> list[Any]:
    """Un-apply every block to ``S`` (last first), recording ``ρ'`` ``(R, M, d, d)`` before
    each parameterised block.

    Along a run of diagonal blocks, ``conj(ψ) λ_m`` does not change (``|phases| = 1``): one
    product serves every block's ``ρ'``; a long run's phases are multiplied into one diagonal
    first and applied to the stack once.
    """
    rhos: list[Any] = [None] * len(program.blocks)
    product = None
    pending = None
    for b in range(len(program.blocks) - 1, -1, -1):
        kernel = program.kernels[b]
        diagonal = isinstance(kernel, Diag)
        if not diagonal:
            product = None
        if rm.mats[b] is not None and program.matrices.fixed[b] is None:  # parameterised
            if not isinstance(kernel, Diag):
                rhos[b] = kernel.rho(S)
            else:
                if product is None:
                    product = np.conj(S[:, :1]) * S[:, 1:]
                rhos[b] = kernel.rho_from_product(product)
        if diagonal and program.run_length[b] >= _MIN_FUSED_RUN:
            pending = _fuse(program, b, S, rm.dags[b], pending)
        else:
            kernel.apply(S, rm.dags[b], True)
    return rhos


def _fuse(
    program: AdjointProgram, b: int, S: np.ndarray, dag: np.ndarray, pending: Any
) -> np.ndarray | None:
    """Multiply diagonal block ``b``'s adjoint into ``pending`` (the run's product so far);
    at the run's first block apply the product to ``S``."""
    if pending is None:
        pending = np.ones((len(S), 1, S.shape[-1]), dtype=complex)
    program.kernels[b].apply(pending, dag, True)
    if b != program.run_start[b]:
        return pending
    S *= pending
    return None


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
    n, N = program.num_qubits, 1 << program.num_qubits
    rm = program.matrices.evaluate(program.arguments.angles(row), True)
    member = {
        int(b): (g, m)
        for g, group in enumerate(program.matrices.groups)
        for m, b in enumerate(group.blocks)
    }
    states = np.zeros((1, 1 + program.num_args, N), dtype=complex)
    states[0, 0, 0] = 1.0
    count, order = 1, list[int]()
    for b, (block, mat) in enumerate(zip(program.blocks, rm.mats, strict=True)):
        program.kernels[b].apply(states[:, :count], mat, False)
        if b in member:
            g, m = member[b]
            made = _apply_local(states[0, 0], rm.group_gens[g][0, m], block.qubits, n)
            states[0, count : count + len(made)] = made
            count += len(made)
            order.extend(int(a) for a in program.matrices.groups[g].args[m])
    return states[0, 0], states[0, 1:count], order


def _apply_local(psi: np.ndarray, mats: np.ndarray, qubits: Sequence[int], n: int) -> np.ndarray:
    """``mats[k]`` (``d x d`` on ``qubits``, matrix bit ``i`` <-> ``qubits[i]``) applied to the
    state ``psi`` ``(2**n,)``, for every ``k``: ``(K, 2**n)``."""
    view = psi.reshape((2,) * n)
    axes = [n - 1 - q for q in reversed(qubits)]
    k = len(qubits)
    moved = np.moveaxis(view, axes, list(range(n - k, n))).reshape(-1, 1 << k)
    out = moved @ np.swapaxes(mats, -1, -2)  # (K, rest, d)
    out = out.reshape((len(mats),) + (2,) * n)
    out = np.moveaxis(out, [1 + a for a in range(n - k, n)], [1 + a for a in axes])
    return out.reshape(len(mats), -1)
