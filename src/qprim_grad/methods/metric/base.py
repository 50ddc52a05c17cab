"""The metric family: a metric method turns a pub into a :class:`MetricPlan`.

A metric plan lists extra evaluations (inner pubs) and a ``combine`` function that turns
their ``(evs, variances)`` into a :class:`SlotTensor`: the overlaps ``<d_a psi|d_b psi>``
over gate arguments ("slots"), the generator means ``g_a`` with ``<d_a psi|psi> = i g_a``
and the variances of every measured piece. :func:`to_parameters` then applies the chain
rule ``J^T G J`` (``J = d slot / d theta``), the phase fix ``- g g^T`` (unbiased for measured
means) and error propagation (second order for the phase fix), once for every method.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from qiskit.primitives.containers import PubResult
from scipy import sparse

from ...circuit.options import check_bool, check_pass_manager, derivative_type_name
from ...pipeline.types import Evaluation, PubTask

__all__ = [
    "DERIVATIVE_TYPES",
    "MetricMethod",
    "MetricPlan",
    "SlotTensor",
    "normalize_metric_type",
    "to_parameters",
]

#: the metric's derivative types, its default first
DERIVATIVE_TYPES = ("complex", "real", "imag")


def normalize_metric_type(value: Any) -> str:
    """``"complex"``, ``"real"`` or ``"imag"`` from a string or either ``DerivativeType``."""
    return derivative_type_name(value, DERIVATIVE_TYPES, " for a metric")


@dataclass
class SlotTensor:
    """The tensor over slots (gate arguments) before the chain rule.

    Attributes:
        overlaps: ``S + (G, G)`` complex, Hermitian: ``<d_a psi|d_b psi>``.
        means: ``S + (G,)`` real: ``g_a`` with ``<d_a psi|psi> = i g_a``.
        var_re: ``S + (G, G)`` variances of the independently measured ``Re`` overlaps
            (upper triangle only; zero where exact).
        var_im: the same for the imaginary parts.
        var_means: ``S + (G,)`` variances of ``means``.
        mask: ``(G, G)`` 0/1: which products ``g_a g_b`` the phase fix subtracts (``None``:
            all of them).
    """

    overlaps: np.ndarray
    means: np.ndarray
    var_re: np.ndarray | None = None
    var_im: np.ndarray | None = None
    var_means: np.ndarray | None = None
    mask: np.ndarray | None = None


@dataclass(frozen=True)
class MetricPlan:
    """What a metric method needs evaluated for one pub, and how to combine it (an immutable
    value). Its ``direct`` and ``direct_center`` are shortcuts of the same values, taken only
    where the pub's precision is zero; every metric method, the ones computing without the
    inner primitive too (``reverse``: no evaluations), gives its tensor through ``combine``.

    Attributes:
        evaluations: inner pubs to run (each with its own observables), in the run's job.
        combine: ``[(evs, variances) per evaluation] -> SlotTensor`` over the values' shape
            (the pub's values shape, padded to the pub's dimensions).
        jacobian: ``d slot / d theta``: sparse ``(G, P)``, dense ``S + (G, P)``, or ``None``
            when the slots are the parameters.
        center: an evaluation to use as the centre (e.g. mapped by a pass manager) when the
            metric runs alone (:class:`~qprim_grad.QGTEstimator`).
        metadata: per-pub metadata to report.
        direct: the evaluations' ``(evs, variances)`` computed without the inner primitive,
            exactly as an exact inner estimator returns them (a callable, run when the job's
            result is combined); the wrapper uses it instead of sending the evaluations only
            where the pub's precision is zero.
        direct_center: a callable giving the centre's ``PubResult`` computed without the
            inner primitive, for :class:`~qprim_grad.QGTEstimator` where the pub's precision
            is zero.
    """

    evaluations: list[Evaluation]
    combine: Callable[[list[tuple[np.ndarray, np.ndarray]]], SlotTensor]
    jacobian: Any = None
    center: Evaluation | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    direct: Callable[[], list[tuple[np.ndarray, np.ndarray]]] | None = None
    direct_center: Callable[[], PubResult] | None = None


@runtime_checkable
class MetricMethod(Protocol):
    """A metric method: a name, options (with ``derivative_type``/``phase_fix``), a planner."""

    name: str
    derivative_type: str
    phase_fix: bool

    @property
    def options(self) -> dict[str, Any]: ...

    def plan(self, task: PubTask) -> MetricPlan: ...


class CircuitMetric:
    """Options shared by the metric methods that send circuits: the part of the tensor
    returned, whether the phase fix is applied, and the pass manager for device circuits."""

    def __init__(
        self, derivative_type: Any = "complex", phase_fix: bool = True, pass_manager: Any = None
    ) -> None:
        who = f"metric {getattr(self, 'name', type(self).__name__)!r}"
        self.derivative_type = normalize_metric_type(derivative_type)
        self.phase_fix = check_bool(phase_fix, "phase_fix", who)
        self.pass_manager = check_pass_manager(pass_manager, who)

    @property
    def options(self) -> dict[str, Any]:
        return {
            "derivative_type": self.derivative_type,
            "phase_fix": self.phase_fix,
            "pass_manager": None if self.pass_manager is None else type(self.pass_manager).__name__,
        }


def _dense_jacobian(jacobian: Any, ndim: int) -> np.ndarray:
    if sparse.issparse(jacobian):
        jacobian = jacobian.toarray()
        return jacobian.reshape((1,) * ndim + jacobian.shape)
    return np.asarray(jacobian, dtype=float)


def _pair_variance(J: np.ndarray, variance: np.ndarray, sign: float) -> np.ndarray:
    """``sum_ab V_ab (J_ap J_bq + sign J_bp J_aq)^2`` for ``V`` upper-triangular."""
    J2 = J**2
    J2t = np.swapaxes(J2, -1, -2)
    swapped = np.swapaxes(variance, -1, -2)
    K = J[..., :, :, None] * J[..., :, None, :]  # (G, P, P): J_ap J_aq
    cross = np.einsum("...apq,...ab,...bpq->...pq", K, variance, K, optimize=True)
    return J2t @ variance @ J2 + J2t @ swapped @ J2 + 2 * sign * cross


def _means_variance(J: np.ndarray, g: np.ndarray, vg: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The phase fix's share of the real part's variance, from the means' variances ``vg``:
    ``d qgt_pq / d g_c = -(J_cp u_cq + u_cp J_cq)``, ``u_cq = sum_b mask_cb g_b J_bq``."""
    u = (mask * g[..., None, :]) @ J
    term = np.einsum("...c,...cp,...cq->...pq", vg, J**2, u**2, optimize=True)
    term = term + np.swapaxes(term, -1, -2)
    Ju = J * u
    return term + 2 * np.einsum("...c,...cp,...cq->...pq", vg, Ju, Ju, optimize=True)


def _second_order(J: np.ndarray, vg: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``tr(K V K V)`` of the phase fix's quadratic form ``g^T K g`` per entry ``(p, q)``
    (``K_ab = mask_ab (J_ap J_bq + J_bp J_aq) / 2``, ``V = diag(vg)``): the part of its
    variance the first-order rule misses, ``Var = 4 mu^T K V K mu + 2 tr(KVKV)`` for
    Gaussian means."""
    W = vg[..., :, None] * vg[..., None, :] * mask**2  # v_a v_b m_ab^2
    J2 = J**2
    squares = np.swapaxes(J2, -1, -2) @ W @ J2  # sum_ab W_ab J_ap^2 J_bq^2
    cross = np.einsum("...ap,...aq,...ab,...bp,...bq->...pq", J, J, W, J, J, optimize=True)
    return (squares + cross) / 2


def _measured(variance: np.ndarray | None) -> np.ndarray | None:
    """``variance`` as floats if any of it is non-zero, else ``None``."""
    if variance is None or not np.any(variance):
        return None
    return np.asarray(variance, dtype=float)


def to_parameters(
    tensor: SlotTensor, jacobian: Any, phase_fix: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(qgt, var_re, var_im)`` over the parameters: ``S + (P, P)`` each.

    ``qgt = J^T (overlaps - mask * (g g^T - V)) J`` with ``V = diag(var_means)`` (the
    unbiased product of measured means) and the variances of its real and imaginary parts:
    first order for the measured overlaps, second order (exact for Gaussian means) for the
    phase fix's quadratic form.
    """
    overlaps = np.asarray(tensor.overlaps, dtype=complex)
    g = np.asarray(tensor.means, dtype=float)
    ndim = overlaps.ndim - 2
    num_slots = overlaps.shape[-1]
    mask = np.ones((num_slots, num_slots)) if tensor.mask is None else tensor.mask
    if jacobian is None:
        J = np.broadcast_to(np.eye(num_slots), (1,) * ndim + (num_slots, num_slots))
    else:
        J = _dense_jacobian(jacobian, ndim)
    vg = _measured(tensor.var_means)
    product = g[..., :, None] * g[..., None, :] * mask
    if phase_fix and vg is not None:
        # E[g_a^2] = <g_a>^2 + var: the unbiased square of a measured mean
        product = product - np.eye(num_slots) * (vg * np.diagonal(mask))[..., None, :]
    inner = overlaps - product if phase_fix else overlaps
    qgt = np.swapaxes(J, -1, -2) @ inner @ J
    var_re = np.zeros(qgt.shape)
    var_im = np.zeros(qgt.shape)
    if (measured := _measured(tensor.var_re)) is not None:
        var_re = var_re + _pair_variance(J, measured, 1.0)
    if (measured := _measured(tensor.var_im)) is not None:
        var_im = var_im + _pair_variance(J, measured, -1.0)
    if phase_fix and vg is not None:
        # Var(g^T K g) = 4 mu^T K V K mu + 2 tr(KVKV), mu mu^T estimated without bias by
        # g g^T - V: 4 g^T K V K g - 2 tr(KVKV); never below its value at mu = 0
        second = _second_order(J, vg, mask)
        var_re = var_re + np.maximum(_means_variance(J, g, vg, mask) - 2 * second, 2 * second)
    return qgt, np.maximum(var_re, 0.0), np.maximum(var_im, 0.0)
