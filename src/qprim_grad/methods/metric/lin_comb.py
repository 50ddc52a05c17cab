"""The QGT by Hadamard tests with one auxiliary qubit (``metric="lin_comb"``).

For slots ``a < b`` (gate arguments in circuit order) with generators ``c_a P_a`` and
``c_b P_b``, the circuit starts the auxiliary qubit in ``|+>``, applies ``P_a`` controlled on
``|0>`` right after gate ``a`` and ``P_b`` controlled on ``|1>`` right after gate ``b``, and
stops there. Then ``<X_aux> = Re`` and ``<Y_aux> = Im`` of ``<P_a V^dag P_b V>``, so
``<d_a psi|d_b psi> = c_a c_b (<X_aux> + i <Y_aux>)``; the diagonal is ``c_a^2`` exactly. The
phase fix's means ``g_a = c_a <P_a>`` come from the circuit prefix ending at gate ``a`` (no
auxiliary qubit), in the same job. Only the upper triangle is evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from qiskit.circuit import QuantumCircuit

from ...cache import BoundedCache
from ...circuit.chain_rule import PreparedCircuit, prepared_values, slot_jacobian
from ...errors import GradientMethodError
from ...pipeline.types import PubTask
from ..hadamard import add_aux_qubit, controlled_paulis, find_coupling_map
from ..lin_comb import LinComb, prepare_for_lin_comb
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

__all__ = ["LinCombMetric"]


@dataclass(frozen=True)
class _Circuit:
    """One circuit of the plan: ``pair`` (a, b) Hadamard test or ``mean`` prefix (a, a)."""

    kind: str
    a: int
    b: int
    circuit: QuantumCircuit
    labels: tuple[str, ...]


def prepare_for_metric(task: PubTask, name: str) -> PreparedCircuit:
    """The circuit with one parameter per differentiated gate argument (cached)."""
    if task.kind != "estimator":
        raise GradientMethodError(f"metric {name!r} runs on estimator pubs only")
    return prepare_for_lin_comb(task, name)


def _hadamard_test(
    prepared: PreparedCircuit, a: int, b: int, gens: list[Generator], aux_index: int | None
) -> tuple[QuantumCircuit, int]:
    """The circuit up to slot ``b``'s gate with ``P_a`` controlled on ``|0>`` after gate
    ``a`` and ``P_b`` controlled on ``|1>`` after gate ``b``; and the auxiliary qubit."""
    circuit = prepared.circuit
    test = circuit.copy_empty_like()
    aux, aux_index = add_aux_qubit(test, aux_index)
    test.h(aux)
    stop_a, stop_b = prepared.slots[a].instruction, prepared.slots[b].instruction
    for index, instruction in enumerate(circuit.data[: stop_b + 1]):
        if instruction.operation.name in ("measure", "reset"):
            continue
        test._append(instruction)
        if index == stop_a:  # P_a on the |0> branch
            test.x(aux)
            _controlled_generator(test, aux, gens[a])
            test.x(aux)
        if index == stop_b:  # P_b on the |1> branch
            _controlled_generator(test, aux, gens[b])
    return test, aux_index


def _controlled_generator(test: QuantumCircuit, aux: Any, generator: Generator) -> None:
    _, qubits, letters = generator
    controlled_paulis(test, aux, [test.qubits[q] for q in qubits], letters)


def _combine(
    circuits: list[_Circuit],
    results: list[tuple[np.ndarray, np.ndarray]],
    gens: np.ndarray,
    shape: tuple[int, ...],
    letters: tuple[str, ...],
) -> SlotTensor:
    """The slot tensor from the circuits' ``(evs, variances)``: ``X_aux`` gives the real
    part of an overlap, ``Y_aux`` its imaginary part; the prefixes give the means."""
    G = len(gens)
    overlaps = np.zeros(shape + (G, G), dtype=complex)
    var_re = np.zeros(shape + (G, G))
    var_im = np.zeros(shape + (G, G))
    means = np.zeros(shape + (G,))
    var_means = np.zeros(shape + (G,))
    for entry, (evs, var) in zip(circuits, results, strict=True):
        a, b = entry.a, entry.b
        scale = gens[a] * gens[b]
        if entry.kind == "mean":
            means[..., a] = gens[a] * evs[0]
            var_means[..., a] = gens[a] ** 2 * var[0]
            continue
        for k, letter in enumerate(letters):
            if letter == "X":
                overlaps[..., a, b] += scale * evs[k]
                var_re[..., a, b] = scale**2 * var[k]
            else:
                overlaps[..., a, b] += 1j * scale * evs[k]
                var_im[..., a, b] = scale**2 * var[k]
    overlaps = overlaps + np.conj(np.swapaxes(overlaps, -1, -2))
    overlaps = overlaps + np.diag(gens**2)
    return SlotTensor(overlaps, means, var_re, var_im, var_means)


def _checked_coupling_map(coupling_map: Any) -> Any:
    """``None``, or something a coupling map comes from (a ``CouplingMap``, a list of qubit
    pairs, a ``Target``, a backend or a pass manager), else a :class:`GradientMethodError`."""
    if coupling_map is None or find_coupling_map(coupling_map) is not None:
        return coupling_map
    if isinstance(coupling_map, (list, tuple)):
        from qiskit.transpiler import CouplingMap

        try:
            return CouplingMap([[int(a), int(b)] for a, b in coupling_map])
        except (TypeError, ValueError):
            pass
    raise GradientMethodError(
        f"metric 'lin_comb': coupling_map must be a CouplingMap, a list of qubit pairs "
        f"[[0, 1], ...], a Target, a backend or a pass manager, got {coupling_map!r}"
    )


class LinCombMetric(CircuitMetric):
    """QGT from Hadamard tests; works on any estimator (and on hardware via ``pass_manager``).

    Args:
        derivative_type: ``"complex"`` (default), ``"real"`` or ``"imag"`` part of the QGT.
        phase_fix: subtract ``<d_i psi|psi><psi|d_j psi>`` (default ``True``).
        pass_manager: maps every circuit it sends (centre included) onto a device.
        coupling_map: where to look for an idle auxiliary qubit on ISA circuits.
    """

    name = "lin_comb"

    def __init__(
        self,
        derivative_type: Any = "complex",
        phase_fix: bool = True,
        pass_manager: Any = None,
        coupling_map: Any = None,
    ) -> None:
        super().__init__(derivative_type, phase_fix, pass_manager)
        coupling_map = _checked_coupling_map(coupling_map)
        # the gradient method places the auxiliary qubit and maps the centre
        self._lin_comb = LinComb(pass_manager=pass_manager, coupling_map=coupling_map)
        self._cache: BoundedCache[list] = BoundedCache(size=64)

    # -- circuits ---------------------------------------------------------------------------
    def _letters(self) -> tuple[str, ...]:
        return {"complex": ("X", "Y"), "real": ("X",), "imag": ("Y",)}[self.derivative_type]

    def _pair_circuits(
        self, prepared: PreparedCircuit, gens: list[Generator], active: list[int]
    ) -> list[_Circuit]:
        """A Hadamard test for every pair of active slots ``a < b``."""
        circuit = prepared.circuit
        placement = self._lin_comb.placement
        idle = None
        if circuit.layout is not None:
            idle = placement.idle_qubits(circuit, frozenset())
        out: list[_Circuit] = []
        for i, a in enumerate(active):
            for b in active[i + 1 :]:
                aux = None
                if idle is not None:
                    aux = placement.closest(idle, list(gens[a][1] + gens[b][1]))
                test, aux_index = _hadamard_test(prepared, a, b, gens, aux)
                labels = tuple(
                    pauli_label(test.num_qubits, {aux_index: letter}) for letter in self._letters()
                )
                out.append(_Circuit("pair", a, b, test, labels))
        return out

    @staticmethod
    def _mean_circuits(
        prepared: PreparedCircuit, gens: list[Generator], active: list[int]
    ) -> list[_Circuit]:
        """For every active slot ``a``: the prefix ending at its gate, measuring ``P_a``."""
        circuit = prepared.circuit
        out = []
        for a in active:
            _, qubits, letters = gens[a]
            stop = prepared.slots[a].instruction + 1
            label = pauli_label(circuit.num_qubits, dict(zip(qubits, letters)))
            out.append(_Circuit("mean", a, a, prefix(circuit, stop), (label,)))
        return out

    def _build(self, prepared: PreparedCircuit) -> list[_Circuit]:
        gens = [slot_generator(prepared, g) for g in range(prepared.num_slots)]
        active = [g for g, (c, _, _) in enumerate(gens) if c != 0.0]
        out = self._pair_circuits(prepared, gens, active)
        if self.phase_fix and self.derivative_type != "imag":
            out += self._mean_circuits(prepared, gens, active)
        mapped = map_circuits(self.pass_manager, [entry.circuit for entry in out])
        return [_Circuit(e.kind, e.a, e.b, c, e.labels) for e, c in zip(out, mapped, strict=True)]

    def _inputs(self, prepared: PreparedCircuit, ndim: int) -> list[tuple[_Circuit, Any, Any]]:
        """Each circuit with its observables (``ndim`` trailing axes) and value columns."""
        return evaluation_inputs(self.pass_manager, prepared.circuit, self._build(prepared), ndim)

    # -- plan -------------------------------------------------------------------------------
    def plan(self, task: PubTask) -> MetricPlan:
        prepared = prepare_for_metric(task, self.name)
        base = prepared_values(prepared, task.values)  # V + (P_eval,)
        ndim = base.ndim - 1
        key = (id(task.circuit), task.parameters, self.derivative_type, self.phase_fix, ndim)
        built = self._cache.get(key, task.circuit, lambda: self._inputs(prepared, ndim))
        circuits = [entry for entry, _, _ in built]
        gens = np.array([slot_generator(prepared, g)[0] for g in range(prepared.num_slots)])
        shape, letters = base.shape[:-1], self._letters()

        def combine(results: list[tuple[np.ndarray, np.ndarray]]) -> SlotTensor:
            return _combine(circuits, results, gens, shape, letters)

        return MetricPlan(
            evaluations=evaluations_of(built, base),
            combine=combine,
            jacobian=slot_jacobian(prepared, task.values),
            center=self._center(task, prepared, base),
            metadata={"metric_circuits": len(circuits)},
        )

    def _center(self, task: PubTask, prepared: PreparedCircuit, base: np.ndarray):
        """The centre mapped by ``pass_manager`` (virtual circuits), as ``lin_comb`` does."""
        if not self.pass_manager:
            return None
        return self._lin_comb.center_evaluation(task, prepared, base)
