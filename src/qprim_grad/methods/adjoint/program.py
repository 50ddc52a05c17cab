"""A circuit compiled for adjoint differentiation, and the compile cache.

A circuit is compiled once (cached by structure) into blocks with specialised state kernels
(:mod:`.fusion`, :mod:`.kernels`); parameterised gates are exact trigonometric polynomials in
their arguments (:mod:`.gates`). Then, per batch of parameter rows (:mod:`.passes`),

* the chain rule maps circuit parameters to gate arguments (:mod:`.arguments`), and every
  block's matrix and generators ``K_α = W (∂U_α) U_α^† W^†`` are computed, vectorised over
  rows and over blocks of the same shape (:mod:`.matrices`);
* a forward pass applies the blocks to ``|0…0⟩`` (the state is reshaped, never a 2^n×2^n
  matrix);
* ``|λ_m⟩ = O_m|ψ⟩`` for every observable of the row is stacked next to ``|ψ⟩``, so one
  backward pass serves all observables: it un-applies the blocks to the stack and, before each
  parameterised block, records ``ρ'_m = Tr_rest |λ_m⟩⟨ψ|`` on the block's qubits;
* ``⟨ψ|O_m|∂_α ψ⟩ = Σ_ab K_α[b, a] conj(ρ'_m[a, b])`` for all arguments at once, then the
  Jacobian of the chain rule.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from qiskit.circuit import Parameter, QuantumCircuit
from threadpoolctl import ThreadpoolController

from ...cache import BoundedCache
from . import passes
from .arguments import GateArguments
from .diagonal import diagonal_runs
from .fusion import build_blocks
from .kernels import Kernel
from .matrices import BlockMatrices

__all__ = ["AdjointProgram", "compile_circuit"]

_MAX_AMPLITUDES = 1 << 21  # amplitudes held per batch of parameter rows (complex128: 32 MiB)


class _SingleThreadedBlas:
    """Limit BLAS to one thread while any kernel runs: its threads only add contention for
    these small, memory-bound products (a dependency for that reason, see pyproject.toml).

    Reference-counted, so that concurrent kernels in several threads restore the user's
    setting only when the last one finishes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._controller: Any = None
        self._modules = 0
        self._limiter: Any = None

    def __enter__(self) -> None:
        with self._lock:
            if self._users == 0:
                # a BLAS loaded since (by a new import, e.g. scipy's) needs a new controller
                if self._controller is None or self._modules != len(sys.modules):
                    self._controller = ThreadpoolController()
                    self._modules = len(sys.modules)
                self._limiter = self._controller.limit(limits=1, user_api="blas")
            self._users += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._limiter is not None:
                self._limiter.restore_original_limits()
                self._limiter = None


_BLAS = _SingleThreadedBlas()


class AdjointProgram:
    """A circuit compiled for adjoint differentiation."""

    def __init__(self, circuit: QuantumCircuit) -> None:
        blocks, exprs, phase_args = build_blocks(circuit)
        self.num_qubits = circuit.num_qubits
        self.parameters: tuple[Parameter, ...] = tuple(circuit.parameters)
        self._index = {p: i for i, p in enumerate(self.parameters)}
        self.blocks = blocks
        self.kernels: list[Kernel] = [b.kernel for b in blocks if b.kernel is not None]
        assert len(self.kernels) == len(blocks)
        self.phase_args = np.array(phase_args, dtype=int)
        self.arguments = GateArguments(exprs, self.parameters)
        self.num_args = self.arguments.count
        self.matrices = BlockMatrices(blocks)
        self.runs = diagonal_runs(blocks, self.num_qubits)

    @property
    def affine(self) -> bool:
        """Whether every gate argument is affine in the circuit's parameters."""
        return self.arguments.affine

    def columns(self, parameters: Sequence[Parameter]) -> list[int]:
        """Index of each of ``parameters`` in :attr:`parameters` (``-1``: not in the circuit)."""
        return [self._index.get(p, -1) for p in parameters]

    def state_overlaps(
        self, values: np.ndarray, diff: Sequence[int], states_out: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``<d_p psi|d_q psi>`` ``(R, P, P)`` and ``<psi|d_p psi>`` ``(R, P)`` (the quantum
        geometric tensor's pieces), every gate differentiated as an SU(d) gate; the final
        states go to ``states_out`` ``(R, 2**n)`` when given (``P > 0``)."""
        values = np.asarray(values, dtype=float).reshape(-1, len(self.parameters))
        with _BLAS:
            return passes.state_overlaps(self, values, np.asarray(diff, dtype=int), states_out)

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
                evs[rows], out[rows] = passes.adjoint_batch(
                    self, values[rows], observables[rows], diff_arr, M, traceless
                )
        return evs, out


# --------------------------------------------------------------------------------------------
# The compile cache: keyed by structure, so an equal circuit (a new object, or the same one
# rebuilt) reuses the program and any edit gives a new key
# --------------------------------------------------------------------------------------------

_PROGRAMS: BoundedCache[tuple[AdjointProgram, list[Any]]] = BoundedCache(64)


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
    return _PROGRAMS.get(key, None, lambda: (AdjointProgram(circuit), others))[0]
