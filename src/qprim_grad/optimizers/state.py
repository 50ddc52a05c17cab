"""The state of an optimizer run as plain frozen objects that can be written to JSON and
read back.

Everything a run needs to continue lives in its state: the iterate, the pending candidate,
the iteration counter ``k`` (the position in the gain sequences), the generator state
(``Generator.bit_generator.state``), the counts and the history. :class:`SPSAState` holds
SPSA's, 2-SPSA's and QN-SPSA's runs (smoothed Hessian, calibrated gains, blocking),
:class:`NaturalGradientState` the natural gradient's. JSON stores float64 values exactly, so
a resumed run repeats the original bit for bit.

>>> import numpy as np
>>> s = SPSAState.initial(np.zeros(2), np.random.default_rng(3), mode="batched")
>>> SPSAState.from_dict(s.to_dict()).k
0
>>> load_state_dict(s.to_dict()).__class__.__name__
'SPSAState'
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

__all__ = [
    "RunState",
    "SPSAState",
    "NaturalGradientState",
    "SPSAHistory",
    "History",
    "generator_from_state",
    "load_state",
    "load_state_dict",
]

_S = TypeVar("_S", bound="RunState")


@dataclass
class History:
    """One row per decided step (one per iteration, rejected ones included).

    ``loss`` is the loss measured at the proposed point, ``accepted`` the blocking decision,
    ``stepsize`` the norm of the update; ``nfev``, ``jobs`` (calls of the loss: estimator
    jobs), ``fidelity_jobs`` (sampler jobs of QN-SPSA's fidelity) and ``shots`` (the shots
    the run's jobs asked for, calibration included) are the running counts when the row was
    written. ``resumed_at`` lists the iterations after which a run was resumed.
    """

    iteration: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    stepsize: list[float] = field(default_factory=list)
    accepted: list[bool] = field(default_factory=list)
    nfev: list[int] = field(default_factory=list)
    jobs: list[int] = field(default_factory=list)
    shots: list[int] = field(default_factory=list)
    fidelity_jobs: list[int] = field(default_factory=list)
    resumed_at: list[int] = field(default_factory=list)

    def append(
        self,
        iteration: int,
        loss: float,
        stepsize: float,
        accepted: bool,
        nfev: int,
        jobs: int,
        shots: int = 0,
        fidelity_jobs: int = 0,
    ) -> None:
        self.iteration.append(int(iteration))
        self.loss.append(float(loss))
        self.stepsize.append(float(stepsize))
        self.accepted.append(bool(accepted))
        self.nfev.append(int(nfev))
        self.jobs.append(int(jobs))
        self.shots.append(int(shots))
        self.fidelity_jobs.append(int(fidelity_jobs))

    def __len__(self) -> int:
        return len(self.iteration)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        rows = len(data.get("iteration", []))
        data = dict(data)
        for name in ("shots", "fidelity_jobs"):  # absent from states of older format minors
            data.setdefault(name, [0] * rows)
        return cls(**data)


#: the history of an SPSA (or any) run: see :class:`History`
SPSAHistory = History


def _encode(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, dict):
        return {key: _encode(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return np.array(value["__ndarray__"], dtype=value["dtype"])
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


def generator_from_state(state: dict[str, Any]) -> np.random.Generator:
    """Rebuild a :class:`numpy.random.Generator` from ``bit_generator.state``."""
    bit_generator = getattr(np.random, state["bit_generator"])()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


#: optimizer state classes by their checkpoint format (filled as each class is defined)
_STATES: dict[str, type[RunState]] = {}


@dataclass(frozen=True)
class RunState:
    """What every optimizer run records (frozen: steps return new states; only the history,
    a log, grows in place).

    Attributes:
        x: the current (last accepted) iterate.
        rng: ``Generator.bit_generator.state``.
        fx: the loss measured at ``x`` (``None`` until known).
        k: iterations done.
        phase: which request of an iteration comes next (``"iterate"`` at a boundary).
        candidate: the proposed next iterate, measured by the next job.
        candidate_step: norm of the step that produced ``candidate``.
        nfev, njev, jobs, shots: evaluation, gradient, job and shot counts.
        stopped: the termination checker ended the run.
        done: the run is finished; ``result_x`` / ``result_fx`` are its answer.
        result_x, result_fx: where the run ends if it ends now.
        optimizer: the name of the optimizer that wrote the state.
        precision: the adaptive precision rule's running statistics.
        pending: data an iteration carries between two of its requests.
        history: see :class:`History`.
        settings: the optimizer options a resumed run must share.
    """

    FORMAT: ClassVar[str] = ""
    LABEL: ClassVar[str] = "optimizer"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.FORMAT:  # every optimizer's state is readable by load_state
            _STATES[cls.FORMAT] = cls

    x: np.ndarray
    rng: dict[str, Any]
    fx: float | None = None
    k: int = 0
    phase: str = "iterate"
    candidate: np.ndarray | None = None
    candidate_step: float = 0.0
    nfev: int = 0
    njev: int = 0
    jobs: int = 0
    shots: int = 0
    stopped: bool = False
    done: bool = False
    result_x: np.ndarray | None = None
    result_fx: float | None = None
    optimizer: str | None = None
    precision: dict[str, float] = field(default_factory=dict)
    pending: dict[str, Any] = field(default_factory=dict)
    history: History = field(default_factory=History)
    settings: dict[str, Any] = field(default_factory=dict)

    def generator(self) -> np.random.Generator:
        """A generator continuing from the saved state."""
        return generator_from_state(self.rng)

    # ---- serialisation ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (arrays tagged so they come back as arrays)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["history"] = asdict(self.history)
        return {"format": self.FORMAT, **_encode(data)}

    @classmethod
    def from_dict(cls: type[_S], data: dict[str, Any]) -> _S:
        data = dict(data)
        fmt = data.pop("format", cls.FORMAT)
        if fmt != cls.FORMAT:
            raise ValueError(
                f"This is a {fmt!r} state, not a {cls.__name__} ({cls.FORMAT!r}); resume it "
                "with the optimizer that saved it."
            )
        data = _decode(data)
        data["history"] = History.from_dict(data["history"])
        data["x"] = np.asarray(data["x"], dtype=float)
        for name in ("candidate", "result_x"):
            if data.get(name) is not None:
                data[name] = np.asarray(data[name], dtype=float)
        if "last_steps" in data:
            data["last_steps"] = [np.asarray(v, dtype=float) for v in data["last_steps"]]
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the state as JSON (atomically: a crash never leaves a half-written file)."""
        path = Path(path)
        text = json.dumps(self.to_dict())
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    @classmethod
    def load(cls: type[_S], path: str | os.PathLike[str]) -> _S:
        """Read a state written by :meth:`save`; a file that is not one (corrupted,
        truncated, another format) gives a ``ValueError`` naming it."""
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
            if not isinstance(data, dict):
                raise ValueError(f"expected a JSON object, got {type(data).__name__}")
            return cls.from_dict(data)
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"{cls.LABEL} checkpoint {os.fspath(path)!r} cannot be read: it is "
                f"corrupted, truncated or not an {cls.LABEL} state ({type(exc).__name__}: {exc})"
            ) from exc


@dataclass(frozen=True)
class SPSAState(RunState):
    """Where an SPSA, 2-SPSA or QN-SPSA run stands (see :class:`RunState` for the rest).

    Attributes:
        mode: ``"batched"`` (one job per iteration) or ``"sequential"`` (plain callable).
        hessian: 2-SPSA's (QN-SPSA's: the metric's) smoothed Hessian, else ``None``.
        last_steps: the last accepted iterates kept for ``last_avg``.
        allowed_increase: blocking threshold (calibrated in the first job if not given).
        gains: calibrated power series ``{"learning_rate": {...}, "perturbation": {...}}``.
        fidelity_jobs: QN-SPSA: calls of the fidelity (sampler jobs).
        fidelity_nfev: QN-SPSA: fidelity evaluations (pairs; ``nfev`` counts them too).
    """

    FORMAT: ClassVar[str] = "qprim_grad.spsa_state/1"
    LABEL: ClassVar[str] = "SPSA"

    mode: str = "batched"
    hessian: np.ndarray | None = None
    last_steps: list[np.ndarray] = field(default_factory=list)
    allowed_increase: float | None = None
    gains: dict[str, dict[str, float]] | None = None
    fidelity_jobs: int = 0
    fidelity_nfev: int = 0

    @classmethod
    def initial(
        cls, x0: np.ndarray, rng: np.random.Generator, mode: str, **kwargs: Any
    ) -> SPSAState:
        """A fresh state at ``x0`` (``rng``'s current state is recorded, not copied later)."""
        x0 = np.array(x0, dtype=float)
        return cls(x=x0, rng=dict(rng.bit_generator.state), mode=mode, last_steps=[x0], **kwargs)


@dataclass(frozen=True)
class NaturalGradientState(RunState):
    """Where a :class:`~qprim_grad.optimizers.NaturalGradient` run stands (see
    :class:`RunState`); ``guarded`` counts the steps the step-length cap shortened."""

    FORMAT: ClassVar[str] = "qprim_grad.natural_state/1"
    LABEL: ClassVar[str] = "NaturalGradient"

    guarded: int = 0

    @classmethod
    def initial(
        cls, x0: np.ndarray, rng: np.random.Generator, **kwargs: Any
    ) -> NaturalGradientState:
        return cls(x=np.array(x0, dtype=float), rng=dict(rng.bit_generator.state), **kwargs)


def load_state_dict(data: dict[str, Any]) -> RunState:
    """The state a :meth:`RunState.to_dict` dictionary holds, of the class its format names."""
    cls = _STATES.get(str(data.get("format")))
    if cls is None:
        raise ValueError(f"Unknown optimizer state format {data.get('format')!r}.")
    return cls.from_dict(data)


def load_state(path: str | os.PathLike[str]) -> RunState:
    """Read any optimizer checkpoint (:class:`SPSAState`, :class:`NaturalGradientState`,
    ``ShotAdaptiveState``, ...)."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    return load_state_dict(data)
