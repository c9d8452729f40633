"""Review of the signature kernels: regressions found by adversarial probing.

Each test here failed before the fix it names; the oracle is exact rational arithmetic
(``fractions.Fraction``) or another method/backend that must agree bit for bit.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from roon.errors import QueryError
from roon.kernels import signatures
from roon.kernels.beyond import count_beyond
from roon.kernels.exact import to_int64

# ---------------------------------------------------------------- reduced-method margins


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


# ---------------------------------------------------------------- bad input: one-line roon errors


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
    with pytest.raises(QueryError, match=what) as err:
        signatures(np.ones((1, fan_in)), [-0.5], **kwargs)
    assert "\n" not in str(err.value)


def test_count_beyond_raises_roon_errors():
    with pytest.raises(QueryError, match="sorted"):
        count_beyond(np.array([1.0, -1.0]), 0.0, "binary")
    with pytest.raises(QueryError, match="mitm_limit"):
        count_beyond(np.array([1.0]), 0.0, "binary", mitm_limit=99)


@pytest.mark.parametrize(
    "args, kwargs, what",
    [
        (([1.0, 2.0], 0.0, [1.0], 0.0), {"mapping": {0: 1.5}}, "mapping values"),
        (([1.0, 2.0], 0.0, [1.0], 0.0), {"mapping": {0: True}}, "mapping values"),
        (([1.0, 2.0], 0.0, [1.0], 0.0), {"mapping": {0: "a"}}, "mapping values"),
        (([1.0, 2.0], 0.0, [1.0], 0.0), {"mapping": [1]}, "mapping must be a dict"),
        (([1.0, 2.0], 0.0, [1.0], 0.0), {"mapping": {"0": 1}}, "mapping keys"),
        (([1.0, 2.0], "x", [1.0], 0.0), {}, "bias"),
        (([1.0, 2.0], None, [1.0], 0.0), {}, "bias"),
        (([1.0, 2.0], [0.1, 0.2], [1.0], 0.0), {}, "bias"),
        (([1.0, 2.0], 0.0, ["a"], 0.0), {}, "small_weights"),
    ],
)
def test_is_equivalent_to_bad_arguments_are_query_errors(args, kwargs, what):
    # before: {0: 1.5} and {0: True} were silently read as input 1, and the others raised
    # bare ValueError / TypeError from float() or dict()
    from roon.kernels import is_equivalent_to

    with pytest.raises(QueryError, match=what) as err:
        is_equivalent_to(*args, **kwargs)
    assert "\n" not in str(err.value)


def test_is_equivalent_to_accepts_numpy_integer_mappings():
    from roon.kernels import is_equivalent_to

    res = is_equivalent_to([0.0, 1.0, 1.0], -1.5, [1.0, 1.0], -1.0, {0: np.int64(1), 1: 2})
    assert res and res.mapping == {0: 1, 1: 2}
    assert all(type(v) is int for v in res.mapping.values())


# ---------------------------------------------------------------- memory of the NumPy face


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


# ---------------------------------------------------------------- canonicity across methods


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


# ---------------------------------------------------------------- the exact slow path


def test_uncertain_binary_rows_without_a_table_take_the_mitm_slow_path(monkeypatch):
    # before: every uncertain row enumerated all 2^n inputs on Python ints (4 s per neuron
    # at n = 24, the GPU default limit); binary rows without a table now count by MITM on
    # the same exact integers, with the same result in every field
    import importlib

    from roon.kernels.exhaustive import exhaustive_exact

    sigmod = importlib.import_module("roon.kernels.signatures")
    rng = np.random.default_rng(3)
    w = rng.normal(size=(6, 14))
    w[:, 0] = 2.0**-70 * 1.2345  # a rounded int64 row ...
    w[:, 2] = -w[:, 1]  # ... with exact ties (x_1 = x_2 = 1, the rest 0): uncertain
    b = np.zeros(6)
    b[3] = float(rng.normal())
    want = []
    for i in range(6):
        ws = np.sort(w[i])
        counts, denom = exhaustive_exact(ws, b[i], "binary")
        want.append(sigmod._neurons(counts, [denom], ws[None, :], "binary", False)[0])
    calls = []
    monkeypatch.setattr(sigmod, "exhaustive_exact", lambda *a, **k: calls.append(a))
    for backend in ("ref", "auto"):
        got = signatures(w, b, backend=backend)
        assert list(got) == want
    assert not calls
    assert [g.margin == 0.0 for g in want] == [True] * 3 + [False] + [True] * 2
