"""What the methods know about each gate: one :class:`GateInfo` row per gate in :data:`GATES`.

A row holds the frequencies of every argument (parameter shift solves its rule from them),
the generator of every argument (``lin_comb`` and the metric methods build their Hadamard
tests from it), whether simulators must be given the gate's definition instead (``rewritten``)
and a decomposition to use where a method has no rule for the gate. Gates without a row are
differentiated through their definitions. Adding a gate is adding a row.

The per-method views (:data:`GATE_FREQUENCIES`, :data:`GENERATORS`, :data:`DECOMPOSITIONS`,
:data:`REWRITTEN_GATES`) are derived from the table.

Example:
    >>> from qprim_grad.circuit.gates import GATES
    >>> GATES["rx"].frequencies, GATES["rx"].generators
    (((1.0,),), (((0.5, 'X'),),))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from qiskit.circuit import CircuitInstruction, QuantumCircuit

__all__ = [
    "GateInfo",
    "GATES",
    "GATE_FREQUENCIES",
    "GENERATORS",
    "DECOMPOSITIONS",
    "REWRITTEN_GATES",
]

#: ``instruction -> circuit`` on the instruction's own qubits (``0 .. n-1``)
Decomposer = Callable[[CircuitInstruction], QuantumCircuit]
#: per argument, the frequencies of the expectation value in that argument
Frequencies = tuple[tuple[float, ...], ...]
#: per argument, the generator as ``(coefficient, Pauli label)`` terms
Generators = tuple[tuple[tuple[float, str], ...], ...]


@dataclass(frozen=True)
class GateInfo:
    """Everything the methods know about one gate.

    Attributes:
        name: the instruction's ``name``.
        frequencies: per argument, the frequencies of the expectation value as a function of
            that argument (differences of the generator's eigenvalues); ``None``: no shift
            rule, the gate is differentiated through its definition.
        generators: per argument, the generator ``G`` of ``exp(-i theta G)`` as
            ``(coefficient, Pauli label over the gate's qubits, little-endian)`` terms, taken
            traceless; ``None``: no Hadamard test, the gate is decomposed first.
        rewritten: every method evaluates the gate through its definition (qiskit-aer
            <= 0.18.2 simulates it wrongly when it binds the values itself).
        decomposition: used instead of the gate's definition where a method has no rule.
    """

    name: str
    frequencies: Frequencies | None = None
    generators: Generators | None = None
    rewritten: bool = False
    decomposition: Decomposer | None = None


def _u_as_rotations(instruction: CircuitInstruction) -> QuantumCircuit:
    """``U(theta, phi, lam) = P(phi) RY(theta) P(lam)`` exactly (no global phase)."""
    op = instruction.operation
    params = list(op.params)
    if op.name == "u2":
        params = [np.pi / 2, *params]
    theta, phi, lam = params
    circuit = QuantumCircuit(1)
    circuit.p(lam, 0)
    circuit.ry(theta, 0)
    circuit.p(phi, 0)
    return circuit


_ONE = ((1.0,),)  # one argument of frequency 1


def _rotation(name: str, pauli: str) -> GateInfo:
    """``exp(-i theta P / 2)`` up to a global phase: frequency 1, generator ``P / 2``."""
    return GateInfo(name, _ONE, (((0.5, pauli),),))


_ROWS = (
    _rotation("rx", "X"),
    _rotation("ry", "Y"),
    _rotation("rz", "Z"),
    _rotation("p", "Z"),
    _rotation("u1", "Z"),
    _rotation("rxx", "XX"),
    _rotation("ryy", "YY"),
    _rotation("rzz", "ZZ"),
    _rotation("rzx", "XZ"),
    GateInfo("u", _ONE * 3, decomposition=_u_as_rotations),
    GateInfo("u3", _ONE * 3, decomposition=_u_as_rotations),
    GateInfo("u2", _ONE * 2, decomposition=_u_as_rotations),
    # r(theta, phi) = rz(phi) rx(theta) rz(-phi): phi enters twice.
    GateInfo("r", ((1.0,), (1.0, 2.0))),
    GateInfo("global_phase", ((),), ((),)),
    GateInfo("crx", rewritten=True),
    GateInfo("cry", rewritten=True),
    GateInfo("crz", rewritten=True),
    GateInfo("cp", rewritten=True),
    GateInfo("mcphase", rewritten=True),
    GateInfo("cu1", rewritten=True),
    GateInfo("cu3", rewritten=True),
)

#: gate name -> its row
GATES: Mapping[str, GateInfo] = MappingProxyType({row.name: row for row in _ROWS})

#: gate name -> per argument, the frequencies (gates with a shift rule)
GATE_FREQUENCIES: dict[str, Frequencies] = {
    row.name: row.frequencies for row in _ROWS if row.frequencies is not None
}
#: gate name -> per argument, the generator (gates with a Hadamard test)
GENERATORS: dict[str, Generators] = {
    row.name: row.generators for row in _ROWS if row.generators is not None
}
#: gate name -> decomposition used where a method has no rule for the gate
DECOMPOSITIONS: dict[str, Decomposer] = {
    row.name: row.decomposition for row in _ROWS if row.decomposition is not None
}
#: gates every method evaluates through their definitions
REWRITTEN_GATES: frozenset[str] = frozenset(row.name for row in _ROWS if row.rewritten)
