"""Box-domain local signatures: the binary signature of the weights rescaled to each
input's range, exact even where the rescaled weights are not float64 numbers."""

from __future__ import annotations

from fractions import Fraction
from itertools import product

import numpy as np
import pytest

from roon import MLP, InvalidArgumentError, Layer, signatures
from roon.kernels.box import box_rows, box_signatures, layer_boxes, propagate_box


def _vertex_oracle(w, b, lo, hi) -> tuple[int, list[int]]:
    """Exact fire count and sorted Chow vector over the box corners, by enumeration."""
    wf = [Fraction(float(v)) for v in w]
    lof = [Fraction(float(v)) for v in lo]
    rng = [Fraction(float(h)) - Fraction(float(lv)) for h, lv in zip(hi, lo, strict=True)]
    order = sorted(range(len(w)), key=lambda i: wf[i] * rng[i])
    fire, chow = 0, [0] * len(w)
    for t in product((0, 1), repeat=len(w)):
        x = [lof[i] + t[i] * rng[i] for i in range(len(w))]
        if sum(a * v for a, v in zip(wf, x, strict=True)) + Fraction(float(b)) > 0:
            fire += 1
            for pos, i in enumerate(order):
                chow[pos] += t[i]
    return fire, chow


def _same_function(a, b) -> None:
    for field in ("fan_in", "fire_count", "chow", "truth_table", "relevant", "margin", "exact"):
        assert getattr(a, field) == getattr(b, field), field


def test_on_a_wider_box_and_is_or():
    # relu(x1 + x2 - 1) with inputs in [0, 2]: corners {0,2}^2 fire unless both are 0
    [box] = box_signatures([[1.0, 1.0]], [-1.0], [0.0, 0.0], [2.0, 2.0])
    [rescaled] = signatures([[2.0, 2.0]], [-1.0])
    assert box.truth_table == "e" and box.chow == (3, 2, 2)
    _same_function(box, rescaled)
    assert box.domain == "box" and box.hash != rescaled.hash


def test_the_lower_corner_shifts_the_bias():
    # x1 + x2 on [-1, 1]^2: w' = (2, 2), b' = 0 + w·lo = -2: only the upper corner fires
    [box] = box_signatures([[1.0, 1.0]], [0.0], [-1.0, -1.0], [1.0, 1.0])
    [rescaled] = signatures([[2.0, 2.0]], [-2.0])
    assert box.truth_table == "8"  # AND
    _same_function(box, rescaled)


def test_box_rows_are_the_hand_transform():
    rows = box_rows([[2.0, -1.0], [0.5, 4.0]], [0.5, -1.0], [0.0, -1.0], [0.5, 1.0])
    assert rows.weights.tolist() == [[1.0, -2.0], [0.25, 8.0]]
    assert rows.bias.tolist() == [1.5, -5.0] and rows.error.tolist() == [0.0, 0.0]


def test_on_the_unit_box_only_the_hash_differs_from_binary():
    w = np.array([[0.7, 0.7, -0.2], [1.0, -1.0, 0.5]])
    b = np.array([-1.0, 0.25])
    box = box_signatures(w, b, np.zeros(3), np.ones(3))
    binary = signatures(w, b)
    for a, c in zip(box, binary, strict=True):
        _same_function(a, c)
        assert a.domain == "box" and a.hash != c.hash
    assert len(set(box.hash)) == 2


def test_rounding_that_would_flip_a_corner_is_recounted_exactly():
    # w'_1 = -3·fl(0.1) lies exactly halfway between two floats and rounds (to even) onto
    # -0.30000000000000004 = -w'_2: the rounded row ties at the corner (1, 1), where the
    # exact value is +2^-55 > 0, so that corner fires
    lo, hi = [0.0, 0.0], [0.1, 0.30000000000000004]
    w, b = [[-3.0, 1.0]], [0.0]
    rows = box_rows(w, b, lo, hi)
    assert rows.weights[0, 0] == -rows.weights[0, 1] and rows.error[0] > 0
    [rounded] = signatures(rows.weights, rows.bias)
    assert rounded.truth_table == "4"  # what trusting the rounded row would say
    [box] = box_signatures(w, b, lo, hi)
    assert box.truth_table == "c" and box.chow == (2, 1, 2) and box.exact
    fire, chow = _vertex_oracle(w[0], b[0], lo, hi)
    assert (box.fire_count, sorted(box.chow[1:])) == (fire, sorted(chow))


@pytest.mark.parametrize("seed", range(6))
def test_random_real_boxes_equal_the_vertex_oracle(seed):
    rng = np.random.default_rng(seed)
    n = 5
    lo = rng.uniform(-0.6, 0.0, n)
    hi = lo + rng.uniform(0.1, 1.3, n)
    w = rng.normal(size=(8, n)).astype(np.float32)
    b = rng.normal(0, 0.3, size=8).astype(np.float32)
    for counts, row, bias in zip(box_signatures(w, b, lo, hi), w, b, strict=True):
        fire, chow = _vertex_oracle(row, bias, lo, hi)
        assert counts.fire_count == fire
        assert sorted(counts.chow[1:]) == sorted(chow)


def test_propagated_boxes_follow_the_activation():
    w, b = [[1.0, -2.0]], [0.5]
    assert [a.tolist() for a in propagate_box(w, b, "relu", [0, 0], [1, 1])] == [[0.0], [1.5]]
    assert [a.tolist() for a in propagate_box(w, b, "linear", [0, 0], [1, 1])] == [[-1.5], [1.5]]
    dead = propagate_box([[-1.0, -1.0]], [-0.5], "relu", [0, 0], [1, 1])
    assert [a.tolist() for a in dead] == [[0.0], [0.0]]
    lo, hi = propagate_box(w, b, "sigmoid", [0, 0], [1, 1])
    assert lo[0] < 1 / (1 + np.exp(1.5)) < 1 / (1 + np.exp(-1.5)) < hi[0]


def test_layer_boxes_round_outward_to_float64():
    # z = 0.1·x + 0.2 on [0, 1]: the exact upper bound fl(0.1) + fl(0.2) is no float64;
    # the box's upper end is the next float above it
    mlp = MLP([Layer([[0.1]], [0.2], "relu"), Layer([[1.0]], [0.0], "linear")])
    boxes = layer_boxes(mlp, [0.0], [1.0])
    upper = boxes[1][1][0]
    exact = Fraction(0.1) + Fraction(0.2)
    assert Fraction(upper) >= exact and Fraction(np.nextafter(upper, 0)) < exact
    assert boxes[1][0].tolist() == [0.0]


def test_bad_boxes_are_refused():
    with pytest.raises(InvalidArgumentError, match="lower bound"):
        box_signatures([[1.0]], [0.0], [1.0], [0.0])
    with pytest.raises(InvalidArgumentError, match="2 lower and upper"):
        box_signatures([[1.0, 1.0]], [0.0], [0.0], [1.0])


@pytest.mark.parametrize("seed", range(4))
def test_wide_exact_rows_count_alike_compiled_and_on_python_integers(seed):
    # rows far wider than int64 (2^100 scale), rounded to fixed point by the compiled route,
    # with a corner exactly on the threshold and one a single unit above it (uncertain after
    # rounding): the counts must equal the Python-integer meet-in-the-middle's
    from roon.kernels.box import _count_compiled
    from roon.kernels.cpu import cpu_missing
    from roon.kernels.mitm import Row, chow_mitm

    if cpu_missing() is not None:
        pytest.skip(cpu_missing())
    rng = np.random.default_rng(seed)
    n = 14
    base = [int(v) << 90 for v in rng.integers(-(2**12), 2**12, n)]
    base = sorted(v + int(rng.integers(0, 2**40)) for v in base)
    subset = sum(base[i] for i in rng.choice(n, 5, replace=False).tolist())
    for b in (-subset, 1 - subset, -subset - 1, int(rng.integers(-(2**12), 2**12)) << 90):
        w = np.empty(n, dtype=object)
        w[:] = base
        want = chow_mitm(Row(w, b, 0, sum(abs(v) for v in base) + abs(b)))
        got = _count_compiled(base, b)
        assert got is not None
        fire, chow, closest = got
        assert (fire, chow) == (want.fire, list(want.chow))
        sides = (want.high, None if want.low is None else -want.low)
        exact_closest = min(v for v in sides if v is not None)
        if exact_closest <= (n + 1) << 50:  # near the threshold: exact
            assert closest == exact_closest
        else:
            assert closest == pytest.approx(exact_closest, rel=1e-9)
