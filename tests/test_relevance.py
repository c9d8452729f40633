"""Relevance: certificates are sound, the exact test and k_rel match brute force."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roon.kernels.mitm import exact_row, fixed_row
from roon.kernels.relevance import (
    depends_only_on,
    greedy_lower_bound,
    relevance,
    relevance_order,
)

DOMAIN_VALUES = {"binary": (0, 1), "signed": (-1, 0, 1)}


def brute_table(weights, bias, domain):
    """Excitation of every input as an n-dimensional bool array (axis i = input i)."""
    vals = DOMAIN_VALUES[domain]
    fr = [Fraction(float(x)) for x in weights]
    b = Fraction(float(bias))
    n = len(weights)
    out = np.zeros((len(vals),) * n, dtype=bool)
    for x in itertools.product(range(len(vals)), repeat=n):
        out[x] = sum(f * vals[d] for f, d in zip(fr, x, strict=True)) + b > 0
    return out


def brute_relevant(weights, bias, domain):
    table = brute_table(weights, bias, domain)
    return {i for i in range(len(weights)) if np.any(table.max(axis=i) != table.min(axis=i))}


def weight_vectors():
    rng = np.random.default_rng(21)
    out = []
    for trial in range(60):
        n = int(rng.integers(1, 9 if trial % 2 else 7))
        kind = trial % 4
        if kind == 0:  # small integers: many ties, exact zero sums
            w = rng.integers(-4, 5, n).astype(np.float64)
            b = float(rng.integers(-6, 7)) + (0.5 if trial % 8 == 0 else 0.0)
        elif kind == 1:  # tiny weights beside large ones: reducible
            w = rng.normal(size=n)
            w[rng.random(n) < 0.5] *= 1e-4
            b = rng.normal()
        elif kind == 2:  # many binades: rounded fixed-point rows
            w = rng.normal(size=n) * np.exp2(rng.integers(-70, 70, n))
            b = float(w[: n // 2].sum())
        else:
            w = rng.normal(size=n).astype(np.float32).astype(np.float64)
            b = float(np.float32(rng.normal()))
        out.append((w, b, "binary" if trial % 2 else "signed"))
    return out


@pytest.mark.parametrize("case", range(60))
def test_relevance_matches_brute_force(case):
    w, b, domain = weight_vectors()[case]
    truth = brute_relevant(w, b, domain)
    # the prefix property: the relevant inputs are the top |w| ones (ties together)
    if truth:
        smallest = min(abs(w[i]) for i in truth)
        assert truth == {i for i in range(len(w)) if abs(w[i]) >= smallest and w[i] != 0}
    rel = relevance(w, b, domain, limit=len(w))
    assert rel.k == len(truth)
    assert set(rel.relevant().tolist()) == truth
    # certificates: greedy-certified inputs are truly relevant
    order = relevance_order(w)
    for row in (fixed_row(w, b), exact_row(w, b)):
        certified = greedy_lower_bound(row, order, domain)
        assert set(order[:certified].tolist()) <= truth
    # the exact test on any kept set agrees with the table
    table = brute_table(w, b, domain)
    rng = np.random.default_rng(case)
    for _ in range(4):
        keep = np.flatnonzero(rng.random(len(w)) < 0.6)
        free = [i for i in range(len(w)) if i not in set(keep.tolist())]
        truly = not any(np.any(table.max(axis=i) != table.min(axis=i)) for i in free)
        assert depends_only_on(exact_row(w, b), keep, domain) == truly


def test_limit_stops_early_with_a_certified_bound():
    rng = np.random.default_rng(0)
    w = rng.normal(size=784)  # a dense MNIST-like neuron: everything is relevant
    for domain, limit in (("binary", 40), ("signed", 12)):
        rel = relevance(w, 0.1, domain, limit=limit)
        assert rel.lower > limit
        assert rel.k is None or rel.k == rel.lower  # k only when certified outright


def test_and_gate_hidden_among_tiny_weights():
    w = np.full(784, 1e-3)
    w[1::2] = -1e-3
    w[[100, 200]] = 1.0
    rel = relevance(w, -1.5, "binary", limit=40)
    assert rel.k == 2 and rel.relevant().tolist() == [100, 200]
    w[300] = 0.95  # one "tiny" weight large enough to matter
    assert relevance(w, -1.5, "binary", limit=40).k == 3
    w[300] = 0.6  # now x_100 + x_300 lands within reach of the tiny ones: all matter
    assert relevance(w, -1.5, "binary", limit=40).lower == 784


@settings(max_examples=60, deadline=None)
@given(
    ints=st.lists(st.integers(-6, 6), min_size=1, max_size=6),
    bias=st.integers(-8, 8),
    half=st.booleans(),
    domain=st.sampled_from(["binary", "signed"]),
)
def test_k_rel_property(ints, bias, half, domain):
    w = np.array(ints, dtype=np.float64)
    b = bias + (0.5 if half else 0.0)
    truth = brute_relevant(w, b, domain)
    rel = relevance(w, b, domain, limit=len(w))
    assert set(rel.relevant().tolist()) == truth
    small = relevance(w, b, domain, limit=0)
    assert small.lower <= len(truth)
    assert small.k in (None, len(truth))
    if small.k is None:
        assert len(truth) > 0


def test_batched_bounds_equal_the_per_neuron_ones():
    # relevance_bounds_rows runs the greedy fills for a whole layer at once: the same
    # order, tie groups, certified bound and prefix tests as one neuron at a time
    from roon.kernels.exact import to_int64
    from roon.kernels.mitm import Row
    from roon.kernels.relevance import relevance_bounds, relevance_bounds_rows

    rng = np.random.default_rng(0)
    for trial in range(120):
        n, size = int(rng.integers(0, 30)), int(rng.integers(1, 6))
        kind = trial % 4
        if kind == 0:  # ties, exact zero sums
            w, b = rng.integers(-3, 4, (size, n)).astype(float), rng.integers(-4, 5, size) * 1.0
        elif kind == 1:
            w, b = rng.normal(size=(size, n)), rng.normal(size=size)
        elif kind == 2:  # rounded rows (tol > 0)
            w = rng.normal(size=(size, n)) * np.exp2(rng.integers(-60, 60, (size, n)))
            b = rng.normal(size=size)
        else:  # a few relevant inputs among tiny ones
            big = rng.random((size, n)) < 0.3
            w = np.where(big, rng.normal(size=(size, n)) * 4, rng.normal(size=(size, n)) * 1e-5)
            b = rng.normal(size=size)
        rows = to_int64(w, b)
        for i, got in enumerate(relevance_bounds_rows(w, rows)):
            total = int(np.abs(rows.weights[i]).sum()) + abs(int(rows.bias[i]))
            row = Row(rows.weights[i], int(rows.bias[i]), int(rows.tol[i]), total)
            want = relevance_bounds(w[i], b[i], "binary", row)
            assert np.array_equal(got.order, want.order) and np.array_equal(got.ends, want.ends)
            assert (got.nonzero, got.lower, got.tests) == (want.nonzero, want.lower, want.tests)
