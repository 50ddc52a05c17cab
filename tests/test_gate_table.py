"""The gate table, the shared options and the bounded cache (issue 12)."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit

from qprim_grad import GradientMethodError
from qprim_grad.cache import BoundedCache
from qprim_grad.circuits import REWRITTEN_GATES
from qprim_grad.gates import GATES, GateInfo
from qprim_grad.methods.lin_comb import GENERATORS
from qprim_grad.options import (
    DerivativeType,
    check_epsilon,
    check_scheme,
    derivative_type_name,
)
from qprim_grad.rules import GATE_FREQUENCIES, finite_difference_rule, rule_for_gate


def test_views_are_derived_from_the_table():
    assert all(isinstance(row, GateInfo) and row.name == name for name, row in GATES.items())
    assert GATE_FREQUENCIES == {n: r.frequencies for n, r in GATES.items() if r.frequencies}
    assert GENERATORS == {n: r.generators for n, r in GATES.items() if r.generators}
    assert REWRITTEN_GATES == {n for n, r in GATES.items() if r.rewritten}
    for name, row in GATES.items():
        if row.generators is not None:  # one generator per argument where both are known
            assert row.frequencies is not None
            assert len(row.generators) == len(row.frequencies), name


def test_decomposition_of_u_is_exact_up_to_nothing():
    from qiskit.quantum_info import Operator

    circuit = QuantumCircuit(1)
    circuit.u(0.3, -0.7, 1.1, 0)
    decomposed = GATES["u"].decomposition(circuit.data[0])
    np.testing.assert_allclose(Operator(decomposed).data, Operator(circuit).data, atol=1e-12)


def test_every_frequency_row_gives_a_rule_per_argument():
    for name, frequencies in GATE_FREQUENCIES.items():
        rules = rule_for_gate(name)
        assert rules is not None and len(rules) == len(frequencies)


def test_options_are_validated_in_one_place():
    assert check_scheme("forward") == "forward"
    with pytest.raises(GradientMethodError, match="finite-difference scheme"):
        check_scheme("sideways")
    with pytest.raises(ValueError, match="finite-difference scheme"):
        finite_difference_rule("sideways", 0.1)
    assert check_epsilon(0.5) == 0.5
    with pytest.raises(GradientMethodError, match="spsa: epsilon must be a positive number"):
        check_epsilon(-1, "spsa")
    assert derivative_type_name(DerivativeType.IMAG) == "imag"
    assert derivative_type_name("COMPLEX") == "complex"
    with pytest.raises(GradientMethodError, match="unknown derivative_type 'both'"):
        derivative_type_name("both")


def test_derivative_type_matches_qiskit_algorithms():
    theirs = pytest.importorskip("qiskit_algorithms.gradients").DerivativeType
    for member in DerivativeType:
        assert DerivativeType(theirs[member.name]) is member
        assert member == theirs[member.name] and hash(member) == hash(theirs[member.name])
        assert derivative_type_name(theirs[member.name]) == member.value


def test_bounded_cache_by_value_alone():
    cache: BoundedCache[int] = BoundedCache(size=2)
    builds: list[int] = []
    for key in (1, 2, 1, 3, 1, 2):
        cache.get(key, None, lambda key=key: builds.append(key) or key)
    assert builds == [1, 2, 3, 2]  # 1 stays (recently used), 2 was evicted by 3
    assert len(cache) == 2
    cache.clear()
    assert len(cache) == 0


def test_finite_difference_rule_is_the_same_rule_for_the_same_step():
    assert finite_difference_rule("central", 1e-3) is finite_difference_rule("central", 0.001)
    assert finite_difference_rule("forward", 0.1).shifts == (0.1, 0.0)
