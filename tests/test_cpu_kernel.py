"""The compiled CPU face (roon/kernels/_cpu.c) against the NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roon.kernels.cpu import cpu_missing
from roon.kernels.exact import to_int64
from roon.kernels.exhaustive import exhaustive_ref, table_words

pytestmark = pytest.mark.skipif(cpu_missing() is not None, reason=str(cpu_missing()))

POISON = -7777  # any output element the kernel forgets to write keeps this value
FIELDS = ("fire", "chow", "min_abs", "uncertain", "table")


def run_c(w, b, tol, domain, want_table):
    """Call the extension directly on poison-filled outputs."""
    from roon.kernels import _cpu

    n_rows, n = w.shape
    words = table_words(domain, n) if want_table else 0
    out = {
        "fire": np.full(n_rows, POISON, np.int64),
        "chow": np.full((n_rows, n), POISON, np.int64),
        "min_abs": np.full(n_rows, POISON, np.int64),
        "uncertain": np.full(n_rows, POISON, np.int64),
        "table": np.full((n_rows, words), 0xDEADBEEF, np.uint64),
    }
    radix = 2 if domain == "binary" else 3
    rows = [np.ascontiguousarray(x, np.int64) for x in (w, b, tol)]
    fields = ("fire", "chow", "min_abs", "uncertain", "table")
    _cpu.count(*rows, n, radix, *(out[f] for f in fields), words)
    return out


def assert_same(ref, got, want_table):
    for field in FIELDS:
        if field == "table" and not want_table:
            continue
        np.testing.assert_array_equal(getattr(ref, field), got[field], err_msg=field)


@given(
    st.sampled_from(["binary", "signed"]),
    st.integers(0, 13),
    st.integers(1, 9),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
@settings(max_examples=60, deadline=None)
def test_cpu_equals_ref_on_random_rows(domain, n, rows, want_table, seed):
    if domain == "signed":
        n = min(n, 7)
    rng = np.random.default_rng(seed)
    span = int(rng.choice([3, 1000, 2**50]))
    w = np.sort(rng.integers(-span, span + 1, size=(rows, n)), axis=1)
    b = rng.integers(-span, span + 1, size=rows)
    tol = rng.integers(0, 4, size=rows) * rng.integers(0, 2, size=rows)
    ref = exhaustive_ref(w, b, tol, domain, want_table=want_table)
    assert_same(ref, run_c(w, b, tol, domain, want_table), want_table)


@pytest.mark.parametrize("n", [6, 11, 12, 17])
def test_blocked_path_at_block_boundaries(n):
    """n = 6 is one word, 11 exactly the low table, 12 and 17 add Gray-coded high rows."""
    rng = np.random.default_rng(n)
    rows = to_int64(np.sort(rng.normal(size=(3, n)), axis=1), rng.normal(size=3))
    ref = exhaustive_ref(rows.weights, rows.bias, rows.tol, want_table=True)
    assert_same(ref, run_c(rows.weights, rows.bias, rows.tol, "binary", True), True)


def test_extreme_int64_sums_do_not_overflow():
    big = 2**61 // 9  # Σ|w| + |b| just below 2^61, the bound exact.py guarantees
    w = np.array([[-big, -big, -big, -1, 1, big, big, big]], dtype=np.int64)
    for b, tol in ((np.array([big]), np.array([0])), (np.array([-big]), np.array([5]))):
        ref = exhaustive_ref(w, b, tol, want_table=True)
        assert_same(ref, run_c(w, b, tol, "binary", True), True)


def test_threads_and_the_wrapper_agree():
    from roon.kernels.cpu import cpu_isa, exhaustive_cpu

    rng = np.random.default_rng(5)
    rows = to_int64(np.sort(rng.normal(size=(300, 9)), axis=1), rng.normal(size=300))
    ref = exhaustive_ref(rows.weights, rows.bias, rows.tol, want_table=True)
    for threads in (1, 3):
        got = exhaustive_cpu(rows.weights, rows.bias, rows.tol, want_table=True, threads=threads)
        assert_same(ref, got.__dict__, True)
    assert exhaustive_cpu(rows.weights, rows.bias, rows.tol).table is None
    assert cpu_isa() in ("avx512", "avx2", "scalar")


def test_short_buffers_are_refused():
    from roon.kernels import _cpu

    w = np.zeros((2, 3), np.int64)
    small = np.zeros(1, np.int64)
    ok = np.zeros(2, np.int64)
    with pytest.raises(ValueError, match="buffer"):
        _cpu.count(w, ok, ok, 3, 2, small, np.zeros((2, 3), np.int64), ok, ok, small, 0)
    with pytest.raises(ValueError, match="out of range"):
        _cpu.count(w, ok, ok, 3, 5, ok, np.zeros((2, 3), np.int64), ok, ok, small, 0)


@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx512"])
def test_every_instruction_set_variant_equals_ref(isa):
    from roon.kernels import _cpu

    before = _cpu.isa()
    try:
        _cpu.use_isa(isa)
    except ValueError:
        pytest.skip(f"{isa} is not supported by this CPU")
    try:
        rng = np.random.default_rng(11)
        for n in (6, 9, 13):
            rows = to_int64(np.sort(rng.normal(size=(20, n)), axis=1), rng.normal(size=20))
            tol = rng.integers(0, 3, size=20)
            ref = exhaustive_ref(rows.weights, rows.bias, tol, want_table=True)
            assert_same(ref, run_c(rows.weights, rows.bias, tol, "binary", True), True)
    finally:
        _cpu.use_isa(before)


def _tie_rows(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer rows whose sums hit 0 and +tol exactly on many inputs."""
    rng = np.random.default_rng(100 + n)
    w = np.sort(rng.integers(-3, 4, size=(8, n)), axis=1)
    b = np.zeros(8, dtype=np.int64)
    b[1::2] = -2  # s = tol exactly where the rest sums to 4
    b[2] = -int(w[2, : n // 2].sum())  # the first half on: an exact 0
    tol = np.array([0, 2, 0, 2, 0, 3, 0, 1])
    return w, b, tol


@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx512"])
@pytest.mark.parametrize("n", [6, 11, 12, 17])
def test_every_variant_decides_exact_ties_as_the_reference(isa, n):
    # a variant that counted s == 0 (or s == tol) as excited would pass random-normal rows,
    # which never tie; these integer rows tie on many inputs
    from roon.kernels import _cpu

    before = _cpu.isa()
    try:
        _cpu.use_isa(isa)
    except ValueError:
        pytest.skip(f"{isa} is not supported by this CPU")
    try:
        w, b, tol = _tie_rows(n)
        ref = exhaustive_ref(w, b, tol, want_table=True)
        assert (ref.min_abs[[0, 2]] == 0).all() and ref.uncertain[1] > 0  # ties do occur
        assert_same(ref, run_c(w, b, tol, "binary", True), True)
        # w = [-2,-1,1,1,1,2], b = 0: of the 64 inputs 39 sum to more than 0, 12 to
        # exactly 0 (not excited) and 13 to less (itertools brute force)
        six = np.array([[-2, -1, 1, 1, 1, 2]])
        got = run_c(six, np.zeros(1), np.zeros(1), "binary", False)
        assert got["fire"][0] == 39 and got["min_abs"][0] == 0
    finally:
        _cpu.use_isa(before)
