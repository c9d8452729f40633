"""Exact Chow parameters of integer-weight neurons by dynamic programming (binary domain).

When the stored weights are integers after removing a common scale — the exact integers
of :func:`roon.kernels.exact.to_integers` divided by their gcd, as for int8-quantised
layers stored in any float format — the number of inputs reaching each weighted sum is
the coefficient polynomial ``cnt = Π_i (1 + z^a_i)`` over ``a_i = |w_i|/g``
(pseudo-polynomial counting, as for subset sum). Its coefficients reach ``2^n``, so they are
kept as exact Python integers in a numpy object array; adding 784 shifted copies of a
50 000-entry array of ~800-bit integers takes ~0.4 s, faster here than multi-modular
arithmetic (13 primes of 63 bits), which needs a reconstruction on top.

All Chow parameters come from the suffix sums ``F(t) = #{z : a·z > t}`` alone: removing
input ``i`` satisfies ``F(t) = F_-i(t) + F_-i(t - a_i)``, which unrolls into an
alternating sum of ``F`` along ``t, t ∓ a_i, t ∓ 2a_i, …`` down to ``t < 0`` (where
``F_-i`` is everything) or up to the top (where it is nothing), whichever is shorter.
Equal weights share one such sum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from roon.kernels.exact import to_integers

__all__ = ["DP_MAX_TOTAL", "DP_MAX_WORK", "DpProblem", "dp_problem", "chow_dp", "DpCounts"]

# Σ|w|/g above 2^20 makes the count array (one big integer per reachable sum) exceed
# ~100 MiB at n = 784; int8 layers reach at most 784·127 ≈ 10^5.
DP_MAX_TOTAL = 1 << 20
# n·Σ|w|/g bounds the big-integer additions; 2^27 ≈ 1.3·10^8 is ~2 s of numpy object adds
# (n = 784 int8 is 4·10^7 at most).
DP_MAX_WORK = 1 << 27


@dataclass(frozen=True)
class DpProblem:
    """One neuron as exact small integers: excited iff ``Σ a_i z_i > threshold``.

    ``z_i = x_i`` for positive weights and ``1 - x_i`` for negative ones.

    Attributes:
        signs: per input, +1, -1 or 0 (zero weight).
        a: per input, ``|w_i| / g`` (0 for zero weights).
        threshold: the integer ``T`` above.
        ints: the exact integers ``w_i`` of :func:`to_integers` (before dividing by ``g``).
        bias: the exact integer bias on the same scale.
        g: the common divisor removed.
    """

    signs: tuple[int, ...]
    a: tuple[int, ...]
    threshold: int
    ints: tuple[int, ...]
    bias: int
    g: int


def dp_problem(weights: np.ndarray, bias: float) -> DpProblem | None:
    """The DP form of a neuron, or None when its integer weights are too large for DP."""
    ints, b = to_integers(np.asarray(weights, dtype=np.float64), float(bias))
    nonzero = [abs(v) for v in ints if v]
    if not nonzero:
        return None
    g = math.gcd(*nonzero)
    a = tuple(abs(v) // g for v in ints)
    total = sum(a)
    if total > DP_MAX_TOTAL or total * len(ints) > DP_MAX_WORK:
        return None
    a_neg = sum(abs(v) // g for v in ints if v < 0)
    # Σ (w/g)·x > -b/g  ⇔  Σ (w/g)·x > floor(-b/g), the left side being an integer
    threshold = (-b) // g + a_neg
    signs = tuple((v > 0) - (v < 0) for v in ints)
    return DpProblem(signs, a, threshold, tuple(ints), b, g)


@dataclass(frozen=True)
class DpCounts:
    """Exact counts over ``{0,1}^n`` (positions as given).

    Attributes:
        fire: number of excited inputs.
        chow: per position, the excited inputs with that position on.
        margin: exact ``min_x |w·x + b| / (Σ|w| + |b|)``.
    """

    fire: int
    chow: list[int]
    margin: float


def _count_polynomial(a: Sequence[int]) -> np.ndarray:
    """``cnt[s]`` = number of ``z ∈ {0,1}^len(a)`` with ``a·z = s`` (object array)."""
    total = sum(a)
    cnt = np.zeros(total + 1, dtype=object)
    cnt[0] = 1
    top = 0
    for v in sorted(a):  # small weights first keep the early arrays short
        cnt[v : top + v + 1] = cnt[v : top + v + 1] + cnt[: top + 1]
        top += v
    return cnt


def chow_dp(problem: DpProblem) -> DpCounts:
    """Exact fire count, Chow parameters and margin of a :class:`DpProblem`."""
    nonzero = [v for v in problem.a if v]
    n_zero = len(problem.a) - len(nonzero)
    m = len(nonzero)
    total = sum(nonzero)
    cnt = _count_polynomial(nonzero)  # [total + 1]
    suffix = np.zeros(total + 2, dtype=object)  # suffix[s] = Σ_{s' >= s} cnt[s']
    suffix[:-1] = np.cumsum(cnt[::-1])[::-1]

    def above(t: int) -> int:  # F(t) = #{z : a·z > t}
        if t < 0:
            return 1 << m
        return int(suffix[t + 1]) if t < total else 0

    thr = problem.threshold
    fire_z = above(thr)
    per_weight: dict[int, int] = {}
    for v in set(nonzero):
        t0 = thr - v  # N_i (z_i = 1) = F_-i(thr - v); F_-i(t) is 2^(m-1) below 0, 0 from total - v
        if t0 < 0:
            per_weight[v] = 1 << (m - 1)
            continue
        down = t0 // v + 1  # terms of the downward sum
        up = max(0, -(-(total - v - t0) // v))  # terms of the upward sum
        if down <= up:
            idx = t0 - v * np.arange(down)
            tail = (1 << (m - 1)) if down % 2 == 0 else -(1 << (m - 1))
        else:
            idx = t0 + v * np.arange(1, up + 1)
            tail = 0
        vals = suffix[np.minimum(idx, total) + 1]  # F(t) = suffix[t + 1], 0 past the top
        per_weight[v] = int(vals[0::2].sum()) - int(vals[1::2].sum()) + tail
    scale = 1 << n_zero
    fire = fire_z * scale
    chow = []
    for sign, v in zip(problem.signs, problem.a, strict=True):
        if sign == 0:
            chow.append(fire // 2)
        elif sign > 0:
            chow.append(per_weight[v] * scale)
        else:
            chow.append(fire - per_weight[v] * scale)
    return DpCounts(fire, chow, _margin(problem, cnt))


def _margin(problem: DpProblem, cnt: np.ndarray) -> float:
    """Exact smallest ``|w·x + b|`` over reachable sums, relative to ``Σ|w| + |b|``."""
    reach = np.flatnonzero(cnt != 0)  # [r] reachable values of a·z, ascending
    a_neg = sum(v for s, v in zip(problem.signs, problem.a, strict=True) if s < 0)
    g, b = problem.g, problem.bias
    # pre-activation on the integer scale: g·(s - a_neg) + b, increasing in s
    root = a_neg - b // g
    at = int(np.searchsorted(reach, root))
    near = reach[max(0, at - 2) : at + 2].tolist()
    closest = min(abs(g * (s - a_neg) + b) for s in near)
    return closest / (sum(abs(v) for v in problem.ints) + abs(b))
