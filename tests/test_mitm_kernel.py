"""The compiled meet-in-the-middle face (roon/kernels/_mitm.c) against the NumPy face.

Every plan shape the C code can take is forced through its memory limit: one sorted
half only, a streamed part (h > 0), walks cut into pieces, builds split out of place.
"""

from __future__ import annotations

import numpy as np
import pytest
from fixtures import brute_binary
from hypothesis import given, settings
from hypothesis import strategies as st

from roon.kernels.cpu import cpu_missing
from roon.kernels.exact import to_int64
from roon.kernels.mitm import NO_HIGH, NO_LOW, mitm_ref

pytestmark = pytest.mark.skipif(cpu_missing() is not None, reason=str(cpu_missing()))

POISON = -7777  # any output element the kernel forgets to write keeps this value
FIELDS = ("fire", "chow", "high", "low", "uncertain")


def run_c(w, b, tol, memory=512 << 20):
    """Call the extension directly on poison-filled outputs."""
    from roon.kernels import _cpu

    w = np.ascontiguousarray(w, np.int64).reshape(len(b), -1)
    n_rows, n = w.shape
    out = {
        "fire": np.full(n_rows, POISON, np.int64),
        "chow": np.full((n_rows, n), POISON, np.int64),
        "high": np.full(n_rows, POISON, np.int64),
        "low": np.full(n_rows, POISON, np.int64),
        "uncertain": np.full(n_rows, POISON, np.int64),
    }
    rows = [np.ascontiguousarray(x, np.int64) for x in (b, tol)]
    _cpu.mitm(w, *rows, n, *(out[f] for f in FIELDS), memory)
    return out


def assert_same(w, b, tol, memory=512 << 20):
    ref = mitm_ref(w, b, tol)
    got = run_c(w, b, tol, memory)
    for field in FIELDS:
        np.testing.assert_array_equal(getattr(ref, field), got[field], err_msg=field)


def plan(n, memory):
    from roon.kernels.cpu import mitm_plan

    return mitm_plan(n, memory)


@given(
    st.integers(0, 20),
    st.integers(1, 6),
    st.sampled_from([1, 3, 1000, 2**50]),
    st.sampled_from([512 << 20, 4000, 20000, 1 << 16]),
    st.integers(0, 2**32 - 1),
)
@settings(max_examples=80, deadline=None)
def test_c_equals_the_numpy_face_on_random_rows(n, rows, span, memory, seed):
    rng = np.random.default_rng(seed)
    w = np.sort(rng.integers(-span, span + 1, size=(rows, n)), axis=1)
    b = rng.integers(-span, span + 1, size=rows)
    tol = rng.integers(0, 4, size=rows) * rng.integers(0, 2, size=rows)
    if plan(n, memory) is None:
        memory = 512 << 20
    assert_same(w, b, tol, memory)


@pytest.mark.parametrize(
    "n, memory, shape",
    [
        (16, 512 << 20, "small builds stepped in pairs, no streamed part, one walk piece"),
        (20, 20_000, "in-place builds, 3 streamed inputs, walks in 4 pieces"),
        (24, 512 << 20, "in-place builds one after the other, walks in 8 pieces"),
        (26, 60_000, "5 streamed inputs: 32 combinations"),
        (30, 3 << 20, "builds split out of place, walks in 8 pieces, streamed part"),
    ],
)
def test_every_plan_shape_equals_the_numpy_face(n, memory, shape):
    nb, a, h, size = plan(n, memory)
    assert size <= memory and nb + a + h == n, shape
    rng = np.random.default_rng(n)
    w = np.sort(rng.integers(-50, 51, size=(2, n)), axis=1)  # many ties and zero sums
    b = np.array([0, -int(w[1, : n // 3].sum())])
    assert_same(w, b, np.array([0, 2]), memory)
    floats = to_int64(np.sort(rng.normal(size=(2, n)), axis=1), rng.normal(size=2))
    assert_same(floats.weights, floats.bias, floats.tol, memory)


def test_exact_ties_and_ties_at_the_tolerance():
    # w = [-2,-1,1,1,1,2], b = 0: 39 of the 64 inputs sum to more than 0 (brute force),
    # and the rows with sums exactly at 0 and exactly at tol = 2 are counted correctly
    w = np.array([[-2, -1, 1, 1, 1, 2]] * 3)
    b = np.array([0, 0, -2])
    tol = np.array([0, 2, 2])
    fire, chow, closest, _ = brute_binary(w[0].astype(float), 0.0)
    assert fire == 39 and closest == 0
    got = run_c(w, b, tol)
    assert got["fire"][0] == 39 and got["chow"][0].tolist() == chow
    assert got["low"][0] == 0 and got["high"][0] == 1  # the tie is not excited
    assert_same(w, b, tol)
    # at tol = 2: excited iff s > 2; uncertain iff |s| <= 2
    s = np.array([[(m >> i) & 1 for i in range(6)] for m in range(64)]) @ w[0]
    assert got["fire"][1] == np.count_nonzero(s > 2)
    assert got["uncertain"][1] == np.count_nonzero(np.abs(s) <= 2)
    assert got["uncertain"][2] == np.count_nonzero(np.abs(s - 2) <= 2)


def test_nothing_and_everything_excited():
    w = np.array([[1, 2, 3], [1, 2, 3]])
    b = np.array([-100, 100])
    got = run_c(w, b, np.zeros(2))
    assert got["fire"].tolist() == [0, 8] and got["high"][0] == NO_HIGH and got["low"][1] == NO_LOW
    assert got["chow"].tolist() == [[0, 0, 0], [4, 4, 4]]


def test_extreme_int64_sums_do_not_overflow():
    big = 2**61 // 9  # Σ|w| + |b| just below 2^61, the bound exact.py guarantees
    w = np.array([[-big, -big, -big, -1, 1, big, big, big]] * 2, dtype=np.int64)
    assert_same(w, np.array([big, -big]), np.array([0, 5]))


def test_the_plan_at_fan_in_50_fits_the_memory_target():
    # one thread's buffers at n = 50 (ACAS Xu): 2^24 sorted sums of one half, 2^23 of the
    # other, the remaining 3 inputs streamed; the target is <= 600 MB
    nb, a, h, size = plan(50, 512 << 20)
    assert (nb, a, h) == (24, 23, 3) and size < 600e6
    assert plan(55, 512 << 20) is None  # beyond MITM_MAX: B's uint32 counts would overflow
    assert plan(50, 64 << 20)[3] <= 64 << 20  # less memory: a longer streamed part


def test_the_wrapper_splits_rows_over_threads():
    from roon.kernels.cpu import mitm_cpu

    rng = np.random.default_rng(5)
    rows = to_int64(np.sort(rng.normal(size=(150, 13)), axis=1), rng.normal(size=150))
    ref = mitm_ref(rows.weights, rows.bias, rows.tol)
    for threads in (1, 3):
        got = mitm_cpu(rows.weights, rows.bias, rows.tol, threads=threads)
        for field in FIELDS:
            np.testing.assert_array_equal(getattr(ref, field), getattr(got, field), field)


def test_short_buffers_and_impossible_plans_are_refused():
    from roon.kernels import _cpu

    w = np.zeros((2, 3), np.int64)
    ok = np.zeros(2, np.int64)
    small = np.zeros(1, np.int64)
    chow = np.zeros((2, 3), np.int64)
    with pytest.raises(ValueError, match="buffer"):
        _cpu.mitm(w, ok, ok, 3, small, chow, ok, ok, ok, 1 << 20)
    with pytest.raises(ValueError, match="no plan"):
        _cpu.mitm(w, ok, ok, 3, ok, chow, ok, ok, ok, 10)
    with pytest.raises(ValueError, match="no plan"):
        _cpu.mitm(
            np.zeros((2, 60), np.int64), ok, ok, 60, ok, np.zeros((2, 60)), ok, ok, ok, 1 << 30
        )


def test_uncertain_rounded_rows_are_made_exact_from_the_inputs_near_the_threshold(monkeypatch):
    # a 2^-70 weight beside 0.1s forces a rounded row; ±0.1 pairs sum to exactly 0, so
    # some inputs are within tol: only those are summed exactly (roon/kernels/near.py),
    # and every field equals the brute force on exact rationals
    from fractions import Fraction

    import roon.kernels.near as near
    from roon.kernels.beyond import count_beyond
    from roon.kernels.result import key_binary_chow

    calls = []
    real = near.exact_near

    def spy(*args):
        calls.append(real(*args))
        return calls[-1]

    monkeypatch.setattr(near, "exact_near", spy)
    rng = np.random.default_rng(21)
    for trial in range(12):
        n = int(rng.integers(6, 15))
        w = rng.normal(size=n)
        w[0] = 2.0**-70 * (1 + trial)
        w[1], w[2] = 0.1, -0.1
        b = 0.0 if trial % 2 else -float(w[3])  # ties with and without the bias
        ws = np.sort(w)
        res = count_beyond(ws, b, "binary", exact="always")
        fire, chow, closest, total = brute_binary(ws, b)
        assert (res.key, res.fire_count, list(res.chow)) == (
            key_binary_chow(n, (fire, *chow)),
            fire,
            [fire, *chow],
        )
        assert Fraction(res.margin) == Fraction(closest / total)
    assert calls and all(c is not None for c in calls)
