"""count_beyond: the keys exhaustive enumeration would give, by whichever exact method."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roon.errors import InvalidArgumentError
from roon.kernels import signatures
from roon.kernels.beyond import count_beyond
from roon.kernels.exact import to_int64
from roon.kernels.result import key_binary_chow, key_signed_table


def exact_ints(weights, bias):
    fr = [Fraction(float(x)) for x in [*weights, bias]]
    den = max(f.denominator for f in fr)  # powers of two: the max is the lcm
    ints = [int(f * den) for f in fr]
    return ints[:-1], ints[-1]


def brute_binary(weights, bias):
    """(key, fire, chow, margin as Fraction) by enumerating all 2^n inputs."""
    ints, b = exact_ints(weights, bias)
    n = len(ints)
    masks = np.arange(1 << n)
    pre = np.full(1 << n, b, dtype=object)
    for i in range(n):
        pre = pre + ((masks >> i) & 1).astype(object) * ints[i]
    exc = pre > 0
    fire = int(np.count_nonzero(exc))
    chow = [int(np.count_nonzero(exc & ((masks >> i) & 1 == 1))) for i in range(n)]
    total = sum(abs(v) for v in ints) + abs(b)
    margin = Fraction(min(abs(p) for p in pre), total) if total else Fraction(0)
    return key_binary_chow(n, (fire, *chow)), fire, chow, margin


def brute_signed(weights, bias):
    """(key, fire, chow) from the full 3^n table; relevance read off the table."""
    ints, b = exact_ints(weights, bias)
    n = len(ints)
    table = np.zeros((3,) * n, dtype=bool)
    for x in itertools.product((-1, 0, 1), repeat=n):
        table[tuple(v + 1 for v in x)] = sum(w * v for w, v in zip(ints, x, strict=True)) + b > 0
    rel = [i for i in range(n) if np.any(table.max(axis=i) != table.min(axis=i))]
    bits = 0
    for m in range(3 ** len(rel)):
        x = [1] * n  # index 1 is x = 0 for the irrelevant inputs
        for d, i in enumerate(rel):
            x[i] = (m // 3**d) % 3
        bits |= int(table[tuple(x)]) << m
    k_neg = sum(1 for i in rel if ints[i] < 0)
    fire = int(table.sum())
    grid = np.indices(table.shape) - 1  # [n, 3, ..., 3] the value of x_i
    chow = [int((grid[i] * table).sum()) for i in range(n)]
    return key_signed_table(n, len(rel), k_neg, format(bits, "x")), fire, chow


def neurons():
    rng = np.random.default_rng(17)
    out = []
    for trial in range(40):
        n = int(rng.integers(0, 13))
        kind = trial % 4
        if kind == 0:
            w = rng.integers(-3, 4, n).astype(np.float64)  # ties, exact zero sums
            b = float(rng.integers(-4, 5))
        elif kind == 1:
            w = rng.normal(size=n).astype(np.float32).astype(np.float64)
            b = float(np.float32(rng.normal()))
        elif kind == 2:
            w = rng.normal(size=n) * np.exp2(rng.integers(-60, 60, n))  # rounded rows
            b = float(w[: n // 2].sum())
        else:  # a few relevant inputs padded with tiny irrelevant ones
            k = min(n, int(rng.integers(0, 4)))
            w = np.r_[rng.normal(size=k) * 4, rng.normal(size=n - k) * 1e-5]
            b = float(rng.normal())
        out.append((np.sort(np.asarray(w, dtype=np.float64)), b, int(rng.integers(0, 15))))
    return out


@pytest.mark.parametrize("case", range(40))
def test_binary_matches_exhaustive_enumeration(case):
    w, b, limit = neurons()[case]
    n = len(w)
    key, fire, chow, margin = brute_binary(w, b)
    res = count_beyond(w, b, "binary", mitm_limit=limit)
    if not res.exact:
        assert res.method == "sampled" and res.fire_count is None
        return
    assert res.key == key
    assert res.fire_count == fire and list(res.chow) == [fire, *chow]
    assert res.fire_fraction == fire / 2**n
    assert res.relevant == sum(1 for c in chow if 2 * c != fire)
    # exact on exact rows; off by at most tol / Σ|w| <= (n + 2)^2·2^-60 on rounded rows
    assert res.margin == pytest.approx(float(margin), rel=1e-12, abs=(n + 2) ** 2 * 2.0**-60)
    expected = "dp" if res.relevant > limit else "mitm" if res.relevant == n else "reduced"
    assert res.method == expected


@pytest.mark.parametrize("case", range(0, 40, 2))
def test_signed_matches_the_brute_force_table(case):
    w, b, _ = neurons()[case]
    w = w[:7]  # 3^7 inputs for the brute force
    key, fire, chow = brute_signed(w, b)
    res = count_beyond(w, b, "signed")
    assert res.method == "reduced" and res.exact
    assert res.key == key
    assert res.fire_count == fire and list(res.chow) == [fire, *chow]


def test_reduced_wide_neuron_lifts_counts_exactly():
    rng = np.random.default_rng(4)
    core = np.array([-2.0, 1.5, 3.0])
    tiny = rng.normal(size=97) * 1e-6
    w = np.sort(np.r_[core, tiny])
    res = count_beyond(w, -0.9, "binary")  # the core's sums stay >= 0.1 away from 0
    assert res.method == "reduced" and res.relevant == 3
    _, fire3, chow3, _ = brute_binary(np.sort(core), -0.9)
    lift = 2**97
    chow = [res.fire_count // 2] * 100
    for pos, c in zip(np.flatnonzero(np.isin(w, core)), chow3, strict=True):
        chow[pos] = c * lift
    assert res.fire_count == fire3 * lift
    assert list(res.chow[1:]) == chow
    assert res.key == key_binary_chow(100, (fire3 * lift, *chow))
    signed = count_beyond(w, -0.9, "signed")
    assert signed.method == "reduced" and signed.relevant == 3
    core_key, core_fire, _ = brute_signed(np.sort(core), -0.9)  # "signed|3|table|3|..."
    assert signed.key == core_key.replace("signed|3|", "signed|100|", 1)
    assert signed.fire_count == core_fire * 3**97


def test_exact_ties_on_rounded_rows():
    # 2^-70 beside 0.1 forces a rounded int64 row; ±0.1 pairs sum to exactly 0, so the
    # fixed-point decisions are uncertain and the exact integers must decide
    w = np.sort(np.r_[np.full(5, 0.1), np.full(5, -0.1), 2.0**-70, 1.0])
    key, fire, chow, margin = brute_binary(w, 0.0)
    res = count_beyond(w, 0.0, "binary")
    assert (res.key, res.fire_count, list(res.chow[1:])) == (key, fire, chow)
    assert res.margin == 0.0 and res.fragile
    small = np.sort(np.r_[np.full(3, 0.1), np.full(3, -0.1), 2.0**-70])
    assert count_beyond(small, 0.0, "signed").key == brute_signed(small, 0.0)[0]


def test_method_falls_back_to_sampling_only_beyond_exact_reach():
    rng = np.random.default_rng(9)
    w = np.sort(rng.normal(size=50))  # ACAS-like: every input relevant, float weights
    res = count_beyond(w, 0.2, "binary")
    assert (res.method, res.exact, res.fire_count, res.chow) == ("sampled", False, None, None)
    assert count_beyond(w, 0.2, "signed").method == "sampled"


def test_rejects_unsorted_weights_and_bad_arguments():
    with pytest.raises(ValueError, match="sorted"):
        count_beyond(np.array([1.0, -1.0]), 0.0, "binary")
    with pytest.raises(ValueError, match="domain"):
        count_beyond(np.array([1.0]), 0.0, "ternary")
    with pytest.raises(ValueError, match="mitm_limit"):
        count_beyond(np.array([1.0]), 0.0, "binary", mitm_limit=99)


dyadic = st.integers(-40, 40).map(lambda v: v / 8.0)


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(dyadic, min_size=0, max_size=11),
    bias=dyadic,
    shift=st.integers(-30, 30),
    perm_seed=st.integers(0, 2**32 - 1),
    limit=st.integers(0, 12),
    domain=st.sampled_from(["binary", "signed"]),
)
def test_permutation_and_power_of_two_scaling_invariance(
    values, bias, shift, perm_seed, limit, domain
):
    w = np.array(values, dtype=np.float64)
    base = count_beyond(np.sort(w), bias, domain, mitm_limit=limit)
    permuted = np.random.default_rng(perm_seed).permutation(w)
    # the public API takes the inputs in any order (and sorts them itself)
    again = signatures([permuted], [bias], domain, exhaustive_limit=0, mitm_limit=limit)[0]
    assert again == base or len(w) == 0  # fan-in 0 is within any exhaustive limit
    assert again.hash == base.hash
    if base.exact and domain == "binary":  # the key is that of the unsorted neuron too
        assert brute_binary(permuted, bias)[0] == base.key
    scaled = count_beyond(np.sort(w) * 2.0**shift, bias * 2.0**shift, domain, mitm_limit=limit)
    assert scaled == base  # every field: method, key, counts, margin
    # another weight vector of the same function (x3 is exact here): same method and key
    tripled = count_beyond(np.sort(w) * 3.0, bias * 3.0, domain, mitm_limit=limit)
    assert (tripled.method, tripled.key) == (base.method, base.key)


@pytest.mark.parametrize("domain", ["binary", "signed"])
def test_same_results_as_the_exhaustive_engine(domain):
    # the hash depends on the function, never on the method: exhaustive enumeration
    # (roon.signatures) and count_beyond agree on every field they both compute
    from roon.kernels.signatures import signatures

    rng = np.random.default_rng(31)
    for trial in range(40):
        n = int(rng.integers(1, 11 if domain == "binary" else 8))
        w = rng.normal(size=n) * np.where(rng.random(n) < 0.4, 1e-4, 1.0)
        if trial % 3 == 0:
            w = rng.integers(-3, 4, n).astype(np.float64)
        b = float(rng.integers(-2, 3)) if trial % 3 == 0 else float(rng.normal())
        enumerated = signatures(w[None, :], [b], domain=domain)[0]
        counted = count_beyond(np.sort(w), b, domain)
        assert counted.hash == enumerated.hash
        assert (counted.fire_count, counted.chow) == (enumerated.fire_count, enumerated.chow)
        assert counted.relevant == enumerated.relevant
        assert counted.margin == pytest.approx(enumerated.margin, rel=1e-9, abs=1e-15)


def _tie_behind_rounded_free_inputs() -> tuple[np.ndarray, float]:
    """Five relevant 1024s, bias -0.5, and two free inputs that sum to exactly +0.5.

    The free inputs are ``0.5 - h`` and ``h``, with ``h`` half the int64 fixed-point unit
    of the row, so the row is rounded (tol > 0) and both round away from zero: on the row
    they sum to 0.5 plus one unit. The exact tie ``-0.5 + 0.5 = 0`` (every relevant input
    at 0, both free ones at 1) then reads as +1 unit, which the check on the relevant
    inputs alone (free inputs at 0) does not see.
    """
    base = [1024.0] * 5
    # the unit of a rounded row depends only on its top binade and fan-in: a 2^-100
    # placeholder forces rounding without changing either
    shift = int(to_int64(np.array([[*base, 2.0**-100, 0.5]]), np.array([-0.5])).shift[0])
    h = 2.0 ** (shift - 1)
    w = np.sort(np.array([*base, 0.5 - h, h]))
    assert Fraction(0.5 - h) + Fraction(h) == Fraction(1, 2)
    assert to_int64(w[None, :], np.array([-0.5])).tol[0] > 0
    return w, -0.5


@pytest.mark.parametrize("domain", ["binary", "signed"])
def test_reduced_margin_of_an_exact_tie_on_a_rounded_row_is_zero(domain):
    # before: the reduced method returned a *negative* margin (-1 unit / total), where
    # exhaustive enumeration says 0.0 (an exact tie)
    w, b = _tie_behind_rounded_free_inputs()
    enumerated = signatures([w], [b], domain, backend="ref")[0]
    reduced = count_beyond(w, b, domain)
    assert reduced.method == "reduced" and reduced.relevant == 5
    assert enumerated.margin == 0.0 and enumerated.fragile
    assert reduced.margin == 0.0 and reduced.fragile
    assert reduced.hash == enumerated.hash


@pytest.mark.parametrize("domain", ["binary", "signed"])
def test_reduced_and_mitm_margins_equal_exhaustive_bit_for_bit(domain):
    # rounded rows (float64 over many binades) with ties among the inputs: whatever the
    # method, the margin is the same float (the fixed-point one, or the exact one when
    # some input is within tol of the threshold)
    rng = np.random.default_rng(12)
    n = 9 if domain == "binary" else 6
    for trial in range(30):
        w = rng.normal(size=n) * np.exp2(rng.integers(-40, 40, n))
        w[rng.random(n) < 0.4] *= 2.0**-30  # tiny weights: the reduced method
        b = -float(w[: trial % 3 + 1].sum()) if trial % 2 else float(rng.normal())
        full = signatures([w], [b], domain, backend="ref")[0]
        beyond = signatures([w], [b], domain, exhaustive_limit=0)[0]
        assert beyond.method in ("mitm", "reduced")
        assert (beyond.hash, beyond.margin) == (full.hash, full.margin), (w.tolist(), b)
        assert beyond.margin >= 0.0


@pytest.mark.parametrize(
    "kwargs, what",
    [
        ({"mitm_limit": 100}, "mitm_limit"),
        ({"mitm_limit": -1}, "mitm_limit"),
        ({"mitm_limit": True}, "mitm_limit"),
        ({"samples": 0}, "samples"),
        ({"samples": 1.5}, "samples"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
    ],
)
@pytest.mark.parametrize("fan_in", [3, 30])
def test_beyond_arguments_are_checked_on_every_batch(kwargs, what, fan_in):
    # before: a plain ValueError, and only once a neuron above the exhaustive limit came
    # along (fan_in 3 passed silently; mitm_limit=True, samples=1.5 were taken as is)
    with pytest.raises(InvalidArgumentError, match=what) as err:
        signatures(np.ones((1, fan_in)), [-0.5], **kwargs)
    assert "\n" not in str(err.value)


def test_count_beyond_raises_roon_errors():
    with pytest.raises(InvalidArgumentError, match="sorted"):
        count_beyond(np.array([1.0, -1.0]), 0.0, "binary")
    with pytest.raises(InvalidArgumentError, match="mitm_limit"):
        count_beyond(np.array([1.0]), 0.0, "binary", mitm_limit=99)


def test_exact_margins_see_ties_that_sampling_misses():
    # a 30-input neuron with one input exactly on its threshold (x_0 = x_1 = 1, the rest
    # 0: 0.75 + 0.5 - 1.25 = 0): the exact count finds margin 0, so it is fragile; the
    # sampled signature of the same neuron reads a margin off 4,096 inputs and misses it
    rng = np.random.default_rng(8)
    w = np.r_[0.75, 0.5, rng.normal(size=28) * 0.01 + np.where(rng.random(28) < 0.5, 0.3, -0.3)]
    w = np.sort(w)
    exact = count_beyond(w, -1.25, "binary", exact="always")
    sampled = count_beyond(w, -1.25, "binary", exact="never")
    assert exact.method == "mitm" and exact.margin == 0.0 and exact.fragile
    assert sampled.method == "sampled" and sampled.margin > 0.0
    assert exact.relevant == 30 and exact.fire_count > 0


def test_wide_exact_counts_in_the_catalogue_columns(tmp_path):
    # counts up to 38 digits are exact decimals in the table (a reduced 100-input neuron:
    # 2^97 times its core's count); past 38 digits (a 200-input one) they are null there,
    # exact in the API, and the hash stays exact either way
    import duckdb
    import pyarrow.parquet as pq

    core = np.array([-2.0, 1.5, 3.0])
    batches = [signatures([np.sort(np.r_[core, np.full(n - 3, 1e-6)])], [-0.9]) for n in (100, 200)]
    (narrow,), (wide,) = batches
    assert (narrow.method, wide.method) == ("reduced", "reduced")
    assert narrow.fire_count < 10**38 < wide.fire_count
    table = batches[0].to_arrow()
    assert table.column("fire_count")[0].as_py() == narrow.fire_count
    assert table.column("chow")[0].as_py() == list(narrow.chow)
    table = batches[1].to_arrow()
    assert table.column("fire_count")[0].as_py() is None
    assert table.column("chow")[0].as_py() is None and table.column("exact")[0].as_py()
    # Parquet and DuckDB read the same integers back
    path = tmp_path / "s.parquet"
    pq.write_table(batches[0].to_arrow(), path)
    assert pq.read_table(path).column("fire_count")[0].as_py() == narrow.fire_count
    got = duckdb.execute(f"select fire_count, chow[2] from '{path}'").fetchall()[0]
    assert got == (narrow.fire_count, narrow.chow[1])
