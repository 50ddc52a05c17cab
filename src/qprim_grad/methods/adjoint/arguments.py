"""The chain rule from circuit parameters to gate arguments, for the adjoint engine.

Affine arguments (the usual case) map as one matrix product ``values @ linear + const``,
with the coefficients from the shared chain rule of :mod:`qprim_grad.circuit.prepare`; other
expressions and their derivatives are bound per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from qiskit.circuit import Parameter, ParameterExpression

from ...circuit.chain_rule import affine_form, bound_real

__all__ = ["GateArguments"]


class GateArguments:
    """Gate arguments ``a(θ)`` of a compiled circuit and their Jacobian ``∂a/∂θ``."""

    def __init__(self, exprs: Sequence[ParameterExpression], parameters: Sequence[Parameter]):
        self.parameters = tuple(parameters)
        self.count = len(exprs)
        self._index = index = {p: i for i, p in enumerate(self.parameters)}
        # general arguments: (argument, expression, [(parameter column, derivative)])
        self.general: list[tuple[int, ParameterExpression, list[tuple[int, Any]]]] = []
        affine, offset = affine_form(exprs, index)
        if affine is not None and offset is not None:  # usually: every argument at once
            self.linear, self.const = affine.T.toarray(), offset
            return
        self.linear = np.zeros((len(self.parameters), self.count))
        self.const = np.zeros(self.count)
        for a, expr in enumerate(exprs):
            affine, offset = affine_form([expr], index)
            if affine is not None and offset is not None:
                self.linear[:, a], self.const[a] = affine.toarray()[0], offset[0]
            else:
                grads = [(index[p], expr.gradient(p)) for p in expr.parameters]
                self.general.append((a, expr, grads))

    @property
    def affine(self) -> bool:
        """Whether every argument is affine in the parameters (constant Jacobian)."""
        return not self.general

    def angles(self, values: np.ndarray) -> np.ndarray:
        """Gate arguments ``(R, A)`` for parameter rows ``values (R, Pc)``."""
        angles = values @ self.linear + self.const
        for a, expr, _ in self.general:
            angles[:, a] = self._bound(expr, values)
        return angles

    def linear_jacobian(self, columns: Sequence[int] | np.ndarray) -> np.ndarray:
        """The affine part of ``∂a/∂θ`` ``(A, len(columns))``; zero for columns ``-1``."""
        index = np.asarray(columns, dtype=int)
        jac = np.zeros((self.count, len(index)))
        valid = index >= 0
        jac[:, valid] = self.linear[index[valid]].T
        return jac

    def jacobian(self, values: np.ndarray, columns: Sequence[int] | np.ndarray) -> np.ndarray:
        """``∂a/∂θ`` ``(R|1, A, len(columns))`` at ``values (R, Pc)`` (one for all rows when
        every argument is affine)."""
        jac = self.linear_jacobian(columns)[None]
        if self.affine:
            return jac
        jac = np.repeat(jac, len(values), axis=0)
        diff = np.asarray(columns, dtype=int)
        for a, _, grads in self.general:
            for column, derivative in grads:
                j = np.flatnonzero(diff == column)
                if j.size:
                    jac[:, a, j] = self._bound(derivative, values)[:, None]
        return jac

    def _bound(self, expr: Any, values: np.ndarray) -> np.ndarray:
        """``expr`` (a number or an expression) at every row of ``values``, real part."""
        if not isinstance(expr, ParameterExpression):
            return bound_real(expr, [{}] * len(values))
        params = list(expr.parameters)
        columns = [self._index[p] for p in params]
        return bound_real(expr, [dict(zip(params, row)) for row in values[:, columns]])
