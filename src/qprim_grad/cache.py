"""One bounded, thread-safe LRU cache for everything derived from a circuit.

An entry made for a circuit keeps that circuit alive (so its ``id`` is never reused while
cached) and a snapshot of its content: its instructions with their parameters and bits, its
global phase, its width and its layout (``CircuitData`` compared in Rust, about a millisecond
for a thousand gates). A hit is served only if the circuit is the same object with the same
content, so a circuit edited in place (a gate replaced, parameters assigned, bits or layout
changed) is built again: the cache never changes an answer. Entries whose key is their whole
content (``circuit=None``) are served by key alone.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from qiskit.circuit import QuantumCircuit

__all__ = ["BoundedCache"]

T = TypeVar("T")


class BoundedCache(Generic[T]):
    """At most ``size`` values, least recently used evicted first.

    Example:
        >>> from qiskit import QuantumCircuit
        >>> cache = BoundedCache(size=2)
        >>> circuit = QuantumCircuit(1)
        >>> cache.get(("depth", id(circuit)), circuit, circuit.depth)
        0
    """

    def __init__(self, size: int = 128) -> None:
        self._entries: OrderedDict[_HashedKey, tuple[Any, Any, T]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(
        self, key: Hashable | None, circuit: QuantumCircuit | None, build: Callable[[], T]
    ) -> T:
        """The value cached under ``key`` for ``circuit`` as it is now, else ``build()``
        (cached). A ``None`` key is never cached. Builds run outside the lock: two threads
        may build the same value."""
        if key is None:
            return build()
        hashed = _HashedKey(key)  # keys may hold thousands of parameters: hash them once
        with self._lock:
            entry = self._entries.get(hashed)
        if entry is not None and entry[0] is circuit and _unchanged(circuit, entry[1]):
            with self._lock:
                if hashed in self._entries:
                    self._entries.move_to_end(hashed)
            return entry[2]
        snapshot = _snapshot(circuit)
        value = build()
        with self._lock:
            self._entries[hashed] = (circuit, snapshot, value)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class _HashedKey:
    """A key with its hash computed once (a dict lookup, ``move_to_end`` and an insertion
    would each hash it again)."""

    __slots__ = ("key", "hash")

    def __init__(self, key: Hashable) -> None:
        self.key = key
        self.hash = hash(key)

    def __hash__(self) -> int:
        return self.hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _HashedKey) and self.hash == other.hash and self.key == other.key


def _snapshot(circuit: QuantumCircuit | None) -> tuple[Any, ...] | None:
    """What a cached value depends on: the instructions (with their parameters and bits,
    copied; the global phase is part of them), the bits and the layout."""
    if circuit is None:
        return None
    return (
        circuit._data.copy(),
        circuit.num_qubits,
        circuit.num_clbits,
        circuit.layout,
    )


def _unchanged(circuit: QuantumCircuit | None, snapshot: tuple[Any, ...] | None) -> bool:
    if circuit is None or snapshot is None:
        return circuit is None and snapshot is None
    data, num_qubits, num_clbits, layout = snapshot
    return (
        circuit.layout is layout
        and circuit.num_qubits == num_qubits
        and circuit.num_clbits == num_clbits
        and len(circuit._data) == len(data)
        and circuit._data == data
    )
