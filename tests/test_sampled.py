"""Sampled signatures: flagged approximate, function-determined, exactly decided."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from roon.kernels import signatures
from roon.kernels.beyond import count_beyond
from roon.kernels.mitm import fixed_row
from roon.kernels.sampled import count_sampled, sample_inputs


def test_sampled_results_are_flagged_and_permutation_invariant():
    rng = np.random.default_rng(2)
    w = rng.normal(size=60)
    res = count_beyond(np.sort(w), 0.3, "binary")
    assert (res.method, res.exact, res.fire_count, res.chow) == ("sampled", False, None, None)
    for seed in range(3):  # the public API sorts before sampling over sorted positions
        permuted = np.random.default_rng(seed).permutation(w)
        assert not np.array_equal(permuted, np.sort(w))
        assert signatures(permuted[None, :], [0.3])[0] == res
    # another seed or sample count is another (approximate) signature
    assert count_beyond(np.sort(w), 0.3, "binary", seed=1).hash != res.hash
    assert count_beyond(np.sort(w), 0.3, "binary", samples=1000).hash != res.hash


def test_equal_functions_with_different_weights_share_the_key():
    rng = np.random.default_rng(6)
    w = np.sort(rng.integers(-50, 51, 70) / 8.0)  # dyadic: 3·w is exact
    a = count_sampled(w, 0.125, "binary", samples=2048, seed=5)
    b = count_sampled(3 * w, 0.375, "binary", samples=2048, seed=5)  # same function
    assert a.key == b.key
    assert a.fire_fraction == b.fire_fraction
    assert a.margin == pytest.approx(b.margin, rel=1e-12)
    c = count_sampled(w, 0.125 + 40.0, "binary", samples=2048, seed=5)
    assert c.key != a.key


def test_sample_inputs_are_fixed_and_uniform():
    x = sample_inputs("binary", 50, 4000, 0)
    assert x.shape == (4000, 50) and set(np.unique(x).tolist()) == {0, 1}
    assert abs(x.mean() - 0.5) < 0.01
    s = sample_inputs("signed", 33, 3000, 7)
    assert s.shape == (3000, 33) and set(np.unique(s).tolist()) == {-1, 0, 1}
    counts = np.bincount((s + 1).ravel(), minlength=3) / s.size
    assert np.all(np.abs(counts - 1 / 3) < 0.01)
    assert np.array_equal(sample_inputs("signed", 33, 3000, 7), s)
    assert not np.array_equal(sample_inputs("signed", 33, 3000, 8), s)
    with pytest.raises(ValueError):
        x[0, 0] = 1  # cached and shared: read-only


def test_fire_fraction_estimates_the_true_fraction():
    # majority of 61 inputs: exactly half of the binary inputs are excited
    w = np.ones(61)
    res = count_beyond(w, -30.5, "binary", mitm_limit=0)
    assert res.method == "dp" and res.fire_fraction == 0.5  # integer weights: exact
    res = count_sampled(w, -30.5, "binary", samples=4096, seed=0)
    assert abs(res.fire_fraction - 0.5) < 0.04
    assert res.margin == pytest.approx(0.5 / 91.5)  # |Σx - 30.5| >= 0.5, attained


def test_decisions_within_tolerance_are_exact():
    # 2^-70 beside 0.1 forces a rounded row (tol > 0); balanced ±0.1 make exact zeros,
    # and the 2^-70 input then decides the output alone
    w = np.sort(np.r_[np.full(10, 0.1), np.full(10, -0.1), 2.0**-70])
    assert fixed_row(w, 0.0).tol > 0
    res = count_sampled(w, 0.0, "binary", samples=512, seed=3)
    x = sample_inputs("binary", len(w), 512, 3)
    fr = [Fraction(float(v)) for v in w]
    pre = [sum(f for f, xi in zip(fr, row, strict=True) if xi) for row in x.tolist()]
    bits = sum(1 << i for i, p in enumerate(pre) if p > 0)
    assert res.key.endswith("|" + format(bits, "x"))
    assert res.fire_fraction == sum(p > 0 for p in pre) / 512
    assert res.margin == 0.0 and res.fragile  # some sample sits exactly on the threshold
    assert min(abs(p) for p in pre) == 0
    assert any(p == Fraction(2**-70) for p in pre)  # decided by the tiny input alone


def test_sampled_inputs_stay_small_at_wide_fan_in():
    # before: the cached samples were int64, 8 bytes per input bit (64 MiB at n = 2048,
    # 512 MiB for four cached layers of an n = 4096 model); now int8, summed in blocks
    import tracemalloc

    from roon.kernels.sampled import count_sampled, sample_inputs

    n, samples = 2048, 4096
    w = np.sort(np.random.default_rng(1).normal(size=n))
    sample_inputs.cache_clear()
    tracemalloc.start()
    try:
        res = count_sampled(w, 0.1, "binary", samples=samples, seed=3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        sample_inputs.cache_clear()
    assert peak < 3 * n * samples  # measured ~2 bytes per sampled input bit
    x = sample_inputs("binary", n, samples, 3)
    pre = [
        sum(Fraction(float(v)) for v, xi in zip(w, row, strict=True) if xi) + Fraction(0.1)
        for row in x[:64].tolist()
    ]
    bits = int(res.key.rsplit("|", 1)[1], 16)
    assert [(bits >> i) & 1 for i in range(64)] == [int(p > 0) for p in pre]


@pytest.mark.parametrize("n", [1, 3, 50, 784])
def test_exact_sums_equal_python_integers_at_the_largest_weights(n):
    # the float64 products are exact by construction (limbs of 53 - ceil(log2 n) bits):
    # rows whose Σ|w| sits at the 2^61 bound, with both signs, against Python ints
    from roon.kernels.sampled import exact_sums

    rng = np.random.default_rng(n)
    top = 2**61 // (n + 1)
    w = rng.integers(-top, top + 1, size=(4, n), dtype=np.int64)
    w[0] = top  # every weight at the bound
    x = sample_inputs("signed", n, 64, 1)
    got = exact_sums(x, w)
    want = [[sum(int(a) * int(c) for a, c in zip(wr, xr, strict=True)) for wr in w] for xr in x]
    assert got.tolist() == want
