"""Exact second derivatives by forward-over-reverse on the adjoint engine.

For a compiled circuit, each block ``b`` contributes ``∂_α U_b = K_α U_b`` with generators
``K_α`` (anti-Hermitian, block-local). A direction ``v`` in parameter space moves the gate
arguments by ``ȧ = J v`` and the block by ``U̇_b = Ḱ_b U_b`` with ``Ḱ_b = Σ_α ȧ_α K_α``. The
forward pass carries the tangent states ``ψ̇^v`` next to ``ψ`` (``ψ̇ ← U ψ̇ + Ḱ U ψ``); the
backward pass carries ``λ̇^v`` next to ``λ = O ψ`` and un-applies ``ψ̇ ← U^†(ψ̇ - Ḱ ψ)``
(likewise ``λ̇``), and differentiates the adjoint gradient ``g_α = 2 Re⟨λ|K_α|ψ⟩`` along every
direction at once::

    ġ_α = 2 Re(⟨λ̇|K_α|ψ⟩ + ⟨λ|K_α|ψ̇⟩ + ⟨λ|K̇_α|ψ⟩),

with ``K̇_α = Σ_β ȧ_β ∂_β K_α`` from the block alone: ``[K_β, K_α]`` for a later factor,
``W (∂_β∂_α F F^† + ∂_α F ∂_β F^†) W^†`` for the same factor, zero for an earlier one. The
cost is one forward and one backward pass over ``2 + 2V`` states for ``V`` directions,
instead of ``O(A^2)`` circuit evaluations for ``A`` differentiated gate arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import AdjointError
from .blocks import Block
from .kernels import linear_kernel
from .pauli import PauliAction, apply_observable
from .program import AdjointProgram

__all__ = ["hessian"]


@dataclass
class _BlockDerivatives:
    """A parameterised block at one point: its matrix, argument indices, generators
    ``K (k, d, d)``, their derivatives ``dK (k, k, d, d)`` (``dK[β, α] = ∂_β K_α``) and
    ``Ḱ = Σ_α ȧ_α K_α`` ``(V, d, d)`` along each direction."""

    matrix: np.ndarray
    args: np.ndarray
    K: np.ndarray
    dK: np.ndarray
    tangents: np.ndarray  # ȧ of the block's arguments per direction (k, V)
    kdot: np.ndarray


def _factor_derivatives(block: Block, angles: np.ndarray) -> tuple[list, list, list]:
    """Per factor its matrix, first derivatives ``(k, d, d)`` and second ``(k, k, d, d)``."""
    d = block.dim
    mats, ders, seconds = [], [], []
    for factor in block.factors:
        if factor.template is None:
            mats.append(np.asarray(factor.fixed))
            ders.append(np.zeros((0, d, d)))
            seconds.append(np.zeros((0, 0, d, d)))
            continue
        a = angles[list(factor.args)]
        m, der = factor.template.evaluate(a)
        mats.append(m)
        ders.append(der)
        seconds.append(factor.template.second(a))
    return mats, ders, seconds


def _block_derivatives(block: Block, angles: np.ndarray, tangents: np.ndarray) -> Any:
    mats, ders, seconds = _factor_derivatives(block, angles)
    d, num = block.dim, len(block.factors)
    after = [np.eye(d, dtype=complex)] * num  # W_f: the factors after f, right to left
    w = np.eye(d, dtype=complex)
    for f in range(num - 1, -1, -1):
        after[f] = w
        w = w @ mats[f]
    local = [(f, i) for f in range(num) for i in range(len(ders[f]))]
    K = np.array(
        [after[f] @ ders[f][i] @ np.conj(mats[f].T) @ np.conj(after[f].T) for f, i in local]
    )
    dK = np.zeros((len(local), len(local), d, d), dtype=complex)
    for x, (f, i) in enumerate(local):
        for y, (g, j) in enumerate(local):
            if g > f:
                dK[y, x] = K[y] @ K[x] - K[x] @ K[y]
            elif g == f:
                inner = seconds[f][i, j] @ np.conj(mats[f].T) + ders[f][i] @ np.conj(ders[f][j].T)
                dK[y, x] = after[f] @ inner @ np.conj(after[f].T)
    args = np.array(block.args)
    kdot = np.einsum("kv,kde->vde", tangents[args], K)
    return _BlockDerivatives(w, args, K, dK, tangents[args], kdot)


def hessian(
    program: AdjointProgram,
    values: np.ndarray,
    observable: PauliAction | Any,
    rows: Sequence[int],
    columns: Sequence[int],
) -> tuple[float, np.ndarray, np.ndarray]:
    """``(⟨O⟩, d⟨O⟩/dθ_i, d²⟨O⟩/dθ_i dθ_j)`` at one parameter row.

    Args:
        program: the compiled circuit.
        values: the circuit's parameter values ``(num_circuit_parameters,)``.
        observable: from :func:`~qprim_grad.methods.adjoint.observable_matrix`.
        rows: indices (in ``program.parameters``) of the ``i`` parameters (``-1``: absent).
        columns: indices of the ``j`` parameters, the directions of the forward mode.

    Returns:
        the expectation value, the gradient ``(len(rows),)`` and the Hessian block
        ``(len(rows), len(columns))``, all real.
    """
    if not program.affine:
        raise AdjointError(
            "the reverse Hessian needs gate arguments affine in the parameters; this circuit "
            "has other parameter expressions"
        )
    angles = program.arguments.angles(np.asarray(values, dtype=float)[None])[0]
    row_jac = program.arguments.linear_jacobian(rows)  # (A, I)
    tangents = program.arguments.linear_jacobian(columns)  # (A, V): ȧ per direction
    derivs = {
        b: _block_derivatives(block, angles, tangents)
        for b, block in enumerate(program.blocks)
        if block.args
    }
    S = _forward(program, derivs, tangents.shape[1], observable)
    ev = float(np.real(np.vdot(S[0, 0], S[0, tangents.shape[1] + 1])))
    grad_args, dgrad = _backward(program, derivs, S)
    return ev, grad_args @ row_jac, row_jac.T @ dgrad


def _forward(
    program: AdjointProgram, derivs: dict[int, _BlockDerivatives], V: int, observable: Any
) -> np.ndarray:
    """The backward pass's stack ``(1, 2 + 2V, N)``: ``[ψ, λ̇^1..λ̇^V, λ, ψ̇^1..ψ̇^V]``."""
    N = 1 << program.num_qubits
    F = np.zeros((1, 1 + V, N), dtype=complex)  # ψ and the tangents ψ̇^v
    F[0, 0, 0] = 1.0
    for b, kernel in enumerate(program.kernels):
        deriv = derivs.get(b)
        kernel.apply(F, program.matrices.fixed[b] if deriv is None else deriv.matrix[None])
        if deriv is not None and V:
            moved = np.repeat(F[:, :1], V, axis=0)
            linear_kernel(kernel).apply(moved, deriv.kdot)
            F[0, 1:] += moved[:, 0]
    S = np.zeros((1, 2 + 2 * V, N), dtype=complex)
    S[0, 0] = F[0, 0]
    S[0, V + 2 :] = F[0, 1:]
    S[0, V + 1] = apply_observable(observable, S[0, :1])[0]  # λ = O ψ
    if V:
        S[0, 1 : V + 1] = apply_observable(observable, S[0, V + 2 :])  # λ̇ = O ψ̇
    return S


def _backward(
    program: AdjointProgram, derivs: dict[int, _BlockDerivatives], S: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Un-apply the blocks to ``S`` (and the tangents' source terms), accumulating the
    gradient ``(A,)`` and its directional derivatives ``(A, V)`` over gate arguments."""
    V = (S.shape[1] - 2) // 2
    grad_args = np.zeros(program.num_args)
    dgrad = np.zeros((program.num_args, V))
    for b in range(len(program.blocks) - 1, -1, -1):
        kernel = program.kernels[b]
        deriv = derivs.get(b)
        if deriv is None:
            kernel.apply(S, program.matrices.fixed_dag[b], True)
            continue
        r1 = kernel.rho(S[:, : V + 2])[0]  # λ̇^v (v < V) and λ (V) against ψ
        # ⟨x|K|y⟩ = Σ_ab K[b, a] conj(ρ'[a, b]) for ρ' of (x, y)
        grad_args[deriv.args] += 2 * np.einsum("kba,ab->k", deriv.K, np.conj(r1[V])).real
        if V:
            r2 = kernel.rho(S[:, V + 1 :])[0]  # ψ̇^v against λ
            dgrad[deriv.args] += 2 * _directional(deriv, r1, r2, V).real
            pairs = np.stack([S[0, 0], S[0, V + 1]])[None].repeat(V, axis=0)  # (V, 2, N)
            linear_kernel(kernel).apply(pairs, deriv.kdot)
            S[0, V + 2 :] -= pairs[:, 0]
            S[0, 1 : V + 1] -= pairs[:, 1]
        kernel.apply(S, np.conj(deriv.matrix.T)[None], True)
    return grad_args, dgrad


def _directional(deriv: _BlockDerivatives, r1: np.ndarray, r2: np.ndarray, V: int) -> Any:
    """``⟨λ̇|K|ψ⟩ + ⟨λ|K|ψ̇⟩ + ⟨λ|K̇|ψ⟩`` ``(k, V)`` for the block's arguments."""
    K = deriv.K
    dot_lam = np.einsum("kba,vab->kv", K, np.conj(r1[:V]))
    lam_dot_psi = -np.conj(np.einsum("kba,vab->kv", K, np.conj(r2)))
    kdot = np.einsum("yv,ykde->kvde", deriv.tangents, deriv.dK)
    through_k = np.einsum("kvba,ab->kv", kdot, np.conj(r1[V]))
    return dot_lam + lam_dot_psi + through_k
