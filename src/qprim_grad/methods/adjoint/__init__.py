"""The adjoint (reverse-mode) engine behind ``method="reverse"`` and ``metric="reverse"``.

Exact gradients, second derivatives and quantum-geometric-tensor pieces of statevector
expectation values: a circuit is compiled once (:func:`compile_circuit`, cached by structure)
into blocks with in-place state kernels, then differentiated with one forward and one
backward pass per batch of parameter rows.

Modules, lowest first: ``gates`` (matrices and Fourier templates), ``parallel`` (two threads
on large states), ``kernels`` (the :class:`~.kernels.Kernel` protocol and the state kernels),
``blocks`` (circuit walk), ``schedule`` and ``fusion`` (kernel choice, gathers, pairing),
``diagonal`` (runs of diagonal blocks), ``pauli`` (observables), ``arguments`` (chain rule to
gate arguments), ``matrices`` (per-row block matrices and generators), ``passes`` (forward and
backward passes), ``program`` (:class:`AdjointProgram`, the compile cache), ``hessian``
(forward-over-reverse). The bounded LRU cache is :mod:`qprim_grad.cache`.
"""

from __future__ import annotations

from ...errors import AdjointError
from .hessian import hessian
from .pauli import PauliAction, observable_matrix
from .program import AdjointProgram, compile_circuit

__all__ = [
    "AdjointError",
    "AdjointProgram",
    "PauliAction",
    "compile_circuit",
    "hessian",
    "observable_matrix",
]
