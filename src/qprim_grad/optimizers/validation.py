"""Type and range checks of optimizer options at construction: a clear error naming the
argument, its value and the fix.

>>> check_qnspsa_options({"learning_rate": 0.1, "regularization": 0.01})
>>> check_qnspsa_options({"learning_rate": -0.1})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: QNSPSA(learning_rate=-0.1): the learning rate must be positive ...
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

__all__ = [
    "check_qnspsa_options",
    "check_int",
    "check_number",
    "check_callable",
    "check_seed",
]


def _error(owner: str, name: str, value: Any, need: str) -> ValueError:
    return ValueError(f"{owner}({name}={value!r}): {need}")


def check_int(owner: str, name: str, value: Any, minimum: int = 0, none_ok: bool = False) -> None:
    """An integer (not a bool) ``>= minimum``."""
    if value is None and none_ok:
        return
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not ok or int(value) < minimum:
        raise _error(owner, name, value, f"give an integer >= {minimum}.")


def check_number(
    owner: str,
    name: str,
    value: Any,
    *,
    positive: bool = False,
    none_ok: bool = False,
    need: str = "",
) -> None:
    """A finite real number, ``>= 0`` (``> 0`` if ``positive``)."""
    if value is None and none_ok:
        return
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    number = float(value) if ok else float("nan")
    bound = "> 0" if positive else ">= 0"
    if not np.isfinite(number) or number < 0 or (positive and number == 0):
        raise _error(owner, name, value, need or f"give a finite number {bound}.")


def check_callable(owner: str, name: str, value: Any) -> None:
    if value is not None and not callable(value):
        raise _error(owner, name, value, "give a callable or None.")


def check_seed(owner: str, value: Any) -> None:
    ok = value is None or isinstance(value, np.random.Generator)
    integer = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    ok = ok or (integer and int(value) >= 0)
    if not ok:
        raise _error(
            owner, "seed", value, "give a non-negative integer, a numpy Generator or None."
        )


def _check_gain(owner: str, name: str, value: Any, need: str) -> None:
    if value is None or callable(value):
        return
    try:
        values = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise _error(owner, name, value, need) from None
    if values.size == 0 or np.any(~np.isfinite(values)) or np.any(values <= 0):
        raise _error(owner, name, value, need)


def check_qnspsa_options(options: dict[str, Any], owner: str = "QNSPSA") -> None:
    """Every QN-SPSA option (the SPSA arguments it passes on), before anything runs."""
    get = options.get
    check_int(owner, "maxiter", get("maxiter", 100))
    if not isinstance(get("blocking", True), (bool, np.bool_)):
        raise _error(owner, "blocking", get("blocking"), "give True or False.")
    check_number(owner, "allowed_increase", get("allowed_increase"), none_ok=True)
    _check_gain(
        owner,
        "learning_rate",
        get("learning_rate"),
        "the learning rate must be positive (a negative one climbs the loss); give a number "
        "> 0, an array of them, or a callable.",
    )
    _check_gain(
        owner,
        "perturbation",
        get("perturbation"),
        "the perturbation must be positive; give a number > 0, an array of them, or a callable.",
    )
    resamplings = get("resamplings", 1)
    if isinstance(resamplings, dict):
        for k, n in resamplings.items():
            check_int(owner, f"resamplings[{k!r}]", n, 1)
            check_int(owner, "resamplings key", k, 1)
    else:
        check_int(owner, "resamplings", resamplings, 1)
    check_int(owner, "perturbation_dims", get("perturbation_dims"), 1, none_ok=True)
    check_number(
        owner,
        "regularization",
        get("regularization"),
        none_ok=True,
        need="the regularization is added to the metric's eigenvalues and must be a finite "
        "number >= 0 (default 0.01).",
    )
    check_int(owner, "hessian_delay", get("hessian_delay", 0))
    check_int(owner, "last_avg", get("last_avg", 1), 1)
    for name in ("lse_solver", "callback", "termination_checker"):
        check_callable(owner, name, get(name))
    hessian = get("initial_hessian")
    if hessian is not None:
        array = np.asarray(hessian)
        if array.ndim != 2 or array.shape[0] != array.shape[1] or not np.all(np.isfinite(array)):
            raise _error(owner, "initial_hessian", hessian, "give a finite square matrix or None.")
    check_seed(owner, get("seed"))
    if not isinstance(get("progress", False), (bool, np.bool_)):
        raise _error(owner, "progress", get("progress"), "give True or False.")
