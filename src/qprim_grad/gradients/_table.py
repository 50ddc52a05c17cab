"""The gradient facades as data: each class's constructor arguments and how they map to the
options of the :mod:`qprim_grad` method it runs.

A class names its row (``spec=``) and its kind (estimator or sampler, by its base); the base
builds the constructor signature from the row (qiskit-algorithms 0.4's, argument for
argument) and turns the arguments into the method's options.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..circuit.options import FINITE_DIFFERENCE_SCHEMES
from ._derivative_type import DerivativeType, as_derivative_type

__all__ = ["Arg", "Kind", "MethodSpec", "SETTING", "signature", "bind"]

_REQUIRED = inspect.Parameter.empty


@dataclass(frozen=True)
class Arg:
    """One constructor argument: its name, default, annotation, whether it is keyword-only,
    and the check (and normalisation) its value goes through."""

    name: str
    default: Any = _REQUIRED
    annotation: str = "Any"
    keyword_only: bool = False
    check: Callable[[Any], Any] | None = None

    def parameter(self) -> inspect.Parameter:
        kind = inspect.Parameter.KEYWORD_ONLY if self.keyword_only else None
        return inspect.Parameter(
            self.name,
            kind or inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=self.default,
            annotation=self.annotation,
        )


def _check_scheme(method: str) -> str:
    if method not in FINITE_DIFFERENCE_SCHEMES:
        raise TypeError(
            f"The argument method should be central, forward, or backward: {method} is given."
        )
    return method


#: stands for the kind's run setting: ``precision`` (estimator) or ``shots`` (sampler)
SETTING = Arg("<setting>")
PRECISION = Arg("precision", None, "float | None")
SHOTS = Arg("shots", None, "int | None")
DERIVATIVE_TYPE = Arg(
    "derivative_type", DerivativeType.REAL, "DerivativeType", check=as_derivative_type
)
EPSILON = Arg("epsilon", annotation="float")
BATCH_SIZE = Arg("batch_size", 1, "int")
SEED = Arg("seed", None, "int | None")
SCHEME = Arg("method", "central", "str", keyword_only=True, check=_check_scheme)
#: the keyword-only arguments every class takes last
COMMON = (
    Arg("transpiler", None, "Any", keyword_only=True),
    Arg("transpiler_options", None, "dict[str, Any] | None", keyword_only=True),
    Arg("options", None, "Mapping[str, Any] | None", keyword_only=True),
    Arg("pass_manager", None, "Any", keyword_only=True),
)


@dataclass(frozen=True)
class Kind:
    """What an estimator gradient and a sampler gradient differ in, apart from ``run``."""

    #: the :mod:`qprim_grad` primitive (``GradientEstimator`` / ``GradientSampler``)
    primitive_class: type
    #: the facade result class
    result_class: type
    #: the name of the constructor's first argument
    primitive_name: str
    #: the constructor argument of the run setting (precision / shots)
    setting: Arg
    #: where an inner result's metadata reports the setting
    result_key: str
    #: constructor arguments after the primitive unless a row names its own
    arguments: tuple[Arg, ...] = (SETTING,)


@dataclass(frozen=True)
class MethodSpec:
    """One row: a :mod:`qprim_grad` method and the facade arguments that configure it."""

    #: the method's name
    method: str
    #: constructor arguments after the primitive (``None``: the kind's own)
    arguments: tuple[Arg, ...] | None = None
    #: constructor argument -> option of the method
    options: Mapping[str, str] = field(default_factory=dict)
    #: whether ``transpiler`` maps the user's circuits (``False``: the method's own)
    transpiles_circuits: bool = True
    #: the derivative types an estimator gradient of this method computes
    derivative_types: tuple[DerivativeType, ...] = (DerivativeType.REAL,)


PARAM_SHIFT = MethodSpec("param_shift")
FINITE_DIFF = MethodSpec(
    "finite_diff", (EPSILON, SETTING, SCHEME), {"epsilon": "epsilon", "method": "scheme"}
)
SPSA = MethodSpec(
    "spsa",
    (EPSILON, BATCH_SIZE, SEED, SETTING),
    {"epsilon": "epsilon", "batch_size": "batch_size", "seed": "seed"},
)
LIN_COMB = MethodSpec(
    "lin_comb",
    options={"derivative_type": "derivative_type"},
    transpiles_circuits=False,
    derivative_types=tuple(DerivativeType),
)
REVERSE = MethodSpec(
    "reverse",
    options={"derivative_type": "derivative_type"},
    derivative_types=tuple(DerivativeType),
)


def signature(primitive: str, arguments: tuple[Arg, ...], setting: Arg) -> inspect.Signature:
    """The constructor signature: the primitive, ``arguments`` (``SETTING`` replaced by
    ``setting``), then the keyword-only arguments every class takes."""
    rows = [Arg(primitive)] + [setting if a is SETTING else a for a in arguments] + list(COMMON)
    return inspect.Signature([row.parameter() for row in rows], return_annotation="None")


def bind(
    owner: str, constructor: inspect.Signature, checks: tuple[Arg, ...], args: Any, kwargs: Any
) -> dict[str, Any]:
    """The constructor's arguments by name, defaults filled in and checked."""
    try:
        bound = constructor.bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"{owner}(): {exc}") from None
    bound.apply_defaults()
    values = dict(bound.arguments)
    for arg in checks:
        if arg.check is not None and arg.name in values:
            values[arg.name] = arg.check(values[arg.name])
    return values
