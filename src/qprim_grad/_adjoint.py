"""Exact reverse-mode (adjoint) gradients of statevector expectation values.

The kernel behind ``method="reverse"``. A circuit is compiled once into *blocks*: runs of
single-qubit gates on one wire are fused into one 2x2 block; every other gate is a block of
its own. A parameterised gate is stored as an exact trigonometric polynomial
``U(θ) = Σ_m F_m exp(i m·θ/2)`` (``|m_j| <= 2``), obtained from the gate's own matrix by a
discrete Fourier transform, so its matrix and derivatives are exact and vectorised over
parameter rows. Then, per batch of parameter rows,

* a forward pass applies the blocks to ``|0…0⟩`` (the state is reshaped, never a 2^n×2^n
  matrix),
* ``|λ_m⟩ = O_m|ψ⟩`` for every observable of the row is stacked next to ``|ψ⟩``,
* a backward pass un-applies the blocks to the stack; before each parameterised block it
  records ``ρ'_m = Tr_rest |λ_m⟩⟨ψ|`` on the block's qubits, from which
  ``⟨ψ|O_m|∂ψ/∂α⟩ = Tr(K_α ρ'_m^*ᵀ)`` follows for every gate argument ``α`` of the block
  (``K_α = W ∂U_α U_α^† W^†`` with ``W`` the rest of the block),
* the chain rule (affine parameter expressions as one matrix, others bound per row) maps gate
  arguments to circuit parameters.

The public entry points are :func:`compile_circuit` and :meth:`AdjointProgram.gradients`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from qiskit.circuit import (
    Barrier,
    ControlFlowOp,
    Delay,
    Gate,
    Instruction,
    Parameter,
    ParameterExpression,
    QuantumCircuit,
)
from qiskit.quantum_info import SparsePauliOp

__all__ = ["AdjointError", "AdjointProgram", "compile_circuit"]

_GRID = 5  # samples per argument: exact for |m| <= 2 in exp(i m θ/2)
_MAX_SYMBOLIC_ARGS = 4  # larger gates are decomposed (5**k matrix evaluations per template)
_SMALL_Y = 8  # below this stride a 1-qubit gate is applied as a Kronecker product (BLAS)
_MAX_AMPLITUDES = 1 << 21  # amplitudes held per batch of parameter rows (complex128: 32 MiB)


class AdjointError(ValueError):
    """The circuit cannot be differentiated by the adjoint method."""


# --------------------------------------------------------------------------------------------
# Gates as exact trigonometric polynomials
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Template:
    """``U(θ) = Σ_K coeffs[K] · exp(i freqs[K]·θ / 2)`` for a gate with ``k`` free arguments."""

    dim: int
    freqs: np.ndarray  # (K, k) integers in [-2, 2]
    coeffs: np.ndarray  # (K, dim * dim)
    diagonal: bool

    def evaluate(self, angles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Matrices ``(..., d, d)`` and derivatives ``(..., k, d, d)`` at ``angles (..., k)``."""
        d = self.dim
        phases = np.exp(0.5j * (angles @ self.freqs.T))  # (..., K)
        mats = (phases @ self.coeffs).reshape(angles.shape[:-1] + (d, d))
        weights = phases[..., None, :] * (0.5j * self.freqs.T)  # (..., k, K)
        ders = (weights @ self.coeffs).reshape(angles.shape[:-1] + (self.freqs.shape[1], d, d))
        return mats, ders


_TEMPLATES: dict[Any, _Template | None] = {}
_FIXED: dict[Any, np.ndarray | None] = {}


def _is_library_gate(op: Instruction) -> bool:
    """Standard gates: their matrix depends only on name, parameters and control state."""
    return getattr(op, "_standard_gate", None) is not None


def _matrix_at(op: Gate, params: Sequence[Any]) -> np.ndarray | None:
    """The matrix of ``op`` with its parameters replaced by ``params``, or ``None``."""
    try:
        gate = op.to_mutable()
        gate.params = list(params)
        return np.asarray(gate.to_matrix(), dtype=complex)
    except Exception:  # noqa: BLE001 - any failure means "no usable matrix"
        return None


def _numeric(value: Any) -> Any:
    if isinstance(value, ParameterExpression):
        value = complex(value.numeric())
        return value.real if value.imag == 0 else value
    return value


def _fixed_matrix(op: Instruction) -> np.ndarray | None:
    """Matrix of a gate without free parameters (cached for library gates)."""
    key = None
    if _is_library_gate(op):
        try:
            key = (type(op), op.name, op.num_qubits, getattr(op, "ctrl_state", None))
            key += tuple(_numeric(p) for p in op.params)
            hash(key)
        except TypeError:
            key = None
        if key is not None and key in _FIXED:
            return _FIXED[key]
    mat = None
    if isinstance(op, Gate):
        try:
            mat = np.asarray(op.to_matrix(), dtype=complex)
        except Exception:  # noqa: BLE001
            mat = None
    if key is not None:
        _FIXED[key] = mat
    return mat


def _template(op: Gate, symbolic: tuple[int, ...]) -> _Template | None:
    """Fourier template of ``op`` in its ``symbolic`` arguments (``None`` if not exact)."""
    params = list(op.params)
    key = None
    if _is_library_gate(op):
        fixed = tuple(None if i in symbolic else _numeric(p) for i, p in enumerate(params))
        key = (type(op), op.name, op.num_qubits, getattr(op, "ctrl_state", None), fixed)
        try:
            hash(key)
        except TypeError:
            key = None
        if key is not None and key in _TEMPLATES:
            return _TEMPLATES[key]
    result = _build_template(op, symbolic)
    if key is not None:
        _TEMPLATES[key] = result
    return result


def _build_template(op: Gate, symbolic: tuple[int, ...]) -> _Template | None:
    k = len(symbolic)
    if k > _MAX_SYMBOLIC_ARGS:
        return None
    base = [0.0 if i in symbolic else _numeric(p) for i, p in enumerate(op.params)]
    grid = 4 * np.pi * np.arange(_GRID) / _GRID  # θ = 2t, t = 2πl/5
    samples = None
    for idx in np.ndindex(*(_GRID,) * k):
        args = list(base)
        for pos, sample in zip(symbolic, idx, strict=True):
            args[pos] = float(grid[sample])
        mat = _matrix_at(op, args)
        if mat is None:
            return None
        if samples is None:
            samples = np.empty((_GRID,) * k + mat.shape, dtype=complex)
        samples[idx] = mat
    assert samples is not None
    dim = samples.shape[-1]
    spectrum = np.fft.fftn(samples, axes=tuple(range(k))) / _GRID**k
    spectrum = spectrum.reshape(-1, dim * dim)
    ms = np.array(list(np.ndindex(*(_GRID,) * k)), dtype=float).reshape(-1, k)
    ms[ms > _GRID // 2] -= _GRID
    keep = np.abs(spectrum).max(axis=1) > 1e-13
    template = _Template(dim, ms[keep], spectrum[keep], False)
    # Verify the polynomial form (e.g. ``RVGate`` is not one) at random points.
    rng = np.random.default_rng(1234)
    diagonal = True
    for _ in range(2):
        theta = rng.uniform(-np.pi, np.pi, size=k)
        args = list(base)
        for pos, value in zip(symbolic, theta, strict=True):
            args[pos] = float(value)
        exact = _matrix_at(op, args)
        approx, _ = template.evaluate(theta)
        if exact is None or not np.allclose(approx, exact, rtol=0, atol=1e-12):
            return None
        diagonal &= bool(np.allclose(exact, np.diag(np.diag(exact)), rtol=0, atol=0))
    return _Template(dim, ms[keep], spectrum[keep], diagonal)


# --------------------------------------------------------------------------------------------
# Compiled program
# --------------------------------------------------------------------------------------------


@dataclass
class _Factor:
    """One gate of a block: a fixed matrix, or a template with global argument indices."""

    fixed: np.ndarray | None = None
    template: _Template | None = None
    args: tuple[int, ...] = ()


@dataclass
class _Block:
    """Gates applied in order on ``qubits`` (matrix bit ``i`` ↔ ``qubits[i]``)."""

    qubits: tuple[int, ...]
    factors: list[_Factor]
    kind: str = "dense"  # dense | diag | ctrl
    controls: tuple[int, ...] = ()  # positions in ``qubits`` (kind == "ctrl")
    target: int = -1  # position in ``qubits`` of the single target (kind == "ctrl")
    x_target: bool = False  # controlled-X: apply as a swap
    fixed_matrix: np.ndarray | None = None  # product when no factor is parameterised

    @property
    def dim(self) -> int:
        return 1 << len(self.qubits)

    @property
    def args(self) -> tuple[int, ...]:
        return tuple(a for f in self.factors for a in f.args)


@dataclass
class _Builder:
    """Walks a circuit into blocks, fusing single-qubit runs per wire."""

    num_qubits: int
    blocks: list[_Block] = field(default_factory=list)
    exprs: list[ParameterExpression] = field(default_factory=list)
    phase_args: list[int] = field(default_factory=list)
    pending: dict[int, list[_Factor]] = field(default_factory=dict)

    def arg(self, expr: ParameterExpression) -> int:
        self.exprs.append(expr)
        return len(self.exprs) - 1

    def flush(self, qubit: int) -> None:
        factors = self.pending.pop(qubit, None)
        if factors:
            self.blocks.append(_Block((qubit,), factors))

    def emit(self, qubits: tuple[int, ...], factor: _Factor) -> None:
        if len(qubits) == 1:
            self.pending.setdefault(qubits[0], []).append(factor)
            return
        for q in qubits:
            self.flush(q)
        self.blocks.append(_Block(qubits, [factor]))

    def add_phase(self, phase: Any) -> None:
        if isinstance(phase, ParameterExpression) and phase.parameters:
            self.phase_args.append(self.arg(phase))

    def walk(self, circuit: QuantumCircuit, qubit_map: Sequence[int]) -> None:
        self.add_phase(circuit.global_phase)
        index = {bit: i for i, bit in enumerate(circuit.qubits)}
        for inst in circuit.data:
            op = inst.operation
            qubits = tuple(qubit_map[index[q]] for q in inst.qubits)
            self.instruction(op, qubits)

    def instruction(self, op: Instruction, qubits: tuple[int, ...]) -> None:
        if isinstance(op, (Barrier, Delay)):
            return
        if isinstance(op, ControlFlowOp) or op.name in ("measure", "reset", "store"):
            raise AdjointError(
                f"method='reverse' needs a unitary circuit without measurements, resets or "
                f"control flow; found '{op.name}'. Remove it (the estimator measures for you)."
            )
        if op.num_clbits:
            raise AdjointError(f"operation '{op.name}' acts on classical bits")
        symbolic = tuple(
            i
            for i, p in enumerate(op.params)
            if isinstance(p, ParameterExpression) and p.parameters
        )
        if isinstance(op, Gate) and op.num_qubits == 0:  # GlobalPhaseGate
            for i in symbolic:
                self.add_phase(op.params[i])
            return
        if isinstance(op, Gate):
            if not symbolic:
                mat = _fixed_matrix(op)
                if mat is not None:
                    self.emit(qubits, _Factor(fixed=mat))
                    return
            else:
                template = _template(op, symbolic)
                if template is not None:
                    args = tuple(self.arg(op.params[i]) for i in symbolic)
                    self.emit(qubits, _Factor(template=template, args=args))
                    return
        try:
            definition = op.definition
        except Exception as exc:  # noqa: BLE001
            raise AdjointError(
                f"method='reverse' cannot differentiate gate '{op.name}': it has no exact "
                f"matrix and no decomposition ({exc}). Use method='param_shift' or "
                f"'finite_diff', or bind its parameters."
            ) from exc
        if definition is None:
            raise AdjointError(
                f"method='reverse' cannot differentiate gate '{op.name}': it has neither a "
                f"matrix nor a definition."
            )
        self.walk(definition, qubits)

    def finish(self) -> None:
        for q in list(self.pending):
            self.flush(q)


def _analyse(block: _Block) -> None:
    """Fill in ``kind`` (diag / controlled / dense) and the fixed product of ``block``."""
    if all(f.template is None for f in block.factors):
        mat = np.eye(block.dim, dtype=complex)
        for f in block.factors:
            mat = f.fixed @ mat
        block.fixed_matrix = mat
        samples = [mat]
    else:
        rng = np.random.default_rng(7)
        samples = []
        for _ in range(2):
            mat = np.eye(block.dim, dtype=complex)
            for f in block.factors:
                if f.template is None:
                    mat = f.fixed @ mat
                else:
                    m, _ = f.template.evaluate(rng.uniform(-np.pi, np.pi, len(f.args)))
                    mat = m @ mat
            samples.append(mat)
    if all(np.count_nonzero(m - np.diag(np.diag(m))) == 0 for m in samples):
        block.kind = "diag"
        return
    k = len(block.qubits)
    if k < 2:
        return
    idx = np.arange(block.dim)
    controls = []
    for pos in range(k):
        zero = idx[(idx >> pos) & 1 == 0]
        ok = all(
            np.array_equal(m[:, zero], np.eye(block.dim)[:, zero])
            and np.array_equal(m[zero, :], np.eye(block.dim)[zero, :])
            for m in samples
        )
        if ok:
            controls.append(pos)
    if len(controls) == k - 1:
        block.kind = "ctrl"
        block.controls = tuple(controls)
        block.target = next(p for p in range(k) if p not in controls)
        sub = _sub_matrix(samples[0], block)
        block.x_target = block.fixed_matrix is not None and np.array_equal(
            sub, np.array([[0, 1], [1, 0]])
        )


def _sub_matrix(mat: np.ndarray, block: _Block) -> np.ndarray:
    """The 2x2 target matrix(es) of a controlled block, where every control bit is 1."""
    on = sum(1 << c for c in block.controls)
    rows = [on, on | (1 << block.target)]
    return mat[..., rows, :][..., :, rows]


def _view_shape(n: int, qubits: Sequence[int]) -> tuple[list[int], dict[int, int]]:
    """Shape splitting ``2**n`` at ``qubits`` and the axis of each qubit in it."""
    shape: list[int] = []
    axis: dict[int, int] = {}
    prev = n
    for q in sorted(qubits, reverse=True):
        shape.append(1 << (prev - q - 1))
        axis[q] = len(shape)
        shape.append(2)
        prev = q
    shape.append(1 << prev)
    return shape, axis


def _tensor_order(block: _Block, axis: dict[int, int]) -> list[int]:
    """Axes of the block's qubits, most significant matrix bit first."""
    return [axis[q] for q in reversed(block.qubits)]


@dataclass
class _RowData:
    """Per-batch numeric data: block matrices and generator matrices ``K``."""

    mats: list[np.ndarray | None]  # per block: (R|1, d, d)
    gens: list[np.ndarray | None]  # per block: (R|1, nargs, d, d) or None
    angles: np.ndarray


class AdjointProgram:
    """A circuit compiled for adjoint differentiation."""

    def __init__(self, circuit: QuantumCircuit) -> None:
        builder = _Builder(circuit.num_qubits)
        builder.walk(circuit, list(range(circuit.num_qubits)))
        builder.finish()
        self.num_qubits = circuit.num_qubits
        self.parameters: tuple[Parameter, ...] = tuple(circuit.parameters)
        self.blocks = builder.blocks
        for block in self.blocks:
            _analyse(block)
        self.phase_args = np.array(builder.phase_args, dtype=int)
        self._chain_rule(builder.exprs)
        # templates -> (factor locations) for vectorised evaluation
        groups: dict[int, list[tuple[int, int]]] = {}
        self._templates: dict[int, _Template] = {}
        for b, block in enumerate(self.blocks):
            for f, factor in enumerate(block.factors):
                if factor.template is not None:
                    tid = id(factor.template)
                    self._templates[tid] = factor.template
                    groups.setdefault(tid, []).append((b, f))
        self._groups = groups

    # ---- chain rule ------------------------------------------------------------------------
    def _chain_rule(self, exprs: list[ParameterExpression]) -> None:
        """Split gate arguments into affine ones (a matrix) and general ones (bound per row)."""
        index = {p: i for i, p in enumerate(self.parameters)}
        n_args = len(exprs)
        self.num_args = n_args
        self._lin = np.zeros((len(self.parameters), n_args))
        self._const = np.zeros(n_args)
        self._general: list[tuple[int, ParameterExpression, dict[Parameter, Any]]] = []
        for a, expr in enumerate(exprs):
            grads = {p: expr.gradient(p) for p in expr.parameters}
            if all(
                not isinstance(g, ParameterExpression) or not g.parameters for g in grads.values()
            ):
                for p, g in grads.items():
                    self._lin[index[p], a] = float(np.real(complex(_numeric(g))))
                zero = expr.bind({p: 0.0 for p in expr.parameters})
                self._const[a] = float(np.real(complex(_numeric(zero))))
            else:
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
            for r, row in enumerate(values):
                binding = {p: float(v) for p, v in zip(self.parameters, row, strict=True)}
                for a, expr, grads in self._general:
                    sub = {p: binding[p] for p in expr.parameters}
                    angles[r, a] = np.real(complex(_numeric(expr.bind(sub))))
                    for p, g in grads.items():
                        j = np.flatnonzero(diff == self.parameters.index(p))
                        if j.size:
                            if isinstance(g, ParameterExpression):
                                g = g.bind({q: binding[q] for q in g.parameters})
                            jac[r, a, j] = np.real(complex(_numeric(g)))
        return angles, jac

    # ---- per-row matrices ------------------------------------------------------------------
    def _row_data(self, angles: np.ndarray, traceless: bool) -> _RowData:
        R = len(angles)
        fmats: dict[tuple[int, int], np.ndarray] = {}
        fgens: dict[tuple[int, int], np.ndarray] = {}
        for tid, locs in self._groups.items():
            template = self._templates[tid]
            idx = np.array([self.blocks[b].factors[f].args for b, f in locs])  # (G, k)
            mats, ders = template.evaluate(angles[:, idx])  # (R,G,d,d), (R,G,k,d,d)
            gens = ders @ np.conj(mats.swapaxes(-1, -2))[:, :, None]
            if traceless:  # drop the gate's phase: differentiate it as an SU(d) gate
                trace = np.trace(gens, axis1=-2, axis2=-1)[..., None, None]
                gens = gens - trace * np.eye(template.dim) / template.dim
            for g, loc in enumerate(locs):
                fmats[loc] = mats[:, g]
                fgens[loc] = gens[:, g]
        out_mats: list[np.ndarray | None] = []
        out_gens: list[np.ndarray | None] = []
        for b, block in enumerate(self.blocks):
            if block.fixed_matrix is not None:
                out_mats.append(block.fixed_matrix[None])
                out_gens.append(None)
                continue
            if len(block.factors) == 1:
                out_mats.append(fmats[(b, 0)])
                out_gens.append(fgens[(b, 0)])
                continue
            # Product and conjugated generators, right to left: W = U_L … U_{i+1}.
            w = None
            gens_list: list[np.ndarray] = []
            for f in range(len(block.factors) - 1, -1, -1):
                factor = block.factors[f]
                m = factor.fixed[None] if factor.template is None else fmats[(b, f)]
                if factor.template is not None:
                    k = fgens[(b, f)]
                    if w is not None:
                        k = w[:, None] @ k @ np.conj(w.swapaxes(-1, -2))[:, None]
                    gens_list.append(k)
                w = m if w is None else w @ m
            gens_list.reverse()
            out_mats.append(np.broadcast_to(w, (R,) + w.shape[1:]) if w.shape[0] != R else w)
            out_gens.append(np.concatenate(gens_list, axis=1))
        return _RowData(out_mats, out_gens, angles)

    # ---- state kernels ---------------------------------------------------------------------
    def _apply(self, S: np.ndarray, block: _Block, mat: np.ndarray) -> np.ndarray:
        """Apply ``mat (R|1, d, d)`` of ``block`` to ``S (R, C, 2**n)``; may work in place."""
        n = self.num_qubits
        R, C, N = S.shape
        if block.kind == "diag":
            shape, axis = _view_shape(n, block.qubits)
            diag = np.diagonal(mat, axis1=-2, axis2=-1)  # (R|1, d)
            k = len(block.qubits)
            order = _tensor_order(block, axis)
            dshape = [mat.shape[0], 1] + [1] * len(shape)
            dt = diag.reshape((mat.shape[0],) + (2,) * k)
            perm = np.argsort(order)  # tensor axes sorted by view position
            dt = dt.transpose([0] + [1 + int(p) for p in perm])
            for q in block.qubits:
                dshape[2 + axis[q]] = 2
            view = S.reshape([R, C] + shape)
            view *= dt.reshape(dshape)
            return S
        if block.kind == "ctrl":
            shape, axis = _view_shape(n, block.qubits)
            view = S.reshape([R, C] + shape)
            sel: list[Any] = [slice(None)] * (2 + len(shape))
            for c in block.controls:
                sel[2 + axis[block.qubits[c]]] = 1
            tq = block.qubits[block.target]
            t_axis = (
                2 + axis[tq] - sum(1 for c in block.controls if axis[block.qubits[c]] < axis[tq])
            )
            sub = view[tuple(sel)]
            lo: list[Any] = [slice(None)] * sub.ndim
            hi: list[Any] = [slice(None)] * sub.ndim
            lo[t_axis], hi[t_axis] = 0, 1
            s0, s1 = sub[tuple(lo)], sub[tuple(hi)]
            if block.x_target:
                tmp = s0.copy()
                s0[...] = s1
                s1[...] = tmp
                return S
            m = _sub_matrix(mat, block)  # (R|1, 2, 2)
            bshape = (m.shape[0],) + (1,) * (s0.ndim - 1)
            m00, m01 = m[:, 0, 0].reshape(bshape), m[:, 0, 1].reshape(bshape)
            m10, m11 = m[:, 1, 0].reshape(bshape), m[:, 1, 1].reshape(bshape)
            new0 = m00 * s0 + m01 * s1
            s1[...] = m10 * s0 + m11 * s1
            s0[...] = new0
            return S
        if len(block.qubits) == 1:
            q = block.qubits[0]
            Y = 1 << q
            X = N >> (q + 1)
            if Y <= _SMALL_Y:
                eye = np.eye(Y)
                kron = (mat[:, :, None, :, None] * eye[None, None, :, None, :]).reshape(
                    mat.shape[0], 2 * Y, 2 * Y
                )
                kt = kron.swapaxes(-1, -2)
                if mat.shape[0] == 1:
                    return (S.reshape(R * C * X, 2 * Y) @ kt[0]).reshape(R, C, N)
                return np.matmul(S.reshape(R, C * X, 2 * Y), kt).reshape(R, C, N)
            return np.matmul(mat[:, None], S.reshape(R, C * X, 2, Y)).reshape(R, C, N)
        # general dense block: bring its qubits to the front
        shape, axis = _view_shape(n, block.qubits)
        order = [2 + a for a in _tensor_order(block, axis)]
        view = S.reshape([R, C] + shape)
        moved = np.moveaxis(view, order, list(range(2, 2 + len(order))))
        rest = moved.shape[2 + len(order) :]
        flat = moved.reshape(R, C, block.dim, -1)
        out = np.matmul(mat[:, None], flat).reshape(moved.shape[:2] + (2,) * len(order) + rest)
        back = np.moveaxis(out, list(range(2, 2 + len(order))), order)
        return np.ascontiguousarray(back).reshape(R, C, N)

    def _rho(self, S: np.ndarray, block: _Block) -> np.ndarray:
        """``ρ'[r, m, a, b] = Σ_rest conj(ψ_r[a, rest]) λ_rm[b, rest]`` on the block's qubits."""
        n = self.num_qubits
        R, C, N = S.shape
        M = C - 1
        psi_c = np.conj(S[:, :1])
        lam = S[:, 1:]
        d = block.dim
        if block.kind == "diag":
            shape, axis = _view_shape(n, block.qubits)
            prod = (psi_c * lam).reshape([R, M] + shape)
            keep = sorted(2 + axis[q] for q in block.qubits)
            other = tuple(i for i in range(2, prod.ndim) if i not in keep)
            summed = prod.sum(axis=other)  # axes of block qubits, descending qubit order
            order = _tensor_order(block, axis)
            rank = {a: i for i, a in enumerate(sorted(order))}
            summed = summed.transpose([0, 1] + [2 + rank[a] for a in order]).reshape(R, M, d)
            rho = np.zeros((R, M, d, d), dtype=complex)
            rho[..., np.arange(d), np.arange(d)] = summed
            return rho
        if len(block.qubits) == 1:
            q = block.qubits[0]
            Y = 1 << q
            X = N >> (q + 1)
            if Y <= _SMALL_Y:
                a = psi_c.reshape(R, 1, X, 2 * Y).swapaxes(-1, -2)
                g = a @ lam.reshape(R, M, X, 2 * Y)  # (R, M, 2Y, 2Y)
                return g.reshape(R, M, 2, Y, 2, Y).diagonal(axis1=3, axis2=5).sum(-1)
            a = psi_c.reshape(R, 1, X, 2, Y)
            return (a @ lam.reshape(R, M, X, 2, Y).swapaxes(-1, -2)).sum(axis=2)
        shape, axis = _view_shape(n, block.qubits)
        order = [2 + a for a in _tensor_order(block, axis)]
        front = list(range(2, 2 + len(order)))
        a = np.moveaxis(psi_c.reshape([R, 1] + shape), order, front).reshape(R, 1, d, -1)
        b = np.moveaxis(lam.reshape([R, M] + shape), order, front).reshape(R, M, d, -1)
        return a @ b.swapaxes(-1, -2)

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
            observables: per row, ``M`` sparse matrices (``None`` pads a row: zero result).
            diff: for each differentiated parameter, its index in ``self.parameters``
                (``-1``: not in the circuit, zero gradient).
            traceless: ignore gate and global phases (every gate differentiated as an SU(d)
                gate), as qiskit-algorithms does; only the imaginary part depends on it.
        """
        values = np.asarray(values, dtype=float).reshape(len(observables), -1)
        diff_arr = np.asarray(diff, dtype=int)
        R = len(values)
        M = max((len(row) for row in observables), default=0)
        out = np.zeros((R, M, len(diff_arr)), dtype=complex)
        if R == 0 or M == 0 or len(diff_arr) == 0:
            return out
        N = 1 << self.num_qubits
        step = max(1, _MAX_AMPLITUDES // ((M + 1) * N))
        for start in range(0, R, step):
            rows = slice(start, min(R, start + step))
            out[rows] = self._batch(values[rows], observables[rows], diff_arr, M, traceless)
        return out

    def _batch(
        self,
        values: np.ndarray,
        observables: Sequence[Sequence[Any]],
        diff: np.ndarray,
        M: int,
        traceless: bool,
    ) -> np.ndarray:
        R = len(values)
        N = 1 << self.num_qubits
        angles, jac = self._angles_and_jacobian(values, diff)
        data = self._row_data(angles, traceless)
        psi = np.zeros((R, 1, N), dtype=complex)
        psi[:, 0, 0] = 1.0
        for block, mat in zip(self.blocks, data.mats, strict=True):
            psi = self._apply(psi, block, mat)
        S = np.zeros((R, M + 1, N), dtype=complex)
        S[:, 0] = psi[:, 0]
        _apply_observables(S, observables)
        contrib = np.zeros((R, M, self.num_args), dtype=complex)
        if self.phase_args.size and not traceless:
            ev = np.einsum("rn,rmn->rm", np.conj(S[:, 0]), S[:, 1:])
            contrib[:, :, self.phase_args] = 1j * np.conj(ev)[..., None]
        for b in range(len(self.blocks) - 1, -1, -1):
            block = self.blocks[b]
            gens = data.gens[b]
            if gens is not None:
                rho = self._rho(S, block)  # (R, M, d, d)
                # c = Σ_ab K[b, a] conj(ρ'[a, b])
                c = np.einsum("rkba,rmab->rmk", gens, np.conj(rho))
                contrib[:, :, list(block.args)] += c
            mat = data.mats[b]
            S = self._apply(S, block, np.conj(mat.swapaxes(-1, -2)))
        return contrib @ jac


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
        S[rows, 1 + cols] = (op @ S[rows, 0].T).T


# --------------------------------------------------------------------------------------------
# Caches and helpers for callers
# --------------------------------------------------------------------------------------------

_PROGRAMS: OrderedDict[Any, AdjointProgram] = OrderedDict()
_OBSERVABLES: OrderedDict[Any, Any] = OrderedDict()
_CACHE_SIZE = 64


def _circuit_key(circuit: QuantumCircuit) -> Any:
    qubit = {bit: i for i, bit in enumerate(circuit.qubits)}
    return (
        circuit.num_qubits,
        str(circuit.global_phase),
        tuple(circuit.parameters),
        tuple(
            (
                type(inst.operation),
                inst.operation.name,
                tuple(qubit[q] for q in inst.qubits),
                tuple(map(_param_key, inst.operation.params)),
                id(inst.operation) if not _is_library_gate(inst.operation) else None,
            )
            for inst in circuit.data
        ),
    )


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
    key = _circuit_key(circuit)
    program = _PROGRAMS.get(key)
    if program is None:
        program = AdjointProgram(circuit)
        _PROGRAMS[key] = program
        if len(_PROGRAMS) > _CACHE_SIZE:
            _PROGRAMS.popitem(last=False)
    else:
        _PROGRAMS.move_to_end(key)
    return program


def observable_matrix(terms: dict[str, complex], num_qubits: int) -> Any:
    """Sparse matrix of an observable given as ``{pauli_label: coeff}`` (cached)."""
    key = (num_qubits, tuple(sorted(terms.items())))
    mat = _OBSERVABLES.get(key)
    if mat is None:
        if terms:
            op = SparsePauliOp.from_list(list(terms.items()), num_qubits=num_qubits)
            mat = op.to_matrix(sparse=True)
        else:
            import scipy.sparse as sp

            mat = sp.csr_matrix((1 << num_qubits, 1 << num_qubits), dtype=complex)
        _OBSERVABLES[key] = mat
        if len(_OBSERVABLES) > 4 * _CACHE_SIZE:
            _OBSERVABLES.popitem(last=False)
    return mat
