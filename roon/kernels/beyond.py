"""Signatures of neurons beyond exhaustive reach: MITM, DP, relevance reduction, sampling.

:func:`beyond_rows` is what :func:`roon.signatures` calls for a batch whose fan-in
exceeds the exhaustive limit; :func:`count_beyond` is the same for one neuron. Which
method runs is a deterministic function of the domain, the fan-in ``n``, the function
computed, the limits and the exact policy (:mod:`roon.kernels.plan`) — plus, for ``dp``
only, whether the stored weights are small integers:

binary domain
    The exact options, each with an estimated cost (:mod:`roon.kernels.plan`), cheapest
    first:

    * ``mitm`` over the ``m`` nonzero-weight inputs, when ``m <= mitm_limit``: the
      compiled meet-in-the-middle count (:mod:`roon.kernels.cpu`, NumPy face
      :func:`roon.kernels.mitm.mitm_ref`). Irrelevant inputs show in the Chow vector
      (``2·N_i = N``), so ``k_rel`` comes for free.
    * relevance first (:mod:`roon.kernels.relevance`), when the greedy certificate
      leaves more than :data:`~roon.kernels.plan.RELEVANCE_GAP` inputs undecided: the
      exact prefix tests find ``k_rel``; if ``k_rel <= mitm_limit`` the ``k_rel``
      relevant inputs are counted by meet-in-the-middle and lifted to all ``n`` (each
      irrelevant input doubles every count and is on in half of the excited inputs).
    * ``dp``, if the exact integers of the stored weights, divided by their gcd, have a
      small enough sum (:data:`roon.kernels.dp.DP_MAX_TOTAL`; int8-quantised layers
      qualify): exact counting by dynamic programming.

    The method is ``mitm`` when every input is relevant (``k_rel == n``), ``reduced``
    when some are not, ``dp`` for the DP, else ``sampled`` (``exact = False``).
signed domain
    Chow's theorem does not hold on ``{-1,0,1}^n``, so the exact key is the truth table
    over the relevant inputs (:func:`roon.kernels.result.key_signed_table`). If ``k_rel <=``
    :data:`SIGNED_TABLE_LIMIT` the ``3^k_rel`` table is tabulated exactly (method
    ``reduced``, whatever ``k_rel`` is; the signed Chow vector is lifted as in the binary
    case, irrelevant positions summing to 0 by the symmetry ``x_i -> -x_i``); otherwise
    ``sampled``.

The exact policy decides whether an exact option runs: ``always`` runs the cheapest that
succeeds, ``never`` samples every neuron, and ``auto`` runs it only within the budget
(neurons cheapest first); neurons sampled although an exact option existed are counted
as the batch's ``fallbacks``.

Every exact method yields the key exhaustive enumeration would, so equal functions get
equal hashes whichever method ran. Functions only differ in *method* where the options
differ: an integer-weight neuron may be counted by DP where a float-weight neuron
computing the same function is sampled (an exact key never equals a sampled one; the
sampled row says ``exact = false``). Whenever both results are exact, the hashes are
equal.

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
always uses the exact integers. So ``fragile`` is true exactly when some input lies
within the fragility threshold, exact ties (margin 0) included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from roon.errors import InvalidArgumentError
from roon.kernels.batch import SignatureBatch
from roon.kernels.dp import DP_MAX_TOTAL, DP_MAX_WORK, chow_dp, dp_problem
from roon.kernels.exact import Int64Rows, to_int64
from roon.kernels.mitm import (
    MITM_MAX,
    NO_HIGH,
    NO_LOW,
    MitmCounts,
    MitmRows,
    Row,
    Uncertain,
    chow_mitm,
    exact_row,
    signed_sums,
    solve,
)
from roon.kernels.plan import (
    RELEVANCE_GAP,
    check_policy,
    dp_seconds,
    mitm_seconds,
    prefix_test_seconds,
    signed_seconds,
)
from roon.kernels.relevance import Bounds, relevance, relevance_bounds, relevance_bounds_rows
from roon.kernels.result import DOMAINS, NeuronCounts, key_binary_chow, key_signed_table
from roon.kernels.sampled import count_sampled_rows
from roon.progress import ProgressCallback, emit

__all__ = ["SIGNED_TABLE_LIMIT", "count_beyond", "beyond_rows"]

# 3^12 = 531 441 table entries: a 130 KiB key and ~20 ms of exact tabulation per neuron.
SIGNED_TABLE_LIMIT = 12


def count_beyond(
    weights: np.ndarray,
    bias: float,
    domain: str,
    *,
    mitm_limit: int | None = None,
    samples: int = 4096,
    seed: int = 0,
    exact: str = "auto",
    exact_budget: float | None = None,
    backend: str = "auto",
) -> NeuronCounts:
    """One neuron, float64 weights already sorted ascending (ties in any order).

    Args:
        weights: ``[n]`` weights sorted ascending.
        bias: the bias.
        domain: ``binary`` ({0,1}) or ``signed`` ({-1,0,1}).
        mitm_limit: largest number of inputs counted by meet-in-the-middle (default and
            at most :data:`roon.kernels.mitm.MITM_MAX`).
        samples: number of inputs drawn when no exact method applies.
        seed: seed of the sampled inputs (part of the sampled key).
        exact: exact policy, ``auto``, ``always`` or ``never`` (:mod:`roon.kernels.plan`).
        exact_budget: estimated seconds ``auto`` may spend (default
            :data:`roon.kernels.plan.DEFAULT_EXACT_BUDGET`).
        backend: face of the meet-in-the-middle count (``auto``, ``ref``, ``cpu``).

    Returns:
        The :class:`NeuronCounts` of the method chosen (see the module docstring).

    Example:
        >>> w = np.sort(np.r_[np.full(30, 1e-3), 1.0, 1.0])
        >>> r = count_beyond(w, -1.5, "binary")
        >>> r.method, r.relevant, r.fire_count == 2**30
        ('reduced', 2, True)
    """
    from roon.kernels.dispatch import resolve_backend

    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or not np.all(np.isfinite(w)) or not np.isfinite(bias):
        raise InvalidArgumentError(
            f"weights must be a finite 1-D array and bias finite; got {w.shape}"
        )
    if np.any(w[1:] < w[:-1]):
        raise InvalidArgumentError("weights must be sorted ascending; pass np.sort(weights)")
    if domain not in DOMAINS:
        raise InvalidArgumentError(f"domain {domain!r} is not one of {DOMAINS}")
    limit = MITM_MAX if mitm_limit is None else mitm_limit
    if not 0 <= limit <= MITM_MAX:
        raise InvalidArgumentError(f"mitm_limit={mitm_limit} must be in [0, {MITM_MAX}]")
    if samples < 1 or seed < 0:
        raise InvalidArgumentError(f"samples={samples} must be >= 1 and seed={seed} >= 0")
    budget = check_policy(exact, exact_budget)
    batch = beyond_rows(
        w[None, :],
        np.array([float(bias)]),
        domain,
        mitm_limit=limit,
        samples=samples,
        seed=seed,
        budget=budget,
        backend=resolve_backend(backend),
    )
    return batch[0]


@dataclass
class _Plan:
    """One neuron's exact options, ``(estimated seconds, kind)`` cheapest first."""

    bounds: Bounds
    options: list[tuple[float, str]]
    relevant: int | None  # known before any exact work (every nonzero input certified)


def beyond_rows(
    ws: np.ndarray,
    b: np.ndarray,
    domain: str,
    *,
    mitm_limit: int,
    samples: int,
    seed: int,
    budget: float,
    backend: str,
    progress: ProgressCallback | None = None,
) -> SignatureBatch:
    """Signatures of a batch of neurons of one fan-in beyond the exhaustive limit.

    Args:
        ws: ``[N, n]`` float64 weights, each row sorted ascending.
        b: ``[N]`` float64 biases.
        domain: ``binary`` or ``signed``.
        mitm_limit: largest number of inputs counted by meet-in-the-middle.
        samples: samples of a sampled signature.
        seed: their seed.
        budget: estimated seconds of exact work allowed (``inf``: ``always``; 0:
            ``never`` — see :func:`roon.kernels.plan.check_policy`).
        backend: resolved backend (``ref``, ``cpu`` or ``triton``): which face counts.
        progress: ``neurons`` events.

    Returns:
        A :class:`SignatureBatch` (method per neuron as in the module docstring), with
        ``fallbacks`` and ``exact_seconds`` set.
    """
    n_rows, n = ws.shape
    rows = to_int64(ws, b)  # the one fixed-point conversion of each neuron
    totals = (np.abs(rows.weights).sum(axis=1) + np.abs(rows.bias)).tolist()
    fixed = [
        Row(rows.weights[i], int(rows.bias[i]), int(rows.tol[i]), totals[i]) for i in range(n_rows)
    ]
    if domain == "binary":
        dp_totals = _dp_totals(ws)
        bounds = relevance_bounds_rows(ws, rows)  # the greedy certificates, all at once
        plans = [_plan_binary(bounds[i], mitm_limit, dp_totals[i]) for i in range(n_rows)]
    else:
        plans = [_plan_signed(ws[i], float(b[i]), fixed[i]) for i in range(n_rows)]
    results: list[NeuronCounts | None] = [None] * n_rows
    relevant = [p.relevant for p in plans]
    spent, fallbacks = 0.0, 0
    full: list[int] = []  # counted by meet-in-the-middle together, at the end
    first = [p.options[0][0] if p.options else math.inf for p in plans]
    finished = 0  # neurons with a result so far (progress counts these)
    for i in sorted(range(n_rows), key=lambda i: (first[i], i)):
        plan = plans[i]
        queued = blocked = False  # blocked: an option that would apply was over the budget
        for cost, kind in plan.options:
            if kind in ("full", "dp") and spent + cost > budget:
                blocked = True
                continue
            if kind == "full":
                spent += cost
                full.append(i)
                queued = True
            elif kind == "dp":
                spent += cost
                results[i] = _binary_dp(n, ws[i], float(b[i]))
            else:  # relevance first, then a count over the relevant inputs
                full_cost = min((c for c, k in plan.options if k == "full"), default=math.inf)
                charged, results[i], k, capped = _try_reduced(
                    ws[i],
                    float(b[i]),
                    fixed[i],
                    plan.bounds,
                    domain,
                    mitm_limit,
                    min(budget - spent, full_cost),
                    backend,
                )
                spent += charged
                blocked |= capped
                relevant[i] = k if k is not None else relevant[i]
            if queued or results[i] is not None:
                break
        if not queued and results[i] is None and blocked:
            fallbacks += 1
        if results[i] is not None:
            finished += 1
            emit(progress, "neurons", finished, n_rows)
    for i, counts in zip(full, _count_full(ws, b, fixed, plans, full, backend), strict=True):
        results[i] = counts
    sampled = [i for i in range(n_rows) if results[i] is None]
    if sampled:
        found = count_sampled_rows(
            ws[sampled],
            b[sampled],
            Int64Rows(
                rows.weights[sampled], rows.bias[sampled], rows.tol[sampled], rows.shift[sampled]
            ),
            domain,
            samples=samples,
            seed=seed,
            relevant=[relevant[i] for i in sampled],
        )
        for i, counts in zip(sampled, found, strict=True):
            results[i] = counts
    if n_rows > finished:
        emit(progress, "neurons", n_rows, n_rows)
    final = [r for r in results if r is not None]
    return SignatureBatch.from_neurons(domain, n, final, fallbacks=fallbacks, exact_seconds=spent)


def _dp_totals(ws: np.ndarray) -> list[int | None]:
    """Per neuron, Σ|w|/g of the DP (:func:`roon.kernels.dp.dp_problem`) when it applies.

    Vectorized and exact without Python integers: with ``|w_i| = odd_i·2^k_i`` (exact,
    :func:`roon.kernels.exact.decompose`), the gcd of the exact integers is
    ``2^min(k)·gcd(odd)``, so ``a_i = odd_i/gcd(odd)·2^(k_i - min k)``; the DP applies
    when every ``a_i`` and their sum are within :data:`DP_MAX_TOTAL` (and the work within
    :data:`DP_MAX_WORK`). Float weights of trained layers fail at once, so no DP is
    attempted on them.
    """
    from roon.kernels.exact import decompose

    n_rows, n = ws.shape
    if n == 0:
        return [None] * n_rows
    odd, k = decompose(ws)
    odd = np.abs(odd)
    nonzero = odd != 0
    g = np.gcd.reduce(odd, axis=1)  # gcd of the odd parts (0 for all-zero rows)
    low = np.where(nonzero, k, np.iinfo(np.int64).max).min(axis=1)
    shift = np.where(nonzero, k - low[:, None], 0)
    scaled = odd // np.where(g > 0, g, 1)[:, None]
    small = (shift <= 20) & (scaled <= DP_MAX_TOTAL)  # else a_i alone exceeds the bound
    ok = (g > 0) & small.all(axis=1)
    a = np.where(nonzero & small, scaled << np.minimum(shift, 20), 0)
    total = a.sum(axis=1)
    ok &= (total <= DP_MAX_TOTAL) & (total * n <= DP_MAX_WORK)
    return [int(t) if o else None for t, o in zip(total.tolist(), ok.tolist(), strict=True)]


def _plan_binary(bounds: Bounds, limit: int, dp_total: int | None) -> _Plan:
    m, lower = bounds.nonzero, bounds.lower
    options: list[tuple[float, str]] = []
    if m <= limit:
        options.append((mitm_seconds(m), "full"))
    near = m <= limit and m - lower <= RELEVANCE_GAP
    if lower < m and lower <= limit and not near:
        options.append((prefix_test_seconds(lower) + mitm_seconds(lower), "reduce"))
    if dp_total is not None:
        options.append((dp_seconds(dp_total, m), "dp"))
    order = {"full": 0, "reduce": 1, "dp": 2}
    options.sort(key=lambda o: (o[0], order[o[1]]))
    return _Plan(bounds, options, m if lower >= m else None)


def _plan_signed(w: np.ndarray, bias: float, row: Row) -> _Plan:
    bounds = relevance_bounds(w, bias, "signed", row)
    options = []
    if bounds.lower <= SIGNED_TABLE_LIMIT:
        cost = signed_seconds(bounds.lower)
        if bounds.tests:
            cost += prefix_test_seconds(bounds.lower)
        options.append((cost, "reduce"))
    known = bounds.nonzero if bounds.lower >= bounds.nonzero else None
    return _Plan(bounds, options, known)


def _try_reduced(
    w: np.ndarray,
    bias: float,
    row: Row,
    bounds: Bounds,
    domain: str,
    limit: int,
    cap: float,
    backend: str,
) -> tuple[float, NeuronCounts | None, int | None, bool]:
    """Relevance analysis, then an exact count over the relevant inputs, within ``cap``.

    Tests run only up to the largest ``k`` whose tests plus count fit in ``cap``.

    Returns:
        ``(estimated seconds charged, result or None, k_rel or None, capped)``; ``capped``
        says the cap, not the limit, stopped the analysis short of a result.
    """
    top = limit if domain == "binary" else SIGNED_TABLE_LIMIT
    count = mitm_seconds if domain == "binary" else signed_seconds
    tests = bounds.tests or (bounds.lower,)
    reach, cost, capped = -1, 0.0, False
    for k in tests:
        if k > top:
            break
        cost += prefix_test_seconds(k) if bounds.tests else 0.0
        if cost + count(k) > cap:
            capped = True
            break
        reach = k
    if reach < bounds.lower:
        return 0.0, None, None, capped
    rel = relevance(w, bias, domain, limit=reach, bounds=bounds, row=row)
    ran = [k for k in bounds.tests if k <= (reach if rel.k is None else rel.k)]
    charged = sum(prefix_test_seconds(k) for k in ran)
    if rel.k is None or rel.k > top:
        return charged, None, rel.k, capped
    charged += count(rel.k)
    keep = rel.relevant()
    if domain == "binary":
        return charged, _binary_reduced(w, bias, keep, backend, row=row), rel.k, False
    return charged, _signed_reduced(w, bias, keep, row=row), rel.k, False


def _count_row(row: Row, backend: str) -> MitmCounts:
    """Meet-in-the-middle counts of one row: the compiled face for int64 rows."""
    if row.w.dtype == object or backend == "ref":
        return chow_mitm(row)
    from roon.kernels.dispatch import run_mitm

    got = run_mitm(backend, row.w[None, :], np.array([row.b]), np.array([row.tol]))
    if got.uncertain[0]:
        raise Uncertain
    high, low = int(got.high[0]), int(got.low[0])
    return MitmCounts(
        fire=int(got.fire[0]),
        chow=got.chow[0].tolist(),
        high=None if high == NO_HIGH else high,
        low=None if low == NO_LOW else low,
    )


def _count_full(
    ws: np.ndarray,
    b: np.ndarray,
    fixed: list[Row],
    plans: list[_Plan],
    which: list[int],
    backend: str,
) -> list[NeuronCounts]:
    """Meet-in-the-middle over each neuron's nonzero-weight inputs, batched per size."""
    from roon.kernels.dispatch import run_mitm

    n = ws.shape[1]
    out: dict[int, NeuronCounts] = {}
    supports = {i: np.flatnonzero(ws[i] != 0) for i in which}
    for m in sorted({len(s) for s in supports.values()}):
        group = [i for i in which if len(supports[i]) == m]
        weights = np.stack([fixed[i].w[supports[i]] for i in group]).reshape(len(group), m)
        bias = np.array([fixed[i].b for i in group], dtype=np.int64)
        tol = np.array([fixed[i].tol for i in group], dtype=np.int64)
        got = run_mitm(backend, weights, bias, tol)
        for j, i in enumerate(group):
            if got.uncertain[j]:  # rounded row with inputs within tol: exact integers
                out[i] = _exact_full(ws[i], float(b[i]), fixed[i], supports[i], got, j)
                continue
            high, low = int(got.high[j]), int(got.low[j])
            closest = min(high, NO_HIGH if low == NO_LOW else -low)
            margin = closest / max(fixed[i].total, 1)
            out[i] = _lifted(n, supports[i], int(got.fire[j]), got.chow[j].tolist(), margin)
    return [out[i] for i in which]


def _exact_full(
    w: np.ndarray, bias: float, row: Row, keep: np.ndarray, got: MitmRows, j: int
) -> NeuronCounts:
    """A full count whose rounded row met uncertain inputs, made exact.

    Only the inputs near the threshold are summed exactly (:mod:`roon.kernels.near`);
    where the compiled window is missing or too full, every input is, on Python ints.
    """
    from roon.kernels.near import exact_near

    near = exact_near(w, bias, row, keep, int(got.fire[j]), got.chow[j].tolist())
    if near is None:
        return _binary_reduced(w, bias, keep, "ref", exact_only=True)
    fire, chow, closest, total = near
    return _lifted(len(w), keep, fire, chow, closest / max(total, 1))


def _lifted(
    n: int, keep: np.ndarray, fire_k: int, chow_k: list[int], margin: float
) -> NeuronCounts:
    """Counts over the inputs ``keep`` lifted to all ``n`` (the others irrelevant)."""
    k = len(keep)
    lift = 1 << (n - k)
    fire = fire_k * lift
    chow = [fire // 2] * n  # an irrelevant input is on in half of the excited inputs
    for pos, c in zip(keep.tolist(), chow_k, strict=True):
        chow[pos] = c * lift
    relevant = sum(1 for c in chow_k if 2 * c != fire_k)
    return _binary_result(n, "mitm" if relevant == n else "reduced", fire, chow, relevant, margin)


def _binary_dp(n: int, w: np.ndarray, bias: float) -> NeuronCounts | None:
    problem = dp_problem(w, bias)
    if problem is None:
        return None
    counts = chow_dp(problem)
    relevant = sum(1 for c in counts.chow if 2 * c != counts.fire)
    return _binary_result(n, "dp", counts.fire, counts.chow, relevant, counts.margin)


def _binary_reduced(
    w: np.ndarray,
    bias: float,
    keep: np.ndarray,
    backend: str,
    *,
    row: Row | None = None,
    exact_only: bool = False,
) -> NeuronCounts:
    n = len(w)
    free = np.ones(n, dtype=bool)
    free[keep] = False

    def compute(row: Row) -> tuple[int, list[int], float]:
        counts = _count_row(row.take(keep), backend)
        wf = row.w[free]
        lowest, highest = int(wf[wf < 0].sum()), int(wf[wf > 0].sum())
        closest = []
        if counts.high is not None:  # excited with the free inputs at 0; they can lower it
            closest.append(counts.high + lowest)
        if counts.low is not None:  # not excited; the free inputs can raise it
            closest.append(-(counts.low + highest))
        return counts.fire, counts.chow, _margin(row, min(closest))

    if exact_only:
        fire_k, chow_k, margin = compute(exact_row(w, bias))
    else:
        fire_k, chow_k, margin = solve(compute, w, bias, row)
    return _lifted(n, keep, fire_k, chow_k, margin)


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


def _signed_reduced(
    w: np.ndarray, bias: float, keep: np.ndarray, row: Row | None = None
) -> NeuronCounts:
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

    excited, margin = solve(compute, w, bias, row)
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
