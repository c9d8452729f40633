"""Exhaustive enumeration of every input of a neuron: the NumPy face and the exact slow path.

All faces of this op (``exhaustive_ref`` here, ``exhaustive_cpu`` in :mod:`roon.kernels.cpu`,
``exhaustive_triton`` in :mod:`roon.kernels.exhaustive_triton`) take the int64 rows of
:func:`roon.kernels.exact.to_int64` over *sorted* positions and return the same
:class:`ExhaustiveCounts`, bit for bit:

* input ``m`` has digit ``i`` (base 2 for ``binary``, base 3 for ``signed``) for sorted
  position ``i``; digit ``d`` means ``x_i = DIGIT_VALUES[domain][d]``;
* with ``s = w·x + b`` on int64, the input is excited iff ``s > tol`` and *uncertain* iff
  ``|s| <= tol`` and ``tol > 0`` (rows with ``tol = 0`` are exact and never uncertain);
* ``min_abs`` is ``min_x |s|``; the truth table bit ``m`` is ``s > tol``.

Rows with uncertain inputs are redone by :func:`exhaustive_exact` on exact Python
integers (:func:`roon.kernels.exact.to_integers`): the slow path every backend shares.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from roon.kernels.exact import to_integers

__all__ = [
    "DIGIT_VALUES",
    "ExhaustiveCounts",
    "exhaustive_ref",
    "exhaustive_exact",
    "n_inputs",
    "table_words",
    "table_hex",
]

# Value of each digit of an input index, per domain.
DIGIT_VALUES = {"binary": (0, 1), "signed": (-1, 0, 1)}

# Digits enumerated as one table of low sums; every other digit indexes a row of them.
# 2^12 and 3^7 sums (32 KiB / 17 KiB of int64) keep a row in L1 and leave room to batch
# neurons in one NumPy call at small fan-in.
_LOW_DIGITS = {"binary": 12, "signed": 7}

# Elements of the largest temporary array: 2^18 int64 = 2 MiB, so memory stays bounded
# (a fan-in-20 neuron never allocates its 2^20 sums at once, let alone 2^20 x 20 bits).
CHUNK_ELEMENTS = 1 << 18

# Truth-table bits of the neurons of one chunk (their packed bytes are 1/8 of it).
_TABLE_CHUNK_BITS = 1 << 24


@dataclass(frozen=True)
class ExhaustiveCounts:
    """What an exhaustive pass found for a batch of neurons (all faces return this).

    Attributes:
        fire: ``[N]`` int64, excited inputs (``s > tol``).
        chow: ``[N, n]`` int64, per sorted position ``i``: Σ over excited inputs of ``x_i``.
        min_abs: ``[N]`` int64 (object for the exact path), ``min_x |s|``.
        uncertain: ``[N]`` int64, inputs with ``|s| <= tol`` in rows with ``tol > 0``.
        table: ``[N, table_words]`` uint64 little-endian bit words, or None.
    """

    fire: np.ndarray
    chow: np.ndarray
    min_abs: np.ndarray
    uncertain: np.ndarray
    table: np.ndarray | None


def n_inputs(domain: str, n: int) -> int:
    """Number of inputs of a fan-in-``n`` neuron: ``2^n`` or ``3^n``."""
    return len(DIGIT_VALUES[domain]) ** n


def table_words(domain: str, n: int) -> int:
    """64-bit words in one packed truth table."""
    return -(-n_inputs(domain, n) // 64)


def table_hex(words: np.ndarray) -> str:
    """Lower-case hex of ``Σ_m bit_m · 2^m`` for one row of little-endian table words."""
    value = int.from_bytes(np.ascontiguousarray(words, dtype="<u8").tobytes(), "little")
    return format(value, "x")


def _digit_sums(w: np.ndarray, vals: tuple[int, ...]) -> np.ndarray:
    """``[N, k]`` weights → ``[N, r^k]`` sums ``Σ_i vals[d_i]·w_i`` at index ``Σ_i d_i·r^i``.

    Each new sum is one add to a smaller one (r-fold extension), never a matrix product.
    """
    out = np.zeros((w.shape[0], 1), dtype=w.dtype)
    for i in range(w.shape[1]):
        col = w[:, i : i + 1]
        parts = [out if v == 0 else (out + col if v == 1 else out - col) for v in vals]
        out = np.concatenate(parts, axis=1)
    return out


def _digit_moments(counts: np.ndarray, vals: tuple[int, ...], k: int) -> np.ndarray:
    """``[N, r^k]`` counts per index → ``[N, k]``: Σ_index count · vals[digit_i(index)]."""
    r = len(vals)
    out = np.zeros((counts.shape[0], k), dtype=np.int64)
    v = np.asarray(vals, dtype=np.int64)
    for i in range(k):
        per_digit = counts.reshape(counts.shape[0], r ** (k - 1 - i), r, r**i).sum(axis=(1, 3))
        out[:, i] = per_digit @ v
    return out


def exhaustive_ref(
    weights: np.ndarray,
    bias: np.ndarray,
    tol: np.ndarray,
    domain: str = "binary",
    *,
    want_table: bool = False,
) -> ExhaustiveCounts:
    """Enumerate every input of every neuron with NumPy (the oracle of the other faces).

    Args:
        weights: ``[N, n]`` int64 (or object, Python ints) over sorted positions.
        bias: ``[N]`` same dtype.
        tol: ``[N]`` int64 tolerance of each row (0 = exact).
        domain: ``binary`` or ``signed``.
        want_table: also return the packed truth tables.

    Returns:
        :class:`ExhaustiveCounts`; see the module docstring for the rule.
    """
    w = np.asarray(weights)
    b = np.asarray(bias)
    t = np.asarray(tol)
    n_rows, n = w.shape
    vals = DIGIT_VALUES[domain]
    r = len(vals)
    low = min(n, _LOW_DIGITS[domain])
    n_low, n_high = r**low, r ** (n - low)
    fire = np.zeros(n_rows, dtype=np.int64)
    chow = np.zeros((n_rows, n), dtype=np.int64)
    min_abs = np.zeros(n_rows, dtype=w.dtype)
    uncertain = np.zeros(n_rows, dtype=np.int64)
    # packed table bytes (bit m of a row is bit m % 8 of byte m // 8), written block by
    # block: a neuron's unpacked bits are never held at once (3^20 would be 3.5 GB)
    words = table_words(domain, n)
    table_bytes = np.zeros((n_rows, 8 * words), dtype=np.uint8) if want_table else None

    per_chunk = max(1, CHUNK_ELEMENTS // n_low)
    if want_table:
        # few enough neurons per chunk that a block holds >= 8 high rows (byte-aligned)
        per_chunk = max(1, min(per_chunk, CHUNK_ELEMENTS // (8 * n_low)))
        per_chunk = max(1, min(per_chunk, _TABLE_CHUNK_BITS // (n_low * n_high)))
    for a in range(0, n_rows, per_chunk):
        rows = slice(a, min(a + per_chunk, n_rows))
        lows = _digit_sums(w[rows, :low], vals)  # [c, n_low]
        highs = _digit_sums(w[rows, low:], vals) + b[rows, None]  # [c, n_high]
        c = lows.shape[0]
        tt = t[rows, None, None]
        inexact = tt > 0
        col_count = np.zeros((c, n_low), dtype=np.int64)
        high_count = np.zeros((c, n_high), dtype=np.int64)
        step = max(1, CHUNK_ELEMENTS // (c * n_low))
        if table_bytes is not None and step < n_high:
            step = max(8, step // 8 * 8)  # every block starts on a byte boundary
        for h0 in range(0, n_high, step):
            s = lows[:, None, :] + highs[:, h0 : h0 + step, None]  # [c, hb, n_low]
            excited = s > tt
            col_count += excited.sum(axis=1)
            high_count[:, h0 : h0 + s.shape[1]] = excited.sum(axis=2)
            mag = np.abs(s)
            block_min = mag.min(axis=(1, 2))
            min_abs[rows] = block_min if h0 == 0 else np.minimum(min_abs[rows], block_min)
            uncertain[rows] += ((mag <= tt) & inexact).sum(axis=(1, 2))
            if table_bytes is not None:
                packed = np.packbits(excited.reshape(c, -1), axis=1, bitorder="little")
                start = h0 * n_low // 8
                table_bytes[rows, start : start + packed.shape[1]] = packed
        fire[rows] = high_count.sum(axis=1)
        chow[rows, :low] = _digit_moments(col_count, vals, low)
        chow[rows, low:] = _digit_moments(high_count, vals, n - low)
    table = None if table_bytes is None else table_bytes.view("<u8").astype(np.uint64)
    return ExhaustiveCounts(fire, chow, min_abs, uncertain, table)


def exhaustive_exact(
    weights: np.ndarray, bias: float, domain: str = "binary", *, want_table: bool = False
) -> tuple[ExhaustiveCounts, int]:
    """The slow path: one neuron enumerated on exact Python integers (no rounding at all).

    Args:
        weights: ``[n]`` float weights, already sorted ascending.
        bias: the float bias.
        domain: ``binary`` or ``signed``.
        want_table: also return the packed truth table.

    Returns:
        ``(counts, scale)``: counts for a batch of one (``min_abs`` holds a Python int) and
        ``Σ|w_int| + |b_int|`` of the exact integers, the margin's denominator.
    """
    ints, b_int = to_integers(weights, bias)
    w = np.empty((1, len(ints)), dtype=object)
    w[0, :] = ints
    b = np.empty(1, dtype=object)
    b[0] = b_int
    counts = exhaustive_ref(w, b, np.zeros(1, dtype=np.int64), domain, want_table=want_table)
    return counts, sum(abs(i) for i in ints) + abs(b_int)
