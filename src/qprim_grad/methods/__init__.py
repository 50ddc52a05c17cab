"""Gradient methods: built-in ones by name from :data:`BUILTIN_METHODS` (no entry-point scan),
third-party ones through the ``qprim_grad.gradient_methods`` entry points."""

from __future__ import annotations

import inspect
import pkgutil
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import GradientMethodError
from ..pipeline.types import ArgumentMap, Direct, DirectPlan, Evaluation, MethodPlan, Plan, PubTask
from .base import GradientMethod

__all__ = [
    "BUILTIN_METHODS",
    "ArgumentMap",
    "Direct",
    "DirectPlan",
    "Evaluation",
    "GradientMethod",
    "GradientMethodError",
    "MethodPlan",
    "Plan",
    "PubTask",
    "available_methods",
    "resolve_method",
]

#: name -> "module:attribute" of the methods shipped with qprim_grad (imported lazily). Names
#: are resolved here first; the package's own entry points (the same table) serve listing.
BUILTIN_METHODS: dict[str, str] = {
    "param_shift": "qprim_grad.methods.shift:ParamShift",
    "finite_diff": "qprim_grad.methods.shift:FiniteDiff",
    "spsa": "qprim_grad.methods.shift:SPSADirections",
    "lin_comb": "qprim_grad.methods.lin_comb:LinComb",
    "reverse": "qprim_grad.methods.reverse:Reverse",
}


def available_methods() -> dict[str, Any]:
    """Method name -> factory, built-in first, then the ``qprim_grad.gradient_methods``
    entry points of installed packages (loaded lazily; broken plugins warn)."""
    from .. import plugins

    found: dict[str, Any] = {name: path for name, path in BUILTIN_METHODS.items()}
    for entry in plugins.entry_points_of(plugins.GRADIENT_METHODS):
        found.setdefault(entry.name, entry)
    return found


def resolve_method(method: Any, options: dict[str, Any]) -> GradientMethod:
    """A method object from a name (built-in or plugin) or an object; options go to the
    method's constructor."""
    return resolve_plugin(
        method,
        options,
        available_methods,
        "gradient method",
        "options",
        known_name="methods",
        builtin=BUILTIN_METHODS,
    )


def resolve_plugin(
    method: Any,
    options: dict[str, Any],
    available: Callable[[], dict[str, Any]],
    kind: str,
    options_name: str,
    *,
    known_name: str = "",
    builtin: Mapping[str, str] | None = None,
) -> Any:
    """A ``kind`` object (it has ``plan(task)``) from a name in ``builtin`` (name ->
    ``"module:attribute"``, looked up without scanning entry points) or among ``available()``,
    a class or an object; ``options`` (called ``options_name`` in messages) go to the
    constructor; ``known_name`` names the list of known ones in messages (default: ``kind`` +
    "s")."""
    if not isinstance(method, str):
        if inspect.isclass(method):
            return _construct(method, getattr(method, "name", method.__name__), options)
        if options:
            raise GradientMethodError(
                f"{options_name} {sorted(options)} were given with a {kind} object; set them "
                "on the object instead"
            )
        if not callable(getattr(method, "plan", None)):
            raise GradientMethodError(f"{method!r} is not a {kind}: it needs a plan(task) method")
        return method
    if builtin is not None and method in builtin:
        return _construct(pkgutil.resolve_name(builtin[method]), method, options)
    known = available()
    if method not in known:
        raise GradientMethodError(
            f"unknown {kind} {method!r}; known {known_name or kind + 's'}: "
            f"{', '.join(sorted(known))}"
        )
    target = known[method]
    if isinstance(target, str):
        factory = pkgutil.resolve_name(target)
    else:
        from .. import plugins

        factory = plugins.load_entry_point(target)
    return _construct(factory, method, options)


def _construct(factory: Any, name: str, options: dict[str, Any]) -> GradientMethod:
    try:
        signature = inspect.signature(factory)
        signature.bind(**options)
    except TypeError as exc:
        accepted = [
            p.name
            for p in inspect.signature(factory).parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        raise GradientMethodError(
            f"method {name!r} does not accept options {sorted(options)}; its options: {accepted}"
        ) from exc
    return factory(**options)
