"""is_equivalent_to: the seed's "700-input neuron that is really an AND", exactly."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest

from roon.errors import InvalidArgumentError
from roon.kernels.equivalence import Equivalence, is_equivalent_to

VALUES = {"binary": (0, 1), "signed": (-1, 0, 1)}


def fires(weights, bias, x):
    return (
        sum(Fraction(float(w)) * v for w, v in zip(weights, x, strict=True)) + Fraction(float(bias))
        > 0
    )


def brute_zero(w, b, v, c, mapping, domain):
    """Restricted large neuron (others 0) equals the small one under ``mapping``."""
    sub = [w[mapping[j]] for j in range(len(v))]
    return all(
        fires(sub, b, x) == fires(v, c, x) for x in itertools.product(VALUES[domain], repeat=len(v))
    )


def brute_free(w, b, v, c, mapping, domain):
    """The whole large neuron equals the small one read on the mapped inputs."""
    for x in itertools.product(VALUES[domain], repeat=len(w)):
        if fires(w, b, x) != fires(v, c, [x[mapping[j]] for j in range(len(v))]):
            return False
    return True


def wide_and(n=784):
    w = np.full(n, 1e-3)
    w[1::2] = -1e-3  # Σ of either sign is 0.392: never enough to cross the 0.5 gap
    w[[100, 200]] = 1.0
    return w


def test_784_input_neuron_is_an_and_with_everything_else_free():
    w = wide_and()
    res = is_equivalent_to(w, -1.5, [1.0, 1.0], -1.0, others="free")
    assert isinstance(res, Equivalence) and res
    assert res.mapping == {0: 100, 1: 200}
    assert is_equivalent_to(w, -1.5, [1.0, 1.0], -1.0, {0: 200, 1: 100}, others="free")
    # the gate's own weights need not match: any AND of two inputs
    assert is_equivalent_to(w, -1.5, [0.3, 5.0], -5.1, others="free")
    # OR is not AND
    assert not is_equivalent_to(w, -1.5, [1.0, 1.0], -0.5, others="free")


def test_784_input_and_with_others_at_zero():
    w = wide_and()
    res = is_equivalent_to(w, -1.5, [1.0, 1.0], -1.0, {0: 100, 1: 200})
    assert res and res.mapping == {0: 100, 1: 200}
    found = is_equivalent_to(w, -1.5, [1.0, 1.0], -1.0)
    assert found and sorted(found.mapping.values()) == [100, 200]
    wrong = is_equivalent_to(w, -1.5, [1.0, 1.0], -1.0, {0: 100, 1: 201})
    assert not wrong and wrong.reason.startswith("differ at x=(1, 1)")


def test_near_misses_are_not_and():
    w = wide_and()
    w[300] = 0.6  # one of the 782 large enough to matter once inputs are free
    assert not is_equivalent_to(w, -1.5, [1.0, 1.0], -1.0, others="free")
    res = is_equivalent_to(w, -1.5, [1.0, 1.0], -1.0, {0: 100, 1: 200}, others="free")
    assert not res and "300" in res.reason
    # with the other inputs held at 0 the restriction is still AND(x_100, x_200)
    assert is_equivalent_to(w, -1.5, [1.0, 1.0], -1.0, {0: 100, 1: 200})
    w = wide_and()
    w[100] = 1.6  # x_100 alone now fires: not AND in either sense
    assert not is_equivalent_to(w, -1.5, [1.0, 1.0], -1.0, {0: 100, 1: 200})
    assert not is_equivalent_to(w, -1.5, [1.0, 1.0], -1.0)
    assert not is_equivalent_to(w, -1.5, [1.0, 1.0], -1.0, others="free")


def random_pairs():
    rng = np.random.default_rng(13)
    out = []
    for trial in range(24):
        domain = "binary" if trial % 3 else "signed"
        n = int(rng.integers(2, 7 if domain == "binary" else 5))
        m = int(rng.integers(1, min(n, 3) + 1))
        w = rng.integers(-3, 4, n).astype(np.float64)
        w[rng.random(n) < 0.4] *= 1e-3  # often a small gate among tiny weights
        b = float(rng.integers(-3, 3)) + 0.5
        if trial % 2:  # a small neuron equal to a restriction of the large one
            picks = rng.choice(n, m, replace=False)
            v, c = w[picks] * 2.0, 2.0 * b
        else:
            v, c = rng.integers(-3, 4, m).astype(np.float64), float(rng.integers(-3, 3)) + 0.5
        out.append((w, b, v, c, domain))
    return out


@pytest.mark.parametrize("case", range(24))
def test_agrees_with_brute_force(case):
    w, b, v, c, domain = random_pairs()[case]
    n, m = len(w), len(v)
    maps = [dict(enumerate(p)) for p in itertools.permutations(range(n), m)]
    for others, brute in (("zero", brute_zero), ("free", brute_free)):
        truth = [brute(w, b, v, c, mp, domain) for mp in maps]
        found = is_equivalent_to(w, b, v, c, domain=domain, others=others)
        assert bool(found) == any(truth), (others, found)
        if found:
            assert brute(w, b, v, c, found.mapping, domain)
        for mp, t in list(zip(maps, truth, strict=True))[:6]:
            assert bool(is_equivalent_to(w, b, v, c, mp, domain=domain, others=others)) == t


def test_malformed_questions_raise_query_error():
    w = np.ones(20)
    with pytest.raises(InvalidArgumentError, match="mapping keys"):
        is_equivalent_to(w, -1.5, [1.0, 1.0], -1.0, {0: 1})
    with pytest.raises(InvalidArgumentError, match="distinct"):
        is_equivalent_to(w, -1.5, [1.0, 1.0], -1.0, {0: 1, 1: 1})
    with pytest.raises(InvalidArgumentError, match="distinct"):
        is_equivalent_to(w, -1.5, [1.0, 1.0], -1.0, {0: 1, 1: 20})
    with pytest.raises(InvalidArgumentError, match="others"):
        is_equivalent_to(w, -1.5, [1.0, 1.0], -1.0, others="any")
    with pytest.raises(InvalidArgumentError, match="pass mapping"):
        is_equivalent_to(np.ones(60), -0.5, np.ones(17), -0.5)
    assert not is_equivalent_to(np.ones(2), 0.0, np.ones(3), 0.0)  # cannot inject 3 into 2


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
def test_is_equivalent_to_bad_arguments_are_invalid_argument_errors(args, kwargs, what):
    # before: {0: 1.5} and {0: True} were silently read as input 1, and the others raised
    # bare ValueError / TypeError from float() or dict()
    from roon.kernels import is_equivalent_to

    with pytest.raises(InvalidArgumentError, match=what) as err:
        is_equivalent_to(*args, **kwargs)
    assert "\n" not in str(err.value)


def test_is_equivalent_to_accepts_numpy_integer_mappings():
    from roon.kernels import is_equivalent_to

    res = is_equivalent_to([0.0, 1.0, 1.0], -1.5, [1.0, 1.0], -1.0, {0: np.int64(1), 1: 2})
    assert res and res.mapping == {0: 1, 1: 2}
    assert all(type(v) is int for v in res.mapping.values())
