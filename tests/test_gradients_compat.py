"""Differential tests: every facade class against the qiskit-algorithms class of that name.

Estimators run on ``StatevectorEstimator`` (exact): results agree to 1e-8. Samplers run on
``StatevectorSampler(seed=...)``, which seeds every row afresh, so equal parameter points
give equal samples on both sides: finite differences and SPSA (same points) agree exactly;
parameter shift and lin_comb agree exactly on circuits that both sides evaluate at the same
points, and otherwise both are checked against exact derivatives on a quantised sampler.
"""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.primitives import StatevectorEstimator, StatevectorSampler
from qiskit.quantum_info import SparsePauliOp, Statevector

import qprim_grad.gradients as ours

theirs = pytest.importorskip("qiskit_algorithms.gradients")

ALL_GATES = ("rx", "ry", "rz", "rzz", "cx", "crx", "p", "u")
SIMPLE_GATES = ("rx", "ry", "rz", "rzz", "cx", "p")


def random_circuit(
    seed: int,
    num_qubits: int = 3,
    num_gates: int = 10,
    num_params: int = 4,
    gates: tuple[str, ...] = ALL_GATES,
    expressions: bool = True,
    measure: bool = False,
) -> QuantumCircuit:
    """Random parametrised circuit; parameters are shared between gates and, with
    ``expressions``, enter through sums, scalings and products."""
    rng = np.random.default_rng(seed)
    theta = ParameterVector("t", num_params)
    order = list(rng.permutation(num_params))  # every parameter appears at least once

    def angle():
        p = theta[int(order.pop() if order else rng.integers(num_params))]
        q = theta[int(rng.integers(num_params))]
        kind = int(rng.integers(5)) if expressions else 0
        return [p, 2.0 * p, p + q, 0.5 * p - 0.3, p * q][kind]

    qc = QuantumCircuit(num_qubits)
    for q in range(num_qubits):
        qc.h(q)
    for _ in range(num_gates):
        name = str(rng.choice(gates))
        a, b = (int(i) for i in rng.choice(num_qubits, 2, replace=False))
        if name in ("rx", "ry", "rz", "p"):
            getattr(qc, name)(angle(), a)
        elif name in ("rzz", "crx"):
            getattr(qc, name)(angle(), a, b)
        elif name == "cx":
            qc.cx(a, b)
        else:
            qc.u(angle(), angle(), angle(), a)
    for name, p in zip(("ry", "rx", "rz", "ry"), theta):  # make sure all parameters are used
        getattr(qc, name)(p, int(rng.integers(num_qubits)))
    if measure:
        qc.measure_all()
    return qc


def random_observable(seed: int, num_qubits: int = 3) -> SparsePauliOp:
    rng = np.random.default_rng(seed + 1000)
    labels = ["".join(rng.choice(list("IXYZ"), num_qubits)) for _ in range(3)]
    return SparsePauliOp(labels, rng.normal(size=3))


def random_values(circuit: QuantumCircuit, seed: int) -> np.ndarray:
    return np.random.default_rng(seed + 2000).uniform(-np.pi, np.pi, circuit.num_parameters)


ESTIMATOR_CASES = [
    ("ParamShiftEstimatorGradient", (), {}),
    ("FiniteDiffEstimatorGradient", (1e-5,), {}),
    ("FiniteDiffEstimatorGradient", (1e-5,), {"method": "forward"}),
    ("FiniteDiffEstimatorGradient", (1e-5,), {"method": "backward"}),
    ("SPSAEstimatorGradient", (1e-4, 3, 42), {}),
    ("LinCombEstimatorGradient", (), {}),
    ("LinCombEstimatorGradient", (None, theirs.DerivativeType.IMAG), {}),
    ("LinCombEstimatorGradient", (None, theirs.DerivativeType.COMPLEX), {}),
]


def _ids(cases):
    return [f"{name}-{args}-{kwargs}" for name, args, kwargs in cases]


def _ours_args(args):
    """Our DerivativeType is our own enum; theirs is accepted too, but use ours."""
    return tuple(ours.DerivativeType(a.value) if hasattr(a, "value") else a for a in args)


@pytest.mark.parametrize(("name", "args", "kwargs"), ESTIMATOR_CASES, ids=_ids(ESTIMATOR_CASES))
def test_estimator_gradients_equal_qiskit_algorithms(name, args, kwargs):
    circuits = [random_circuit(seed) for seed in range(4)]
    observables = [random_observable(seed) for seed in range(4)]
    values = [random_values(c, seed) for seed, c in enumerate(circuits)]
    # a subset / reordering of parameters for one circuit, all parameters for the others
    parameters = [None, list(circuits[1].parameters)[::-1][:2], None, None]
    mine = getattr(ours, name)(StatevectorEstimator(), *_ours_args(args), **kwargs)
    ref = getattr(theirs, name)(StatevectorEstimator(), *args, **kwargs)
    for params in (None, parameters):  # two runs: SPSA's generator state carries over
        got = mine.run(circuits, observables, values, params).result()
        want = ref.run(circuits, observables, values, params).result()
        assert isinstance(got, ours.EstimatorGradientResult)
        assert len(got.gradients) == len(want.gradients)
        for g, w in zip(got.gradients, want.gradients):
            assert isinstance(g, np.ndarray) and g.ndim == 1
            assert g.dtype == np.asarray(w).dtype
            np.testing.assert_allclose(g, w, atol=1e-8, rtol=0)
        assert got.precision == want.precision
        assert [list(m["parameters"]) for m in got.metadata] == [
            list(m["parameters"]) for m in want.metadata
        ]


def _dense(dist: dict[int, float], size: int) -> np.ndarray:
    out = np.zeros(size)
    for key, value in dist.items():
        out[key] += value
    return out


def _assert_sampler_equal(got, want, num_bits: int, atol: float) -> None:
    assert isinstance(got, ours.SamplerGradientResult)
    assert len(got.gradients) == len(want.gradients)
    for g_circuit, w_circuit in zip(got.gradients, want.gradients):
        assert len(g_circuit) == len(w_circuit)
        for g, w in zip(g_circuit, w_circuit):
            assert isinstance(g, dict)
            assert all(type(k) is int and type(v) is float for k, v in g.items())
            # every outcome they report, we report (we may add outcomes with zero derivative)
            assert set(w) <= set(g)
            np.testing.assert_allclose(
                _dense(g, 2**num_bits), _dense(w, 2**num_bits), atol=atol, rtol=0
            )


SAMPLER_SAME_POINTS = [
    ("FiniteDiffSamplerGradient", (1e-2,), {}),
    ("FiniteDiffSamplerGradient", (1e-2,), {"method": "forward"}),
    ("FiniteDiffSamplerGradient", (1e-2,), {"method": "backward"}),
    ("SPSASamplerGradient", (1e-2, 2, 7), {}),
]


@pytest.mark.parametrize(
    ("name", "args", "kwargs"), SAMPLER_SAME_POINTS, ids=_ids(SAMPLER_SAME_POINTS)
)
def test_sampler_gradients_at_same_points_equal_qiskit_algorithms(name, args, kwargs):
    circuits = [random_circuit(seed, measure=True) for seed in range(3)]
    values = [random_values(c, seed) for seed, c in enumerate(circuits)]
    mine = getattr(ours, name)(StatevectorSampler(seed=5), *args, **kwargs)
    ref = getattr(theirs, name)(StatevectorSampler(seed=5), *args, **kwargs)
    for params in (None, [None, list(circuits[1].parameters)[1:3], None]):
        got = mine.run(circuits, values, params, shots=500).result()
        want = ref.run(circuits, values, params, shots=500).result()
        _assert_sampler_equal(got, want, 3, atol=1e-9)
        assert got.shots == want.shots == 500


def test_param_shift_sampler_equals_qiskit_algorithms():
    # without crx/u both sides shift every gate argument by +-pi/2: the same points
    circuits = [
        random_circuit(seed, num_gates=8, gates=SIMPLE_GATES, measure=True) for seed in range(3)
    ]
    values = [random_values(c, seed) for seed, c in enumerate(circuits)]
    mine = ours.ParamShiftSamplerGradient(StatevectorSampler(seed=3))
    ref = theirs.ParamShiftSamplerGradient(StatevectorSampler(seed=3))
    got = mine.run(circuits, values).result()
    want = ref.run(circuits, values).result()
    _assert_sampler_equal(got, want, 3, atol=1e-9)
    assert got.shots == want.shots == 1024


class QuantizedSampler(StatevectorSampler):
    """A deterministic V2 sampler: each row's counts are the exact probabilities times
    ``shots``, rounded (largest remainder), so every frequency is within ``1/shots`` of
    the exact probability."""

    def _run_pub(self, pub):
        from qiskit.primitives.containers import BitArray, DataBin, SamplerPubResult
        from qiskit.primitives.statevector_sampler import (
            _preprocess_circuit,
            _samples_to_packed_array,
        )

        circuit, qargs, meas_info = _preprocess_circuit(pub.circuit)
        bound = pub.parameter_values.bind_all(circuit)
        arrays = {
            item.creg_name: np.zeros(bound.shape + (pub.shots, item.num_bytes), dtype=np.uint8)
            for item in meas_info
        }
        n = len(qargs)
        bits = ((np.arange(2**n)[:, None] >> np.arange(n)[::-1]) & 1).astype(np.uint8)
        for index, bound_circuit in np.ndenumerate(bound):
            probs = Statevector(bound_circuit).probabilities(qargs)
            counts = np.floor(probs * pub.shots).astype(int)
            order = np.argsort(-(probs * pub.shots - counts), kind="stable")
            counts[order[: pub.shots - counts.sum()]] += 1
            samples = np.repeat(bits, counts, axis=0)
            for item in meas_info:
                packed = _samples_to_packed_array(samples, item.num_bits, item.qreg_indices)
                arrays[item.creg_name][index] = packed
        meas = {
            item.creg_name: BitArray(arrays[item.creg_name], item.num_bits) for item in meas_info
        }
        return SamplerPubResult(DataBin(**meas, shape=pub.shape), metadata={"shots": pub.shots})


QUANTIZED_SHOTS = 2**14
# A derivative is a combination of <= ~25 frequencies with |weight| <= ~2 (shift-rule
# coefficients <= 1/2 times chain-rule factors <= ~pi); each frequency is within 1/shots.
QUANTIZED_TOL = 50 / QUANTIZED_SHOTS


@pytest.mark.parametrize("name", ["ParamShiftSamplerGradient", "LinCombSamplerGradient"])
def test_analytic_sampler_gradients_match_exact_derivatives(name):
    circuits = [random_circuit(seed, num_gates=6, measure=True) for seed in range(2)]
    values = [random_values(c, seed) for seed, c in enumerate(circuits)]
    for cls in (getattr(ours, name), getattr(theirs, name)):
        result = cls(QuantizedSampler(), shots=QUANTIZED_SHOTS).run(circuits, values).result()
        for circuit, value, gradient in zip(circuits, values, result.gradients):
            exact = exact_probability_gradient(circuit, value)
            got = np.array([_dense(g, 8) for g in gradient])
            np.testing.assert_allclose(
                got, exact, atol=QUANTIZED_TOL, rtol=0, err_msg=cls.__module__
            )


def exact_probability_gradient(circuit: QuantumCircuit, values, eps: float = 1e-5):
    """d p(x) / d theta_j by central differences of exact probabilities (error ~1e-10)."""
    bare = circuit.remove_final_measurements(inplace=False)
    out = []
    for j in range(len(values)):
        shift = np.zeros(len(values))
        shift[j] = eps
        plus = Statevector(bare.assign_parameters(values + shift)).probabilities()
        minus = Statevector(bare.assign_parameters(values - shift)).probabilities()
        out.append((plus - minus) / (2 * eps))
    return np.array(out)
