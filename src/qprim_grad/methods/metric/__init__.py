"""Metric methods (the quantum geometric tensor): built-in ones by name, third-party ones
through the ``qprim_grad.metric_methods`` entry points."""

from __future__ import annotations

import inspect
import pkgutil
from typing import Any

from ..base import GradientMethodError
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
    from .. import _construct

    if not isinstance(metric, str):
        if inspect.isclass(metric):
            return _construct(metric, getattr(metric, "name", metric.__name__), options)
        if options:
            raise GradientMethodError(
                f"metric_options {sorted(options)} were given with a metric object; set them "
                "on the object instead"
            )
        if not callable(getattr(metric, "plan", None)):
            raise GradientMethodError(
                f"{metric!r} is not a metric method: it needs a plan(task) method"
            )
        return metric
    known = available_metrics()
    if metric not in known:
        raise GradientMethodError(
            f"unknown metric method {metric!r}; known metric methods: {', '.join(sorted(known))}"
        )
    target = known[metric]
    if isinstance(target, str):
        factory = pkgutil.resolve_name(target)
    else:
        from ... import plugins

        factory = plugins.load_entry_point(target)
    return _construct(factory, metric, options)
