"""Exact reverse-mode (adjoint) gradients of statevector expectation values.

The kernel behind ``method="reverse"``. A circuit is compiled once (cached by structure) into
blocks with specialised state kernels (:mod:`._adjoint_blocks`); parameterised gates are exact
trigonometric polynomials in their arguments (:mod:`._adjoint_gates`). Then, per batch of
parameter rows,

* the chain rule maps circuit parameters to gate arguments (affine expressions as one matrix
  product, others bound per row), and every block's matrix and generators
  ``K_α = W (∂U_α) U_α^† W^†`` (``W``: the rest of the block) are computed, vectorised over
  rows and over blocks of the same shape;
* a forward pass applies the blocks to ``|0…0⟩`` (the state is reshaped, never a 2^n×2^n
  matrix);
* ``|λ_m⟩ = O_m|ψ⟩`` for every observable of the row is stacked next to ``|ψ⟩``, so one
  backward pass serves all observables: it un-applies the blocks to the stack and, before each
  parameterised block, records ``ρ'_m = Tr_rest |λ_m⟩⟨ψ|`` on the block's qubits;
* ``⟨ψ|O_m|∂_α ψ⟩ = Σ_ab K_α[b, a] conj(ρ'_m[a, b])`` for all arguments at once, then the
  Jacobian of the chain rule.

The public entry points are :func:`compile_circuit`, :func:`observable_matrix` and
:meth:`AdjointProgram.gradients`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
from qiskit.circuit import Parameter, ParameterExpression, QuantumCircuit
from qiskit.quantum_info import SparseObservable, SparsePauliOp

from ._adjoint_blocks import AdjointError, Block, _Diag, build_blocks
from .circuits import _affine_form

__all__ = [
    "AdjointError",
    "AdjointProgram",
    "PauliAction",
    "compile_circuit",
    "observable_matrix",
]

_MAX_AMPLITUDES = 1 << 21  # amplitudes held per batch of parameter rows (complex128: 32 MiB)
_MIN_FUSED_RUN = 3  # diagonal runs at least this long are applied as one diagonal

try:  # BLAS threads only add contention for these small, memory-bound products
    from threadpoolctl import ThreadpoolController
except ImportError:  # pragma: no cover - optional
    ThreadpoolController = None


class _SingleThreadedBlas:
    """Limit BLAS to one thread while any kernel runs (if ``threadpoolctl`` is installed).

    Reference-counted, so that concurrent kernels in several threads restore the user's
    setting only when the last one finishes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._controller: Any = None
        self._limiter: Any = None

    def __enter__(self) -> None:
        if ThreadpoolController is None:
            return
        with self._lock:
            if self._users == 0:
                if self._controller is None:
                    self._controller = ThreadpoolController()
                self._limiter = self._controller.limit(limits=1, user_api="blas")
            self._users += 1

    def __exit__(self, *exc: object) -> None:
        if ThreadpoolController is None:
            return
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._limiter is not None:
                self._limiter.restore_original_limits()
                self._limiter = None


_BLAS = _SingleThreadedBlas()


class _Group:
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


class AdjointProgram:
    """A circuit compiled for adjoint differentiation."""

    def __init__(self, circuit: QuantumCircuit) -> None:
        blocks, exprs, phase_args = build_blocks(circuit)
        self.num_qubits = circuit.num_qubits
        self.parameters: tuple[Parameter, ...] = tuple(circuit.parameters)
        self._index = {p: i for i, p in enumerate(self.parameters)}
        self.blocks = blocks
        self.phase_args = np.array(phase_args, dtype=int)
        self._chain_rule(exprs)
        self._fixed = [
            None if b.fixed_matrix is None else b.fixed_matrix[None] for b in self.blocks
        ]
        self._fixed_dag = [None if m is None else np.conj(m.swapaxes(-1, -2)) for m in self._fixed]
        # template stacks: id -> (template, [(block, factor)])
        self._templates: dict[int, tuple[Any, list[tuple[int, int]]]] = {}
        signatures: dict[tuple, list[int]] = {}
        for b, block in enumerate(self.blocks):
            if not block.args:
                continue
            signature = []
            for f, factor in enumerate(block.factors):
                if factor.template is None:
                    signature.append(("f", block.dim))
                else:
                    tid = id(factor.template)
                    self._templates.setdefault(tid, (factor.template, []))[1].append((b, f))
                    signature.append(("t", tid))
            signatures.setdefault(tuple(signature), []).append(b)
        slot = {loc: i for _, locs in self._templates.values() for i, loc in enumerate(locs)}
        self._template_args = {
            tid: np.array([self.blocks[b].factors[f].args for b, f in locs])
            for tid, (_, locs) in self._templates.items()
        }
        self._groups = [_Group(members, self.blocks, slot) for members in signatures.values()]
        # runs of diagonal blocks: first block of the run each block belongs to, run length
        self._run_start = list(range(len(self.blocks)))
        self._run_length = [1] * len(self.blocks)
        b = 0
        while b < len(self.blocks):
            e = b
            while e < len(self.blocks) and isinstance(self.blocks[e].kernel, _Diag):
                e += 1
            for i in range(b, e):
                self._run_start[i], self._run_length[i] = b, e - b
            b = max(e, b + 1)

    def columns(self, parameters: Sequence[Parameter]) -> list[int]:
        """Index of each of ``parameters`` in :attr:`parameters` (``-1``: not in the circuit)."""
        return [self._index.get(p, -1) for p in parameters]

    def state_overlaps(
        self, values: np.ndarray, diff: Sequence[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """``<d_p psi|d_q psi>`` ``(R, P, P)`` and ``<psi|d_p psi>`` ``(R, P)`` (the quantum
        geometric tensor's pieces), every gate differentiated as an SU(d) gate.

        One forward pass per row: each parameterised block is applied to the state and to
        the derivative states made so far, then appends ``K_a psi`` for its arguments; the
        chain rule maps the ``A`` argument states to ``P`` parameter states, and one matrix
        product gives all inner products.
        """
        values = np.asarray(values, dtype=float).reshape(-1, len(self.parameters))
        diff_arr = np.asarray(diff, dtype=int)
        R, P = len(values), len(diff_arr)
        gram = np.zeros((R, P, P), dtype=complex)
        mixed = np.zeros((R, P), dtype=complex)
        if R == 0 or P == 0:
            return gram, mixed
        member = {
            int(b): (g, m)
            for g, group in enumerate(self._groups)
            for m, b in enumerate(group.blocks)
        }
        n, N = self.num_qubits, 1 << self.num_qubits
        with _BLAS:
            for r in range(R):
                angles, jac = self._angles_and_jacobian(values[r : r + 1], diff_arr)
                mats, _, group_gens = self._row_data(angles, True)
                states = np.zeros((1, 1 + self.num_args, N), dtype=complex)
                states[0, 0, 0] = 1.0
                count, order = 1, list[int]()
                for b, (block, mat) in enumerate(zip(self.blocks, mats, strict=True)):
                    view = states[:, :count]
                    out = block.kernel.apply(view, mat, False)
                    if out is not view:
                        view[...] = out
                    if b in member:
                        g, m = member[b]
                        made = _apply_local(states[0, 0], group_gens[g][0, m], block.qubits, n)
                        states[0, count : count + len(made)] = made
                        count += len(made)
                        order.extend(int(a) for a in self._groups[g].args[m])
                psi = states[0, 0]
                dpsi = jac[0][order].T @ states[0, 1:count]  # (P, N)
                conj = np.conj(dpsi)
                gram[r] = conj @ dpsi.T
                mixed[r] = dpsi @ np.conj(psi)
        return gram, mixed

    # ---- chain rule ------------------------------------------------------------------------
    def _chain_rule(self, exprs: list[ParameterExpression]) -> None:
        """Split gate arguments into affine ones (a matrix) and general ones (bound per row)."""
        self.num_args = len(exprs)
        affine, offset = _affine_form(exprs, self._index)
        self._general: list[tuple[int, ParameterExpression, list[tuple[int, Any]]]] = []
        if affine is not None and offset is not None:  # usually: every argument at once
            self._lin, self._const = affine.T.toarray(), offset
            return
        self._lin = np.zeros((len(self.parameters), self.num_args))
        self._const = np.zeros(self.num_args)
        for a, expr in enumerate(exprs):
            affine, offset = _affine_form([expr], self._index)
            if affine is not None and offset is not None:
                self._lin[:, a], self._const[a] = affine.toarray()[0], offset[0]
            else:
                grads = [(self._index[p], expr.gradient(p)) for p in expr.parameters]
                self._general.append((a, expr, grads))

    def _angles_and_jacobian(
        self, values: np.ndarray, diff: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Gate arguments ``(R, A)`` and ``d arg / d θ`` ``(R|1, A, P)`` for ``values (R, Pc)``."""
        angles = values @ self._lin + self._const
        valid = diff >= 0
        jac = np.zeros((1, self.num_args, len(diff)))
        jac[0][:, valid] = self._lin[diff[valid]].T
        if self._general:
            jac = np.repeat(jac, len(values), axis=0)
            general = [
                (a, expr, [(np.flatnonzero(diff == column), g) for column, g in grads])
                for a, expr, grads in self._general
            ]
            for r, row in enumerate(values):
                binding = dict(zip(self.parameters, row.tolist(), strict=True))
                for a, expr, grads in general:
                    angles[r, a] = _real_value(expr, binding)
                    for j, g in grads:
                        if j.size:
                            jac[r, a, j] = _real_value(g, binding)
        return angles, jac

    # ---- per-row matrices ------------------------------------------------------------------
    def _row_data(
        self, angles: np.ndarray, traceless: bool
    ) -> tuple[list[Any], list[Any], list[np.ndarray]]:
        """Block matrices, their adjoints, and per group the generators ``(R, G, k, d, d)``."""
        stacks: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for tid, (template, _) in self._templates.items():
            mats, ders = template.evaluate(angles[:, self._template_args[tid]])
            gens = ders @ np.conj(mats.swapaxes(-1, -2))[:, :, None]
            if traceless:  # drop the gate's phase: differentiate it as an SU(d) gate
                trace = np.trace(gens, axis1=-2, axis2=-1)[..., None, None]
                gens = gens - trace * (np.eye(template.dim) / template.dim)
            stacks[tid] = (mats, gens)
        mats_out = list(self._fixed)
        dags_out = list(self._fixed_dag)
        group_gens = []
        for group in self._groups:
            w = None  # W = U_L … U_{i+1}, right to left
            gens_list: list[np.ndarray] = []
            for kind, ref, rows in reversed(group.factors):
                if kind == "f":
                    m = ref
                else:
                    m, k = stacks[ref][0][:, rows], stacks[ref][1][:, rows]
                    if w is not None:
                        k = w[:, :, None] @ k @ np.conj(w.swapaxes(-1, -2))[:, :, None]
                    gens_list.append(k)
                w = m if w is None else w @ m
            assert w is not None
            gens_list.reverse()
            group_gens.append(np.concatenate(gens_list, axis=2))
            dag = np.conj(w.swapaxes(-1, -2))
            for g, b in enumerate(group.blocks):
                mats_out[b] = w[:, g]
                dags_out[b] = dag[:, g]
        return mats_out, dags_out, group_gens

    # ---- driver ----------------------------------------------------------------------------
    def gradients(
        self,
        values: np.ndarray,
        observables: Sequence[Sequence[Any]],
        diff: Sequence[int],
        traceless: bool = True,
    ) -> np.ndarray:
        """``⟨ψ_r|O_rm|∂_p ψ_r⟩`` of shape ``(R, M, P)``.

        Args:
            values: parameter rows ``(R, num_circuit_parameters)``.
            observables: per row, up to ``M`` observables from :func:`observable_matrix` (or
                sparse matrices); shorter rows are padded, the padded entries are zero.
            diff: for each differentiated parameter, its index in ``self.parameters``
                (``-1``: not in the circuit, zero gradient).
            traceless: ignore gate and global phases (every gate differentiated as an SU(d)
                gate), as qiskit-algorithms does; only the imaginary part depends on it.
        """
        return self.evaluate(values, observables, diff, traceless)[1]

    def evaluate(
        self,
        values: np.ndarray,
        observables: Sequence[Sequence[Any]],
        diff: Sequence[int],
        traceless: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Expectation values ``⟨ψ_r|O_rm|ψ_r⟩`` ``(R, M)`` (from the forward pass's state)
        and the gradients of :meth:`gradients` ``(R, M, P)``, in one forward/backward pass."""
        values = np.asarray(values, dtype=float).reshape(len(observables), -1)
        diff_arr = np.asarray(diff, dtype=int)
        R = len(values)
        M = max((len(row) for row in observables), default=0)
        evs = np.zeros((R, M), dtype=complex)
        out = np.zeros((R, M, len(diff_arr)), dtype=complex)
        if R == 0 or M == 0:
            return evs, out
        step = max(1, _MAX_AMPLITUDES // ((M + 1) << self.num_qubits))
        with _BLAS:
            for start in range(0, R, step):
                rows = slice(start, min(R, start + step))
                evs[rows], out[rows] = self._batch(
                    values[rows], observables[rows], diff_arr, M, traceless
                )
        return evs, out

    def _batch(
        self,
        values: np.ndarray,
        observables: Sequence[Sequence[Any]],
        diff: np.ndarray,
        M: int,
        traceless: bool,
    ) -> tuple[np.ndarray, np.ndarray]:
        R = len(values)
        N = 1 << self.num_qubits
        angles, jac = self._angles_and_jacobian(values, diff)
        mats, dags, group_gens = self._row_data(angles, traceless)
        psi = np.zeros((R, 1, N), dtype=complex)
        psi[:, 0, 0] = 1.0
        for block, mat in zip(self.blocks, mats, strict=True):
            psi = block.kernel.apply(psi, mat, False)
        S = np.zeros((R, M + 1, N), dtype=complex)  # [ψ, λ_1, …, λ_M] per row
        S[:, 0] = psi[:, 0]
        del psi
        _apply_observables(S, observables)
        evs = np.einsum("rn,rmn->rm", np.conj(S[:, 0]), S[:, 1:])
        contrib = np.zeros((R, M, self.num_args), dtype=complex)
        if len(diff) == 0:
            return evs, contrib[:, :, :0]
        if self.phase_args.size and not traceless:
            contrib[:, :, self.phase_args] = 1j * np.conj(evs)[..., None]
        rhos: list[Any] = [None] * len(self.blocks)
        # Along a run of diagonal blocks, conj(ψ) λ_m does not change (|phases| = 1): one
        # product serves every block's ρ'; a long run's phases are multiplied into one
        # diagonal first and applied to the stack once.
        product = None
        pending = None
        for b in range(len(self.blocks) - 1, -1, -1):
            block = self.blocks[b]
            diagonal = isinstance(block.kernel, _Diag)
            if not diagonal:
                product = None
            if mats[b] is not None and self._fixed[b] is None:
                if diagonal:
                    if product is None:
                        product = np.conj(S[:, :1]) * S[:, 1:]
                    rhos[b] = block.kernel.rho_from_product(product)
                else:
                    rhos[b] = block.kernel.rho(S)  # (R, M, d, d)
            if diagonal and self._run_length[b] >= _MIN_FUSED_RUN:
                if pending is None:
                    pending = np.ones((R, 1, N), dtype=complex)
                block.kernel.apply(pending, dags[b], True)  # in place
                if b == self._run_start[b]:  # the run ends here: apply it
                    S *= pending
                    pending = None
                continue
            S = block.kernel.apply(S, dags[b], True)
        del product
        for group, gens in zip(self._groups, group_gens, strict=True):
            rho = np.stack([rhos[b] for b in group.blocks], axis=1)  # (R, G, M, d, d)
            # ⟨λ|K|ψ⟩ = Σ_ab K[b, a] conj(ρ'[a, b])
            c = np.einsum("rgkba,rgmab->rmgk", gens, np.conj(rho))
            contrib[:, :, group.args.ravel()] += c.reshape(R, M, -1)
        return evs, contrib @ jac


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


def _real_value(value: Any, binding: dict[Parameter, float]) -> float:
    """The real part of a number or of an expression bound with ``binding``."""
    if isinstance(value, ParameterExpression):
        value = value.bind({p: binding[p] for p in value.parameters}).numeric()
    return complex(value).real


def _apply_observables(S: np.ndarray, observables: Sequence[Sequence[Any]]) -> None:
    """``S[r, 1 + m] = O_rm @ S[r, 0]``; one sparse product per distinct observable."""
    where: dict[int, tuple[Any, list[tuple[int, int]]]] = {}
    for r, row in enumerate(observables):
        for m, op in enumerate(row):
            if op is not None:
                where.setdefault(id(op), (op, []))[1].append((r, m))
    for op, locs in where.values():
        rows = np.array([r for r, _ in locs])
        cols = np.array([m for _, m in locs])
        if isinstance(op, PauliAction):
            for r, m in locs:  # in place: no temporary stack of states
                op.act(S[r, :1], out=S[r, 1 + m : 2 + m])
        else:  # a sparse or dense matrix
            S[rows, 1 + cols] = (op @ S[rows, 0].T).T


# --------------------------------------------------------------------------------------------
# Caches and helpers for callers
# --------------------------------------------------------------------------------------------

_PROGRAMS: OrderedDict[Any, tuple[AdjointProgram, list[Any]]] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_OBSERVABLES: OrderedDict[Any, Any] = OrderedDict()
_CACHE_SIZE = 64


def _circuit_key(circuit: QuantumCircuit) -> tuple[Any, list[Any]]:
    """A structural key (cheap: no gate objects for standard gates) and the non-standard
    operations it refers to by identity (kept alive with the cache entry)."""
    items: list[Any] = []
    others: list[Any] = []
    for inst in circuit.data:
        if inst.is_standard_gate():
            items.append((inst.name, inst.qubits, tuple(inst.params)))
        else:
            op = inst.operation
            others.append(op)
            items.append((inst.name, inst.qubits, tuple(map(_param_key, op.params)), id(op)))
    key: Any = (
        tuple(circuit.qubits),
        _param_key(circuit.global_phase),
        tuple(circuit.parameters),
        tuple(items),
    )
    try:
        hash(key)
    except TypeError:  # an unusual parameter type: fall back to its representation
        key = repr(key)
    return key, others


def _param_key(p: Any) -> Any:
    if isinstance(p, np.ndarray):
        return (p.shape, p.tobytes())
    try:
        hash(p)
        return p
    except TypeError:
        return repr(p)


def compile_circuit(circuit: QuantumCircuit) -> AdjointProgram:
    """Compile ``circuit`` (cached by structure) or raise :class:`AdjointError`."""
    key, others = _circuit_key(circuit)
    with _CACHE_LOCK:
        entry = _PROGRAMS.get(key)
        if entry is not None:
            _PROGRAMS.move_to_end(key)
            return entry[0]
    program = AdjointProgram(circuit)
    with _CACHE_LOCK:
        _PROGRAMS[key] = (program, others)
        if len(_PROGRAMS) > _CACHE_SIZE:
            _PROGRAMS.popitem(last=False)
    return program


class PauliAction:
    """An observable ``Σ_c a_c P_c`` applied to states as Pauli actions, never as a matrix.

    Terms are grouped by their X part ``x``; per group one diagonal ``w`` (real when it can
    be) with ``(O ψ)[k] = Σ_x w_x[k] ψ[k ⊕ x]``. The bit flip ``k ⊕ x`` is a reversed view
    of the state's qubit axes, so applying costs one pass per group and no index arrays.
    """

    def __init__(self, op: SparsePauliOp) -> None:
        n = op.num_qubits
        self.num_qubits = n
        index = np.arange(1 << n, dtype=np.int64)
        bits = 1 << np.arange(n, dtype=np.int64)
        zmasks = op.paulis.z.astype(np.int64) @ bits
        xmasks = op.paulis.x.astype(np.int64) @ bits
        # qiskit: P = (-i)^q Z^z X^x with q the internal phase (Y counted in it)
        factors = op.coeffs * (-1j) ** op.paulis._phase
        groups: dict[int, np.ndarray] = {}
        for x, z, a in zip(xmasks.tolist(), zmasks.tolist(), factors.tolist(), strict=True):
            if a == 0:
                continue
            sign = 1.0 - 2.0 * (np.bitwise_count(index & z) & 1) if z else 1.0
            w = groups.get(x)
            groups[x] = a * sign if w is None else w + a * sign
        self.groups: list[tuple[tuple[int, ...], np.ndarray]] = []
        for x, w in groups.items():
            w = np.broadcast_to(np.asarray(w, dtype=complex), index.shape)
            if not np.any(w.imag):
                w = np.ascontiguousarray(w.real)
            axes = tuple(n - 1 - q for q in range(n) if (x >> q) & 1)
            self.groups.append((axes, np.ascontiguousarray(w)))

    def act(self, states: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``O ψ`` for each row of ``states`` ``(K, 2**n)``, into ``out`` if given (C-contiguous,
        not overlapping ``states``). Scratch space: one state, and only for several groups."""
        shape = (len(states),) + (2,) * self.num_qubits
        if out is None:
            out = np.empty(states.shape, dtype=complex)
        dest = out.reshape(shape)
        view = states.reshape(shape)
        scratch = None
        for g, (axes, w) in enumerate(self.groups):
            source = np.flip(view, axis=tuple(1 + a for a in axes)) if axes else view
            if g == 0:
                np.multiply(w.reshape(shape[1:]), source, out=dest)
                continue
            if scratch is None:
                scratch = np.empty(shape, dtype=complex)
            np.multiply(w.reshape(shape[1:]), source, out=scratch)
            dest += scratch
        if not self.groups:
            dest[...] = 0
        return out

    def __matmul__(self, vectors: np.ndarray) -> np.ndarray:
        """``O @ vectors`` for ``vectors (2**n,)`` or ``(2**n, K)``, as a sparse matrix does."""
        vectors = np.asarray(vectors)
        if vectors.ndim == 1:
            return self.act(vectors[None])[0]
        return self.act(np.ascontiguousarray(vectors.T)).T

    def to_matrix(self) -> np.ndarray:
        """Dense matrix (for checks; small ``n`` only)."""
        return self @ np.eye(1 << self.num_qubits, dtype=complex)


def observable_matrix(terms: dict[str, complex], num_qubits: int) -> PauliAction:
    """An observable given as ``{label: coeff}`` as a :class:`PauliAction` (cached).

    Labels are Pauli strings, or any ``SparseObservable`` label (projectors ``0 1 + - r l``).
    The result supports ``op @ vectors`` as a sparse matrix would.
    """
    key = (num_qubits, tuple(sorted(terms.items())))
    with _CACHE_LOCK:
        mat = _OBSERVABLES.get(key)
    if mat is not None:
        return mat
    items = list(terms.items())
    if not items:
        op = SparsePauliOp.from_list([("I" * num_qubits, 0.0)])
    elif all(set(label) <= set("IXYZ") for label, _ in items):
        op = SparsePauliOp.from_list(items, num_qubits=num_qubits)
    else:
        observable = SparseObservable.from_list(items, num_qubits=num_qubits)
        op = SparsePauliOp.from_sparse_observable(observable)
    mat = PauliAction(op.simplify(atol=0))
    with _CACHE_LOCK:
        _OBSERVABLES[key] = mat
        if len(_OBSERVABLES) > 4 * _CACHE_SIZE:
            _OBSERVABLES.popitem(last=False)
    return mat
