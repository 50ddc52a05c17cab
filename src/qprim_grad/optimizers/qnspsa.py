"""QN-SPSA: SPSA preconditioned by a stochastic estimate of the Fubini-Study metric.

QN-SPSA (Gacon et al., arXiv:2103.09232) is 2-SPSA with the Hessian of the loss replaced by
the Hessian of ``-F(x, y) / 2`` at ``y = x``, where ``F`` is the state fidelity
``|<ψ(x)|ψ(y)>|^2``. Per direction it needs the loss at ``x ± c d1`` and the fidelity between
``x`` and ``x + c d1``, ``x - c d1``, ``x + c (d1 + d2)``, ``x + c (-d1 + d2)``.

It runs on the same machinery as :class:`~.spsa.SPSA` (gains, seeded directions, state,
checkpoints, blocking, the batched one-job-per-iteration schedule):

* with a **plain callable** loss the evaluations happen in qiskit-algorithms' order, so with
  the same seed (``algorithm_globals.random_seed`` there, ``seed=`` here) the iterates equal
  qiskit-algorithms' ``QNSPSA``;
* with a **batched loss** (:class:`~.loss.EstimatorLoss`) and a fidelity from
  :meth:`QNSPSA.get_fidelity`, an iteration is one estimator job (centre point and loss
  perturbations, as for SPSA) and one sampler job (all fidelity pairs of all resamplings);
  calibration is one estimator job. Without blocking and termination checker the sampler job
  is submitted together with the estimator job; otherwise it waits for the estimator's
  verdict on the centre and measures the fidelities around the point that is kept only.

>>> import numpy as np
>>> from qiskit.circuit.library import real_amplitudes
>>> from qiskit.primitives import StatevectorEstimator, StatevectorSampler
>>> from qprim_grad.optimizers import QNSPSA, EstimatorLoss
>>> circuit = real_amplitudes(2, reps=1)
>>> loss = EstimatorLoss(StatevectorEstimator(), circuit, "ZZ")
>>> fidelity = QNSPSA.get_fidelity(circuit, StatevectorSampler(seed=1))
>>> qnspsa = QNSPSA(fidelity, maxiter=10, learning_rate=0.1, perturbation=0.1, seed=3,
...                 blocking=False)
>>> result = qnspsa.minimize(loss, np.full(4, 0.5))
>>> result.nit, result.jobs, result.fidelity_jobs   # 10 iterations + the final point
(10, 11, 10)
>>> bool(result.fun < loss(np.full(4, 0.5)))
True
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import numpy as np
from qiskit.circuit import ClassicalRegister, ParameterVector, QuantumCircuit

from .evaluators import FidelityEvaluator, LossEvaluator
from .spsa import CALLBACK, SPSA, TERMINATIONCHECKER
from .validation import check_qnspsa_options

__all__ = ["QNSPSA", "FIDELITY", "CircuitFidelity", "FidelityJob"]

#: ``fidelity(values_x, values_y) -> F``: the fidelity of the ansatz with itself at two points
FIDELITY = Callable[[np.ndarray, np.ndarray], Any]


class _Transpiler(Protocol):
    def run(self, circuits: Any, **options: Any) -> Any: ...


class FidelityJob:
    """A submitted fidelity evaluation: :meth:`result` waits for the sampler job."""

    def __init__(self, job: Any, register: str) -> None:
        self.job = job
        self._register = register
        #: the shots the sampler job ran (pairs x shots), known once :meth:`result` returned
        self.shots = 0

    def result(self) -> np.ndarray:
        """The fidelities, one per pair of points (the all-zero outcome frequency)."""
        bits = getattr(self.job.result()[0].data, self._register)
        self.shots = int(bits.num_shots * int(np.prod(bits.shape)))
        zero = np.all(bits.array == 0, axis=-1)  # (pairs, shots)
        return np.mean(zero, axis=-1).reshape(-1)

    def job_id(self) -> str:
        return str(self.job.job_id())


class CircuitFidelity:
    """``F(x, y) = |<0|U(x)† U(y)|0>|^2`` of a parametrised circuit, by compute-uncompute on a
    V2 sampler: one pub, one sampler job per call, however many pairs.

    Built by :meth:`QNSPSA.get_fidelity`. ``fidelity(values_x, values_y)`` takes points of
    shape ``(P,)`` or ``(k, P)`` each and returns ``k`` fidelities (as qiskit-algorithms'
    function does); :meth:`submit` returns at once a :class:`FidelityJob`, which QN-SPSA uses
    to run the sampler job alongside the iteration's estimator job.

    Attributes:
        circuit: the compute-uncompute circuit (transpiled if a transpiler was given).
        sampler: the V2 sampler.
        shots: ``shots=`` passed to every ``sampler.run`` (``None``: the sampler's default).
    """

    def __init__(
        self,
        circuit: QuantumCircuit,
        sampler: Any,
        *,
        transpiler: _Transpiler | None = None,
        transpiler_options: dict[str, Any] | None = None,
        shots: int | None = None,
    ) -> None:
        if not isinstance(circuit, QuantumCircuit):
            raise TypeError(f"circuit must be a QuantumCircuit, not {type(circuit).__name__}.")
        if not callable(getattr(sampler, "run", None)):
            raise TypeError(f"sampler must be a V2 sampler, not {type(sampler).__name__}.")
        self.num_parameters = circuit.num_parameters
        self.sampler = sampler
        self.shots = shots
        bare = circuit.remove_final_measurements(inplace=False) if circuit.num_clbits else circuit
        x = ParameterVector("_qnspsa_x", self.num_parameters)
        y = ParameterVector("_qnspsa_y", self.num_parameters)
        compute = bare.assign_parameters(dict(zip(bare.parameters, x)))
        uncompute = bare.assign_parameters(dict(zip(bare.parameters, y))).inverse()
        fidelity = compute.compose(uncompute)
        register = ClassicalRegister(fidelity.num_qubits, "_qnspsa_meas")
        fidelity.add_register(register)
        fidelity.measure(fidelity.qubits, register)
        if transpiler is not None:
            fidelity = transpiler.run(fidelity, **(transpiler_options or {}))
        self.circuit: QuantumCircuit = fidelity
        self._register = register.name
        position = {p: i for i, p in enumerate(list(x) + list(y))}
        try:
            self._columns = np.array([position[p] for p in fidelity.parameters], dtype=int)
        except KeyError as exc:
            raise ValueError(
                f"The transpiler introduced an unknown parameter {exc.args[0]!r}."
            ) from None

    def _values(self, values_x: Any, values_y: Any) -> np.ndarray:
        p = self.num_parameters
        xs = np.reshape(np.asarray(values_x, dtype=float), (-1, p))
        ys = np.reshape(np.asarray(values_y, dtype=float), (-1, p))
        if len(xs) != len(ys):
            raise ValueError(f"Got {len(xs)} first points and {len(ys)} second points.")
        return np.concatenate([xs, ys], axis=1)[:, self._columns]

    def submit(self, values_x: Any, values_y: Any) -> FidelityJob:
        """Submit the fidelities of the pairs ``(values_x[i], values_y[i])`` as one job."""
        pub = (self.circuit, self._values(values_x, values_y))
        return FidelityJob(self.sampler.run([pub], shots=self.shots), self._register)

    def __call__(self, values_x: Any, values_y: Any) -> np.ndarray:
        """The fidelities of the pairs (one sampler job)."""
        return self.submit(values_x, values_y).result()

    def __repr__(self) -> str:
        return f"CircuitFidelity({type(self.sampler).__name__}, {self.num_parameters} parameters)"


class QNSPSA(SPSA):
    r"""The quantum natural SPSA optimizer (Gacon et al. 2021, arXiv:2103.09232).

    Arguments, defaults and meaning are those of ``qiskit_algorithms.optimizers.QNSPSA``
    (2-SPSA with the Hessian of :math:`-F/2` for the fidelity :math:`F`; no trust region):

    Args:
        fidelity: ``fidelity(x, y)``, the fidelity of the ansatz state with itself at two
            points; :meth:`get_fidelity` builds one on a V2 sampler that evaluates all pairs
            of an iteration in one job.
        maxiter: maximum number of iterations.
        blocking: accept a step only if the loss does not increase by ``allowed_increase``.
        allowed_increase: blocking tolerance; ``None`` calibrates it to twice the standard
            deviation of 25 evaluations at the initial point.
        learning_rate: float, array or callable returning an iterator (with ``perturbation``,
            or neither: then both are calibrated, as for :class:`SPSA`).
        perturbation: finite-difference magnitude; same forms.
        resamplings: directions per estimate (int or ``{iteration: n}``).
        perturbation_dims: perturb only this many randomly chosen coordinates.
        regularization: added to the metric's absolute value (default 0.01).
        hessian_delay: precondition only from iteration ``hessian_delay + 1`` on.
        lse_solver: ``solver(A, b)`` (default ``numpy.linalg.solve``).
        initial_hessian: starting metric average (default identity).
        callback: ``callback(nfev, x, fx, stepsize, accepted)``.
        termination_checker: ``checker(nfev, x, fx, stepsize, accepted) -> bool``.
        last_avg: return the average of the last ``last_avg`` iterates (as :class:`SPSA`).
        seed, checkpoint, progress, precision, blocking_schedule: as for :class:`SPSA`.

    Every option is checked at construction (a negative learning rate or regularization is
    an error, not a run that never moves or diverges).

    ``nfev`` counts loss and fidelity evaluations (6 per direction), as qiskit-algorithms
    does; ``result.jobs`` counts loss calls (estimator jobs), ``result.fidelity_jobs``
    fidelity calls (sampler jobs).
    """

    def __init__(
        self,
        fidelity: FIDELITY,
        maxiter: int = 100,
        blocking: bool = True,
        allowed_increase: float | None = None,
        learning_rate: float | np.ndarray | Callable[[], Iterator] | None = None,
        perturbation: float | np.ndarray | Callable[[], Iterator] | None = None,
        resamplings: int | dict[int, int] = 1,
        perturbation_dims: int | None = None,
        regularization: float | None = None,
        hessian_delay: int = 0,
        lse_solver: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
        initial_hessian: np.ndarray | None = None,
        callback: CALLBACK | None = None,
        termination_checker: TERMINATIONCHECKER | None = None,
        *,
        last_avg: int = 1,
        seed: int | np.random.Generator | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        progress: bool = False,
        precision: float | Callable[[int], float] | str | None = None,
        blocking_schedule: str = "exact",
    ) -> None:
        if not callable(fidelity):
            raise TypeError(
                "fidelity must be a callable fidelity(x, y), e.g. "
                f"QNSPSA.get_fidelity(circuit, sampler); got {type(fidelity).__name__}."
            )
        spsa_arguments = dict(locals())  # every other argument is SPSA's
        for name in ("self", "fidelity", "__class__"):
            spsa_arguments.pop(name, None)
        check_qnspsa_options(spsa_arguments)
        # a natural-gradient step must not be rescaled
        super().__init__(trust_region=False, second_order=True, **spsa_arguments)
        self.fidelity = fidelity

    @property
    def settings(self) -> dict[str, Any]:
        """Constructor arguments, so that ``QNSPSA(**qnspsa.settings)`` rebuilds it."""
        settings = super().settings
        settings.pop("trust_region")
        settings.pop("second_order")
        settings["fidelity"] = self.fidelity
        return settings

    @staticmethod
    def get_fidelity(
        circuit: QuantumCircuit,
        sampler: Any,
        *,
        transpiler: _Transpiler | None = None,
        transpiler_options: dict[str, Any] | None = None,
    ) -> CircuitFidelity:
        r"""The fidelity :math:`F(x, y) = |\langle 0|U^\dagger(x) U(y)|0\rangle|^2` of
        ``circuit`` with itself, by compute-uncompute on the V2 ``sampler``.

        Args:
            circuit: the ansatz :math:`U`.
            sampler: any V2 sampler.
            transpiler: an object with ``run(circuit, **options)`` (e.g. a pass manager) that
                maps the compute-uncompute circuit onto hardware (needed for ISA circuits:
                the inverse of a native gate need not be native).
            transpiler_options: keyword arguments for ``transpiler.run``.

        Returns:
            A :class:`CircuitFidelity`: ``fidelity(values_x, values_y)`` returns one value
            per pair; all pairs of a call go to the sampler as one job.
        """
        return CircuitFidelity(
            circuit, sampler, transpiler=transpiler, transpiler_options=transpiler_options
        )

    # ---- the run: SPSA's steps with the curvature from the fidelity ----------------------
    label = "QNSPSA"
    curvature = "fidelity"

    def _evaluator(self, fun: Any) -> Any:
        grouped = self._max_evals_grouped
        return FidelityEvaluator(LossEvaluator(fun, grouped), self.fidelity, grouped)

    def _check_problem(self, fun: Any, x0: Any) -> None:
        super()._check_problem(fun, x0)
        wanted = getattr(self.fidelity, "num_parameters", None)
        if not isinstance(wanted, int):
            return
        for given, what in ((getattr(fun, "num_parameters", None), "the loss' circuit"),
                            (None if x0 is None else np.size(x0), "x0")):  # fmt: skip
            if isinstance(given, (int, np.integer)) and given != wanted:
                raise ValueError(
                    f"The fidelity was built for a circuit with {wanted} parameters, but "
                    f"{what} has {given}. Build it from the loss' circuit: "
                    "QNSPSA.get_fidelity(circuit, sampler)."
                )
