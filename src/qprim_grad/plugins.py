"""Entry-point discovery: gradient methods and optimizers other packages provide.

A package registers its objects in its ``pyproject.toml``::

    [project.entry-points."qprim_grad.gradient_methods"]
    my_method = "my_package.methods:MyMethod"      # then GradientEstimator(est, method="my_method")

    [project.entry-points."qprim_grad.optimizers"]
    my_optimizer = "my_package.optimizers:MyOptimizer"

Nothing is imported until asked for. A plugin that fails to load gives a warning naming it
(:func:`list_plugins` with ``check=True``) or an :class:`PluginError` naming it (:func:`load`),
never an error at ``import qprim_grad``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from .errors import PluginError, PluginWarning

__all__ = [
    "GRADIENT_METHODS",
    "GROUPS",
    "METRIC_METHODS",
    "OPTIMIZERS",
    "PluginError",
    "PluginInfo",
    "PluginWarning",
    "entry_points_of",
    "list_plugins",
    "load",
    "load_entry_point",
]

GRADIENT_METHODS = "qprim_grad.gradient_methods"
OPTIMIZERS = "qprim_grad.optimizers"
METRIC_METHODS = "qprim_grad.metric_methods"
GROUPS = (GRADIENT_METHODS, METRIC_METHODS, OPTIMIZERS)


@dataclass(frozen=True)
class PluginInfo:
    """One installed plugin.

    Attributes:
        name: the name it is used by (e.g. ``method="name"``).
        group: its entry-point group.
        value: the object path, ``"module:attribute"``.
        package: the distribution providing it.
        error: why it failed to load (only filled by ``list_plugins(check=True)``).
    """

    name: str
    group: str
    value: str
    package: str
    error: str | None = None

    def load(self) -> Any:
        """Import and return the plugin's object."""
        return load(self.name, self.group)


def entry_points_of(group: str) -> list[metadata.EntryPoint]:
    """Entry points in ``group`` (deduplicated by name, first wins)."""
    try:
        found = metadata.entry_points(group=group)
    except Exception as exc:  # a broken distribution must not break discovery
        warnings.warn(f"could not read entry points of {group!r}: {exc}", PluginWarning, 2)
        return []
    seen: dict[str, metadata.EntryPoint] = {}
    for entry in found:
        seen.setdefault(entry.name, entry)
    return list(seen.values())


def _package(entry: metadata.EntryPoint) -> str:
    dist = getattr(entry, "dist", None)
    try:
        return str(dist.metadata["Name"] or dist.name) if dist is not None else "<unknown>"
    except Exception:
        return getattr(dist, "name", None) or "<unknown>"


def list_plugins(group: str | None = None, *, check: bool = False) -> list[PluginInfo]:
    """Installed plugins (name, group, object path, package), sorted by group and name.

    With ``check=True`` every plugin is imported; a broken one gives a
    :class:`PluginWarning` naming it and its :attr:`PluginInfo.error` says why.
    """
    groups = GROUPS if group is None else (group,)
    out = []
    for grp in groups:
        for entry in entry_points_of(grp):
            error = None
            if check:
                try:
                    load_entry_point(entry)
                except PluginError as exc:
                    error = str(exc.__cause__ or exc)
                    warnings.warn(str(exc), PluginWarning, stacklevel=2)
            out.append(PluginInfo(entry.name, grp, entry.value, _package(entry), error))
    return sorted(out, key=lambda p: (p.group, p.name))


def load_entry_point(entry: metadata.EntryPoint) -> Any:
    """Load one entry point; a :class:`PluginError` naming the plugin if it is broken."""
    try:
        return entry.load()
    except Exception as exc:
        raise PluginError(
            f"plugin {entry.name!r} ({entry.value}) in group {entry.group!r} failed to load: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def load(name: str, group: str = GRADIENT_METHODS) -> Any:
    """Load the plugin ``name`` of ``group``."""
    entries = entry_points_of(group)
    for entry in entries:
        if entry.name == name:
            return load_entry_point(entry)
    known = sorted(entry.name for entry in entries)
    raise PluginError(f"no plugin {name!r} in group {group!r}; installed: {known}")
