"""Exact Chow parameters by meet-in-the-middle counting, and the exact-decision rows.

A :class:`Row` is one neuron in integer arithmetic, in one of two forms:

* *fixed*: the int64 fixed point of :func:`roon.kernels.exact.to_int64`. Every
  pre-activation ``w·x + b`` at an input ``x ∈ {0,1}^n`` or ``{-1,0,1}^n`` — and every
  partial sum below, which is always such a pre-activation, each row term appearing at
  most once with coefficient ±1 — is within ``tol`` of the exact scaled value. A
  decision ``s > tol`` or ``s < -tol`` is therefore exact; ``|s| <= tol`` is *uncertain*
  and raises :class:`Uncertain`.
* *exact*: numpy object arrays of the Python integers of
  :func:`roon.kernels.exact.to_integers` (``tol = 0``); slow but exact at any size.

:func:`solve` runs a computation on the fixed row and, only if it meets an uncertain
decision, again on the exact row. The same code serves both forms because numpy sorts,
searches and sums object arrays with Python's exact integer comparisons.

The meet-in-the-middle count (Horowitz & Sahni 1974) splits the inputs into
halves ``A`` and ``B``, sorts the ``2^|B|`` subset sums of ``B`` once, and finds for every
subset of ``A`` how many subsets of ``B`` complete it to an excited input: ``O(n·2^(n/2))``
time and ``O(2^(n/2))`` memory, against ``O(2^n)`` for enumeration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from roon.errors import InvalidArgumentError
from roon.kernels.exact import to_int64, to_integers

__all__ = [
    "MITM_MAX",
    "NO_HIGH",
    "NO_LOW",
    "MitmRows",
    "mitm_ref",
    "Row",
    "Uncertain",
    "MitmCounts",
    "fixed_row",
    "exact_row",
    "solve",
    "subset_sums",
    "sorted_subset_sums",
    "signed_sums",
    "chow_mitm",
]

# Largest fan-in counted by MITM. The compiled face streams part of one half and keeps
# 16·2^nb + 24·2^a bytes (_mitm.c): 470 MB and ~0.45 s per neuron at n = 50, 54 being
# the most its uint32 per-position counts allow with 2^23 sums in memory (about 4 s per
# neuron). The NumPy face holds both halves: ~3 GB at n = 54, for tests and machines
# without a C compiler.
MITM_MAX = 54

# high / low of a row with no excited input / no input that is not excited.
NO_HIGH = np.iinfo(np.int64).max
NO_LOW = np.iinfo(np.int64).min

T = TypeVar("T")


class Uncertain(Exception):
    """A fixed-point decision fell within ``tol`` of 0; recompute on the exact row."""


@dataclass(frozen=True)
class Row:
    """One neuron in exact-decision integer arithmetic (see the module docstring).

    Attributes:
        w: ``[n]`` int64 (fixed) or object (exact Python ints) weights, same order as given.
        b: bias on the same scale, a Python int.
        tol: 0 for exact rows, else the bound on the error of any pre-activation.
        total: ``Σ|w| + |b|`` on the same scale (the denominator of the margin).
    """

    w: np.ndarray
    b: int
    tol: int
    total: int

    def take(self, idx: np.ndarray) -> Row:
        """The same neuron with only the inputs ``idx`` (the others held at 0)."""
        return Row(self.w[np.asarray(idx, dtype=np.int64)], self.b, self.tol, self.total)

    def check(self, s: np.ndarray | int) -> None:
        """Raise :class:`Uncertain` if any pre-activation in ``s`` is within ``tol`` of 0."""
        if self.tol and np.any(np.abs(s) <= self.tol):
            raise Uncertain


def fixed_row(weights: np.ndarray, bias: float) -> Row:
    """The int64 fixed-point row of one neuron (fast; may be rounded, see ``tol``)."""
    w = np.asarray(weights, dtype=np.float64).reshape(1, -1)
    rows = to_int64(w, np.array([float(bias)]))
    iw = rows.weights[0]
    ib = int(rows.bias[0])
    return Row(iw, ib, int(rows.tol[0]), int(np.abs(iw).sum()) + abs(ib))


def exact_row(weights: np.ndarray, bias: float) -> Row:
    """The exact Python-integer row of one neuron (object arrays; slow, never rounded)."""
    ints, ib = to_integers(np.asarray(weights, dtype=np.float64), float(bias))
    w = np.empty(len(ints), dtype=object)
    w[:] = ints
    return Row(w, ib, 0, sum(abs(v) for v in ints) + abs(ib))


def solve(fn: Callable[[Row], T], weights: np.ndarray, bias: float, row: Row | None = None) -> T:
    """Run ``fn`` on the fixed row; rerun it on the exact row if a decision was uncertain.

    ``row`` is the neuron's fixed row when the caller already has it (a batch converts
    every neuron once).
    """
    row = row or fixed_row(weights, bias)
    try:
        return fn(row)
    except Uncertain:
        return fn(exact_row(weights, bias))


def subset_sums(w: np.ndarray) -> np.ndarray:
    """``[2^k]`` sums ``Σ w[i]·x_i``; index ``m`` is the input with ``x_i = (m >> i) & 1``."""
    s = np.zeros(1, dtype=w.dtype)
    for v in w:
        s = np.concatenate([s, s + v])
    return s


def sorted_subset_sums(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The subset sums of ``w`` ascending, with the subset (bit mask) of each.

    Built input by input, merging the sorted sums without and with the new input: a
    stable sort of two sorted runs is one linear merge, so the whole build costs
    ``O(2^k)`` — 5× faster than sorting the ``2^k`` sums afterwards at ``k = 20``.
    """
    vals = np.zeros(1, dtype=w.dtype)
    masks = np.zeros(1, dtype=np.int64)
    for i, v in enumerate(w):
        both = np.concatenate([vals, vals + v])
        order = np.argsort(both, kind="stable")
        vals = both[order]
        masks = np.concatenate([masks, masks | (1 << i)])[order]
    return vals, masks


def signed_sums(w: np.ndarray) -> np.ndarray:
    """``[3^k]`` sums over ``{-1,0,1}^k``; base-3 digit ``i`` of the index is ``x_i + 1``."""
    s = np.zeros(1, dtype=w.dtype)
    for v in w:
        s = np.concatenate([s - v, s, s + v])
    return s


def _bit_sums(values: np.ndarray, bits: int) -> list[int]:
    """Per bit ``i < bits``: the sum of ``values[m]`` over the indices ``m`` with bit ``i`` set."""
    return [int(values.reshape(-1, 2, 1 << i)[:, 1, :].sum()) for i in range(bits)]


@dataclass(frozen=True)
class MitmCounts:
    """Exact counts of one row over ``{0,1}^n`` (positions as in the row).

    Attributes:
        fire: number of excited inputs.
        chow: per position, the excited inputs with that position on.
        high: smallest positive pre-activation, None if nothing is excited.
        low: largest non-positive pre-activation, None if everything is excited.
    """

    fire: int
    chow: list[int]
    high: int | None
    low: int | None


def _count(w: np.ndarray, b: int, tol: int) -> tuple[MitmCounts, int]:
    """Counts of ``s = w·x + b > tol`` and the number of inputs with ``|s| <= tol``.

    ``w`` is int64 (sums within 2^61) or object (exact Python ints, ``tol = 0``).
    """
    n = len(w)
    n_a = n // 2
    sa, sa_masks = sorted_subset_sums(w[:n_a])  # [2^nA] ascending
    sa = sa + b  # bias folded into the A half
    sb, sb_masks = sorted_subset_sums(w[n_a:])  # [2^nB] ascending
    # excited ⇔ sb > tol - sa; the queries ascending walk sb in cache order
    queries = tol - sa[::-1]
    pos = np.searchsorted(sb, queries, side="right")[::-1]  # [2^nA], aligned with sa
    uncertain = 0
    if tol:  # |s| <= tol ⇔ -tol - sa <= sb <= tol - sa
        lo = np.searchsorted(sb, queries - 2 * tol, side="left")
        uncertain = int((np.searchsorted(sb, queries, side="right") - lo).sum())
    size_b = len(sb)
    r = size_b - pos  # completions of each A subset
    per_a = np.empty_like(r)
    per_a[sa_masks] = r
    fire = int(r.sum())
    chow = _bit_sums(per_a, n_a)
    # cnt[p] = number of A subsets whose completions include sorted B position p
    cnt = np.cumsum(np.bincount(pos, minlength=size_b + 1))[:size_b]
    per_b = np.empty_like(cnt)
    per_b[sb_masks] = cnt
    chow += _bit_sums(per_b, n - n_a)
    has_hi = pos < size_b
    has_lo = pos > 0
    high = (sa[has_hi] + sb[pos[has_hi]]).min() if np.any(has_hi) else None
    low = (sa[has_lo] + sb[pos[has_lo] - 1]).max() if np.any(has_lo) else None
    counts = MitmCounts(
        fire=fire,
        chow=chow,
        high=None if high is None else int(high),
        low=None if low is None else int(low),
    )
    return counts, uncertain


def chow_mitm(row: Row) -> MitmCounts:
    """Exact fire count and Chow parameters of ``row`` by meet-in-the-middle (NumPy face).

    Raises:
        Uncertain: a fixed-point pre-activation was within ``tol`` of 0 (see :func:`solve`).
    """
    n = len(row.w)
    if n > MITM_MAX:
        raise InvalidArgumentError(f"MITM fan-in {n} exceeds MITM_MAX={MITM_MAX}; reduce or sample")
    counts, uncertain = _count(row.w, row.b, row.tol)
    if uncertain:
        raise Uncertain
    return counts


@dataclass(frozen=True)
class MitmRows:
    """Meet-in-the-middle counts of a batch of int64 rows; every face returns this.

    Same rule as the exhaustive op (:mod:`roon.kernels.exhaustive`): with ``s = w·x + b``
    on int64, an input is excited iff ``s > tol`` and uncertain iff ``|s| <= tol`` in a
    row with ``tol > 0``; rows with uncertain inputs are redone on exact integers.

    Attributes:
        fire: ``[N]`` int64, excited inputs.
        chow: ``[N, n]`` int64, per position: excited inputs with it on.
        high: ``[N]`` int64, the smallest excited ``s`` (:data:`NO_HIGH` if none).
        low: ``[N]`` int64, the largest ``s`` not excited (:data:`NO_LOW` if none).
        uncertain: ``[N]`` int64, inputs with ``|s| <= tol`` (0 where ``tol = 0``).
    """

    fire: np.ndarray
    chow: np.ndarray
    high: np.ndarray
    low: np.ndarray
    uncertain: np.ndarray

    def min_abs(self) -> np.ndarray:
        """``[N]`` int64, ``min_x |s|`` (both sides: neither sentinel can be the minimum)."""
        low = np.where(self.low == NO_LOW, NO_HIGH, -np.maximum(self.low, NO_LOW + 1))
        return np.minimum(self.high, low)


def mitm_ref(weights: np.ndarray, bias: np.ndarray, tol: np.ndarray) -> MitmRows:
    """Meet-in-the-middle counts of int64 rows with NumPy: the oracle of the compiled face.

    Args:
        weights: ``[N, n]`` int64 rows (:func:`roon.kernels.exact.to_int64`), any order.
        bias: ``[N]`` int64.
        tol: ``[N]`` int64 tolerance of each row.

    Raises:
        InvalidArgumentError: a fan-in above :data:`MITM_MAX`.
    """
    w = np.asarray(weights, dtype=np.int64)
    n_rows, n = w.shape
    if n > MITM_MAX:
        raise InvalidArgumentError(f"MITM fan-in {n} exceeds MITM_MAX={MITM_MAX}; reduce or sample")
    fire = np.zeros(n_rows, dtype=np.int64)
    chow = np.zeros((n_rows, n), dtype=np.int64)
    high = np.full(n_rows, NO_HIGH, dtype=np.int64)
    low = np.full(n_rows, NO_LOW, dtype=np.int64)
    uncertain = np.zeros(n_rows, dtype=np.int64)
    for i in range(n_rows):
        counts, uncertain[i] = _count(w[i], int(bias[i]), int(tol[i]))
        fire[i] = counts.fire
        chow[i] = counts.chow
        if counts.high is not None:
            high[i] = counts.high
        if counts.low is not None:
            low[i] = counts.low
    return MitmRows(fire, chow, high, low, uncertain)
