"""Exact second derivatives by forward-over-reverse on the adjoint kernel.

For a circuit compiled by :func:`qprim_grad._adjoint.compile_circuit`, each block ``b``
contributes ``∂_α U_b = K_α U_b`` with generators ``K_α`` (anti-Hermitian, block-local). A
direction ``v`` in parameter space moves the gate arguments by ``ȧ = J v`` and the block by
``U̇_b = Ḱ_b U_b`` with ``Ḱ_b = Σ_α ȧ_α K_α``. The forward pass carries the tangent states
``ψ̇^v`` next to ``ψ`` (``ψ̇ ← U ψ̇ + Ḱ U ψ``); the backward pass carries ``λ̇^v`` next to
``λ = O ψ`` and un-applies ``ψ̇ ← U^†(ψ̇ - Ḱ ψ)`` (likewise ``λ̇``), and differentiates the
adjoint gradient ``g_α = 2 Re⟨λ|K_α|ψ⟩`` along every direction at once::

    ġ_α = 2 Re(⟨λ̇|K_α|ψ⟩ + ⟨λ|K_α|ψ̇⟩ + ⟨λ|K̇_α|ψ⟩),

with ``K̇_α = Σ_β ȧ_β ∂_β K_α`` from the block alone: ``[K_β, K_α]`` for a later factor,
``W (∂_β∂_α F F^† + ∂_α F ∂_β F^†) W^†`` for the same factor, zero for an earlier one. The
cost is one forward and one backward pass over ``2 + 2V`` states for ``V`` directions,
instead of ``O(A^2)`` circuit evaluations for ``A`` differentiated gate arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._adjoint import AdjointError, AdjointProgram, PauliAction

__all__ = ["hessian"]


def _block_generators(program: AdjointProgram, angles: np.ndarray) -> dict[int, Any]:
    """Per parameterised block: its matrix, args, ``K (k, d, d)`` and ``∂K (k, k, d, d)``
    (``∂K[β, α] = ∂_β K_α``)."""
    out: dict[int, Any] = {}
    for b, block in enumerate(program.blocks):
        args = block.args
        if not args:
            continue
        d = block.dim
        mats, ders, seconds, owner = [], [], [], []
        for f, factor in enumerate(block.factors):
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
            owner.extend([f] * len(factor.args))
        # W_f: product of the factors after f (applied later), right to left
        num = len(block.factors)
        after = [np.eye(d, dtype=complex)] * num
        w = np.eye(d, dtype=complex)
        for f in range(num - 1, -1, -1):
            after[f] = w
            w = w @ mats[f]
        block_matrix = w
        gens, local = [], []
        for f in range(num):
            dag = np.conj(mats[f].T)
            wf = after[f]
            for i in range(len(ders[f])):
                gens.append(wf @ ders[f][i] @ dag @ np.conj(wf.T))
                local.append((f, i))
        k = len(gens)
        K = np.array(gens)
        dK = np.zeros((k, k, d, d), dtype=complex)
        for x, (f, i) in enumerate(local):
            wf = after[f]
            for y, (g, j) in enumerate(local):
                if g > f:
                    dK[y, x] = K[y] @ K[x] - K[x] @ K[y]
                elif g == f:
                    inner = seconds[f][i, j] @ np.conj(mats[f].T) + ders[f][i] @ np.conj(
                        ders[f][j].T
                    )
                    dK[y, x] = wf @ inner @ np.conj(wf.T)
        out[b] = (block_matrix, np.array(args), K, dK)
    return out


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
        observable: from :func:`~qprim_grad._adjoint.observable_matrix`.
        rows: indices (in ``program.parameters``) of the ``i`` parameters (``-1``: absent).
        columns: indices of the ``j`` parameters, the directions of the forward mode.

    Returns:
        the expectation value, the gradient ``(len(rows),)`` and the Hessian block
        ``(len(rows), len(columns))``, all real.
    """
    if program._general:
        raise AdjointError(
            "the reverse Hessian needs gate arguments affine in the parameters; this circuit "
            "has other parameter expressions"
        )
    values = np.asarray(values, dtype=float)
    angles = values @ program._lin + program._const
    row_jac = _jacobian(program, rows)  # (A, I)
    tangents = _jacobian(program, columns)  # (A, V): ȧ per direction
    V = tangents.shape[1]
    N = 1 << program.num_qubits
    gens = _block_generators(program, angles)
    kdots = {b: np.einsum("kv,kde->vde", tangents[args], K) for b, (_, args, K, _) in gens.items()}

    # forward: ψ and the tangents ψ̇^v
    F = np.zeros((1, 1 + V, N), dtype=complex)
    F[0, 0, 0] = 1.0
    for b, block in enumerate(program.blocks):
        mat = program._fixed[b] if b not in gens else gens[b][0][None]
        F = block.kernel.apply(F, mat, False)
        if b in gens and V:
            moved = _linear(block).apply(np.repeat(F[:, :1], V, axis=0), kdots[b], False)
            F[0, 1:] += moved[:, 0]
    # backward stack: [ψ, λ̇^1..λ̇^V, λ, ψ̇^1..ψ̇^V]
    S = np.zeros((1, 2 + 2 * V, N), dtype=complex)
    S[0, 0] = F[0, 0]
    S[0, V + 2 :] = F[0, 1:]
    del F
    S[0, V + 1] = _apply_each(observable, S[0, :1])[0]  # λ = O ψ
    if V:
        S[0, 1 : V + 1] = _apply_each(observable, S[0, V + 2 :])  # λ̇ = O ψ̇
    ev = float(np.real(np.vdot(S[0, 0], S[0, V + 1])))
    grad_args = np.zeros(program.num_args)
    dgrad = np.zeros((program.num_args, V))
    for b in range(len(program.blocks) - 1, -1, -1):
        block = program.blocks[b]
        if b in gens:
            _, args, K, dK = gens[b]
            r1 = block.kernel.rho(S[:, : V + 2])[0]  # λ̇^v (v < V) and λ (V) against ψ
            r2 = block.kernel.rho(S[:, V + 1 :])[0]  # ψ̇^v against λ
            # ⟨x|K|y⟩ = Σ_ab K[b, a] conj(ρ'[a, b]) for ρ' of (x, y)
            lam_k_psi = np.einsum("kba,ab->k", K, np.conj(r1[V]))
            grad_args[args] += 2 * lam_k_psi.real
            if V:
                dot_lam = np.einsum("kba,vab->kv", K, np.conj(r1[:V]))
                lam_dot_psi = -np.conj(np.einsum("kba,vab->kv", K, np.conj(r2)))
                kdot = np.einsum("yv,ykde->kvde", tangents[args], dK)
                through_k = np.einsum("kvba,ab->kv", kdot, np.conj(r1[V]))
                dgrad[args] += 2 * (dot_lam + lam_dot_psi + through_k).real
                pairs = np.stack([S[0, 0], S[0, V + 1]])[None].repeat(V, axis=0)  # (V, 2, N)
                moved = _linear(block).apply(pairs, kdots[b], False)
                S[0, V + 2 :] -= moved[:, 0]
                S[0, 1 : V + 1] -= moved[:, 1]
            mat = np.conj(gens[b][0].T)[None]
        else:
            mat = program._fixed_dag[b]
        S = block.kernel.apply(S, mat, True)
    return ev, grad_args @ row_jac, row_jac.T @ dgrad


def _linear(block: Any) -> Any:
    """A kernel that applies any matrix of the block's shape: a controlled kernel treats
    the uncontrolled part as the identity, right for ``U`` but not for ``Ḱ``."""
    return getattr(block.kernel, "dense", block.kernel)


def _jacobian(program: AdjointProgram, columns: Sequence[int]) -> np.ndarray:
    """``d argument / d θ`` ``(A, len(columns))`` (zero columns for absent parameters)."""
    index = np.asarray(columns, dtype=int)
    jac = np.zeros((program.num_args, len(index)))
    valid = index >= 0
    jac[:, valid] = program._lin[index[valid]].T
    return jac


def _apply_each(observable: Any, states: np.ndarray) -> np.ndarray:
    """``O x`` for every row ``x`` of ``states`` ``(K, N)``."""
    if isinstance(observable, PauliAction):
        return observable.act(states)
    return (observable @ states.T).T
