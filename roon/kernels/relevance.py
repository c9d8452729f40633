"""Relevant inputs of a threshold neuron: certificates, the exact prefix test, ``k_rel``.

Input ``i`` is *relevant* when some assignment of the other inputs makes the output
change with ``x_i``. Deciding it is NP-hard (it contains subset sum), but three facts
make it cheap in practice:

* **Prefix property.** The relevant inputs are a prefix of the ``|w|``-descending order
  (tied ``|w|`` are all relevant or all irrelevant). Binary domain: as below, v ∈ {0,1}. Signed
  domain ``{-1,0,1}``, proved here. Flip signs so every weight is ``a >= 0`` (the domain
  is symmetric). ``j`` is relevant iff the others can put ``c = b + Σ_{k≠j} a_k x_k`` in
  ``(-a_j, a_j]`` (then ``c - a_j <= 0 < c + a_j``). Let ``a_i >= a_j`` and take a witness
  ``x`` for ``j``, with ``x_i = v``, so ``c = d + a_i·v ∈ (-a_j, a_j]``. Swap the roles:
  put ``x_j = v`` and leave ``x_i`` free; then ``c' = d + a_j·v``. For ``v = 0``,
  ``c' = c ∈ (-a_i, a_i]``. For ``v = 1``, ``d ∈ (-a_j - a_i, a_j - a_i]``, so
  ``c' ∈ (-a_i, 2a_j - a_i] ⊆ (-a_i, a_i]``. For ``v = -1``, ``d ∈ (a_i - a_j, a_i + a_j]``,
  so ``c' ∈ (a_i - 2a_j, a_i] ⊆ (-a_i, a_i]``. Either way ``i`` is relevant. ∎
* **Exact test.** The function depends only on a set ``K`` of inputs iff, for every
  assignment of ``K`` (partial pre-activation ``p``, bias included), the free inputs
  cannot move it across 0: not ``p + lo_tail <= 0 < p + hi_tail``, where ``lo_tail`` and
  ``hi_tail`` are the smallest and largest sums the free inputs reach (both attained).
  With ``K`` the top ``k`` this is monotone in ``k``, so ``k_rel`` is the first ``k`` that
  passes. Cost ``O(2^(k/2))`` by meet-in-the-middle (``3^k`` in the signed domain).
* **Greedy certificate.** Fill the inputs in descending ``|w|`` keeping the pre-activation
  ``<= 0`` (and, dually, emptying from all-on keeping it ``> 0``; in the signed domain,
  steer it toward 0). For each input ``j``, the final assignment with ``x_j`` toggled is a
  candidate witness, checked exactly; by the prefix property every input with
  ``|w| >= |w_j|`` is then relevant. ``O(n)``, and on trained dense neurons it certifies
  all or nearly all inputs (ACAS Xu: >= 44 of 50; MNIST: >= 782 of 784), so a neuron that
  cannot reduce below the exact limits is recognised without any search.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from roon.errors import InvalidArgumentError
from roon.kernels.exact import Int64Rows
from roon.kernels.mitm import (
    Row,
    Uncertain,
    exact_row,
    fixed_row,
    signed_sums,
    sorted_subset_sums,
    subset_sums,
)

__all__ = [
    "Relevance",
    "Bounds",
    "relevance",
    "relevance_bounds",
    "relevance_bounds_rows",
    "relevance_order",
    "depends_only_on",
    "greedy_lower_bound",
]

# Enumerate up to 2^20 binary / 3^13 signed partial sums directly (a few MiB); split into
# two sorted halves beyond that.
DIRECT_BINARY = 20
DIRECT_SIGNED = 13


@dataclass(frozen=True)
class Relevance:
    """Relevance of one neuron's inputs.

    Attributes:
        k: exact number of relevant inputs, or None when undetermined (it then exceeds the
            ``limit`` asked for). Known above the limit only when every nonzero-weight
            input was certified relevant outright.
        lower: certified lower bound on the number of relevant inputs (``== k`` if known).
        order: ``[n]`` input indices by ``|w|`` descending; the relevant ones are ``order[:k]``.
    """

    k: int | None
    lower: int
    order: np.ndarray

    def relevant(self) -> np.ndarray:
        """Indices of the relevant inputs in ascending index order (``k`` must be known)."""
        if self.k is None:
            raise InvalidArgumentError(
                "relevant set unknown: k_rel exceeds the limit it was computed to"
            )
        return np.sort(self.order[: self.k])


def relevance_order(weights: np.ndarray) -> np.ndarray:
    """Input indices by ``|w|`` descending (stable; float comparisons are exact)."""
    return np.argsort(-np.abs(np.asarray(weights, dtype=np.float64)), kind="stable")


def _group_ends(abs_sorted: np.ndarray) -> np.ndarray:
    """``ends[t]``: one past the last position tied with position ``t`` (descending order)."""
    n = len(abs_sorted)
    new_group = np.ones(n + 1, dtype=bool)
    new_group[1:n] = abs_sorted[1:] != abs_sorted[:-1]
    starts = np.flatnonzero(new_group)  # group starts, then n
    return np.repeat(starts[1:], np.diff(starts))


def greedy_lower_bound(row: Row, order: np.ndarray, domain: str) -> int:
    """Number of leading inputs (in ``order``) certified relevant by the greedy witnesses.

    Returns a position ``t + 1`` such that input ``order[t]`` has a verified witness; the
    caller extends it over ties. Decisions within ``tol`` are simply not certified.
    """
    ws = row.w[order].tolist()  # Python ints
    a = [abs(v) for v in ws]
    tol = row.tol
    best = 0

    span = 1 if domain == "binary" else 2  # high end minus low end of input t, in a[t]

    def certify(p: int, contrib: list[int]) -> None:
        nonlocal best
        for t in range(len(a) - 1, best - 1, -1):
            q = p - contrib[t]  # pre-activation with input t at its low end
            if q < -tol and q + span * a[t] > tol:
                best = t + 1
                return

    if domain == "binary":
        base = row.b + sum(v for v in ws if v < 0)  # every input at its low end
        p, on = base, []
        for x in a:  # fill, keeping the pre-activation <= 0
            on.append(x if p + x <= 0 else 0)
            p += on[-1]
        certify(p, on)
        p, on = base + sum(a), []
        for x in a:  # empty from all-on, keeping it > 0
            on.append(0 if p - x > 0 else x)
            p -= x - on[-1]
        certify(p, on)
    else:
        p, xs = row.b, []
        for x in a:  # steer toward 0; x_t in {-1, 0, 1} after the sign flip
            step = -1 if p > 0 and abs(p - x) < p else 1 if p < 0 and abs(p + x) < -p else 0
            xs.append(step)
            p += step * x
        # low end of input t is x_t = -1: q - a_t with q = p - x_t a_t
        certify(p, [(s + 1) * x for s, x in zip(xs, a, strict=True)])
    return best


def _window_count(sa: np.ndarray, sbs: np.ndarray | None, lo: int, hi: int) -> int:
    """Number of sums ``sa[i] (+ sbs[j])`` in ``(lo, hi]``; ``sbs`` sorted."""
    if sbs is None:
        return int(np.count_nonzero((sa > lo) & (sa <= hi)))
    upper = np.searchsorted(sbs, hi - sa, side="right")
    lower = np.searchsorted(sbs, lo - sa, side="right")
    return int((upper - lower).sum())


def depends_only_on(row: Row, keep: np.ndarray, domain: str) -> bool:
    """Exact test: does the neuron's output depend only on the inputs ``keep``?

    Raises:
        Uncertain: a fixed-point decision was within ``tol``; retry on the exact row.
    """
    free = np.ones(len(row.w), dtype=bool)
    free[np.asarray(keep, dtype=np.int64)] = False
    wf = row.w[free]
    if domain == "binary":
        lo_tail, hi_tail = wf[wf < 0].sum(), wf[wf > 0].sum()
    else:
        hi_tail = np.abs(wf).sum()
        lo_tail = -hi_tail
    lo, hi = -int(hi_tail), -int(lo_tail)  # failure iff p in (lo, hi]
    wk = row.w[~free]
    sums = subset_sums if domain == "binary" else signed_sums
    direct = DIRECT_BINARY if domain == "binary" else DIRECT_SIGNED
    if len(wk) <= direct:
        sa, sbs = sums(wk) + row.b, None
    else:
        half = len(wk) // 2
        if domain == "binary":
            sbs = sorted_subset_sums(wk[half:])[0]
        else:
            sbs = np.sort(signed_sums(wk[half:]))
        sa = sums(wk[:half]) + row.b
    tol = row.tol
    if tol == 0:
        return _window_count(sa, sbs, lo, hi) == 0
    if _window_count(sa, sbs, lo + tol, hi - tol - 1) > 0:
        return False  # certainly straddles 0
    if _window_count(sa, sbs, lo - tol - 1, hi + tol) == 0:
        return True  # certainly never straddles
    raise Uncertain


@dataclass(frozen=True)
class Bounds:
    """What the cheap part of the analysis knows (:func:`relevance_bounds`).

    Attributes:
        order: ``[n]`` input indices by ``|w|`` descending.
        ends: ``[n]`` one past the last position tied with each position of ``order``.
        nonzero: number of inputs with a nonzero weight.
        lower: certified lower bound on the number of relevant inputs.
        tests: the ``k`` at which the exact prefix test would run, ascending: ``lower``,
            then every tie-group boundary up to ``nonzero`` (empty when ``lower`` is
            already ``nonzero``).
    """

    order: np.ndarray
    ends: np.ndarray
    nonzero: int
    lower: int
    tests: tuple[int, ...]


def relevance_bounds(
    weights: np.ndarray, bias: float, domain: str, row: Row | None = None
) -> Bounds:
    """The order, tie groups and greedy lower bound of one neuron, in ``O(n log n)``.

    Args:
        weights: ``[n]`` float weights in any order.
        bias: the bias.
        domain: ``binary`` or ``signed``.
        row: the neuron's fixed-point row (:func:`roon.kernels.mitm.fixed_row`), if
            already made.
    """
    w = np.asarray(weights, dtype=np.float64)
    order = relevance_order(w)
    abs_sorted = np.abs(w[order])
    nonzero = int(np.count_nonzero(abs_sorted))
    ends = _group_ends(abs_sorted)
    found = greedy_lower_bound(row or fixed_row(w, bias), order, domain)
    lower = int(ends[found - 1]) if found else 0
    tests = () if lower >= nonzero else tuple(sorted({lower, *ends[lower:nonzero].tolist()}))
    return Bounds(order, ends, nonzero, lower, tests)


def relevance_bounds_rows(ws: np.ndarray, rows: Int64Rows) -> list[Bounds]:
    """:func:`relevance_bounds` of a batch of binary neurons, vectorized over neurons.

    The greedy fills run input by input for every neuron at once (the same decisions as
    :func:`greedy_lower_bound`, on the same fixed-point integers).

    Args:
        ws: ``[N, n]`` float weights (any order within a row).
        rows: their fixed point (:func:`roon.kernels.exact.to_int64`).
    """
    n_rows, n = ws.shape
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return [Bounds(empty, empty, 0, 0, ()) for _ in range(n_rows)]
    mags = np.abs(ws)
    order = np.argsort(-mags, axis=1, kind="stable")  # relevance_order of every row
    abs_sorted = np.take_along_axis(mags, order, axis=1)
    nonzero = np.count_nonzero(abs_sorted, axis=1)
    # ends[t]: one past the last position tied with t (the next group start after t)
    starts = np.ones((n_rows, n + 1), dtype=bool)
    starts[:, 1:n] = abs_sorted[:, 1:] != abs_sorted[:, :-1]
    index = np.where(starts, np.arange(n + 1), n)
    ends = np.minimum.accumulate(index[:, ::-1], axis=1)[:, ::-1][:, 1:]  # [N, n]
    w = np.take_along_axis(rows.weights, order, axis=1)  # int64, |w| descending
    a = np.abs(w)
    tol = rows.tol
    base = rows.bias + np.where(w < 0, w, 0).sum(axis=1)  # every input at its low end
    best = np.zeros(n_rows, dtype=np.int64)
    for fill in (True, False):
        p = base.copy() if fill else base + a.sum(axis=1)
        on = np.empty_like(a)
        for t in range(n):
            if fill:  # fill, keeping the pre-activation <= 0
                on[:, t] = np.where(p + a[:, t] <= 0, a[:, t], 0)
                p += on[:, t]
            else:  # empty from all-on, keeping it > 0
                on[:, t] = np.where(p - a[:, t] > 0, 0, a[:, t])
                p -= a[:, t] - on[:, t]
        q = p[:, None] - on  # [N, n] pre-activation with input t at its low end
        hit = (q < -tol[:, None]) & (q + a > tol[:, None])
        last = np.where(hit.any(axis=1), n - np.argmax(hit[:, ::-1], axis=1), 0)
        best = np.maximum(best, last)
    lower = np.where(
        best > 0, np.take_along_axis(ends, np.maximum(best - 1, 0)[:, None], 1)[:, 0], 0
    )
    out = []
    for i in range(n_rows):
        low, nz = int(lower[i]), int(nonzero[i])
        tests = () if low >= nz else tuple(sorted({low, *ends[i, low:nz].tolist()}))
        out.append(Bounds(order[i], ends[i], nz, low, tests))
    return out


def relevance(
    weights: np.ndarray,
    bias: float,
    domain: str,
    *,
    limit: int,
    bounds: Bounds | None = None,
    row: Row | None = None,
) -> Relevance:
    """Exact number of relevant inputs, if it is at most ``limit``.

    Certifies a lower bound greedily in ``O(n log n)``; if that already exceeds ``limit``
    it stops there. Otherwise it runs the exact prefix test at each tie-group boundary
    from the bound upward (total cost within ~3.4× of the last test, the costs growing
    geometrically) until one passes or ``limit`` is passed.

    Args:
        weights: ``[n]`` float weights in any order.
        bias: the bias.
        domain: ``binary`` or ``signed``.
        limit: largest ``k_rel`` worth computing exactly.
        bounds: :func:`relevance_bounds` of the neuron, if already made.
        row: its fixed-point row, if already made.
    """
    w = np.asarray(weights, dtype=np.float64)
    row = row or fixed_row(w, bias)
    b = bounds or relevance_bounds(w, bias, domain, row)
    if b.lower >= b.nonzero:  # every nonzero input certified; zero weights never matter
        return Relevance(b.nonzero, b.nonzero, b.order)
    if b.lower > limit:
        return Relevance(None, b.lower, b.order)
    exact: Row | None = None
    for k in b.tests:
        if k > limit:
            return Relevance(None, k, b.order)
        try:
            passed = depends_only_on(row, b.order[:k], domain)
        except Uncertain:
            exact = exact or exact_row(w, bias)
            passed = depends_only_on(exact, b.order[:k], domain)
        if passed:
            return Relevance(k, k, b.order)
    raise AssertionError("unreachable: the test passes at k = number of nonzero weights")
