"""Signatures of neurons beyond exhaustive reach: MITM, DP, relevance reduction, sampling.

:func:`count_beyond` is what :func:`roon.signatures` calls for every neuron whose fan-in
exceeds the exhaustive limit. Which method runs is a deterministic function of the
domain, the fan-in ``n``, the function computed and the limits — plus, for ``dp`` only,
whether the stored weights are small integers:

binary domain
    1. ``k_rel`` (number of relevant inputs, a property of the function) is computed
       exactly if it is at most ``mitm_limit`` (:mod:`roon.kernels.relevance`). Then the
       Chow parameters of the ``k_rel`` relevant inputs are counted by meet-in-the-middle
       and lifted to all ``n`` (each irrelevant input doubles every count and is on in
       half of the excited inputs). Method ``mitm`` when ``k_rel == n``, else ``reduced``.
    2. Otherwise, if the exact integers of the stored weights, divided by their gcd, have
       a small enough sum (:data:`roon.kernels.dp.DP_MAX_TOTAL`; int8-quantised layers
       qualify), exact counting by dynamic programming: method ``dp``.
    3. Otherwise ``sampled`` (``exact = False``).
signed domain
    Chow's theorem does not hold on ``{-1,0,1}^n``, so the exact key is the truth table
    over the relevant inputs (:func:`roon.kernels.result.key_signed_table`). If ``k_rel <=``
    :data:`SIGNED_TABLE_LIMIT` the ``3^k_rel`` table is tabulated exactly (method
    ``reduced``, whatever ``k_rel`` is; the signed Chow vector is lifted as in the binary
    case, irrelevant positions summing to 0 by the symmetry ``x_i -> -x_i``); otherwise
    ``sampled``.

Every exact method yields the key exhaustive enumeration would, so equal functions get
equal hashes whichever method ran. The one exception to "equal function, equal method"
is ``dp``: an integer-weight neuron with ``k_rel > mitm_limit`` is counted exactly while
a float-weight neuron computing the same function is sampled, so their methods differ —
and so do their hashes, an exact key never equalling a sampled one (the sampled row says
``exact = false``). Whenever both results are exact, the hashes are equal.

Margins (``min_x |w·x + b| / (Σ|w| + |b|)``) come with every exact method: MITM finds
the closest excited and non-excited inputs; for a reduced neuron the free inputs can only
push a pre-activation away from 0 (otherwise they would be relevant), by at most the sum
of their negative (resp. positive) weights, both ends attained; DP reads them off the
reachable sums. They are exact (0.0 for an exact tie) except where the int64 fixed point
was rounded (``tol > 0``) and no input lies within ``tol`` of the threshold: there they
are read off the fixed-point integers, as exhaustive enumeration reads them, and may be
off by ``tol / Σ|w_int| <= (n+2)^2·2^-60``, far below
:data:`~roon.kernels.result.FRAGILE_MARGIN`. MITM and reduced margins therefore equal the
exhaustive ones bit for bit (an input within ``tol`` sends both to exact integers); DP
always uses the exact integers.
"""

from __future__ import annotations

import numpy as np

from roon.errors import InvalidArgumentError
from roon.kernels.dp import chow_dp, dp_problem
from roon.kernels.mitm import MITM_MAX, Row, Uncertain, chow_mitm, signed_sums, solve
from roon.kernels.relevance import relevance
from roon.kernels.result import DOMAINS, NeuronCounts, key_binary_chow, key_signed_table
from roon.kernels.sampled import count_sampled

__all__ = ["SIGNED_TABLE_LIMIT", "count_beyond"]

# 3^12 = 531 441 table entries: a 130 KiB key and ~20 ms of exact tabulation per neuron.
SIGNED_TABLE_LIMIT = 12


def count_beyond(
    weights: np.ndarray,
    bias: float,
    domain: str,
    *,
    mitm_limit: int = 40,
    samples: int = 4096,
    seed: int = 0,
) -> NeuronCounts:
    """One neuron, float64 weights already sorted ascending (ties in any order).

    Args:
        weights: ``[n]`` weights sorted ascending.
        bias: the bias.
        domain: ``binary`` ({0,1}) or ``signed`` ({-1,0,1}).
        mitm_limit: largest number of relevant inputs counted by meet-in-the-middle
            (at most :data:`roon.kernels.mitm.MITM_MAX`); 40 takes ~0.3 s per neuron.
        samples: number of inputs drawn when no exact method applies.
        seed: seed of the sampled inputs (part of the sampled key).

    Returns:
        The :class:`NeuronCounts` of the method chosen (see the module docstring).

    Example:
        >>> w = np.sort(np.r_[np.full(30, 1e-3), 1.0, 1.0])
        >>> r = count_beyond(w, -1.5, "binary")
        >>> r.method, r.relevant, r.fire_count == 2**30
        ('reduced', 2, True)
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or not np.all(np.isfinite(w)) or not np.isfinite(bias):
        raise InvalidArgumentError(
            f"weights must be a finite 1-D array and bias finite; got {w.shape}"
        )
    if np.any(w[1:] < w[:-1]):
        raise InvalidArgumentError("weights must be sorted ascending; pass np.sort(weights)")
    if domain not in DOMAINS:
        raise InvalidArgumentError(f"domain {domain!r} is not one of {DOMAINS}")
    if not 0 <= mitm_limit <= MITM_MAX:
        raise InvalidArgumentError(f"mitm_limit={mitm_limit} must be in [0, {MITM_MAX}]")
    if samples < 1 or seed < 0:
        raise InvalidArgumentError(f"samples={samples} must be >= 1 and seed={seed} >= 0")
    if domain == "binary":
        return _binary(w, float(bias), mitm_limit, samples, seed)
    return _signed(w, float(bias), samples, seed)


def _binary(w: np.ndarray, bias: float, limit: int, samples: int, seed: int) -> NeuronCounts:
    n = len(w)
    rel = relevance(w, bias, "binary", limit=limit)
    if rel.k is not None and rel.k <= limit:
        return _binary_reduced(w, bias, rel.relevant())
    problem = dp_problem(w, bias)
    if problem is not None:
        counts = chow_dp(problem)
        relevant = sum(1 for c in counts.chow if 2 * c != counts.fire)
        return _binary_result(n, "dp", counts.fire, counts.chow, relevant, counts.margin)
    return count_sampled(w, bias, "binary", samples=samples, seed=seed, relevant=rel.k)


def _binary_reduced(w: np.ndarray, bias: float, keep: np.ndarray) -> NeuronCounts:
    n, k = len(w), len(keep)
    free = np.ones(n, dtype=bool)
    free[keep] = False

    def compute(row: Row) -> tuple[int, list[int], float]:
        counts = chow_mitm(row.take(keep))
        wf = row.w[free]
        lowest, highest = int(wf[wf < 0].sum()), int(wf[wf > 0].sum())
        closest = []
        if counts.high is not None:  # excited with the free inputs at 0; they can lower it
            closest.append(counts.high + lowest)
        if counts.low is not None:  # not excited; the free inputs can raise it
            closest.append(-(counts.low + highest))
        return counts.fire, counts.chow, _margin(row, min(closest))

    fire_k, chow_k, margin = solve(compute, w, bias)
    lift = 1 << (n - k)
    fire = fire_k * lift
    chow = [fire // 2] * n  # an irrelevant input is on in half of the excited inputs
    for pos, c in zip(keep.tolist(), chow_k, strict=True):
        chow[pos] = c * lift
    return _binary_result(n, "mitm" if k == n else "reduced", fire, chow, k, margin)


def _margin(row: Row, closest: int) -> float:
    """``closest / total``, or :class:`Uncertain` when ``closest`` is within ``tol`` of 0.

    ``closest`` is the pre-activation of one input (the free inputs set to push it toward
    0), evaluated on the row. The check on the kept inputs alone does not cover that
    input, and on a rounded row (``tol > 0``) its value may be off by ``tol``: an exact
    tie there would come out as a small positive or even negative margin. Exactly when
    some input is within ``tol`` — the same condition under which exhaustive enumeration
    redoes the row on exact integers — this raises, so :func:`solve` recomputes on the
    exact row, and the margin equals the exhaustive one bit for bit.
    """
    if row.tol and closest <= row.tol:
        raise Uncertain
    return closest / max(row.total, 1)


def _binary_result(
    n: int, method: str, fire: int, chow: list[int], relevant: int, margin: float
) -> NeuronCounts:
    vector = (fire, *chow)
    return NeuronCounts(
        domain="binary",
        fan_in=n,
        exact=True,
        method=method,
        fire_count=fire,
        chow=vector,
        fire_fraction=fire / (1 << n),
        relevant=relevant,
        margin=margin,
        truth_table=None,
        key=key_binary_chow(n, vector),
    )


def _signed(w: np.ndarray, bias: float, samples: int, seed: int) -> NeuronCounts:
    rel = relevance(w, bias, "signed", limit=SIGNED_TABLE_LIMIT)
    if rel.k is not None and rel.k <= SIGNED_TABLE_LIMIT:
        return _signed_reduced(w, bias, rel.relevant())
    return count_sampled(w, bias, "signed", samples=samples, seed=seed, relevant=rel.k)


def _signed_reduced(w: np.ndarray, bias: float, keep: np.ndarray) -> NeuronCounts:
    n, k = len(w), len(keep)
    free = np.ones(n, dtype=bool)
    free[keep] = False

    def compute(row: Row) -> tuple[np.ndarray, float]:
        s = signed_sums(row.w[keep]) + row.b  # [3^k], free inputs at 0
        row.check(s)
        excited = s > 0
        reach = int(np.abs(row.w[free]).sum())  # the free inputs move s by at most this
        closest = []
        if np.any(excited):
            closest.append(int((s[excited]).min()) - reach)
        if not np.all(excited):
            closest.append(-(int((s[~excited]).max()) + reach))
        return excited, _margin(row, min(closest))

    excited, margin = solve(compute, w, bias)
    table = int.from_bytes(np.packbits(excited, bitorder="little").tobytes(), "little")
    fire_k = int(np.count_nonzero(excited))
    lift = 3 ** (n - k)
    chow = [0] * n  # an irrelevant input sums to 0 over the excited inputs (x_i -> -x_i)
    for t, pos in enumerate(keep.tolist()):
        digits = excited.reshape(-1, 3, 3**t)  # digit t: 0, 1, 2 for x = -1, 0, +1
        chow[pos] = (int(digits[:, 2, :].sum()) - int(digits[:, 0, :].sum())) * lift
    fire = fire_k * lift
    k_neg = int(np.count_nonzero(w[keep] < 0))
    return NeuronCounts(
        domain="signed",
        fan_in=n,
        exact=True,
        method="reduced",
        fire_count=fire,
        chow=(fire, *chow),
        fire_fraction=fire / 3**n,
        relevant=k,
        margin=margin,
        truth_table=None,
        key=key_signed_table(n, k, k_neg, format(table, "x")),
    )
