"""What qprim_grad does so that qiskit-algorithms' and qiskit-machine-learning's clients take
its objects as their own: the one place that knows those packages (the *peers*).

Nothing here imports a peer at import time; each function says when it does. The
:mod:`qprim_grad.gradients` facade never calls one that does.

* **Optimizer checks.** Those clients decide how to call an optimizer by ``isinstance``
  checks against their own classes: ``PVQD`` calls ``optimizer.minimize(...)`` only for an
  ``Optimizer`` (anything else is called as a SciPy-style function), and ``VQE`` /
  ``SamplingVQE`` / ``VQD`` let an optimizer evaluate up to 50 points per job only when it is
  their ``SPSA``. :func:`register_optimizers` registers our classes as virtual subclasses
  (``ABC.register``) of the same-named peer classes. :mod:`qprim_grad.optimizers` calls it
  when it is imported, and it imports each *installed* peer's optimizers module to do so, so
  the checks pass whatever was imported first (the price: importing
  :mod:`qprim_grad.optimizers` includes importing those packages, when installed).
* **Result type.** :func:`peer_optimizer_result` is qiskit-algorithms' ``OptimizerResult``
  class when that package is installed (``None`` otherwise): optimizer results are of that
  type, whatever was imported first.
* **DerivativeType.** :func:`peer_derivative_type_value` recognises a member of
  qiskit-algorithms' or qiskit-machine-learning's ``DerivativeType`` (those classes exactly,
  not any enum of that name), so that our enum equals, hashes like and converts from theirs.
  It looks the classes up among the loaded modules: a member of theirs exists only once its
  module is loaded, so the answer does not depend on import order.
* **Global seed.** :func:`global_generator` is the generator their ``SPSA`` draws from with
  ``seed=None`` (``algorithm_globals.random``), so code that sets
  ``algorithm_globals.random_seed`` gets the same iterates with ours.

>>> from qprim_grad.compat import PEER_OPTIMIZERS
>>> sorted(PEER_OPTIMIZERS["qiskit_algorithms.optimizers"])
['QNSPSA', 'SPSA']
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
from abc import ABCMeta
from collections.abc import Mapping
from enum import Enum
from types import ModuleType
from typing import Any

import numpy as np

__all__ = [
    "PEER_DERIVATIVE_TYPES",
    "PEER_GLOBALS",
    "PEER_OPTIMIZERS",
    "global_generator",
    "peer_derivative_type_value",
    "peer_optimizer_result",
    "register_optimizers",
]

#: peer optimizers module -> the class names ours register under (the same names there)
PEER_OPTIMIZERS: dict[str, tuple[str, ...]] = {
    "qiskit_algorithms.optimizers": ("SPSA", "QNSPSA"),
    "qiskit_machine_learning.optimizers": ("SPSA", "QNSPSA"),
}

#: the modules whose ``DerivativeType`` members equal ours
PEER_DERIVATIVE_TYPES: tuple[str, ...] = (
    "qiskit_algorithms.gradients",
    "qiskit_machine_learning.gradients",
)

#: the peers' global-generator modules, in the order their SPSA would look
PEER_GLOBALS: tuple[str, ...] = (
    "qiskit_algorithms.utils.algorithm_globals",
    "qiskit_machine_learning.utils.algorithm_globals",
)


def _import_installed(name: str) -> ModuleType | None:
    """Module ``name`` if its distribution is installed (importing it), else ``None``."""
    if importlib.util.find_spec(name.partition(".")[0]) is None:
        return None
    try:
        return importlib.import_module(name)
    except ImportError:  # a broken peer installation: no registration, never an error here
        return None


def register_optimizers(ours: Mapping[str, type]) -> list[str]:
    """Register each class of ``ours`` (name -> class) as a virtual subclass of the
    same-named class of every installed peer in :data:`PEER_OPTIMIZERS`, importing those
    modules; returns the peer modules registered with."""
    registered = []
    for module_name, names in PEER_OPTIMIZERS.items():
        module = _import_installed(module_name)
        if module is None:
            continue
        for name in names:
            peer = getattr(module, name, None)
            if isinstance(peer, ABCMeta) and name in ours:
                peer.register(ours[name])
        registered.append(module_name)
    return registered


@functools.cache
def peer_optimizer_result() -> type | None:
    """qiskit-algorithms' ``OptimizerResult`` class when installed (imported here), else
    ``None``."""
    module = _import_installed("qiskit_algorithms.optimizers")
    result = getattr(module, "OptimizerResult", None)
    return result if isinstance(result, type) else None


def peer_derivative_type_value(value: object) -> str | None:
    """``value.value`` if ``value`` is a member of a peer's ``DerivativeType`` (one of
    :data:`PEER_DERIVATIVE_TYPES`, looked up among the loaded modules), else ``None``."""
    if not isinstance(value, Enum):
        return None
    for name in PEER_DERIVATIVE_TYPES:
        module = sys.modules.get(name)
        if module is not None and type(value) is getattr(module, "DerivativeType", None):
            return str(value.value)
    return None


def global_generator() -> np.random.Generator | None:
    """The generator a peer's SPSA would draw from with ``seed=None``:
    ``algorithm_globals.random`` of qiskit-algorithms, or of qiskit-machine-learning when only
    that one was seeded (the installed ones, imported here); ``None`` when neither is
    installed."""
    loaded = [m for m in map(_import_installed, PEER_GLOBALS) if m is not None]
    seeded = [m for m in loaded if getattr(m.algorithm_globals, "random_seed", None) is not None]
    for module in seeded or loaded[:1]:
        generator: Any = module.algorithm_globals.random
        if isinstance(generator, np.random.Generator):
            return generator
    return None
