"""Our optimizers as custom methods of ``scipy.optimize.minimize``, and scipy-style
callbacks as termination checkers."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from .batching import batched, is_batched

__all__ = ["scipy_minimize", "scipy_stopper"]


def scipy_minimize(
    optimizer: Any,
    fun: Callable[..., float],
    x0: np.ndarray,
    args: tuple = (),
    jac: Any = None,
    hess: Any = None,
    hessp: Any = None,
    bounds: Any = None,
    constraints: Any = (),
    callback: Callable[..., Any] | None = None,
    *,
    name: str = "SPSA",
    **options: Any,
) -> Any:
    """Run ``optimizer`` (an SPSA, or any optimizer with ``replace``, ``minimize`` and
    ``termination_checker``) as scipy's custom method: ``options`` override its constructor
    arguments, ``callback`` becomes a termination checker; returns an ``OptimizeResult``
    whose message names ``name``."""
    options.pop("tol", None)
    options.pop("disp", None)
    objective: Any = fun
    if args:
        objective = batched(fun, args) if is_batched(fun) else (lambda x: fun(x, *args))
    run_with = optimizer.replace(**options) if options else optimizer
    if callback is not None:
        run_with = run_with.replace(
            termination_checker=scipy_stopper(callback, optimizer.termination_checker)
        )
    return _scipy_result(run_with.minimize(objective, x0), name)


def _scipy_result(result: Any, name: str) -> Any:
    """Our result as scipy's ``OptimizeResult``."""
    from scipy.optimize import OptimizeResult

    return OptimizeResult(
        x=result.x,
        fun=result.fun,
        nfev=result.nfev,
        njev=result.njev,
        nit=result.nit,
        success=True,
        status=0,
        message=f"{name} finished",
        history=result.history,
        jobs=result.jobs,
        shots=getattr(result, "shots", 0),
    )


def scipy_stopper(callback: Callable[..., Any], inner: Callable[..., Any] | None) -> Callable:
    """A termination checker that forwards to a scipy-style callback."""
    params = inspect.signature(callback).parameters
    new_style = "intermediate_result" in params

    def checker(nfev: int, x: np.ndarray, fx: float, stepsize: Any, accepted: bool) -> bool:
        from scipy.optimize import OptimizeResult

        try:
            if new_style:
                callback(intermediate_result=OptimizeResult(x=np.copy(x), fun=fx, nfev=nfev))
            else:
                callback(np.copy(x))
        except StopIteration:
            return True
        return bool(inner(nfev, x, fx, stepsize, accepted)) if inner is not None else False

    return checker
