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
from qiskit.circuit import QuantumCircuit, QuantumRegister

from ...circuits import (
    PreparedCircuit,
    _PreparationCache,
    prepare_circuit,
    prepared_values,
    slot_jacobian,
)
from ..base import Evaluation, GradientMethodError, PubTask
from ..lin_comb import _DECOMPOSITIONS, GENERATORS, LinComb
from .base import CircuitMetric, MetricPlan, SlotTensor
from .circuits import (
    map_circuits,
    observables_array,
    pauli_label,
    prefix,
    slot_generator,
    value_columns,
)

__all__ = ["LinCombMetric"]

_AUX = "qpg_aux"


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
    return prepare_circuit(
        task.circuit,
        task.parameters,
        GENERATORS.keys(),
        method=name,
        decompositions=_DECOMPOSITIONS,
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
        self._placement = LinComb(pass_manager=pass_manager, coupling_map=coupling_map)
        self._cache = _PreparationCache(size=64)

    # -- circuits ---------------------------------------------------------------------------
    def _letters(self) -> tuple[str, ...]:
        return {"complex": ("X", "Y"), "real": ("X",), "imag": ("Y",)}[self.derivative_type]

    def _build(self, prepared: PreparedCircuit) -> list[_Circuit]:
        circuit = prepared.circuit
        gens = [slot_generator(prepared, g) for g in range(prepared.num_slots)]
        active = [g for g, (c, _, _) in enumerate(gens) if c != 0.0]
        idle = None
        if circuit.layout is not None:
            idle = self._placement._idle_qubits(circuit, frozenset())
        out: list[_Circuit] = []
        for i, a in enumerate(active):
            for b in active[i + 1 :]:
                aux = None
                if idle is not None:
                    aux = self._placement._closest(idle, list(gens[a][1] + gens[b][1]))
                test, aux_index = self._hadamard_test(prepared, a, b, gens, aux)
                labels = tuple(
                    pauli_label(test.num_qubits, {aux_index: letter}) for letter in self._letters()
                )
                out.append(_Circuit("pair", a, b, test, labels))
        if self.phase_fix and self.derivative_type != "imag":
            for a in active:
                _, qubits, letters = gens[a]
                stop = prepared.slots[a].instruction + 1
                label = pauli_label(circuit.num_qubits, dict(zip(qubits, letters)))
                out.append(_Circuit("mean", a, a, prefix(circuit, stop), (label,)))
        mapped = map_circuits(self.pass_manager, [entry.circuit for entry in out])
        return [_Circuit(e.kind, e.a, e.b, c, e.labels) for e, c in zip(out, mapped, strict=True)]

    def _inputs(self, prepared: PreparedCircuit, ndim: int) -> list[tuple[_Circuit, Any, Any]]:
        """Each circuit with its observables (``ndim`` trailing axes) and value columns."""
        out = []
        for entry in self._build(prepared):
            observables = observables_array(entry.labels, ndim)
            if self.pass_manager is not None and entry.circuit.layout is not None:
                observables = observables.apply_layout(entry.circuit.layout)
            out.append((entry, observables, value_columns(prepared.circuit, entry.circuit)))
        return out

    @staticmethod
    def _hadamard_test(
        prepared: PreparedCircuit, a: int, b: int, gens: list, aux_index: int | None
    ) -> tuple[QuantumCircuit, int]:
        circuit = prepared.circuit
        test = circuit.copy_empty_like()
        if aux_index is None:
            register = QuantumRegister(1, _AUX)
            test.add_register(register)
            aux = register[0]
            aux_index = test.num_qubits - 1
        else:
            aux = test.qubits[aux_index]
        test.h(aux)
        stop_a, stop_b = prepared.slots[a].instruction, prepared.slots[b].instruction
        controlled = {"X": test.cx, "Y": test.cy, "Z": test.cz}
        for index, instruction in enumerate(circuit.data[: stop_b + 1]):
            if instruction.operation.name in ("measure", "reset"):
                continue
            test._append(instruction)
            if index == stop_a:  # P_a on the |0> branch
                test.x(aux)
                for qubit, letter in zip(gens[a][1], gens[a][2]):
                    controlled[letter](aux, test.qubits[qubit])
                test.x(aux)
            if index == stop_b:  # P_b on the |1> branch
                for qubit, letter in zip(gens[b][1], gens[b][2]):
                    controlled[letter](aux, test.qubits[qubit])
        return test, aux_index

    # -- plan -------------------------------------------------------------------------------
    def plan(self, task: PubTask) -> MetricPlan:
        prepared = prepare_for_metric(task, self.name)
        base = prepared_values(prepared, task.values)  # V + (P_eval,)
        ndim = base.ndim - 1
        key = (id(task.circuit), task.parameters, self.derivative_type, self.phase_fix, ndim)
        built = self._cache.get(key, task.circuit, lambda: self._inputs(prepared, ndim))
        circuits = [entry for entry, _, _ in built]
        evaluations = [
            Evaluation(entry.circuit, base[..., columns][None], None, observables)
            for entry, observables, columns in built
        ]
        gens = np.array([slot_generator(prepared, g)[0] for g in range(prepared.num_slots)])
        shape = base.shape[:-1]
        letters = self._letters()

        def combine(results: list[tuple[np.ndarray, np.ndarray]]) -> SlotTensor:
            G = prepared.num_slots
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

        return MetricPlan(
            evaluations=evaluations,
            combine=combine,
            jacobian=slot_jacobian(prepared, task.values),
            center=self._center(task, prepared, base),
            metadata={"metric_circuits": len(circuits)},
        )

    def _center(self, task: PubTask, prepared: PreparedCircuit, base: np.ndarray):
        """The centre mapped by ``pass_manager`` (virtual circuits), as ``lin_comb`` does."""
        return self._placement._center(task, prepared, base) if self.pass_manager else None
