"""Is this wide neuron just a small gate? Exact equivalence of a neuron with a small one.

:func:`is_equivalent_to` answers the seed's open question — is a 700-input neuron
really an AND of two of its inputs? — exactly, in two senses:

``others="zero"``
    The large neuron restricted to the mapped inputs, every other input held at 0, equals
    the small neuron positionally (small input ``i`` is large input
    ``mapping[i]``). Without a mapping, an injective one is searched for: both functions are
    threshold functions, so they agree up to a permutation iff their truth tables over
    ascending-weight positions agree (README: Signatures), and the search only tries mappings
    that preserve the weight order. It fills the small positions in that order, and at
    each step narrows every unfilled position to an interval of large inputs (sorted by
    weight) by exact bounds, pruning a branch as soon as one is empty (see
    :func:`_search`). The search is capped; past the cap a
    :class:`~roon.errors.InvalidArgumentError` asks for a mapping.
``others="free"``
    The whole large neuron, all other inputs free, is the small gate: the
    unmapped inputs must all be irrelevant — by the prefix property the large neuron's
    relevant inputs are its top ``k_rel`` by ``|w|`` — and the reduced functions must
    agree. ``O(n log n + k·2^k)``.

Functions of the same fan-in are compared by their truth tables while those are small,
then (binary) by their Chow parameters, which determine a threshold function (Chow 1961),
or on their relevant inputs. Every decision is exact (:mod:`roon.kernels.mitm`).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from roon.errors import InvalidArgumentError
from roon.kernels.exact import to_integers
from roon.kernels.mitm import Row, chow_mitm, signed_sums, solve, subset_sums
from roon.kernels.relevance import depends_only_on, relevance, relevance_order

__all__ = ["Equivalence", "is_equivalent_to"]

# Compare two functions by their full tables up to 2^16 / 3^12 entries (a few ms).
TABLE_LIMIT = {"binary": 16, "signed": 12}
# Beyond the tables: binary via Chow parameters by MITM (n = 40 takes ~0.3 s); signed via
# tables over the relevant inputs, so at most TABLE_LIMIT of those.
EXACT_LIMIT = {"binary": 40, "signed": 12}
# Mapping search: largest small fan-in, and the most partial sums it may evaluate (~1 s).
SEARCH_MAX_FAN_IN = {"binary": 16, "signed": 10}
SEARCH_WORK_CAP = 30_000_000  # ~1 s on one core at ~30 ns per step (measured)
SLOT_COST = 400  # per free slot and node: ~10 numpy calls and two binary searches
# Check every small input's reachable range on entering a slot while there are at most
# this many inputs (a vectorised pass per node); it prunes most dead branches.
LOOKAHEAD_MAX = 4096
# "free" with a mapping tests the 2^m (3^m) assignments of the mapped inputs by MITM.
FREE_MAX_FAN_IN = {"binary": 40, "signed": 24}


@dataclass(frozen=True)
class Equivalence:
    """The answer of :func:`is_equivalent_to`; true in a boolean context iff equivalent.

    Attributes:
        equivalent: whether the neurons compute the same function (in the sense asked).
        mapping: small input ``j`` → large input index (the one given, or the one found);
            None when none was given and none exists.
        reason: one line saying why, e.g. the first input on which they differ.
    """

    equivalent: bool
    mapping: dict[int, int] | None
    reason: str

    def __bool__(self) -> bool:
        return self.equivalent


def is_equivalent_to(
    weights: np.ndarray,
    bias: float,
    small_weights: np.ndarray,
    small_bias: float,
    mapping: dict[int, int] | None = None,
    *,
    domain: str = "binary",
    others: str = "zero",
) -> Equivalence:
    """Does a neuron with large fan-in compute the same function as a small one?

    Args:
        weights: ``[n]`` weights of the large neuron.
        bias: its bias.
        small_weights: ``[m]`` weights of the small neuron (the gate), ``m <= n``.
        small_bias: its bias.
        mapping: small input ``j`` → large input index, injective; None to search for one.
        domain: ``binary`` ({0,1}) or ``signed`` ({-1,0,1}).
        others: ``zero`` (unmapped inputs held at 0) or ``free`` (the whole large neuron).

    Returns:
        An :class:`Equivalence` (truthy iff equivalent).

    Raises:
        InvalidArgumentError: malformed arguments, or a question too large to answer exactly
            (the message says which limit, and to pass a mapping where that helps).

    Example:
        >>> w = np.full(784, 1e-3); w[1::2] = -1e-3; w[[100, 200]] = 1.0
        >>> is_equivalent_to(w, -1.5, [1.0, 1.0], -1.0, others="free").mapping
        {0: 100, 1: 200}
    """
    w = _vector("weights", weights)
    v = _vector("small_weights", small_weights)
    b, c = _scalar("bias", bias), _scalar("small_bias", small_bias)
    if not isinstance(domain, str) or domain not in TABLE_LIMIT:
        raise InvalidArgumentError(f"domain {domain!r} is not 'binary' or 'signed'")
    if not isinstance(others, str) or others not in ("zero", "free"):
        raise InvalidArgumentError(
            f"others={others!r}; use 'zero' (held at 0) or 'free' (any value)"
        )
    n, m = len(w), len(v)
    if mapping is not None:
        idx = _mapping_indices(mapping, m, n)
        given = {j: int(i) for j, i in enumerate(idx.tolist())}
        if others == "zero":
            same, why = _same_function(w[idx], b, v, c, domain)
            return Equivalence(same, given, why)
        return _free_with_mapping(w, b, v, c, idx, given, domain)
    if m > n:
        return Equivalence(False, None, f"the small neuron has {m} inputs, the large only {n}")
    if others == "zero":
        return _search(w, b, v, c, domain)
    return _free_search(w, b, v, c, domain)


def _vector(name: str, values: object) -> np.ndarray:
    try:
        a = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"{name} must be a 1-D array of numbers; {exc}") from None
    if a.ndim != 1 or not np.all(np.isfinite(a)):
        raise InvalidArgumentError(f"{name} must be a finite 1-D array; got shape {a.shape}")
    return a


def _scalar(name: str, value: object) -> float:
    if value is None:
        raise InvalidArgumentError(f"{name} must be a number; got None")
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"{name} must be a number; {exc}") from None
    if a.ndim != 0:
        raise InvalidArgumentError(f"{name} must be a single number; got shape {a.shape}")
    x = float(a)
    if not np.isfinite(x):
        raise InvalidArgumentError(f"{name}={x} must be finite")
    return x


def _is_index(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _mapping_indices(mapping: object, m: int, n: int) -> np.ndarray:
    if not isinstance(mapping, Mapping):
        raise InvalidArgumentError(
            f"mapping must be a dict {{small_input: large_input}}; got {type(mapping).__name__}"
        )
    keys = list(mapping)
    if not all(_is_index(k) for k in keys) or sorted(int(k) for k in keys) != list(range(m)):
        raise InvalidArgumentError(f"mapping keys {keys} must be the small inputs 0..{m - 1}")
    values = [mapping[j] for j in range(m)]
    if not all(_is_index(v) for v in values):
        raise InvalidArgumentError(f"mapping values {values} must be integer input indices")
    idx = [int(v) for v in values]
    if len(set(idx)) != m or not all(0 <= i < n for i in idx):
        raise InvalidArgumentError(
            f"mapping values {idx} must be distinct large inputs in 0..{n - 1}"
        )
    return np.array(idx, dtype=np.int64)


def _table(w: np.ndarray, b: float, domain: str) -> np.ndarray:
    """Exact truth table (bool, index as in :func:`subset_sums` / :func:`signed_sums`)."""

    def run(row: Row) -> np.ndarray:
        s = (subset_sums if domain == "binary" else signed_sums)(row.w) + row.b
        row.check(s)
        return s > 0

    return solve(run, w, b)


def _input(index: int, m: int, domain: str) -> tuple[int, ...]:
    if domain == "binary":
        return tuple((index >> j) & 1 for j in range(m))
    return tuple((index // 3**j) % 3 - 1 for j in range(m))


def _same_function(
    w: np.ndarray, b: float, v: np.ndarray, c: float, domain: str
) -> tuple[bool, str]:
    """Exact positional equality of two neurons with the same fan-in, and why."""
    m = len(w)
    if m <= TABLE_LIMIT[domain]:
        t1, t2 = _table(w, b, domain), _table(v, c, domain)
        differ = np.flatnonzero(t1 != t2)
        if len(differ) == 0:
            return True, f"equal on all {len(t1)} inputs"
        x = int(differ[0])
        outs = f"large {int(t1[x])}, small {int(t2[x])}"
        return False, f"differ at x={_input(x, m, domain)}: {outs}"
    limit = EXACT_LIMIT[domain]
    r1, r2 = relevance(w, b, domain, limit=limit), relevance(v, c, domain, limit=limit)
    if r1.k is None or r2.k is None or max(r1.k, r2.k) > limit:
        raise InvalidArgumentError(
            f"{m} inputs depend on more than {limit} relevant ones; too large to compare exactly"
        )
    keep1, keep2 = r1.relevant(), r2.relevant()
    if not np.array_equal(keep1, keep2):
        j = int(np.setxor1d(keep1, keep2)[0])
        return False, f"input {j} changes the output of one neuron only"
    if len(keep1) <= TABLE_LIMIT[domain]:
        same, why = _same_function(w[keep1], b, v[keep1], c, domain)
        return same, f"on the {len(keep1)} relevant inputs: {why}"
    ch1, ch2 = solve(chow_mitm, w[keep1], b), solve(chow_mitm, v[keep1], c)
    if ch1.fire != ch2.fire:
        return False, f"fire counts differ: {ch1.fire} vs {ch2.fire}"
    for j, (a1, a2) in zip(keep1.tolist(), zip(ch1.chow, ch2.chow, strict=True), strict=True):
        if a1 != a2:
            return False, f"Chow parameter of input {j} differs: {a1} vs {a2}"
    return True, f"equal Chow parameters on the {len(keep1)} relevant inputs (Chow's theorem)"


def _free_with_mapping(
    w: np.ndarray,
    b: float,
    v: np.ndarray,
    c: float,
    idx: np.ndarray,
    mapping: dict[int, int],
    domain: str,
) -> Equivalence:
    m = len(idx)
    if m > FREE_MAX_FAN_IN[domain]:
        raise InvalidArgumentError(
            f"others='free' with {m} mapped inputs exceeds {FREE_MAX_FAN_IN[domain]} "
            f"({domain}); use others='zero'"
        )
    if not solve(lambda row: depends_only_on(row, idx, domain), w, b):
        mapped = np.zeros(len(w), dtype=bool)
        mapped[idx] = True
        order = relevance_order(w)
        first = int(order[~mapped[order]][0])  # relevant by the prefix property
        return Equivalence(False, mapping, f"unmapped input {first} changes the output")
    same, why = _same_function(w[idx], b, v, c, domain)
    return Equivalence(same, mapping, f"unmapped inputs are irrelevant; {why}")


def _free_search(w: np.ndarray, b: float, v: np.ndarray, c: float, domain: str) -> Equivalence:
    n, m = len(w), len(v)
    limit = min(m, EXACT_LIMIT[domain])
    large, small = relevance(w, b, domain, limit=limit), relevance(v, c, domain, limit=limit)
    if large.k is None and (large.lower > m or limit == m):
        reason = f"the large neuron depends on more than {m} inputs (at least {large.lower})"
        return Equivalence(False, None, reason)
    if large.k is None or small.k is None:
        raise InvalidArgumentError(
            f"{m} small inputs exceed the exact limit of {limit} relevant ones ({domain}); "
            "pass a mapping"
        )
    if large.k != small.k:
        reason = f"the large neuron depends on {large.k} inputs, the small on {small.k}"
        return Equivalence(False, None, reason)
    rel_l, rel_s = large.relevant(), small.relevant()
    rel_l = rel_l[np.argsort(w[rel_l], kind="stable")]  # ascending weight: canonical order
    rel_s = rel_s[np.argsort(v[rel_s], kind="stable")]
    same, why = _same_function(w[rel_l], b, v[rel_s], c, domain)
    if not same:
        return Equivalence(False, None, f"the relevant inputs compute another function: {why}")
    mapping = dict(zip(rel_s.tolist(), rel_l.tolist(), strict=True))
    spare = iter(np.setdiff1d(np.arange(n), rel_l).tolist())  # irrelevant large inputs
    for j in np.setdiff1d(np.arange(m), rel_s).tolist():
        mapping[j] = next(spare)
    mapping = dict(sorted(mapping.items()))
    reason = f"all other inputs are irrelevant; on the {large.k} relevant inputs, {why}"
    return Equivalence(True, mapping, reason)


def _search(w: np.ndarray, b: float, v: np.ndarray, c: float, domain: str) -> Equivalence:
    """Order-preserving mapping search for ``others="zero"`` (see the module docstring).

    Slot ``t`` (the small input of rank ``t`` by weight) takes the large input of rank
    ``i_t > i_(t-1)``. At each node, with slots ``< t`` fixed, every later slot ``u`` gets
    an interval of ranks: the inputs whose only free nonzero slot is ``u`` bound its
    weight from both sides (a binary search each), ranks must increase, and every small
    input must still be able to reach its required side of 0 with each free slot's
    weight anywhere in its interval. An empty interval prunes the node.
    """
    n, m = len(w), len(v)
    if m > SEARCH_MAX_FAN_IN[domain]:
        raise InvalidArgumentError(
            f"searching a mapping for {m} inputs exceeds {SEARCH_MAX_FAN_IN[domain]} "
            f"({domain}); pass mapping={{small_input: large_input, ...}}"
        )
    small_order = np.argsort(v, kind="stable")
    target = _table(v[small_order], c, domain)  # [base^m] over ascending-weight slots
    large_order = np.argsort(w, kind="stable")
    ints, bi = to_integers(w[large_order], b)  # exact, ascending
    fits = sum(abs(x) for x in ints) + abs(bi) < 1 << 62  # then int64 sums are exact
    ranked = np.array(ints, dtype=np.int64 if fits else object)
    base = 2 if domain == "binary" else 3
    size = base**m
    zero = 1 if base == 3 else 0  # the digit of x = 0
    xs = np.array([_input(i, m, domain) for i in range(size)], dtype=np.int64).reshape(size, m)
    if (bi > 0) != bool(target[sum(zero * base**u for u in range(m))]):
        return Equivalence(False, None, "they differ with every input at 0")
    lookahead = size <= LOOKAHEAD_MAX
    work = 0

    def slot_ranks(t: int, last: int, partial: np.ndarray) -> tuple[list[int], list[int]] | None:
        """Inclusive rank intervals of the free slots ``t..m-1``, or None if one is empty."""
        pre = partial + bi  # [base^t] pre-activations of the fixed slots, free slots at 0
        zeros = sum(zero * base**u for u in range(t, m))
        lo, hi = [], []
        for u in range(t, m):
            bounds: dict[str, int | None] = {"gt": None, "ge": None, "le": None, "lt": None}
            for digit, sign in ((2, 1), (0, -1)) if base == 3 else ((1, 1),):
                start = zeros + (digit - zero) * base**u
                fires = target[start : start + len(partial)]
                if sign > 0:  # pre + w > 0 exactly when it fires
                    _bound(bounds, "gt", -pre[fires], "max")
                    _bound(bounds, "le", -pre[~fires], "min")
                else:  # pre - w > 0 exactly when it fires
                    _bound(bounds, "lt", pre[fires], "min")
                    _bound(bounds, "ge", pre[~fires], "max")
            lo.append(
                max(
                    last + 1 + (u - t),
                    0 if bounds["gt"] is None else bisect_right(ints, bounds["gt"]),
                    0 if bounds["ge"] is None else bisect_left(ints, bounds["ge"]),
                )
            )
            hi.append(
                min(
                    n - m + u + 1,  # exclusive: later slots need m - u - 1 ranks above
                    n if bounds["le"] is None else bisect_right(ints, bounds["le"]),
                    n if bounds["lt"] is None else bisect_left(ints, bounds["lt"]),
                )
                - 1
            )
        for j in range(1, len(lo)):  # ranks increase from slot to slot
            lo[j] = max(lo[j], lo[j - 1] + 1)
        for j in range(len(hi) - 2, -1, -1):
            hi[j] = min(hi[j], hi[j + 1] - 1)
        if any(a > z for a, z in zip(lo, hi, strict=True)):
            return None
        if lookahead and t < m:
            fut = xs[:, t:]  # [size, m - t]
            lo_w, hi_w = ranked[lo], ranked[hi]  # weight range of each free slot
            low = np.where(fut > 0, fut * lo_w, fut * hi_w).sum(axis=1)
            high = np.where(fut > 0, fut * hi_w, fut * lo_w).sum(axis=1)
            fixed = partial[np.arange(size) % base**t] + bi  # [size]
            if np.any(target & (fixed + high <= 0)) or np.any(~target & (fixed + low > 0)):
                return None
        return lo, hi

    def extend(t: int, last: int, partial: np.ndarray) -> list[int] | None:
        nonlocal work
        if t == m:
            return []
        # a node costs a few numpy calls per free slot plus the vectorised passes
        work += (m - t) * (SLOT_COST + len(partial) + (8 * size if lookahead else 0))
        if work > SEARCH_WORK_CAP:
            raise InvalidArgumentError(
                f"mapping search for {m} inputs among {n} exceeded {SEARCH_WORK_CAP} steps; "
                "pass mapping={small_input: large_input, ...}"
            )
        ranks = slot_ranks(t, last, partial)
        if ranks is None:
            return None
        for i in range(ranks[0][0], ranks[1][0] + 1):
            wi = ranked[i]
            parts = [partial - wi, partial, partial + wi] if base == 3 else [partial, partial + wi]
            rest = extend(t + 1, i, np.concatenate(parts))
            if rest is not None:
                return [i, *rest]
        return None

    chosen = extend(0, -1, np.zeros(1, dtype=ranked.dtype))
    if chosen is None:
        reason = f"no {m} inputs of the {n}, other inputs at 0, compute the small function"
        return Equivalence(False, None, reason)
    mapping = {int(small_order[t]): int(large_order[i]) for t, i in enumerate(chosen)}
    return Equivalence(True, dict(sorted(mapping.items())), "found by an order-preserving search")


def _bound(bounds: dict[str, int | None], key: str, values: np.ndarray, pick: str) -> None:
    """Tighten ``bounds[key]`` with the ``pick`` ("max" or "min") of ``values``."""
    if len(values):
        best = int(getattr(values, pick)())
        old = bounds[key]
        bounds[key] = best if old is None else (max if pick == "max" else min)(old, best)
