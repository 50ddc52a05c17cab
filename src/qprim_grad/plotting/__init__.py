"""Plots of gradients, quantum geometric tensors and SPSA runs (needs the ``plot`` extra:
``pip install "qprim-grad[plot]"``).

* :func:`plot_gradient` draws ``grads`` with their ``grad_stds`` as error bars, one point
  per parameter (optionally next to reference values);
* :func:`plot_qgt` draws a quantum geometric tensor (a ``qgt`` result field or an array) as
  a heat map;
* :func:`plot_history` draws what :class:`~qprim_grad.optimizers.SPSA` records in
  ``result.history``: the loss measured at every proposed point (accepted steps as dots,
  steps rejected by blocking as crosses), the length of every step, and — when the gains
  were calibrated — the calibration job before the first iteration together with the
  calibrated learning rate ``a_k``.

matplotlib is imported when a plot is drawn, never at ``import qprim_grad``.

Example:
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from qprim_grad.optimizers import SPSA, batched
    >>> from qprim_grad.plotting import plot_history
    >>> loss = batched(lambda X: np.sum(np.atleast_2d(X) ** 2, axis=1))
    >>> result = SPSA(maxiter=15, seed=1).minimize(loss, [1.0, -0.5])
    >>> loss_ax, step_ax = plot_history(result)
    >>> loss_ax.get_ylabel(), step_ax.get_xlabel()
    ('loss', 'iteration')

    A gradient with its error bars:

    >>> from qiskit.circuit.library import real_amplitudes
    >>> from qiskit.primitives import StatevectorEstimator
    >>> from qprim_grad import GradientEstimator
    >>> from qprim_grad.plotting import plot_gradient
    >>> ansatz = real_amplitudes(2, reps=1)
    >>> pub_result = GradientEstimator(StatevectorEstimator()).run(
    ...     [(ansatz, "ZZ", [0.1, 0.2, 0.3, 0.4])]).result()[0]
    >>> ax = plot_gradient(pub_result)
    >>> [label.get_text() for label in ax.get_xticklabels()]
    ['θ[0]', 'θ[1]', 'θ[2]', 'θ[3]']
"""

from __future__ import annotations

from ._history import history_of, plot_history
from ._tensors import plot_gradient, plot_qgt

__all__ = ["plot_gradient", "plot_qgt", "plot_history", "history_of"]
