"""A circuit as blocks: runs of single-qubit gates on one wire are fused into one block,
every other gate is a block of its own; the gates are fixed matrices or templates
(:mod:`.gates`) with indices into the list of gate-argument expressions."""

from __future__ import annotations

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
    ParameterExpression,
    QuantumCircuit,
)

from ...errors import AdjointError
from .gates import Template, fixed_matrix, template
from .kernels import Kernel

__all__ = ["Block", "Factor", "walk_circuit"]


@dataclass
class Factor:
    """One gate of a block: a fixed matrix, or a template with global argument indices."""

    fixed: np.ndarray | None = None
    template: Template | None = None
    args: tuple[int, ...] = ()


@dataclass
class Block:
    """Gates applied in order on ``qubits`` (matrix bit ``i`` ↔ ``qubits[i]``)."""

    qubits: tuple[int, ...]
    factors: list[Factor]
    fixed_matrix: np.ndarray | None = None  # product, when no factor is parameterised
    kernel: Kernel | None = None

    @property
    def dim(self) -> int:
        return 1 << len(self.qubits)

    @property
    def args(self) -> tuple[int, ...]:
        return tuple(a for f in self.factors for a in f.args)


@dataclass
class Walk:
    """What a circuit walk gives: the blocks (without kernels), the gate-argument expressions
    and which of them are global phases."""

    blocks: list[Block] = field(default_factory=list)
    exprs: list[ParameterExpression] = field(default_factory=list)
    phase_args: list[int] = field(default_factory=list)


def walk_circuit(circuit: QuantumCircuit) -> Walk:
    """``circuit`` as blocks (gates without a template or matrix through their definitions),
    or :class:`AdjointError`."""
    builder = _Builder()
    builder.walk(circuit, list(range(circuit.num_qubits)))
    builder.finish()
    return builder.out


@dataclass
class _Builder:
    """Walks a circuit into blocks, fusing single-qubit runs per wire."""

    out: Walk = field(default_factory=Walk)
    pending: dict[int, list[Factor]] = field(default_factory=dict)

    def arg(self, expr: ParameterExpression) -> int:
        self.out.exprs.append(expr)
        return len(self.out.exprs) - 1

    def flush(self, qubit: int) -> None:
        factors = self.pending.pop(qubit, None)
        if factors:
            self.out.blocks.append(Block((qubit,), factors))

    def emit(self, qubits: tuple[int, ...], factor: Factor) -> None:
        if len(qubits) == 1:
            self.pending.setdefault(qubits[0], []).append(factor)
            return
        for q in qubits:
            self.flush(q)
        self.out.blocks.append(Block(qubits, [factor]))

    def add_phase(self, phase: Any) -> None:
        if isinstance(phase, ParameterExpression) and phase.parameters:
            self.out.phase_args.append(self.arg(phase))

    def walk(self, circuit: QuantumCircuit, qubit_map: Sequence[int]) -> None:
        self.add_phase(circuit.global_phase)
        index = {bit: i for i, bit in enumerate(circuit.qubits)}
        for inst in circuit.data:
            qubits = tuple(qubit_map[index[q]] for q in inst.qubits)
            self.instruction(inst.operation, qubits)

    def instruction(self, op: Instruction, qubits: tuple[int, ...]) -> None:
        if isinstance(op, (Barrier, Delay)):
            return
        _check_unitary(op)
        symbolic = tuple(
            i
            for i, p in enumerate(op.params)
            if isinstance(p, ParameterExpression) and p.parameters
        )
        if isinstance(op, Gate) and op.num_qubits == 0:  # GlobalPhaseGate
            for i in symbolic:
                self.add_phase(op.params[i])
            return
        factor = self.factor(op, symbolic) if isinstance(op, Gate) else None
        if factor is not None:
            self.emit(qubits, factor)
        else:
            self.walk(_definition(op), qubits)

    def factor(self, op: Gate, symbolic: tuple[int, ...]) -> Factor | None:
        """The gate as one factor (``None``: it has no exact matrix or template)."""
        if not symbolic:
            mat = fixed_matrix(op)
            return None if mat is None else Factor(fixed=mat)
        found = template(op, symbolic)
        if found is None:
            return None
        return Factor(template=found, args=tuple(self.arg(op.params[i]) for i in symbolic))

    def finish(self) -> None:
        for q in list(self.pending):
            self.flush(q)


def _check_unitary(op: Instruction) -> None:
    if isinstance(op, ControlFlowOp) or op.name in ("measure", "reset", "store"):
        raise AdjointError(
            f"method='reverse' needs a unitary circuit without measurements, resets or "
            f"control flow; found '{op.name}'. Remove it (the estimator measures for you)."
        )
    if op.num_clbits:
        raise AdjointError(f"method='reverse': operation '{op.name}' acts on classical bits")


def _definition(op: Instruction) -> QuantumCircuit:
    try:
        definition = op.definition
    except Exception as exc:  # noqa: BLE001 - qiskit raises various errors here
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
    return definition
