"""Our optimizers where qiskit-algorithms and qiskit-machine-learning expect theirs.

Those packages decide how to call an optimizer by ``isinstance`` checks against their own
classes: ``PVQD`` calls ``optimizer.minimize(...)`` only for an ``Optimizer`` (anything else
is called as a SciPy-style function), and ``VQE`` / ``SamplingVQE`` / ``VQD`` let an
optimizer evaluate up to 50 points per estimator job only when it is their ``SPSA`` (they call
``set_max_evals_grouped(50)`` on it). Our optimizers are registered as *virtual subclasses*
(``ABC.register``) of the matching peer classes, so those checks pass with no user code and
no qiskit-algorithms import on our side:

* when a peer module is already imported, registration happens at once;
* otherwise a tiny import hook registers them right after the peer module is first imported
  (one dictionary lookup per import; nothing else is touched).

With ``seed=None`` our SPSA draws from qiskit-algorithms' ``algorithm_globals.random`` when
that module is loaded (or qiskit-machine-learning's, when only that one is seeded;
:func:`global_generator`), as their SPSA does, so code that sets
``algorithm_globals.random_seed`` gets the same iterates.
"""

from __future__ import annotations

import importlib.abc
import sys
from types import ModuleType
from typing import Any

import numpy as np

__all__ = ["PEERS", "global_generator", "install", "register"]

#: peer module -> {our class name in ``qprim_grad.optimizers``: the peer class name}
PEERS: dict[str, dict[str, str]] = {
    "qiskit_algorithms.optimizers": {"SPSA": "SPSA", "QNSPSA": "QNSPSA"},
    "qiskit_machine_learning.optimizers": {"SPSA": "SPSA", "QNSPSA": "QNSPSA"},
}

#: the global-generator modules of qiskit-algorithms and qiskit-machine-learning (in order)
_GLOBALS_MODULES = (
    "qiskit_algorithms.utils.algorithm_globals",
    "qiskit_machine_learning.utils.algorithm_globals",
)


def register(module: ModuleType) -> None:
    """Register our optimizers as virtual subclasses of the peer classes in ``module``."""
    ours = sys.modules.get("qprim_grad.optimizers")
    for name, peer_name in PEERS.get(module.__name__, {}).items():
        cls = getattr(ours, name, None)
        peer = getattr(module, peer_name, None)
        if cls is not None and peer is not None and hasattr(peer, "register"):
            peer.register(cls)


class _RegisteringLoader(importlib.abc.Loader):
    """Runs the peer module's own loader, then :func:`register`."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        register(module)

    def __getattr__(self, name: str) -> Any:  # resources, get_source, ...
        return getattr(self._loader, name)


class _RegisterOnImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the loader of a peer optimizer module when it loads."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname not in PEERS:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            try:
                spec = find(fullname, path, target)
            except TypeError:  # a finder without the optional ``target`` argument
                spec = find(fullname, path)
            if spec is not None:
                if hasattr(spec.loader, "exec_module"):
                    spec.loader = _RegisteringLoader(spec.loader)
                return spec
        return None


def install() -> None:
    """Register with the peer modules already imported; hook the others' first import."""
    for name in PEERS:
        if name in sys.modules:
            register(sys.modules[name])
    if not any(isinstance(finder, _RegisterOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterOnImport())


def global_generator() -> np.random.Generator | None:
    """The global generator their SPSA would draw from: ``algorithm_globals.random`` of
    qiskit-algorithms, or of qiskit-machine-learning when only that one was seeded. Only
    modules already loaded are looked at (one never loaded was never seeded); ``None`` when
    neither is loaded."""
    loaded = [sys.modules[name] for name in _GLOBALS_MODULES if name in sys.modules]
    seeded = [m for m in loaded if m.algorithm_globals.random_seed is not None]
    for module in seeded or loaded[:1]:
        generator = module.algorithm_globals.random
        if isinstance(generator, np.random.Generator):
            return generator
    return None
