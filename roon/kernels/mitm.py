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

# Largest fan-in counted by MITM: two halves of 2^24 int64 sums plus their sort order and
# per-subset counts take ~1 GiB; n = 40 (2^20 per half) takes ~50 MiB and 0.3 s.
MITM_MAX = 48

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


def solve(fn: Callable[[Row], T], weights: np.ndarray, bias: float) -> T:
    """Run ``fn`` on the fixed row; rerun it on the exact row if a decision was uncertain."""
    row = fixed_row(weights, bias)
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


def chow_mitm(row: Row) -> MitmCounts:
    """Exact fire count and Chow parameters of ``row`` by meet-in-the-middle.

    Raises:
        Uncertain: a fixed-point pre-activation was within ``tol`` of 0 (see :func:`solve`).
    """
    n = len(row.w)
    if n > MITM_MAX:
        raise InvalidArgumentError(f"MITM fan-in {n} exceeds MITM_MAX={MITM_MAX}; reduce or sample")
    n_a = n // 2
    sa, sa_masks = sorted_subset_sums(row.w[:n_a])  # [2^nA] ascending
    sa = sa + row.b  # bias folded into the A half
    sb, sb_masks = sorted_subset_sums(row.w[n_a:])  # [2^nB] ascending
    # excited ⇔ sb > -sa; the queries -sa ascending walk sb in cache order
    queries = -sa[::-1]
    pos = np.searchsorted(sb, queries, side="right")[::-1]  # [2^nA], aligned with sa
    if row.tol:
        lo = np.searchsorted(sb, queries - row.tol, side="left")
        hi = np.searchsorted(sb, queries + row.tol, side="right")
        if np.any(hi > lo):
            raise Uncertain
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
    return MitmCounts(
        fire=fire,
        chow=chow,
        high=None if high is None else int(high),
        low=None if low is None else int(low),
    )
