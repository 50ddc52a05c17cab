"""The path a newcomer follows: the functions and modules of ``qprim_grad`` that one call of

``GradientEstimator(StatevectorEstimator(), "param_shift").run([(qc, obs, x)]).result()``

visits (docs/architecture.rst, "A newcomer's path"). The call is made twice and the second
one traced with :func:`sys.setprofile` (the first fills the caches); a function is counted
once however often it is called, comprehensions and generator expressions not at all.

Run: ``python -m benchmarks trace``, or ``python benchmarks/trace_bench.py --list`` for the
functions in the order they are first entered.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
from qiskit.circuit.library import real_amplitudes
from qiskit.primitives import StatevectorEstimator

import qprim_grad
from qprim_grad import GradientEstimator

#: code names that are parts of a function's body, not functions of their own
_INLINE = {"<listcomp>", "<dictcomp>", "<setcomp>", "<genexpr>"}


def traced_call() -> list[tuple[str, str]]:
    """``(module, function)`` of every ``qprim_grad`` function the call enters, in the order
    first entered (the second of two identical calls)."""
    root = str(Path(qprim_grad.__file__).parent)
    qc = real_amplitudes(2, reps=1)
    x = np.linspace(0.1, 0.8, qc.num_parameters)

    def call() -> Any:
        return GradientEstimator(StatevectorEstimator(), "param_shift").run([(qc, "ZZ", x)])

    call().result()
    seen: dict[tuple[str, str], None] = {}

    def profile(frame: Any, event: str, arg: Any) -> None:
        code = frame.f_code
        if event != "call" or code.co_name in _INLINE or not code.co_filename.startswith(root):
            return
        module = Path(code.co_filename).relative_to(root).with_suffix("").as_posix()
        seen.setdefault((module, code.co_qualname), None)

    sys.setprofile(profile)
    try:
        call().result()
    finally:
        sys.setprofile(None)
    return list(seen)


def run() -> list[dict[str, Any]]:
    visited = traced_call()
    return [
        {
            "bench": "traced param_shift call",
            "functions": len(visited),
            "modules": len({module for module, _ in visited}),
        }
    ]


if __name__ == "__main__":
    visited = traced_call()
    if "--list" in sys.argv:
        for module, function in visited:
            print(f"{module:28} {function}")
    modules = len({module for module, _ in visited})
    print(f"{len(visited)} functions in {modules} modules")
