"""roon.kernels.exact against brute force in exact rational arithmetic (fractions)."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roon.kernels.exact import SUM_BITS, decompose, to_int64, to_integers

finite64 = st.floats(allow_nan=False, allow_infinity=False, width=64)
finite32 = st.floats(allow_nan=False, allow_infinity=False, width=32)
# values across many binades, so both the exact and the rounded int64 paths are hit
wide = st.one_of(
    finite64.filter(lambda x: x == 0 or 1e-300 < abs(x) < 1e300),
    st.integers(-8, 8).map(lambda k: k / 8),
    finite32,
)


@given(st.lists(finite64, min_size=1, max_size=20))
def test_decompose_is_exact(values):
    odd, k = decompose(np.array(values))
    for v, o, e in zip(values, odd.tolist(), k.tolist(), strict=True):
        assert Fraction(o) * Fraction(2) ** e == Fraction(v)
        assert o == 0 or o % 2 == 1
        assert abs(o) < 2**53


def test_decompose_rejects_nan():
    with pytest.raises(ValueError):
        decompose(np.array([1.0, np.nan]))


@given(st.lists(wide, min_size=0, max_size=8), wide)
@settings(max_examples=200)
def test_to_int64_row_against_fractions(weights, bias):
    n = len(weights)
    rows = to_int64(np.array([weights], dtype=np.float64).reshape(1, n), np.array([bias]))
    wi, bi = rows.weights[0].tolist(), int(rows.bias[0])
    tol, shift = int(rows.tol[0]), int(rows.shift[0])
    assert sum(abs(x) for x in wi) + abs(bi) <= 2**SUM_BITS
    unit = Fraction(2) ** shift
    exact = [Fraction(x) / unit for x in [*weights, bias]]
    ints = [*wi, bi]
    if tol == 0:
        assert [Fraction(x) for x in ints] == exact
    else:
        assert tol == (n + 2) // 2
        assert all(abs(Fraction(i) - e) <= Fraction(1, 2) for i, e in zip(ints, exact, strict=True))
    # every input sum of the int64 row is within tol of the exact scaled sum
    for x in itertools.product((0, 1), repeat=min(n, 6)):
        xs = list(x) + [0] * (n - len(x))
        s_int = sum(a * b for a, b in zip(xs, wi, strict=True)) + bi
        s_exact = sum(a * b for a, b in zip(xs, exact[:-1], strict=True)) + exact[-1]
        assert abs(s_int - s_exact) <= tol
        if tol == 0:
            assert (s_int > 0) == (s_exact > 0)


def test_to_int64_rounds_only_wide_rows():
    rows = to_int64(np.array([[0.5, 0.25], [1e-300, 1.0]]), np.array([-0.75, -1.0]))
    assert rows.tol.tolist() == [0, (2 + 2) // 2]
    assert rows.weights[0].tolist() == [2, 1] and rows.bias[0] == -3
    assert rows.exact.tolist() == [True, False]


def test_to_int64_float32_rows_are_exact():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(50, 16)).astype(np.float32)
    b = rng.normal(size=50).astype(np.float32)
    rows = to_int64(w, b)
    assert rows.exact.all()
    back = rows.weights.astype(np.float64) * np.exp2(rows.shift.astype(np.float64))[:, None]
    np.testing.assert_array_equal(back, w.astype(np.float64))


def test_to_int64_shape_errors():
    with pytest.raises(ValueError):
        to_int64(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError):
        to_int64(np.zeros((2, 3)), np.zeros(3))


@given(st.lists(wide, min_size=0, max_size=7), wide)
@settings(max_examples=200)
def test_to_integers_is_a_positive_rescaling(weights, bias):
    ints, b_int = to_integers(np.array(weights, dtype=np.float64), bias)
    values = [Fraction(v) for v in [*weights, bias]]
    all_ints = [*ints, b_int]
    nonzero = [(i, v) for i, v in zip(all_ints, values, strict=True) if v != 0]
    assert all((i == 0) == (v == 0) for i, v in zip(all_ints, values, strict=True))
    if nonzero:
        i0, v0 = nonzero[0]
        scale = Fraction(i0) / v0
        assert scale > 0
        assert all(Fraction(i) == scale * v for i, v in zip(all_ints, values, strict=True))


def worst_rounded_row(k: int) -> tuple[np.ndarray, float]:
    """A row that rounds, with the largest total rounding error an unexcited input can have.

    Weight 1.0 sets the scale; ``k`` (even) weights of ``64.5 + 2^-20`` units each round
    up to 65 (error just under 1/2 each) and the bias, ``-k`` times that, rounds to
    ``-64k - k/2``. With the big weight off and every small one on, the exact sum is 0
    (not excited) but the int64 sum is ``k/2``; every other input's sum is at least 64
    units from 0. Only a tolerance of at least ``k/2`` sends that one input to the exact
    re-check; a smaller one counts it as excited.
    """
    probe = to_int64(np.array([[1.0] + [2.0**-70] * k]), np.array([0.0]))
    small = (64.5 + 2.0**-20) * 2.0 ** int(probe.shift[0])
    return np.array([1.0] + [small] * k), -k * small


@pytest.mark.parametrize("k", [2, 4, 8, 12])
def test_rounding_tolerance_covers_the_worst_case_sum(k):
    from fixtures import brute_binary

    from roon.kernels import signatures

    w, b = worst_rounded_row(k)
    rows = to_int64(w[None, :], np.array([b]))
    assert not rows.exact[0]
    assert int(rows.weights[0, 1:].sum() + rows.bias[0]) == k // 2  # exact sum: 0
    fire, chow, closest, _ = brute_binary(np.sort(w), b)
    assert (fire, closest) == (2**k, 0)  # excited exactly when the big weight is on
    for backend in ("ref", "cpu"):
        sig = signatures(w[None, :], [b], backend=backend)
        assert int(sig.fire_count[0]) == fire, backend
        assert list(sig.chow[0]) == [fire, *chow], backend
        assert sig.exact[0] and sig.margin[0] == 0.0
