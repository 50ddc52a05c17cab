"""The SPSA run state as a plain object that can be written to JSON and read back.

Everything a run needs to continue lives here: the iterate, the pending candidate (batched
mode), the iteration counter ``k`` (the position in the gain sequences), the smoothed
Hessian, the generator state (``Generator.bit_generator.state``), the calibrated gains and
the history. JSON stores float64 values exactly, so a resumed run repeats the original bit
for bit.

>>> import numpy as np
>>> s = SPSAState.initial(np.zeros(2), np.random.default_rng(3), mode="batched")
>>> SPSAState.from_dict(s.to_dict()).k
0
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SPSAState", "SPSAHistory", "generator_from_state"]

_FORMAT = "qprim_grad.spsa_state/1"


@dataclass
class SPSAHistory:
    """One row per resolved step (one per iteration without blocking).

    ``loss`` is the loss measured at the proposed point, ``accepted`` the blocking decision,
    ``stepsize`` the norm of the update, ``nfev``/``jobs`` the running counts when the row
    was written (``jobs`` counts calls of the loss' ``batch``, or of the loss itself for a
    plain callable).
    """

    iteration: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    stepsize: list[float] = field(default_factory=list)
    accepted: list[bool] = field(default_factory=list)
    nfev: list[int] = field(default_factory=list)
    jobs: list[int] = field(default_factory=list)

    def append(
        self, iteration: int, loss: float, stepsize: float, accepted: bool, nfev: int, jobs: int
    ) -> None:
        self.iteration.append(int(iteration))
        self.loss.append(float(loss))
        self.stepsize.append(float(stepsize))
        self.accepted.append(bool(accepted))
        self.nfev.append(int(nfev))
        self.jobs.append(int(jobs))

    def __len__(self) -> int:
        return len(self.iteration)


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


@dataclass
class SPSAState:
    """Where an SPSA run stands after an iteration.

    Attributes:
        mode: ``"batched"`` (one job per iteration) or ``"sequential"`` (plain callable).
        x: the current (last accepted) iterate.
        fx: the loss measured at ``x`` (``None`` until known).
        k: iterations done; the next one uses gains ``a_{k+1}``, ``c_{k+1}``.
        candidate: batched mode: the proposed next iterate, checked in the next job.
        candidate_step: norm of the step that produced ``candidate``.
        hessian: 2-SPSA's smoothed Hessian (``None`` for first-order SPSA).
        rng: ``Generator.bit_generator.state``.
        last_steps: the last accepted iterates kept for ``last_avg``.
        allowed_increase: blocking threshold (calibrated in the first job if not given).
        gains: calibrated power series ``{"learning_rate": {...}, "perturbation": {...}}``.
        nfev, njev, jobs: evaluation, gradient-estimate and job counts.
        fidelity_jobs: QN-SPSA: calls of the fidelity (sampler jobs).
        stopped: the termination checker ended the run.
        history: see :class:`SPSAHistory`.
    """

    mode: str
    x: np.ndarray
    rng: dict[str, Any]
    fx: float | None = None
    k: int = 0
    candidate: np.ndarray | None = None
    candidate_step: float = 0.0
    hessian: np.ndarray | None = None
    last_steps: list[np.ndarray] = field(default_factory=list)
    allowed_increase: float | None = None
    gains: dict[str, dict[str, float]] | None = None
    nfev: int = 0
    njev: int = 0
    jobs: int = 0
    fidelity_jobs: int = 0
    stopped: bool = False
    history: SPSAHistory = field(default_factory=SPSAHistory)
    settings: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def initial(
        cls, x0: np.ndarray, rng: np.random.Generator, mode: str, **kwargs: Any
    ) -> SPSAState:
        """A fresh state at ``x0`` (``rng``'s current state is recorded, not copied later)."""
        x0 = np.array(x0, dtype=float)
        return cls(mode=mode, x=x0, rng=dict(rng.bit_generator.state), last_steps=[x0], **kwargs)

    def generator(self) -> np.random.Generator:
        """A generator continuing from the saved state."""
        return generator_from_state(self.rng)

    # ---- serialisation ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (arrays tagged so they come back as arrays)."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["history"] = asdict(self.history)
        return {"format": _FORMAT, **_encode(data)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SPSAState:
        data = dict(data)
        fmt = data.pop("format", _FORMAT)
        if fmt != _FORMAT:
            raise ValueError(f"Unknown SPSA state format {fmt!r}; expected {_FORMAT!r}.")
        data = _decode(data)
        data["history"] = SPSAHistory(**data["history"])
        data["x"] = np.asarray(data["x"], dtype=float)
        data["last_steps"] = [np.asarray(v, dtype=float) for v in data["last_steps"]]
        return cls(**data)

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
    def load(cls, path: str | os.PathLike[str]) -> SPSAState:
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
                f"SPSA checkpoint {os.fspath(path)!r} cannot be read: it is corrupted, "
                f"truncated or not an SPSA state ({type(exc).__name__}: {exc})"
            ) from exc
