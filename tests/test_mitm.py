"""Meet-in-the-middle Chow counting against an independent brute force (n <= 14)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from fixtures import brute_binary

from roon.kernels.mitm import (
    Uncertain,
    chow_mitm,
    exact_row,
    fixed_row,
    solve,
    sorted_subset_sums,
    subset_sums,
)
from roon.kernels.result import key_binary_chow

brute = brute_binary


def cases():
    rng = np.random.default_rng(11)
    out = []
    for n in (0, 1, 2, 5, 9, 14):
        out.append((rng.normal(size=n), rng.normal()))  # float64
        out.append((rng.normal(size=n).astype(np.float32), np.float32(rng.normal())))
        ties = rng.integers(-3, 4, n).astype(np.float64)  # many ties and exact zero sums
        out.append((ties, float(rng.integers(-3, 4))))
        near = np.repeat(rng.normal(size=(n + 1) // 2), 2)[:n]
        near[::2] = np.nextafter(near[::2], np.inf)  # one-ulp near ties
        out.append((near, -near[: n // 2].sum()))
        wide = rng.normal(size=n) * np.exp2(rng.integers(-60, 60, n))  # forces rounding
        out.append((wide, float(wide[: n // 3].sum())))
    return out


@pytest.mark.parametrize("case", range(30))
def test_mitm_equals_brute_force(case):
    weights, bias = cases()[case]
    w = np.sort(np.asarray(weights, dtype=np.float64))
    fire, chow, closest, total = brute(w, float(bias))
    got = solve(chow_mitm, w, float(bias))
    assert got.fire == fire
    assert got.chow == chow
    assert key_binary_chow(len(w), (got.fire, *got.chow)) == key_binary_chow(len(w), (fire, *chow))
    # the exact row reproduces the closest pre-activation to 0 exactly
    ex = chow_mitm(exact_row(w, float(bias)))
    near = [abs(x) for x in (ex.high, ex.low) if x is not None]
    if total:
        assert Fraction(min(near), exact_row(w, float(bias)).total) == Fraction(closest, total)


def test_uncertain_pairs_fall_back_to_exact_integers():
    # 2^-70 forces a rounded row (tol > 0); 0.1 - 0.1 gives exact zero sums on it
    w = np.sort(np.array([0.1, -0.1, 2.0**-70, 0.3, -0.3, 1.0]))
    row = fixed_row(w, 0.0)
    assert row.tol > 0
    with pytest.raises(Uncertain):
        chow_mitm(row)
    fire, chow, _, _ = brute(w, 0.0)
    got = solve(chow_mitm, w, 0.0)
    assert (got.fire, got.chow) == (fire, chow)
    assert got.low == 0  # the exact tie is found


def test_sorted_subset_sums_match_enumeration():
    w = np.array([5, -3, 0, 7, -3, 2], dtype=np.int64)
    vals, masks = sorted_subset_sums(w)
    assert np.all(np.diff(vals) >= 0)
    assert sorted(masks.tolist()) == list(range(64))
    assert np.array_equal(vals, subset_sums(w)[masks])
