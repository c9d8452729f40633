"""Input-space signatures: point order, exact decisions against a Fraction oracle, hashes."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from fixtures import fraction_preactivations, permuted, random_mlp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roon import MLP, InvalidArgumentError, Layer
from roon.kernels.input_space import evaluate_space, input_space_signatures
from roon.kernels.spaces import binary_space, box_space, probe_space, signed_space


def _signs(mlp: MLP, space) -> list[np.ndarray]:
    chunks = list(evaluate_space(mlp, space, chunk=8))
    return [np.concatenate([c.signs[k] for c in chunks]) for k in range(len(mlp.layers))]


def _oracle_signs(mlp: MLP, points: np.ndarray) -> list[np.ndarray]:
    per_point = [fraction_preactivations(mlp, x) for x in points]
    return [
        np.array([[(v > 0) - (v < 0) for v in p[k]] for p in per_point], dtype=np.int8)
        for k in range(len(mlp.layers))
    ]


# --- point order ------------------------------------------------------------------


def test_binary_points_put_input_0_in_the_lowest_bit():
    assert binary_space(3).points(0, 8).tolist() == [
        [0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 1], [0, 1, 1], [1, 1, 1]
    ]  # fmt: skip


def test_signed_points_are_base_3_digits_minus_one():
    pts = signed_space(2).points(0, 9).tolist()
    assert pts == [[a, b] for b in (-1, 0, 1) for a in (-1, 0, 1)]


def test_box_grid_hits_both_corners_exactly_and_splits_evenly():
    lo, hi = np.array([-0.1, 0.3]), np.array([0.7, 0.3000000000000001])
    space = box_space(lo, hi, grid=3)
    pts = space.points(0, 9)
    assert space.size == 9 and not space.complete
    assert pts[0].tolist() == lo.tolist() and pts[-1].tolist() == hi.tolist()
    assert pts[1, 0] == pytest.approx(0.3) and pts[2, 0] == 0.7
    assert box_space(lo, hi, grid=2).complete


def test_default_box_grid_for_acas_xu_width():
    assert box_space(np.zeros(5), np.ones(5)).grid == 9  # 9^5 = 59,049 points
    assert box_space(np.zeros(17), np.ones(17)).grid == 2  # only the vertices fit


def test_spaces_refuse_bad_shapes_and_sizes():
    # the commands have no max_points option: the message names what they can do
    with pytest.raises(InvalidArgumentError, match=r"exceeds the limit.*box:K.*in Python"):
        binary_space(21)
    with pytest.raises(InvalidArgumentError, match="finite"):
        probe_space([[0.0, np.nan]])
    with pytest.raises(InvalidArgumentError, match="lower bound"):
        box_space([1.0], [0.0])
    with pytest.raises(InvalidArgumentError, match="takes 3"):
        list(evaluate_space(random_mlp((3, 2)), binary_space(2)))


# --- exact decisions -------------------------------------------------------------


def test_a_point_exactly_on_the_threshold_does_not_fire():
    # 0.5 + 0.25 - 0.75 = 0 exactly: strictly > 0 is false, the sign is 0
    mlp = MLP([Layer([[0.5, 0.25]], [-0.75], "linear")])
    found = input_space_signatures(mlp, binary_space(2)).layers[0]
    assert found.pattern == ["0"] and found.zero_count.tolist() == [1]
    assert found.fire_count.tolist() == [0] and found.exact.all()


def test_cancellation_that_float_rounds_to_zero_is_decided_exactly():
    # (1e16 + 1) - 1e16 is 0 in float64 whatever the order, 1 exactly; 3·fl(1/3) - 1 is
    # -2^-54 exactly but 0 in float64 without FMA
    mlp = MLP([Layer([[1.0, 1.0, 1.0]], [0.0], "linear")])
    pts = np.array([[1e16, 1.0, -1e16], [1e16, -1e16, 1.0], [1 / 3, 1 / 3, 1 / 3 - 1.0]])
    assert (pts[0, 0] + pts[0, 1]) + pts[0, 2] == 0.0  # what plain float says
    [chunk] = evaluate_space(mlp, probe_space(pts))
    exact = [sum(Fraction(v) for v in p) for p in pts]
    want = [(v > 0) - (v < 0) for v in exact]
    assert chunk.signs[0][:, 0].tolist() == want == [1, 1, -1]
    assert chunk.rechecked[0].tolist() == [3]


def test_error_free_layers_decide_ties_without_the_exact_path():
    # hand-written XOR on its cube: small integers, every tie is an exact float 0
    xor = MLP([Layer([[1.0, -1.0], [-1.0, 1.0]], [0.0, 0.0]), Layer([[1.0, 1.0]], [0.0], "linear")])
    found = input_space_signatures(xor, binary_space(2))
    assert [layer.pattern for layer in found.layers] == [["2", "4"], ["6"]]
    assert [layer.zero_count.tolist() for layer in found.layers] == [[2, 2], [2]]
    assert all(layer.rechecked.sum() == 0 for layer in found.layers)


def test_wide_fan_in_sums_across_2_to_the_53_are_decided_exactly():
    # 9,000 integer inputs summing to 2^53 + 1 (beyond float64's integers) against biases
    # -(2^53 + 2) and -2^53: exact sums -1 and 1, where float64 rounds the sum to an end
    n = 9000
    x = np.full(n, (2**53) // n, dtype=np.float64)
    x[0] += 2**53 + 1 - int(x.sum())
    assert sum(int(v) for v in x) == 2**53 + 1
    biases = [-(2.0**53) - 2.0, -(2.0**53)]
    mlp = MLP([Layer(np.ones((2, n)), biases, "linear")])
    [chunk] = evaluate_space(mlp, probe_space(np.stack([x, x])))
    exact = [sum(Fraction(v) for v in x) + Fraction(b) for b in biases]
    want = [(v > 0) - (v < 0) for v in exact]
    assert want == [-1, 1] and chunk.signs[0].tolist() == [want, want]


_VALUES = st.sampled_from([-1.0, -0.5, -0.3, -0.1, 0.0, 0.1, 0.2, 0.25, 0.3, 0.5, 1.0, 1 / 3])


@st.composite
def _nets(draw):
    widths = draw(st.lists(st.integers(1, 3), min_size=2, max_size=4))
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        w = draw(st.lists(st.lists(_VALUES, min_size=a, max_size=a), min_size=b, max_size=b))
        bias = draw(st.lists(_VALUES, min_size=b, max_size=b))
        act = "linear" if i == len(widths) - 2 else draw(st.sampled_from(["relu", "linear"]))
        layers.append(Layer(np.array(w), np.array(bias), act))
    return MLP(layers)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_nets())
def test_cube_signs_equal_a_fraction_brute_force(mlp):
    for space in (binary_space(mlp.input_width), signed_space(mlp.input_width)):
        want = _oracle_signs(mlp, space.points(0, space.size))
        assert [s.tolist() for s in _signs(mlp, space)] == [s.tolist() for s in want]


def _float_pre(mlp: MLP, x: np.ndarray, k: int, j: int) -> float:
    h = x
    for layer in mlp.layers[: k + 1]:
        pre = h @ layer.weight.astype(np.float64).T + layer.bias
        h = np.maximum(pre, 0) if layer.activation == "relu" else pre
    return float(pre[j])


def _near_threshold_points(mlp: MLP, rng: np.random.Generator, count: int) -> np.ndarray:
    """Points a float64 ulp or so from some neuron's threshold: bisect along random segments
    to where a random neuron's float pre-activation changes sign."""
    out: list[np.ndarray] = []
    while len(out) < 2 * count:
        k = int(rng.integers(len(mlp.layers)))
        j = int(rng.integers(mlp.layers[k].width))
        p, q = rng.normal(size=(2, mlp.input_width)) * 2
        lo, hi = 0.0, 1.0
        side = _float_pre(mlp, p, k, j) > 0
        if side == (_float_pre(mlp, q, k, j) > 0):
            continue
        for _ in range(70):
            mid = 0.5 * (lo + hi)
            if (_float_pre(mlp, p + mid * (q - p), k, j) > 0) == side:
                lo = mid
            else:
                hi = mid
        out.extend([p + lo * (q - p), p + hi * (q - p)])
    return np.array(out)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000))
def test_near_threshold_points_agree_with_the_fraction_oracle(seed):
    mlp = random_mlp((3, 4, 3, 2), seed=seed, dtype=np.float64)
    pts = _near_threshold_points(mlp, np.random.default_rng(seed), 6)
    space = probe_space(pts)
    got = _signs(mlp, space)
    want = _oracle_signs(mlp, pts)
    assert [s.tolist() for s in got] == [s.tolist() for s in want]


def test_near_threshold_points_take_the_exact_path():
    mlp = random_mlp((3, 4, 3, 2), seed=7, dtype=np.float64)
    pts = _near_threshold_points(mlp, np.random.default_rng(7), 8)
    chunks = list(evaluate_space(mlp, probe_space(pts)))
    assert sum(int(r.sum()) for c in chunks for r in c.rechecked) > 0


def test_non_piecewise_linear_models_say_when_a_decision_is_not_certified():
    mlp = MLP([Layer([[1.0]], [0.0], "tanh"), Layer([[1.0]], [-float(np.tanh(0.5))], "linear")])
    found = input_space_signatures(mlp, probe_space([[0.5], [2.0]])).layers[1]
    assert found.exact.tolist() == [False]  # tanh(0.5) - fl(tanh(0.5)): no exact path
    clear = input_space_signatures(mlp, probe_space([[2.0], [-2.0]])).layers[1]
    assert clear.exact.tolist() == [True] and clear.pattern == ["1"]


# --- hashes -----------------------------------------------------------------------


def test_hashes_do_not_depend_on_the_chunk_size():
    mlp = random_mlp((10, 6, 1), seed=3)
    space = binary_space(10)
    chunks = list(evaluate_space(mlp, space, chunk=24))
    small = [np.concatenate([c.signs[k] for c in chunks]) for k in (0, 1)]
    found = input_space_signatures(mlp, space)
    for k, layer in enumerate(found.layers):
        bits = small[k] > 0
        assert layer.fire_count.tolist() == bits.sum(axis=0).tolist()
        for j in range(bits.shape[1]):
            value = sum(1 << m for m in np.flatnonzero(bits[:, j]).tolist())
            assert layer.pattern[j] == format(value, "x")


def test_complement_hash_is_the_hash_of_a_neuron_firing_exactly_elsewhere():
    # x1 AND NOT x2 vs its negation; 3 inputs so the pattern is not byte-aligned
    pos = Layer([[1.0, -1.0, 0.0]], [-0.5], "relu")
    neg = Layer([[-1.0, 1.0, 0.0]], [0.5], "relu")
    a = input_space_signatures(MLP([pos]), binary_space(3)).layers[0]
    b = input_space_signatures(MLP([neg]), binary_space(3)).layers[0]
    assert a.complement_hash == b.hash and b.complement_hash == a.hash
    assert a.hash != b.hash and a.fire_count + b.fire_count == [8]


def test_hashes_name_the_space():
    mlp = MLP([Layer([[1.0, 1.0]], [-0.5], "linear")])
    on_binary = input_space_signatures(mlp, binary_space(2)).layers[0]
    on_probe = input_space_signatures(mlp, probe_space(binary_space(2).points(0, 4))).layers[0]
    assert on_binary.pattern == on_probe.pattern == ["e"]
    assert on_binary.hash != on_probe.hash  # same bits, different point sets


def test_sign_hash_only_for_linear_layers_and_it_sees_ties():
    relu = input_space_signatures(MLP([Layer([[1.0]], [0.0], "relu")]), signed_space(1))
    assert relu.layers[0].sign_hash is None
    a = MLP([Layer([[1.0]], [0.0], "linear")])  # signs -1, 0, +1
    b = MLP([Layer([[1.0]], [0.5], "linear")])  # signs +1 at 0: same firing? no
    c = MLP([Layer([[2.0]], [-0.0], "linear")])
    sa, sc = (input_space_signatures(m, signed_space(1)).layers[0] for m in (a, c))
    sb = input_space_signatures(b, signed_space(1)).layers[0]
    assert sa.sign_hash == sc.sign_hash and sa.hash == sc.hash
    assert sa.sign_hash != sb.sign_hash


def test_hidden_permutation_and_rescaling_keep_every_neurons_pattern():
    mlp = random_mlp((6, 7, 5, 2), seed=11, dtype=np.float64)
    rng = np.random.default_rng(0)
    twin = permuted(mlp, rng)
    space = binary_space(6)
    a = input_space_signatures(mlp, space)
    b = input_space_signatures(twin, space)
    for la, lb in zip(a.layers, b.layers, strict=True):
        assert sorted(la.hash) == sorted(lb.hash)
