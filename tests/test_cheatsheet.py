"""docs/cheatsheet.rst: every PennyLane and qiskit-algorithms name it promises is on the page,
next to a snippet that the docs test runs (``test_docs_examples``)."""

from __future__ import annotations

import re
from pathlib import Path

import qprim_grad
import qprim_grad.optimizers

PAGE = Path(__file__).resolve().parents[1] / "docs" / "cheatsheet.rst"

PENNYLANE = [
    "qml.gradients.param_shift",
    "qml.grad",
    "qml.metric_tensor",
    "qml.QNGOptimizer",
    "qml.SPSAOptimizer",
]
QISKIT_ALGORITHMS = [
    "ParamShiftEstimatorGradient",
    "FiniteDiffEstimatorGradient",
    "ParamShiftSamplerGradient",
    "LinCombQGT",
    "QFI",
    "optimizers.SPSA",
    "optimizers.QNSPSA",
    "algorithm_globals.random_seed",
]
#: the qprim_grad calls of each section (the snippet that answers the name)
QPRIM_GRAD = [
    'method="param_shift"',
    "QGTEstimator(estimator",
    'metric="block_diag"',
    "NaturalGradient(stepsize=",
    "SPSA(",
    "QNSPSA.get_fidelity(",
    "ParamShiftEstimatorGradient(estimator)",
    "QFI(LinCombQGT(estimator))",
]


def test_names_are_mapped():
    text = PAGE.read_text(encoding="utf-8")
    for name in PENNYLANE + QISKIT_ALGORITHMS + QPRIM_GRAD:
        assert name in text, name


def test_every_snippet_is_run():
    """Every code block of the page is a ``python`` block, which the docs test runs."""
    text = PAGE.read_text(encoding="utf-8")
    blocks = re.findall(r"^\.\. code-block:: (\S+)$", text, re.M)
    assert len(blocks) >= 12 and set(blocks) == {"python"}
    assert hasattr(qprim_grad, "QGTEstimator")
    assert hasattr(qprim_grad.optimizers, "NaturalGradient")
    assert hasattr(qprim_grad.optimizers, "QNSPSA")
