"""Block-diagonal and diagonal QGT approximations (``metric="block_diag"`` / ``"diag"``).

Scanning the circuit in order, a parameterised gate joins the current layer unless it acts
on a qubit touched by any gate since that layer began; then it starts a new layer. Within a
layer the generators commute and act on the circuit prefix before the layer, so the tensor
there is the generators' covariance ``c_a c_b (<P_a P_b> - <P_a><P_b>)`` (diagonal:
``c_a^2 (1 - <P_a>^2)``), measured with the user's estimator on that prefix (no auxiliary
qubit; one pub per layer, its observables all the Paulis and products). Entries between
layers are zero; the chain rule ``J^T G J`` then maps gate arguments to parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from qiskit.circuit import QuantumCircuit
from qiskit.primitives import StatevectorEstimator
from qiskit.quantum_info import Pauli, Statevector

from ...cache import BoundedCache
from ...circuit.chain_rule import PreparedCircuit, prepared_values, slot_jacobian
from ...pipeline.types import PubTask
from ..lin_comb import LinComb
from .base import CircuitMetric, MetricPlan, SlotTensor
from .circuits import (
    Generator,
    evaluation_inputs,
    evaluations_of,
    map_circuits,
    pauli_label,
    prefix,
    slot_generator,
)
from .lin_comb import prepare_for_metric

__all__ = ["BlockDiagMetric", "DiagMetric", "layers"]


def layers(prepared: PreparedCircuit) -> list[tuple[int, list[int]]]:
    """``(start instruction, slots)`` per layer, in circuit order."""
    by_instruction: dict[int, list[int]] = {}
    for g, slot in enumerate(prepared.slots):
        by_instruction.setdefault(slot.instruction, []).append(g)
    circuit = prepared.circuit
    out: list[tuple[int, list[int]]] = []
    touched: set[int] = set()
    for index, instruction in enumerate(circuit.data):
        if instruction.operation.name == "barrier":
            continue
        qubits = {circuit.find_bit(q).index for q in instruction.qubits}
        slots = by_instruction.get(index)
        if slots:
            if not out or touched & qubits:
                out.append((index, []))
                touched = set()
            out[-1][1].extend(slots)
        touched |= qubits
    return out


@dataclass(frozen=True)
class _Layer:
    slots: tuple[int, ...]  # active slots (non-zero generator)
    pairs: tuple[tuple[int, int], ...]  # (i, j) positions in slots, i < j, measured
    circuit: QuantumCircuit
    labels: tuple[str, ...]  # P_a for each slot, then P_a P_b for each pair
    start: int  # the instruction the layer starts at (its prefix ends before it)


def _layer(
    prepared: PreparedCircuit,
    start: int,
    active: tuple[int, ...],
    gens: list[Generator],
    pairs: bool,
) -> _Layer:
    """The layer of slots ``active`` on the prefix before ``start``: its Paulis and, with
    ``pairs``, their products."""
    width = prepared.circuit.num_qubits
    paulis = [dict(zip(gens[g][1], gens[g][2])) for g in active]
    labels = [pauli_label(width, p) for p in paulis]
    pair_list = []
    if pairs:
        for i in range(len(active)):
            for j in range(i + 1, len(active)):
                pair_list.append((i, j))
                labels.append(pauli_label(width, {**paulis[i], **paulis[j]}))
    circuit = prefix(prepared.circuit, start)
    return _Layer(active, tuple(pair_list), circuit, tuple(labels), start)


def _phase_fix_mask(built: list[_Layer], num_slots: int) -> np.ndarray:
    """1 for the pairs of slots in one layer (the products the phase fix subtracts)."""
    mask = np.zeros((num_slots, num_slots))
    for layer in built:
        idx = np.array(layer.slots)
        mask[np.ix_(idx, idx)] = 1.0
    return mask


def _combine(
    built: list[_Layer],
    results: list[tuple[np.ndarray, np.ndarray]],
    coefficient: np.ndarray,
    shape: tuple[int, ...],
    mask: np.ndarray,
    real: bool,
) -> SlotTensor:
    """The slot tensor from every layer's ``<P_a>`` and ``<P_a P_b>``."""
    G = len(coefficient)
    overlaps = np.zeros(shape + (G, G), dtype=complex)
    var_re = np.zeros(shape + (G, G))
    means = np.zeros(shape + (G,))
    var_means = np.zeros(shape + (G,))
    for layer, (evs, var) in zip(built, results, strict=True):
        c = coefficient[list(layer.slots)]
        k = len(layer.slots)
        for i, a in enumerate(layer.slots):
            means[..., a] = c[i] * evs[i]
            var_means[..., a] = c[i] ** 2 * var[i]
            overlaps[..., a, a] = c[i] ** 2
        for n, (i, j) in enumerate(layer.pairs):
            a, b = layer.slots[i], layer.slots[j]
            scale = c[i] * c[j]
            overlaps[..., a, b] = overlaps[..., b, a] = scale * evs[k + n]
            var_re[..., a, b] = scale**2 * var[k + n]
    if not real:
        return SlotTensor(np.zeros_like(overlaps), np.zeros_like(means), mask=mask)
    return SlotTensor(overlaps, means, var_re, None, var_means, mask=mask)


class BlockDiagMetric(CircuitMetric):
    """Block-diagonal QGT from generator covariances on circuit prefixes.

    Args:
        derivative_type: ``"complex"`` (default), ``"real"`` or ``"imag"``; the
            approximation is real (its imaginary part is zero).
        phase_fix: subtract the means' products (default ``True``; ``False`` gives
            ``<P_a P_b>`` moments instead of covariances).
        pass_manager: maps every prefix circuit (and the centre) onto a device.
    """

    name = "block_diag"
    #: keep only the diagonal of the tensor over the parameters
    diagonal_only = False

    def __init__(
        self, derivative_type: Any = "complex", phase_fix: bool = True, pass_manager: Any = None
    ) -> None:
        super().__init__(derivative_type, phase_fix, pass_manager)
        self._cache: BoundedCache[list] = BoundedCache(size=64)
        # maps the centre (and caches it) as lin_comb does
        self._lin_comb = LinComb(pass_manager=pass_manager)

    def _build(self, prepared: PreparedCircuit, pairs: bool) -> list[_Layer]:
        gens = [slot_generator(prepared, g) for g in range(prepared.num_slots)]
        out = []
        for start, members in layers(prepared):
            active = tuple(g for g in members if gens[g][0] != 0.0)
            if active:
                out.append(_layer(prepared, start, active, gens, pairs))
        mapped = map_circuits(self.pass_manager, [layer.circuit for layer in out])
        return [
            _Layer(layer.slots, layer.pairs, circuit, layer.labels, layer.start)
            for layer, circuit in zip(out, mapped, strict=True)
        ]

    def _needs_pairs(self, prepared: PreparedCircuit, jacobian: Any) -> bool:
        return True

    def _inputs(self, prepared: PreparedCircuit, pairs: bool, ndim: int) -> list:
        """Each layer with its observables (``ndim`` trailing axes) and value columns."""
        built = self._build(prepared, pairs)
        return evaluation_inputs(self.pass_manager, prepared.circuit, built, ndim)

    def plan(self, task: PubTask) -> MetricPlan:
        prepared = prepare_for_metric(task, self.name)
        base = prepared_values(prepared, task.values)
        ndim = base.ndim - 1
        jacobian = slot_jacobian(prepared, task.values)
        pairs = self._needs_pairs(prepared, jacobian)
        key = (id(task.circuit), task.parameters, pairs, ndim)
        inputs = self._cache.get(key, task.circuit, lambda: self._inputs(prepared, pairs, ndim))
        built = [layer for layer, _, _ in inputs]
        coefficient = np.array([slot_generator(prepared, g)[0] for g in range(prepared.num_slots)])
        mask = _phase_fix_mask(built, prepared.num_slots)
        shape, real = base.shape[:-1], self.derivative_type != "imag"

        def combine(results: list[tuple[np.ndarray, np.ndarray]]) -> SlotTensor:
            return _combine(built, results, coefficient, shape, mask, real)

        return MetricPlan(
            evaluations=evaluations_of(inputs, base),
            combine=combine,
            jacobian=jacobian,
            center=self._mapped_center(task, prepared, base),
            metadata={"metric_layers": len(built)},
            direct=_direct(task, prepared, base, built),
        )

    def _mapped_center(self, task: PubTask, prepared: PreparedCircuit, base: Any) -> Any:
        if self.pass_manager is None or task.circuit.layout is not None:
            return None
        return self._lin_comb.center_evaluation(task, prepared, base)


class DiagMetric(BlockDiagMetric):
    """The diagonal of :class:`BlockDiagMetric`, in the same ``(P, P)`` shape."""

    name = "diag"
    diagonal_only = True

    def _needs_pairs(self, prepared: PreparedCircuit, jacobian: Any) -> bool:
        # products are needed only where two slots of a layer feed the same parameter
        from scipy import sparse

        if not sparse.issparse(jacobian):
            return True
        used = (abs(jacobian) > 0).astype(int).toarray()
        return bool(np.any(used.sum(axis=0) > 1))


def _direct(task: PubTask, prepared: PreparedCircuit, base: np.ndarray, built: list) -> Any:
    """On qiskit's ``StatevectorEstimator`` (at precision 0): every layer's expectation
    values from one statevector evolved layer by layer per value row, instead of one
    simulation per observable."""
    if type(task.inner) is not StatevectorEstimator or not built:
        return None
    if prepared.circuit.layout is not None:
        return None

    def compute() -> list[tuple[np.ndarray, np.ndarray]]:
        shape = base.shape[:-1]
        out = [np.zeros((len(layer.labels),) + shape) for layer in built]
        paulis = [[Pauli(label) for label in layer.labels] for layer in built]
        for index in np.ndindex(shape):
            bound = prepared.circuit.assign_parameters(base[index])
            state = Statevector.from_label("0" * bound.num_qubits)
            done = 0
            for k, start in enumerate(layer.start for layer in built):
                segment = bound.copy_empty_like()
                for instruction in bound.data[done:start]:
                    if instruction.operation.name not in ("measure", "reset", "barrier"):
                        segment._append(instruction)
                state = state.evolve(segment)
                done = start
                for m, pauli in enumerate(paulis[k]):
                    out[k][(m,) + index] = float(np.real(state.expectation_value(pauli)))
        return [(values, np.zeros_like(values)) for values in out]

    return compute
