"""Metric methods (the quantum geometric tensor): built-in ones by name from
:data:`BUILTIN_METRICS` (no entry-point scan), third-party ones through the
``qprim_grad.metric_methods`` entry points."""

from __future__ import annotations

from typing import Any

from .base import MetricMethod, MetricPlan, SlotTensor, normalize_metric_type, to_parameters

__all__ = [
    "BUILTIN_METRICS",
    "MetricMethod",
    "MetricPlan",
    "SlotTensor",
    "available_metrics",
    "normalize_metric_type",
    "resolve_metric",
    "to_parameters",
]

#: name -> "module:attribute" of the metric methods shipped with qprim_grad (lazy).
BUILTIN_METRICS: dict[str, str] = {
    "lin_comb": "qprim_grad.methods.metric.lin_comb:LinCombMetric",
    "reverse": "qprim_grad.methods.metric.reverse:ReverseMetric",
    "block_diag": "qprim_grad.methods.metric.block_diag:BlockDiagMetric",
    "diag": "qprim_grad.methods.metric.block_diag:DiagMetric",
}


def available_metrics() -> dict[str, Any]:
    """Metric name -> factory path or entry point, built-in first."""
    from ... import plugins

    found: dict[str, Any] = dict(BUILTIN_METRICS)
    for entry in plugins.entry_points_of(plugins.METRIC_METHODS):
        found.setdefault(entry.name, entry)
    return found


def resolve_metric(metric: Any, options: dict[str, Any]) -> Any:
    """A metric method object from a name, a class or an object; options go to the
    constructor."""
    from .. import resolve_plugin

    return resolve_plugin(
        metric,
        options,
        available_metrics,
        "metric method",
        "metric_options",
        builtin=BUILTIN_METRICS,
    )
