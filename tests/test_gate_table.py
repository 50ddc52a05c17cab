"""The gate table, the shift and finite-difference rules, the shared options and the bounded
cache."""

from __future__ import annotations

from enum import Enum
from typing import Any

import numpy as np
import pytest
from qiskit import QuantumCircuit

from qprim_grad import GradientMethodError
from qprim_grad.cache import BoundedCache
from qprim_grad.circuit.gates import GATES, GENERATORS, REWRITTEN_GATES, GateInfo
from qprim_grad.circuit.options import (
    DerivativeType,
    check_epsilon,
    check_scheme,
    derivative_type_name,
)
from qprim_grad.rules import GATE_FREQUENCIES, ShiftRule, finite_difference_rule, rule_for_gate


def _gate(name: str, values) -> Any:
    from qiskit.circuit.library import get_standard_gate_name_mapping

    return type(get_standard_gate_name_mapping()[name])(*values)


def _observed_frequencies(name: str, argument: int, seed: int) -> set[int]:
    """The integer frequencies (< 8) in ``<psi|U^dag O U|psi>`` as argument ``argument`` of
    gate ``name`` goes round ``[0, 2 pi)``: random state, observable and other arguments."""
    from qiskit.quantum_info import Operator, random_hermitian, random_statevector

    rng = np.random.default_rng(seed)
    num_args = len(GATES[name].frequencies or ())
    values = rng.uniform(-np.pi, np.pi, num_args)
    width = _gate(name, values).num_qubits
    if width == 0:  # a global phase: no expectation value depends on it
        return set()
    psi = random_statevector(2**width, seed=seed).data
    observable = random_hermitian(2**width, seed=seed).data
    grid = np.arange(16) * 2 * np.pi / 16
    samples = []
    for t in grid:
        values[argument] = t
        state = Operator(_gate(name, values)).data @ psi
        samples.append(np.real(np.vdot(state, observable @ state)))
    spectrum = np.abs(np.fft.rfft(samples)) / len(grid)
    return {k for k in range(1, 8) if spectrum[k] > 1e-9}


def test_views_are_derived_from_the_table():
    assert all(isinstance(row, GateInfo) and row.name == name for name, row in GATES.items())
    # the views hold exactly the rows that carry the field, each as the row has it
    assert set(GATE_FREQUENCIES) == {"rx", "ry", "rz", "p", "u1", "rxx", "ryy", "rzz", "rzx"} | {
        "u",
        "u3",
        "u2",
        "r",
        "global_phase",
    }
    assert all(GATE_FREQUENCIES[name] is GATES[name].frequencies for name in GATE_FREQUENCIES)
    assert set(GENERATORS) == {"rx", "ry", "rz", "p", "u1", "rxx", "ryy", "rzz", "rzx"} | {
        "global_phase"
    }
    assert REWRITTEN_GATES == {"crx", "cry", "crz", "cp", "mcphase", "cu1", "cu3"}


@pytest.mark.parametrize("name", sorted(GATE_FREQUENCIES))
def test_frequencies_are_those_of_the_gate(name):
    """Every argument's frequencies are the ones its expectation values contain (Fourier
    analysis of the gate's matrix), and the eigenvalue differences of its generator."""
    from qiskit.quantum_info import SparsePauliOp

    row = GATES[name]
    assert row.frequencies is not None
    for argument, frequencies in enumerate(row.frequencies):
        seen = set().union(*(_observed_frequencies(name, argument, seed) for seed in (1, 2)))
        assert seen == {round(f) for f in frequencies}, (name, argument, seen)
        if row.generators is None:
            continue
        terms = row.generators[argument]
        if not terms:  # the identity: no frequency
            assert frequencies == ()
            continue
        generator = SparsePauliOp.from_list([(label, c) for c, label in terms]).to_matrix()
        eigenvalues = np.linalg.eigvalsh(generator)
        differences = {
            round(float(d), 9)
            for d in np.abs(np.subtract.outer(eigenvalues, eigenvalues)).ravel()
            if d > 1e-9
        }
        assert differences == {round(f, 9) for f in frequencies}, name


@pytest.mark.parametrize("name", sorted(n for n in GENERATORS if n != "global_phase"))
def test_generators_generate_the_gate(name):
    """``U(theta) = exp(-i theta G)`` up to a global phase, ``G`` the row's generator."""
    from qiskit.quantum_info import Operator, SparsePauliOp
    from scipy.linalg import expm

    ((terms,),) = (GATES[name].generators,)
    generator = SparsePauliOp.from_list([(label, c) for c, label in terms]).to_matrix()
    theta = 0.83
    got = Operator(_gate(name, [theta])).data
    want = expm(-1j * theta * generator)
    phase = np.vdot(want.ravel(), got.ravel()) / abs(np.vdot(want.ravel(), got.ravel()))
    np.testing.assert_allclose(got, phase * want, atol=1e-12)


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

    class Kind(Enum):  # an enum with the same values is not a derivative type
        REAL = "real"

    with pytest.raises(GradientMethodError, match="unknown derivative_type"):
        derivative_type_name(Kind.REAL)


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


def test_finite_difference_rules_for_each_scheme():
    assert finite_difference_rule("central", 1e-3) == finite_difference_rule("central", 0.001)
    assert finite_difference_rule("central", 0.1) == ShiftRule((0.1, -0.1), (5.0, -5.0))
    assert finite_difference_rule("forward", 0.1) == ShiftRule((0.1, 0.0), (10.0, -10.0))
    assert finite_difference_rule("backward", 0.1) == ShiftRule((0.0, -0.1), (10.0, -10.0))
