"""Methods that evaluate the user's circuit at displaced parameter values.

Parameter shift, finite differences and SPSA are all "coefficients x values at displaced
points": they differ only in which points and which coefficients.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any

import numpy as np
from scipy import sparse

from ..circuit.chain_rule import (
    PreparedCircuit,
    affine_jacobian,
    prepared_values,
    slot_curvature,
    slot_jacobian,
)
from ..circuit.options import check_epsilon, check_scheme
from ..circuit.prepare import prepare_circuit
from ..errors import GradientMethodError
from ..pipeline.types import ArgumentMap, Evaluation, Plan, PubTask
from ..rules import GATE_FREQUENCIES, ShiftRule, finite_difference_rule, rule_for_gate

__all__ = ["ParamShift", "FiniteDiff", "SPSADirections", "ShiftTerms", "argument_map"]


@dataclass(frozen=True)
class ShiftTerms:
    """The terms of shift rules applied to columns: each displaced row's rule index, shift
    and coefficient; terms with a zero shift (the centre) kept apart."""

    index: np.ndarray
    shift: np.ndarray
    coefficient: np.ndarray
    zero_index: np.ndarray
    zero_coefficient: np.ndarray

    @classmethod
    def of(cls, rules: list[ShiftRule]) -> ShiftTerms:
        """Terms of ``rules[g]`` for every ``g``."""
        index = np.repeat(np.arange(len(rules)), [rule.num_terms for rule in rules])
        shift = np.array([s for rule in rules for s in rule.shifts], dtype=float)
        coefficient = np.array([c for rule in rules for c in rule.coefficients], dtype=float)
        return cls._split(index, shift, coefficient)

    @classmethod
    def uniform(cls, rule: ShiftRule, count: int) -> ShiftTerms:
        """Terms of the same ``rule`` on ``count`` columns."""
        index = np.repeat(np.arange(count), rule.num_terms)
        shift = np.tile(np.asarray(rule.shifts, dtype=float), count)
        coefficient = np.tile(np.asarray(rule.coefficients, dtype=float), count)
        return cls._split(index, shift, coefficient)

    @classmethod
    def _split(cls, index: np.ndarray, shift: np.ndarray, coefficient: np.ndarray) -> ShiftTerms:
        zero = shift == 0.0
        return cls(index[~zero], shift[~zero], coefficient[~zero], index[zero], coefficient[zero])

    def displace(self, base: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """``base`` (shape ``S + (P,)``) displaced row by row: ``(K,) + S + (P,)``."""
        count = len(self.index)
        values = np.empty((count,) + base.shape)
        values[...] = base
        rows = values.reshape(count, int(np.prod(base.shape[:-1])), base.shape[-1])
        rows[np.arange(count), :, columns[self.index]] += self.shift[:, None]
        return values

    def matrix(self, size: int) -> sparse.csr_array:
        """Sparse ``(K, size)`` coefficients of the displaced rows."""
        rows = np.arange(len(self.index))
        return sparse.csr_array((self.coefficient, (rows, self.index)), shape=(len(rows), size))


@lru_cache(maxsize=256)
def _slot_terms(prepared: PreparedCircuit) -> tuple[ShiftTerms, sparse.csr_array]:
    """A prepared circuit's shift terms and their ``(K, G)`` coefficient matrix (fixed per
    circuit and differentiated parameters, so computed once)."""
    rules = []
    for slot in prepared.slots:
        gate_rules = rule_for_gate(slot.gate)
        assert gate_rules is not None  # guaranteed by prepare_circuit
        rules.append(gate_rules[slot.argument])
    terms = ShiftTerms.of(rules)
    return terms, terms.matrix(prepared.num_slots)


@lru_cache(maxsize=256)
def _affine_weights(prepared: PreparedCircuit) -> sparse.csr_array:
    """``(K, P)`` weights when the chain rule is affine (also fixed per circuit)."""
    return (_slot_terms(prepared)[1] @ affine_jacobian(prepared)).tocsr()


class ParamShift:
    """Exact parameter-shift rules (shift rules per gate argument, chain rule for
    expressions and shared parameters). Only parameter values move; circuits whose
    differentiated arguments are not bare, unique parameters are evaluated on a copy with
    the same gates in which every such argument is its own parameter.
    """

    name = "param_shift"

    @property
    def options(self) -> dict[str, Any]:
        return {}

    def plan(self, task: PubTask) -> Plan:
        prepared = prepare_circuit(
            task.circuit, task.parameters, GATE_FREQUENCIES.keys(), method=self.name
        )
        base = prepared_values(prepared, task.values)
        terms, slot_matrix = _slot_terms(prepared)
        values = terms.displace(base, prepared.slot_columns)
        jacobian = None
        if prepared.affine is not None:
            weights: Any = _affine_weights(prepared)
        else:
            jacobian = slot_jacobian(prepared, task.values)  # S + (G, P), per row
            weights = np.einsum("kg,...gp->k...p", slot_matrix.toarray(), jacobian)
        names = prepared.parameter_names
        center = None
        if prepared.rewritten:
            center = Evaluation(prepared.circuit, base[None], parameter_names=names)
        evaluations = []
        if len(values):
            evaluations = [Evaluation(prepared.circuit, values, weights, parameter_names=names)]
        return Plan(
            evaluations=evaluations,
            center=center,
            arguments=argument_map(prepared, task.values, jacobian),
        )


def argument_map(
    prepared: PreparedCircuit, values: np.ndarray, jacobian: Any = None
) -> ArgumentMap | None:
    """How the slots of a rewritten circuit depend on the user's ``values`` (``None`` for a
    circuit that carries the user's parameters): the constant sparse Jacobian for affine
    arguments, else the Jacobian at ``values`` (``jacobian``, if already computed) and the
    curvature, computed when asked for."""
    if not prepared.rewritten:
        return None
    parameters = tuple(slot.parameter for slot in prepared.slots)
    if prepared.affine is not None:
        return ArgumentMap(parameters, affine_jacobian(prepared))
    if jacobian is None:
        jacobian = slot_jacobian(prepared, values)
    return ArgumentMap(parameters, jacobian, partial(slot_curvature, prepared, values))


def evaluation_circuit(
    task: PubTask, method: str
) -> tuple[Any, Evaluation | None, tuple[str, ...]]:
    """The user's circuit, or an equivalent one without gates simulators mis-handle
    (:data:`~qprim_grad.circuit.gates.REWRITTEN_GATES`), then also evaluated as the centre; and
    its parameter names (kept with the cached preparation, not rebuilt per run)."""
    prepared = prepare_circuit(task.circuit, (), (), method=method)
    names = prepared.parameter_names
    if not prepared.rewritten:
        return task.circuit, None, names
    center = Evaluation(prepared.circuit, task.values[None], parameter_names=names)
    return prepared.circuit, center, names


def _diff_columns(task: PubTask) -> np.ndarray:
    position = {p: i for i, p in enumerate(task.circuit.parameters)}
    return np.array([position[p] for p in task.parameters], dtype=int)


class FiniteDiff:
    """First-order finite differences with step ``epsilon`` (central, forward, backward)."""

    name = "finite_diff"

    def __init__(self, epsilon: float = 1e-6, scheme: str = "central", **aliases: Any) -> None:
        scheme = aliases.pop("method", scheme)
        if aliases:
            raise GradientMethodError(f"unknown finite_diff options: {sorted(aliases)}")
        self.epsilon = check_epsilon(epsilon, "finite_diff")
        self.scheme = check_scheme(scheme)

    @property
    def options(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon, "scheme": self.scheme}

    def plan(self, task: PubTask) -> Plan:
        num = task.num_parameters
        rule = finite_difference_rule(self.scheme, self.epsilon)
        circuit, center, names = evaluation_circuit(task, self.name)
        terms = ShiftTerms.uniform(rule, num)
        values = terms.displace(task.values, _diff_columns(task))
        weights = terms.matrix(num)
        center_weights = None
        if len(terms.zero_index):
            center_weights = np.zeros((1, num))
            np.add.at(center_weights[0], terms.zero_index, terms.zero_coefficient)
        evaluations = [Evaluation(circuit, values, weights, parameter_names=names)] if num else []
        return Plan(evaluations=evaluations, center=center, center_weights=center_weights)


class SPSADirections:
    """Simultaneous-perturbation estimate: ``batch_size`` random +-1 directions, each
    evaluated at ``theta +- epsilon * delta``, averaged. Directions are drawn from a
    ``numpy.random.Generator`` seeded by ``seed`` (one draw per pub, in pub order).

    Successive runs continue that one stream, as qiskit-algorithms' SPSA gradients do (the
    seed-compatible facade returns their values run after run), so the same seed gives the
    same sequence of runs. Each draw is atomic (numpy serialises a generator's draws), so
    runs from several threads are safe; their interleaving decides which draws each gets.
    """

    name = "spsa"

    def __init__(self, epsilon: float = 1e-6, batch_size: int = 1, seed: int | None = None):
        self.epsilon = check_epsilon(epsilon, "spsa")
        if int(batch_size) != batch_size or batch_size < 1:
            raise GradientMethodError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = int(batch_size)
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    @property
    def options(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon, "batch_size": self.batch_size, "seed": self.seed}

    def plan(self, task: PubTask) -> Plan:
        values = task.values
        if task.num_parameters == 0:
            return Plan()
        # Every circuit parameter is drawn (as qiskit-algorithms does), so equal seeds give
        # equal directions whichever parameters are differentiated.
        draws = self._rng.integers(0, 2, size=(self.batch_size,) + values.shape)
        directions = (-1.0) ** draws
        plus = values[None] + self.epsilon * directions
        minus = values[None] - self.epsilon * directions
        chosen = directions[..., _diff_columns(task)] / (2 * self.epsilon * self.batch_size)
        weights = np.concatenate([chosen, -chosen])
        circuit, center, names = evaluation_circuit(task, self.name)
        points = np.concatenate([plus, minus])
        evaluation = Evaluation(circuit, points, weights, parameter_names=names)
        return Plan(evaluations=[evaluation], center=center)
