"""The metric's result fields: ``qgt``, ``qgt_stds``, ``qfi``, ``qfi_stds``."""

from __future__ import annotations

import numpy as np

from ...pipeline.types import PubWork
from .base import to_parameters

__all__ = ["metric_fields"]


def metric_fields(work: PubWork) -> dict[str, np.ndarray]:
    """``qgt``, ``qgt_stds`` (and ``qfi``, ``qfi_stds``) of one pub from its metric results,
    shape ``pub.shape + (P, P)``."""
    metric_work, task = work.metric_work, work.task
    assert metric_work is not None
    metric, plan = metric_work.method, metric_work.plan
    if metric_work.direct:
        assert plan.direct is not None
        results = plan.direct()
    else:
        results = [
            (np.asarray(r.data.evs, dtype=float), np.asarray(r.data.stds, dtype=float) ** 2)
            for r in metric_work.results
        ]
    tensor = plan.combine(results)
    qgt, var_re, var_im = to_parameters(tensor, plan.jacobian, metric.phase_fix)
    P = task.num_parameters
    full = task.shape + (P, P)
    if getattr(metric, "diagonal_only", False):
        eye = np.eye(P, dtype=bool)
        qgt, var_re, var_im = (np.where(eye, x, 0) for x in (qgt, var_re, var_im))

    def spread(array: np.ndarray) -> np.ndarray:
        return np.array(np.broadcast_to(array, full))

    kind = metric.derivative_type
    if kind == "real":
        fields = {"qgt": spread(np.real(qgt)), "qgt_stds": spread(np.sqrt(var_re))}
    elif kind == "imag":
        fields = {"qgt": spread(np.imag(qgt)), "qgt_stds": spread(np.sqrt(var_im))}
    else:
        fields = {"qgt": spread(qgt), "qgt_stds": spread(np.sqrt(var_re + var_im))}
    if kind != "imag":
        fields["qfi"] = spread(4.0 * np.real(qgt))
        fields["qfi_stds"] = spread(4.0 * np.sqrt(var_re))
    return fields
