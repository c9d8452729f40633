"""Dynamic-programming Chow counting against brute force and against MITM."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from fixtures import brute_binary

from roon.kernels.beyond import count_beyond
from roon.kernels.dp import DP_MAX_TOTAL, chow_dp, dp_problem


def brute(weights, bias):
    """Exact (fire, chow, margin as a Fraction) by enumeration (n <= 14)."""
    fire, chow, closest, total = brute_binary(weights, bias)
    return fire, chow, Fraction(closest, total) if total else Fraction(0)


def int_cases():
    rng = np.random.default_rng(3)
    out = []
    for n in (1, 3, 6, 10, 13):
        for spread in (2, 9, 127):
            w = rng.integers(-spread, spread + 1, n).astype(np.float64)
            w[rng.random(n) < 0.15] = 0.0  # zero weights
            top = int(np.abs(w).sum()) + 2
            for b in (-top, -0.5 * top, -1.0, 0.0, 0.5, 0.25 * top, top):  # incl. constants
                out.append((w * 2.0**-7, b * 2.0**-7))  # a common power-of-two scale
    return out


@pytest.mark.parametrize("case", range(0, 105, 4))
def test_dp_equals_brute_force(case):
    weights, bias = int_cases()[case]
    problem = dp_problem(weights, bias)
    if not np.any(weights):
        assert problem is None  # nothing to count: relevance reduction handles constants
        return
    assert problem is not None
    got = chow_dp(problem)
    fire, chow, margin = brute(weights, bias)
    assert got.fire == fire
    assert got.chow == chow
    assert got.margin == pytest.approx(float(margin), rel=1e-12, abs=0)


def test_dp_declines_float_and_huge_weights():
    assert dp_problem(np.array([0.1, 0.2, -0.3]), 0.05) is None  # 0.1 is not dyadic-small
    assert dp_problem(np.array([float(DP_MAX_TOTAL), 1.0]), 0.0) is None
    assert dp_problem(np.array([0.0, 0.0]), 1.0) is None
    problem = dp_problem(np.array([6.0, -9.0, 3.0]), 1.0)  # gcd 3 is removed
    assert problem is not None and problem.a == (2, 3, 1)


def test_dp_and_mitm_give_the_same_key():
    rng = np.random.default_rng(8)
    w = np.sort(rng.integers(-20, 21, 26).astype(np.float64))
    b = 3.5
    by_mitm = count_beyond(w, b, "binary", mitm_limit=26)
    by_dp = count_beyond(w, b, "binary", mitm_limit=4)
    assert (by_mitm.method, by_dp.method) == ("mitm", "dp")
    assert by_dp.key == by_mitm.key
    assert by_dp.chow == by_mitm.chow
    assert by_dp.margin == pytest.approx(by_mitm.margin, rel=1e-12)
    assert by_dp.relevant == by_mitm.relevant == 26


def test_dp_784_int8_is_exact_at_full_width():
    # an int8 layer row: the irrelevance rule (2·N_i == N) and symmetry checks hold exactly
    rng = np.random.default_rng(5)
    w = np.sort(rng.integers(-127, 128, 784).astype(np.float64))
    w[w == 0] = 1.0
    # ~0.4 s of DP: more than the default exact budget of a call, so ask for it
    res = count_beyond(w, 0.5, "binary", exact="always")
    assert res.method == "dp" and res.exact
    assert count_beyond(w, 0.5, "binary").method == "sampled"  # the default budget
    fire, *chow = res.chow
    assert 0 < fire < 2**784
    # x -> 1 - x maps the excited set of (w, b) onto the non-excited set of (w, -b - Σw)
    mirror = count_beyond(w, -0.5 - float(w.sum()), "binary", exact="always")
    assert mirror.fire_count == 2**784 - fire
    # equal weights have equal Chow parameters; larger weights larger ones
    by_weight = {}
    for wi, ci in zip(w.tolist(), chow, strict=True):
        assert by_weight.setdefault(wi, ci) == ci
    values = [by_weight[k] for k in sorted(by_weight)]
    assert values == sorted(values)


def test_the_batched_dp_test_agrees_with_dp_problem():
    # beyond_rows decides which neurons the DP applies to from the floats' odd parts,
    # vectorized; it must agree with dp_problem exactly (weights scaled by powers of two,
    # tiny biases that force rounded int64 rows, float weights that never qualify)
    from roon.kernels.beyond import _dp_totals

    rng = np.random.default_rng(0)
    for trial in range(150):
        n, kind = int(rng.integers(0, 40)), trial % 5
        if kind == 0:
            w = rng.integers(-127, 128, (3, n)).astype(float)
        elif kind == 1:
            w = rng.integers(-5, 6, (3, n)) * np.exp2(rng.integers(-30, 30, (3, 1)))
        elif kind == 2:
            w = rng.integers(-5, 6, (3, n)) * np.exp2(rng.integers(-25, 0, (3, n)))
        elif kind == 3:
            w = rng.normal(size=(3, n)).astype(np.float32).astype(float)
        else:
            w = rng.integers(-3, 4, (3, n)) * 3.0 * np.exp2(rng.integers(-22, 22, (3, n)))
        w = np.sort(w, axis=1)
        b = rng.normal(size=3) * np.exp2(rng.integers(-80, 10, 3))
        for i, total in enumerate(_dp_totals(w)):
            problem = dp_problem(w[i], float(b[i]))
            assert total == (None if problem is None else sum(problem.a)), (w[i], b[i])
