"""What the form of the inner pubs costs.

The gradient primitives send the inner primitive ``"indexable"`` pubs (coerced pubs that also
index and unpack like their tuple). The benchmark compares them with two variations it sets up
itself, by replacing the gradient's call of the inner primitive: ``"pub"`` (plain coerced
pubs) and ``"tuple"`` (plain tuples the inner primitive must coerce and validate again). For
each form:
the time of a whole ``run(...).result()`` on a zero-work estimator (which coerces what it gets,
as every primitive does) — the worst case, since no simulation hides the overhead — and on a
real ``StatevectorEstimator``; ratios are against the ``"pub"`` form, measured in one run.

Run: ``python -m benchmarks pubs``.
"""

from __future__ import annotations

import numpy as np
from qiskit.circuit.library import efficient_su2
from qiskit.primitives import StatevectorEstimator

from qprim_grad import GradientEstimator
from qprim_grad.pipeline.results import indexable_pub, pub_tuple

try:
    from ._common import ZeroWorkEstimator, paired_ratio, print_table
except ImportError:  # run as a script
    from _common import ZeroWorkEstimator, paired_ratio, print_table

CASES = [(4, 3, 1), (8, 5, 1), (6, 3, 64)]  # (qubits, reps, rows of parameter values)
FORMS = ["indexable", "tuple"]


#: form -> how each (plain, coerced) inner pub is converted before the inner primitive's run
CONVERT = {"indexable": indexable_pub, "pub": lambda pub: pub, "tuple": pub_tuple}


class _FormGradient(GradientEstimator):
    """The gradient estimator with the inner pubs sent in another form (benchmark only)."""

    def __init__(self, inner: object, form: str) -> None:
        super().__init__(inner, method="param_shift")
        self._convert = CONVERT[form]

    def _inner_run(self, pubs: list, **kwargs):
        return self._primitive.run([self._convert(pub) for pub in pubs], **kwargs)


def _gradient(inner: object, form: str) -> GradientEstimator:
    return _FormGradient(inner, form)


def run() -> list[dict]:
    rows = []
    rng = np.random.default_rng(5)
    for num_qubits, reps, batch in CASES:
        circuit = efficient_su2(num_qubits, reps=reps)
        values = rng.uniform(-1, 1, (batch, circuit.num_parameters))
        pubs = [(circuit, "Z" * num_qubits, values)]
        for inner_name, make_inner in [
            ("zero-work", ZeroWorkEstimator),
            ("statevector", StatevectorEstimator),
        ]:
            if inner_name == "statevector" and batch > 1:
                continue  # simulation dominates: nothing to see
            baseline = _gradient(make_inner(), "pub")
            for form in FORMS:
                gradient = _gradient(make_inner(), form)
                ratio = paired_ratio(
                    lambda: gradient.run(pubs).result(),  # noqa: B023
                    lambda: baseline.run(pubs).result(),
                    repeats=7,
                )
                rows.append(
                    {
                        "bench": "inner_pub_form",
                        "inner": inner_name,
                        "P": circuit.num_parameters,
                        "rows": batch * (2 * circuit.num_parameters + 1),
                        "form": form,
                        "ratio_vs_pub": ratio,
                    }
                )
    return rows


if __name__ == "__main__":
    print_table(run())
