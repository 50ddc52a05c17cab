"""Entry-point discovery: gradient methods and optimizers other packages provide.

Groups: ``qprim_grad.gradient_methods`` and ``qprim_grad.optimizers``. Nothing is imported
until asked for; a plugin that fails to load gives a warning naming it, never an error at
``import qprim_grad``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from importlib import metadata
from typing import Any

__all__ = [
    "GRADIENT_METHODS",
    "OPTIMIZERS",
    "GROUPS",
    "PluginInfo",
    "entry_points_of",
    "list_plugins",
    "load",
    "load_entry_point",
]

GRADIENT_METHODS = "qprim_grad.gradient_methods"
OPTIMIZERS = "qprim_grad.optimizers"
GROUPS = (GRADIENT_METHODS, OPTIMIZERS)


@dataclass(frozen=True)
class PluginInfo:
    """One installed plugin."""

    name: str
    group: str
    value: str  # "module:attribute"
    package: str  # distribution providing it

    def load(self) -> Any:
        return load(self.name, self.group)


def entry_points_of(group: str) -> list[metadata.EntryPoint]:
    """Entry points in ``group`` (deduplicated by name, first wins)."""
    try:
        found = metadata.entry_points(group=group)
    except Exception as exc:  # a broken distribution must not break discovery
        warnings.warn(f"could not read entry points of {group!r}: {exc}", stacklevel=2)
        return []
    seen: dict[str, metadata.EntryPoint] = {}
    for entry in found:
        seen.setdefault(entry.name, entry)
    return list(seen.values())


def list_plugins(group: str | None = None) -> list[PluginInfo]:
    """Installed plugins (name, group, object path, package), sorted by group and name."""
    groups = GROUPS if group is None else (group,)
    out = []
    for grp in groups:
        for entry in entry_points_of(grp):
            dist = getattr(entry, "dist", None)
            package = getattr(dist, "name", None) or "<unknown>"
            out.append(PluginInfo(entry.name, grp, entry.value, package))
    return sorted(out, key=lambda p: (p.group, p.name))


def load_entry_point(entry: metadata.EntryPoint) -> Any:
    """Load one entry point, naming the plugin in the error if it is broken."""
    try:
        return entry.load()
    except Exception as exc:
        raise ImportError(
            f"plugin {entry.name!r} ({entry.value}) in group {entry.group!r} failed to load: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def load(name: str, group: str = GRADIENT_METHODS) -> Any:
    """Load the plugin ``name`` of ``group``."""
    for entry in entry_points_of(group):
        if entry.name == name:
            return load_entry_point(entry)
    known = [entry.name for entry in entry_points_of(group)]
    raise KeyError(f"no plugin {name!r} in group {group!r}; installed: {known}")
