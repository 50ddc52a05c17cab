"""Outcome distributions of the sampler's inner results: sampled (``BitArray`` registers,
counted per row over a shared, sorted outcome list) or exact (``get_probabilities()``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
from qiskit.primitives.containers import BitArray

from .results import object_array

__all__ = [
    "SampledDistribution",
    "ExactDistribution",
    "distribution",
    "bitstrings",
    "is_exact_register",
]


def _keys(bits: BitArray) -> np.ndarray:
    """One key per shot whose order is the outcome's integer order: ``uint64`` for up to
    64 bits, else a fixed-width big-endian byte string."""
    array = np.ascontiguousarray(bits.array)
    num_bytes = array.shape[-1]
    if num_bytes <= 8:
        padded = np.zeros(array.shape[:-1] + (8,), dtype=np.uint8)
        padded[..., 8 - num_bytes :] = array
        return padded.view(">u8")[..., 0].astype(np.uint64)
    return array.view(np.dtype((np.void, num_bytes)))[..., 0]


def joined_keys(arrays: list[BitArray]) -> np.ndarray:
    """Keys over the concatenation of registers (first register = least significant)."""
    if len(arrays) == 1:
        return _keys(arrays[0])
    if sum(bits.num_bits for bits in arrays) > 64:
        return _keys(BitArray.concatenate_bits(arrays))
    total = np.zeros(arrays[0].array.shape[:-1], dtype=np.uint64)
    offset = 0
    for bits in arrays:
        total |= _keys(bits) << np.uint64(offset)
        offset += bits.num_bits
    return total


def bitstrings(keys: np.ndarray, num_bits: int) -> list[str]:
    if keys.dtype == np.uint64:
        if not len(keys) or not num_bits:
            return ["" for _ in keys]
        shifts = np.arange(num_bits - 1, -1, -1, dtype=np.uint64)
        bits = (keys[:, None] >> shifts) & np.uint64(1)
        chars = np.where(bits == 1, "1", "0")  # (M, num_bits) of one-character strings
        return cast("list[str]", chars.view(f"<U{num_bits}")[:, 0].tolist())
    raw = np.frombuffer(keys.tobytes(), dtype=np.uint8).reshape(len(keys), -1)
    unpacked = np.unpackbits(raw, axis=1)[:, raw.shape[1] * 8 - num_bits :]
    return ["".join(row) for row in np.where(unpacked == 1, "1", "0")]


class SampledDistribution:
    """Per-row outcome frequencies of one inner result over a shared outcome list."""

    def __init__(self, keys: np.ndarray, sign: np.ndarray | None) -> None:
        self.keys = keys  # (K, *S, shots)
        self.sign = sign

    exact = False

    def outcome_keys(self) -> np.ndarray:
        """Every observed outcome key (with repetitions)."""
        return self.keys.ravel()

    def frequencies(self, outcomes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(signed or plain probabilities, their variance), each ``(K, *S, M)``."""
        rows = int(np.prod(self.keys.shape[:-1]))
        shots = self.keys.shape[-1]
        size = len(outcomes)
        index = np.searchsorted(outcomes, self.keys).reshape(rows, shots)
        flat = (np.arange(rows)[:, None] * size + index).ravel()
        shape = self.keys.shape[:-1] + (size,)
        plain = np.bincount(flat, minlength=rows * size).reshape(shape) / shots
        if self.sign is None:
            return plain, plain * (1.0 - plain) / shots
        signed = np.bincount(flat, weights=self.sign.ravel(), minlength=rows * size)
        signed = signed.reshape(shape) / shots
        return signed, (plain - signed**2) / shots


def bitstring_keys(bitstrings: Sequence[str], num_bits: int) -> np.ndarray:
    """The keys :func:`_keys` gives, from bitstrings of ``num_bits`` bits."""
    if num_bits <= 64:
        return np.array([int(b, 2) if b else 0 for b in bitstrings], dtype=np.uint64)
    width = -(-num_bits // 8)
    raw = b"".join(int(b, 2).to_bytes(width, "big") for b in bitstrings)
    return np.frombuffer(raw, dtype=np.dtype((np.void, width)))


def is_exact_register(value: Any) -> bool:
    """Whether a result field holds exact probabilities rather than shots: an object with
    ``get_probabilities()`` (e.g. qiskit-machine-learning's ``ExactProbArray`` /
    ``ExactProbNDArray``), or an object array of such (after a split job)."""
    if isinstance(value, BitArray):
        return False
    if isinstance(value, np.ndarray):
        return value.dtype == object and all(is_exact_register(v) for v in value.flat)
    return callable(getattr(value, "get_probabilities", None))


class ExactDistribution:
    """Exact outcome probabilities of one inner result (no shot noise)."""

    exact = True

    def __init__(self, fields: list[Any], aux_field: Any | None, num_bits: int) -> None:
        columns = [object_array(f) for f in fields + ([] if aux_field is None else [aux_field])]
        self.shape = columns[0].shape
        rows: list[dict[str, float]] = []
        signed_rows: list[dict[str, float]] = []
        for index in np.ndindex(self.shape):
            items: list[Any] = [column[index] for column in columns]
            joint = items[0] if len(items) == 1 else _concatenate(items)
            plain, signed = _row_probabilities(joint, num_bits, aux_field is not None)
            rows.append(plain)
            signed_rows.append(signed)
        labels = sorted({b for row in rows for b in row})
        keys = bitstring_keys(labels, num_bits)
        order = np.argsort(keys, kind="stable")
        self.keys = keys[order]
        position = {labels[i]: j for j, i in enumerate(order)}
        self.plain = _table(rows, position)
        self.signed = None if aux_field is None else _table(signed_rows, position)

    def outcome_keys(self) -> np.ndarray:
        return self.keys

    def frequencies(self, outcomes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(exact signed or plain probabilities, zero variance), each ``(K, *S, M)``."""
        out = np.zeros(self.shape + (len(outcomes),))
        source = self.plain if self.signed is None else self.signed
        out.reshape(-1, len(outcomes))[:, np.searchsorted(outcomes, self.keys)] = source
        return out, np.zeros_like(out)


def _row_probabilities(
    joint: Any, num_bits: int, signed_by_aux: bool
) -> tuple[dict[str, float], dict[str, float]]:
    """``{outcome: p}`` of one row over the pub's bits, and (with ``signed_by_aux``: the
    auxiliary register is the leftmost bit) the probabilities signed by that bit."""
    plain: dict[str, float] = {}
    signed: dict[str, float] = {}
    for bits, p in joint.get_probabilities().items():
        head, tail = bits[: len(bits) - num_bits], bits[len(bits) - num_bits :]
        plain[tail] = plain.get(tail, 0.0) + p
        if signed_by_aux:
            sign = -1.0 if head[-1] == "1" else 1.0
            signed[tail] = signed.get(tail, 0.0) + sign * p
    return plain, signed


def _table(rows: list[dict[str, float]], position: dict[str, int]) -> np.ndarray:
    """Rows of ``{outcome: p}`` as a ``(rows, outcomes)`` array in ``position`` order."""
    table = np.zeros((len(rows), len(position)))
    for r, row in enumerate(rows):
        for bits, p in row.items():
            table[r, position[bits]] = p
    return table


def _concatenate(items: list[Any]) -> Any:
    """Exact containers of several registers joined (first = least significant), as
    ``BitArray.concatenate_bits`` joins bits."""
    join = getattr(type(items[0]), "concatenate_bits", None)
    if join is None:
        raise TypeError(
            f"the sampler returned {type(items[0]).__name__} registers without "
            "concatenate_bits(); cannot form the joint distribution of several registers"
        )
    return join(items)


def distribution(
    result: Any, registers: list[str], aux: str | None, num_bits: int
) -> SampledDistribution | ExactDistribution:
    """The outcome distribution of one inner result over the pub's registers (``aux``: the
    one-bit register whose outcome signs the probabilities)."""
    arrays = [getattr(result.data, name) for name in registers]
    aux_field = None if aux is None else getattr(result.data, aux)
    fields = arrays + ([] if aux_field is None else [aux_field])
    if all(is_exact_register(f) for f in fields):
        return ExactDistribution(arrays, aux_field, num_bits)
    for name, value in zip(registers + [aux], fields):
        if not isinstance(value, BitArray):
            raise TypeError(
                f"register {name!r} of the inner sampler's result is a "
                f"{type(value).__module__}.{type(value).__name__}; GradientSampler reads "
                "BitArray registers (sampled) or exact-probability containers with "
                "get_probabilities() (e.g. qiskit-machine-learning's ExactProbArray)"
            )
    sign = None
    if aux is not None:
        aux_bits = getattr(result.data, aux).array[..., -1] & 1
        sign = 1.0 - 2.0 * aux_bits
    return SampledDistribution(joined_keys(arrays), sign)
