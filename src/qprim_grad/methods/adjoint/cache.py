"""A small thread-safe LRU for the adjoint engine's compiled programs, templates and
observables: bounded, keyed by value (a key must describe everything the entry depends on)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["LRUCache"]

V = TypeVar("V")


class LRUCache(Generic[V]):
    """At most ``size`` entries; the least recently used goes first. A ``None`` key is never
    cached (its value is built every time)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable | None, build: Callable[[], V]) -> V:
        """The cached value of ``key``, or ``build()`` (then cached)."""
        if key is None:
            return build()
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        value = build()  # outside the lock: building may take long or recurse
        with self._lock:
            self._entries[key] = value
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
