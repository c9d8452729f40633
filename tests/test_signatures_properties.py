"""Property tests of roon.signatures: brute force in exact rationals, invariances, canonicity."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from roon.kernels import signatures

VALUES = {"binary": (0, 1), "signed": (-1, 0, 1)}

# weights with many exact ties (multiples of 1/8), ordinary float32 values, and float64
# values spread over many binades (these force the rounded int64 path and its slow path)
weight = st.one_of(
    st.integers(-8, 8).map(lambda k: k / 8),
    st.floats(-4, 4, width=32),
    st.floats(-1e3, 1e3).filter(lambda x: x == 0 or abs(x) > 1e-300),
    st.sampled_from([1e-300, -1e-300, 2.0**-900, 1.0 - 2.0**-52]),
)


def brute_force(weights: list[float], bias: float, domain: str) -> dict:
    """Truth table, fire count, Chow vector and min |s| by Fraction arithmetic per input."""
    order = np.argsort(np.asarray(weights, dtype=np.float64), kind="stable")
    ws = [Fraction(float(weights[i])) for i in order]
    vals = VALUES[domain]
    r, n = len(vals), len(ws)
    table, fire, chow, best = 0, 0, [0] * n, None
    for m in range(r**n):
        xs = [vals[(m // r**i) % r] for i in range(n)]
        s = sum((x * w for x, w in zip(xs, ws, strict=True)), Fraction(bias))
        best = abs(s) if best is None else min(best, abs(s))
        if s > 0:
            table |= 1 << m
            fire += 1
            chow = [c + x for c, x in zip(chow, xs, strict=True)]
    scale = sum(abs(w) for w in ws) + abs(Fraction(bias))
    margin = float(best / scale) if scale else 0.0
    return {"table": format(table, "x"), "fire": fire, "chow": (fire, *chow), "margin": margin}


@given(st.lists(weight, max_size=8), weight)
@settings(max_examples=120, deadline=None)
def test_binary_matches_exact_brute_force(weights, bias):
    got = signatures([weights], [bias], "binary", table_limit=10)[0]
    want = brute_force(weights, bias, "binary")
    assert got.truth_table == want["table"]
    assert got.fire_count == want["fire"] and got.chow == want["chow"]
    assert got.margin == want["margin"] or abs(got.margin - want["margin"]) < 1e-12
    assert got.method == "exhaustive" and got.exact


@given(st.lists(weight, max_size=5), weight)
@settings(max_examples=80, deadline=None)
def test_signed_matches_exact_brute_force(weights, bias):
    got = signatures([weights], [bias], "signed", table_limit=6)[0]
    want = brute_force(weights, bias, "signed")
    assert got.truth_table == want["table"]
    assert got.fire_count == want["fire"] and got.chow == want["chow"]
    assert abs(got.margin - want["margin"]) < 1e-12


@given(
    st.lists(weight, min_size=1, max_size=9),
    weight,
    st.integers(-30, 30),
    st.randoms(use_true_random=False),
    st.sampled_from(["binary", "signed"]),
)
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_permutation_and_power_of_two_rescaling_leave_the_signature(w, b, k, rnd, domain):
    assume(domain == "binary" or len(w) <= 7)
    scale = 2.0**k
    scaled = [x * scale for x in [*w, b]]
    assume(all(np.isfinite(scaled)))
    assume(all((x == 0) == (y == 0) for x, y in zip([*w, b], scaled, strict=True)))
    perm = list(range(len(w)))
    rnd.shuffle(perm)
    base = signatures([w], [b], domain, table_limit=9)[0]
    moved = signatures([[scaled[i] for i in perm]], [scaled[-1]], domain, table_limit=9)[0]
    assert moved.hash == base.hash
    assert moved.truth_table == base.truth_table and moved.chow == base.chow
    assert moved.margin == base.margin or abs(moved.margin - base.margin) < 1e-12


@given(
    st.lists(st.lists(st.integers(-3, 3), min_size=4, max_size=4), min_size=2, max_size=12),
    st.lists(st.integers(-4, 4), min_size=12, max_size=12),
    st.sampled_from(["binary", "signed"]),
)
@settings(max_examples=60, deadline=None)
def test_equal_hash_iff_equal_sorted_table(rows, biases, domain):
    """Canonicity: within a fan-in, the hash partitions neurons exactly as the sorted table."""
    sig = signatures(np.array(rows, dtype=np.float64), np.array(biases[: len(rows)]) / 2, domain)
    tables = sig.truth_table
    for i in range(len(rows)):
        for j in range(i):
            assert (sig.hash[i] == sig.hash[j]) == (tables[i] == tables[j]), (rows[i], rows[j])


@given(st.lists(weight, max_size=6), weight, st.sampled_from(["binary", "signed"]))
@settings(max_examples=80, deadline=None)
def test_relevant_inputs_are_those_the_table_depends_on(weights, bias, domain):
    """The relevant count (read off the Chow vector) equals the direct table test."""
    got = signatures([weights], [bias], domain, table_limit=6)[0]
    r, n = len(VALUES[domain]), len(weights)
    bits = int(got.truth_table, 16)
    table = np.array([(bits >> m) & 1 for m in range(r**n)], dtype=np.uint8)
    cube = table.reshape((r,) * n) if n else table
    depends = 0
    for i in range(n):
        faces = [cube.take(d, axis=n - 1 - i) for d in range(r)]
        depends += any(not np.array_equal(faces[0], f) for f in faces[1:])
    assert got.relevant == depends


def _p_canonical(weights: list[float], bias: float, domain: str) -> tuple[int, ...]:
    """Lexicographically least truth table over every input order (Fraction arithmetic)."""
    import itertools

    vals = (0, 1) if domain == "binary" else (-1, 0, 1)
    n = len(weights)
    fw, fb = [Fraction(w) for w in weights], Fraction(bias)
    best = None
    for perm in itertools.permutations(range(n)):
        table = tuple(
            int(sum(fw[perm[i]] * x[i] for i in range(n)) + fb > 0)
            for x in itertools.product(vals, repeat=n)
        )
        best = table if best is None or table < best else best
    assert best is not None
    return best


@pytest.mark.parametrize("domain, n", [("binary", 4), ("signed", 3)])
def test_equal_hash_iff_permutation_equivalent_whatever_the_method(domain, n):
    # the hash is a function of the function: neurons with *different* weights, each
    # computed by another method or backend, share a hash exactly when some input
    # permutation maps one function onto the other (brute force over all n! orders)
    rng = np.random.default_rng(5)
    methods = [
        {"backend": "ref"},
        {"backend": "auto"},
        {"exhaustive_limit": 0},  # mitm / reduced
        {"exhaustive_limit": 0, "mitm_limit": 0},  # dp (binary) / reduced (signed)
    ]
    rows, hashes, canon = [], [], []
    for trial in range(90):
        w = rng.integers(-3, 4, n) * 0.5
        b = float(rng.integers(-4, 5)) * 0.25
        if trial % 3 == 1:  # the same functions again, other weights: scaled, permuted
            w, b = rng.permutation(w) * 3.0, b * 3.0
        elif trial % 3 == 2:  # a wide binade span: rounded int64 rows
            w = w + rng.choice([0.0, 2.0**-60, -(2.0**-70)], n)
        method = methods[trial % len(methods)]
        if trial % 3 == 2 and "mitm_limit" in method:  # no DP for these weights
            method = methods[2]
        got = signatures([w], [b], domain, **method)[0]
        assert got.exact
        rows.append((w.tolist(), b))
        hashes.append(got.hash)
        canon.append(_p_canonical(w.tolist(), b, domain))
    assert len(set(canon)) > 10 and len(set(canon)) < len(canon)  # collisions do occur
    for i in range(len(rows)):
        for j in range(i):
            assert (hashes[i] == hashes[j]) == (canon[i] == canon[j]), (rows[i], rows[j])
