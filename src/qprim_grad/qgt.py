"""`QGTEstimator`: a V2 estimator whose results carry the quantum geometric tensor.

The metric is the third derivative family on the gradient machinery: a metric method
(:mod:`qprim_grad.methods.metric`) plans extra inner pubs and combines their results; the
wrapper sends them in the run's one inner job, next to the centre (and, for
``GradientEstimator(..., metric=...)``, next to the gradient's evaluations).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qiskit.primitives import BaseEstimatorV2
from qiskit.primitives.containers import DataBin, PubResult

from .errors import GradientMethodError
from .estimator import EstimatorFace, EstimatorPrimitive, _observable_free
from .methods.metric.results import metric_fields
from .pipeline.primitive import GradientPrimitive, result_metadata
from .pipeline.types import Plan, PubTask, PubWork

__all__ = ["QGTEstimator", "QGTFace"]


class _CenterOnly:
    """The gradient method of a :class:`QGTEstimator`: no derivatives, only the centre
    (which the metric's plan may replace, e.g. mapped by its ``pass_manager``)."""

    name = "none"
    options: dict[str, Any] = {}

    def plan(self, task: PubTask) -> Plan:
        return Plan()


class QGTEstimator(EstimatorPrimitive):
    """A V2 estimator returning ``evs``, ``stds``, ``qgt``, ``qgt_stds``, ``qfi``, ``qfi_stds``.

    ``qgt[..., i, j] = <d_i psi|d_j psi> - <d_i psi|psi><psi|d_j psi>`` (the second term
    with ``phase_fix=True``, the default), shape ``pub.shape + (P, P)``; complex for
    ``derivative_type="complex"`` (default), the real or imaginary part otherwise.
    ``qgt_stds`` propagates the inner ``stds`` (first order; second order for the phase
    fix's products of measured means, taken without bias) (complex entries:
    ``sqrt(Var Re + Var Im)``); ``qfi = 4 Re qgt``. Everything runs in one inner job per
    ``run`` (or several with ``max_job_rows``).

    Args:
        estimator: any V2 estimator.
        method: ``"lin_comb"`` (default), ``"reverse"``, ``"block_diag"``, ``"diag"``, a
            plugin's name (entry-point group ``qprim_grad.metric_methods``) or an object.
        max_job_rows: split the inner work into several jobs of at most this many rows.
        **options: the metric method's options (``derivative_type``, ``phase_fix``,
            ``pass_manager``, ...).

    The metric needs no observable: a pub ``(circuit, values)``, ``(circuit, None, values)``
    or ``(circuit,)`` is run with the identity as its observable (its ``evs`` are then 1, up
    to the inner estimator's noise).

    Example:
        >>> from qiskit import QuantumCircuit
        >>> from qiskit.circuit import Parameter
        >>> from qiskit.primitives import StatevectorEstimator
        >>> from qprim_grad import QGTEstimator
        >>> a, b = Parameter("a"), Parameter("b")
        >>> qc = QuantumCircuit(1)
        >>> _ = qc.rx(a, 0)
        >>> _ = qc.ry(b, 0)
        >>> result = QGTEstimator(StatevectorEstimator()).run([(qc, "Z", [0.3, 0.2])]).result()
        >>> result[0].data.qfi.round(4)
        array([[1.    , 0.    ],
               [0.    , 0.9127]])
    """

    def __init__(
        self,
        estimator: BaseEstimatorV2,
        method: Any = "lin_comb",
        *,
        max_job_rows: int | None = None,
        allocation: str = "uniform",
        **options: Any,
    ) -> None:
        if method is None:
            raise GradientMethodError(
                "QGTEstimator needs a metric method: method='lin_comb' (default), 'reverse', "
                "'block_diag', 'diag', a registered name or a metric object; got None"
            )
        GradientPrimitive.__init__(
            self,
            QGTFace,
            estimator,
            _CenterOnly(),
            max_job_rows=max_job_rows,
            metric=method,
            metric_options=options,
            allocation=allocation,
        )

    @property
    def metric(self) -> Any:
        """The metric method object."""
        return self._metric


class QGTFace(EstimatorFace):
    """The QGT estimator's face: the estimator's, with pubs that may leave their observable
    out, the metric's centre allowed to replace the pub's, and ``evs``, ``stds`` and the
    metric's fields as the result row."""

    metric_center = True

    def coerce(self, pub: Any) -> Any:
        # the metric is a property of the state: a pub may leave its observable out
        return super().coerce(_observable_free(pub))

    def result_row(self, work: PubWork, center: Any, evaluated: list[Any], meta: dict) -> Any:
        data = DataBin(
            evs=np.asarray(center.data.evs),
            stds=np.asarray(center.data.stds),
            **metric_fields(work),
            shape=work.task.shape,
        )
        return PubResult(data, metadata=result_metadata(work, center, meta))
