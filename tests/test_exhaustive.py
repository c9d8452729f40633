"""The NumPy face of the exhaustive op and the exact slow path, against brute force."""

from __future__ import annotations

import itertools
import tracemalloc
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import roon.kernels.exhaustive as ex
from roon.kernels.exact import decompose, to_int64
from roon.kernels.exhaustive import (
    exhaustive_exact,
    exhaustive_ref,
    n_inputs,
    table_hex,
    table_words,
)


def brute_int(w: list[int], b: int, tol: int, domain: str) -> dict:
    """The rule of the module docstring, input by input, on Python ints."""
    vals = ex.DIGIT_VALUES[domain]
    r, n = len(vals), len(w)
    fire, chow, best, unc, table = 0, [0] * n, None, 0, 0
    for m in range(r**n):
        xs = [vals[(m // r**i) % r] for i in range(n)]
        s = sum(x * wi for x, wi in zip(xs, w, strict=True)) + b
        best = abs(s) if best is None else min(best, abs(s))
        unc += tol > 0 and abs(s) <= tol
        if s > tol:
            fire += 1
            table |= 1 << m
            chow = [c + x for c, x in zip(chow, xs, strict=True)]
    return {"fire": fire, "chow": chow, "min_abs": best, "uncertain": unc, "table": table}


rows_strategy = st.integers(0, 7).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.lists(st.lists(st.integers(-6, 6), min_size=n, max_size=n), min_size=1, max_size=5),
        st.lists(st.integers(-8, 8), min_size=5, max_size=5),
        st.lists(st.integers(0, 3), min_size=5, max_size=5),
    )
)


@given(rows_strategy, st.sampled_from(["binary", "signed"]))
@settings(max_examples=80, deadline=None)
def test_ref_matches_brute_force(case, domain):
    n, w, b, tol = case
    if domain == "signed" and n > 5:
        return
    k = len(w)
    got = exhaustive_ref(
        np.array(w, dtype=np.int64).reshape(k, n),
        np.array(b[:k]),
        np.array(tol[:k]),
        domain,
        want_table=True,
    )
    assert got.table is not None and got.table.shape == (k, table_words(domain, n))
    for i in range(k):
        want = brute_int(w[i], b[i], tol[i], domain)
        assert got.fire[i] == want["fire"] and got.chow[i].tolist() == want["chow"]
        assert got.min_abs[i] == want["min_abs"] and got.uncertain[i] == want["uncertain"]
        assert int(table_hex(got.table[i]), 16) == want["table"]


def test_chunking_does_not_change_results(monkeypatch):
    rng = np.random.default_rng(3)
    for domain, n in (("binary", 14), ("signed", 9)):
        w = rng.integers(-50, 50, size=(7, n))
        b, t = rng.integers(-50, 50, size=7), rng.integers(0, 3, size=7)
        whole = exhaustive_ref(w, b, t, domain, want_table=True)
        monkeypatch.setattr(ex, "CHUNK_ELEMENTS", 1 << 9)  # many neuron and row blocks
        monkeypatch.setattr(ex, "_TABLE_CHUNK_BITS", 1 << 10)
        parts = exhaustive_ref(w, b, t, domain, want_table=True)
        monkeypatch.undo()
        for field in ("fire", "chow", "min_abs", "uncertain", "table"):
            np.testing.assert_array_equal(getattr(whole, field), getattr(parts, field))


def test_fan_in_20_memory_stays_bounded():
    rng = np.random.default_rng(0)
    rows = to_int64(np.sort(rng.normal(size=(1, 20)), axis=1), rng.normal(size=1))
    tracemalloc.start()
    try:
        got = exhaustive_ref(rows.weights, rows.bias, rows.tol)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 12 << 20  # measured 6.3 MiB; a 2^20 x 20 matrix is 20 MiB even as bools
    assert 0 < got.fire[0] < 2**20


def test_table_helpers():
    assert n_inputs("binary", 3) == 8 and n_inputs("signed", 3) == 27
    assert table_words("binary", 6) == 1 and table_words("binary", 7) == 2
    assert table_words("signed", 4) == 2  # 81 bits
    assert table_hex(np.array([0, 1], dtype=np.uint64)) == "1" + "0" * 16
    assert table_hex(np.array([0], dtype=np.uint64)) == "0"


@pytest.mark.parametrize("domain", ["binary", "signed"])
def test_exact_path_is_exact_at_any_scale(domain):
    # 1e-300 next to 1.0 cannot share an int64 scale; Python ints hold both exactly
    w = np.array([-1.0, 1e-300, 1.0])
    counts, scale = exhaustive_exact(w, 0.0, domain, want_table=True)
    vals = ex.DIGIT_VALUES[domain]
    fw = [Fraction(x) for x in w]
    table = 0
    for m, xs in enumerate(itertools.product(vals, repeat=3)):
        xs = xs[::-1]  # product varies the last factor fastest; digit 0 must vary fastest
        assert m == sum(vals.index(x) * len(vals) ** i for i, x in enumerate(xs))
        if sum(x * f for x, f in zip(xs, fw, strict=True)) > 0:
            table |= 1 << m
    assert int(table_hex(counts.table[0]), 16) == table
    assert counts.min_abs[0] == 0 and counts.uncertain[0] == 0
    k = int(decompose(np.array([1e-300]))[1][0])  # the lowest binade sets the integer unit
    assert Fraction(scale) * Fraction(2) ** k == 2 + Fraction(1e-300)


@pytest.mark.parametrize("domain, n", [("binary", 24), ("signed", 15)])
def test_ref_tables_are_packed_block_by_block(domain, n):
    # before: a neuron's whole table was held unpacked, one byte per input (16 MiB at
    # binary n = 24, 3.5 GB at signed n = 20) before packing; now only the packed table
    # (2 MiB / 1.7 MiB here) and a bounded block of sums
    import tracemalloc

    from roon.kernels.exhaustive import CHUNK_ELEMENTS, exhaustive_ref, n_inputs

    rng = np.random.default_rng(n)
    rows = to_int64(np.sort(rng.normal(size=(1, n)), axis=1), rng.normal(size=1))
    tracemalloc.start()
    try:
        got = exhaustive_ref(rows.weights, rows.bias, rows.tol, domain, want_table=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got.table is not None
    bits = np.unpackbits(got.table.view(np.uint8), bitorder="little")[: n_inputs(domain, n)]
    assert int(bits.sum()) == got.fire[0]
    # measured: the packed table plus ~6.5 MB of blocks (CHUNK_ELEMENTS int64 sums)
    assert peak < n_inputs(domain, n) // 8 + 32 * CHUNK_ELEMENTS < n_inputs(domain, n)
