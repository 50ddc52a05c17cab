"""Methods that evaluate the user's circuit at displaced parameter values.

Parameter shift, finite differences and SPSA are all "coefficients x values at displaced
points": they differ only in which points and which coefficients.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from scipy import sparse

from ..circuits import (
    PreparedCircuit,
    parameter_map,
    prepare_circuit,
    prepared_values,
    slot_jacobian,
)
from ..rules import GATE_FREQUENCIES, ShiftRule, finite_difference_rule, rule_for_gate
from .base import Evaluation, GradientMethodError, Plan, PubTask

__all__ = ["ParamShift", "FiniteDiff", "SPSADirections", "displaced_points"]


def displaced_points(
    base: np.ndarray, columns: np.ndarray, rules: list[ShiftRule]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Apply ``rules[g]`` to column ``columns[g]`` of ``base`` (shape ``S + (P,)``).

    Returns the displaced values ``(K,) + S + (P,)`` (zero shifts excluded), and for the
    displaced rows and for the zero-shift terms the pair (rule index, coefficient).
    """
    rule_index, shift, coefficient = [], [], []
    zero_index, zero_coefficient = [], []
    for g, rule in enumerate(rules):
        for s, c in zip(rule.shifts, rule.coefficients):
            if s == 0.0:
                zero_index.append(g)
                zero_coefficient.append(c)
            else:
                rule_index.append(g)
                shift.append(s)
                coefficient.append(c)
    rule_arr = np.asarray(rule_index, dtype=int)
    values = np.empty((len(rule_arr),) + base.shape)
    values[...] = base
    rows = values.reshape(len(rule_arr), int(np.prod(base.shape[:-1])), base.shape[-1])
    rows[np.arange(len(rule_arr)), :, columns[rule_arr]] += np.asarray(shift)[:, None]
    return (
        values,
        rule_arr,
        np.asarray(coefficient),
        np.asarray(zero_index, dtype=int),
        np.asarray(zero_coefficient),
    )


def _term_matrix(index: np.ndarray, coefficient: np.ndarray, size: int) -> sparse.csr_array:
    return sparse.csr_array((coefficient, (np.arange(len(index)), index)), shape=(len(index), size))


@lru_cache(maxsize=256)
def _slot_rules(prepared: PreparedCircuit) -> list[ShiftRule]:
    rules = []
    for slot in prepared.slots:
        gate_rules = rule_for_gate(slot.gate)
        assert gate_rules is not None  # guaranteed by prepare_circuit
        rules.append(gate_rules[slot.argument])
    return rules


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
        rules = _slot_rules(prepared)
        values, rule_index, coefficient, _, _ = displaced_points(base, prepared.slot_columns, rules)
        slot_terms = _term_matrix(rule_index, coefficient, prepared.num_slots)
        jacobian = slot_jacobian(prepared, task.values)
        if sparse.issparse(jacobian):
            weights: Any = (slot_terms @ jacobian).tocsr()
        else:
            weights = np.einsum("kg,...gp->k...p", slot_terms.toarray(), jacobian)
        center = None
        if prepared.rewritten:
            center = Evaluation(prepared.circuit, base[None], np.zeros((1, len(task.parameters))))
        evaluations = [Evaluation(prepared.circuit, values, weights)] if len(values) else []
        return Plan(evaluations=evaluations, center=center, parameter_map=parameter_map(prepared))


def _check_epsilon(epsilon: float) -> float:
    epsilon = float(epsilon)
    if not np.isfinite(epsilon) or epsilon <= 0:
        raise GradientMethodError(f"epsilon must be a positive number, got {epsilon!r}")
    return epsilon


def _evaluation_circuit(task: PubTask, method: str) -> tuple[Any, Evaluation | None]:
    """The user's circuit, or an equivalent one without gates simulators mis-handle
    (:data:`~qprim_grad.circuits.REWRITTEN_GATES`), then also evaluated as the centre."""
    prepared = prepare_circuit(task.circuit, (), (), method=method)
    if not prepared.rewritten:
        return task.circuit, None
    center = Evaluation(prepared.circuit, task.values[None], np.zeros((1, task.num_parameters)))
    return prepared.circuit, center


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
        self.epsilon = _check_epsilon(epsilon)
        if scheme not in ("central", "forward", "backward"):
            raise GradientMethodError(
                f"unknown finite-difference scheme {scheme!r}; use 'central', 'forward' or "
                "'backward'"
            )
        self.scheme = scheme

    @property
    def options(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon, "scheme": self.scheme}

    def plan(self, task: PubTask) -> Plan:
        num = task.num_parameters
        rule = finite_difference_rule(self.scheme, self.epsilon)
        circuit, center = _evaluation_circuit(task, self.name)
        values, index, coefficient, zero_index, zero_coefficient = displaced_points(
            task.values, _diff_columns(task), [rule] * num
        )
        weights = _term_matrix(index, coefficient, num)
        center_weights = None
        if len(zero_index):
            center_weights = np.zeros((1, num))
            np.add.at(center_weights[0], zero_index, zero_coefficient)
        evaluations = [Evaluation(circuit, values, weights)] if num else []
        return Plan(evaluations=evaluations, center=center, center_weights=center_weights)


class SPSADirections:
    """Simultaneous-perturbation estimate: ``batch_size`` random +-1 directions, each
    evaluated at ``theta +- epsilon * delta``, averaged. Directions are drawn from a
    ``numpy.random.Generator`` seeded by ``seed`` (one draw per pub, in pub order).
    """

    name = "spsa"

    def __init__(self, epsilon: float = 1e-6, batch_size: int = 1, seed: int | None = None):
        self.epsilon = _check_epsilon(epsilon)
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
        circuit, center = _evaluation_circuit(task, self.name)
        evaluation = Evaluation(circuit, np.concatenate([plus, minus]), weights)
        return Plan(evaluations=[evaluation], center=center)
