"""Exact normalizer rules: canonical forms, function preservation, hand-built removals."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures import permuted, random_mlp
from hypothesis import given, settings
from hypothesis import strategies as st

from roon import MLP, Layer, UnsupportedArchitectureError
from roon.ingest.normalize import RULES, normalize


def rescaled(mlp: MLP, seed: int) -> MLP:
    """The same function with random hidden neurons scaled by 2^k (k in -4..4, k != 0)."""
    rng = np.random.default_rng(seed)
    ws = [np.array(la.weight) for la in mlp.layers]
    bs = [np.array(la.bias) for la in mlp.layers]
    for i in range(len(ws) - 1):
        for j in rng.choice(ws[i].shape[0], size=max(1, ws[i].shape[0] // 2), replace=False):
            k = int(rng.choice([-4, -3, -2, -1, 1, 2, 3, 4]))
            ws[i][j], bs[i][j] = np.ldexp(ws[i][j], k), np.ldexp(bs[i][j], k)
            ws[i + 1][:, j] = np.ldexp(ws[i + 1][:, j], -k)
    return mlp.replace(
        [Layer(w, b, la.activation) for w, b, la in zip(ws, bs, mlp.layers, strict=True)]
    )


def assert_identical(a: MLP, b: MLP) -> None:
    assert a.id == b.id
    for la, lb in zip(a.layers, b.layers, strict=True):
        assert la.weight.dtype == lb.weight.dtype
        assert la.weight.tobytes() == lb.weight.tobytes()
        assert la.bias.tobytes() == lb.bias.tobytes()


def inputs(n: int, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.integers(0, 2, (64, n)), rng.random((64, n))]).astype(float)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("signature", [True, False])
def test_permutations_and_power_of_two_scalings_normalize_identically(dtype, seed, signature):
    base = random_mlp((6, 9, 7, 3), seed=seed, dtype=dtype)
    want, _ = normalize(base, "rescale,canonical", signature=signature)
    for variant in (permuted(base, seed + 10), permuted(base, seed + 20), rescaled(base, seed)):
        assert variant.id != base.id
        got, _ = normalize(variant, "rescale,canonical", signature=signature)
        assert_identical(got, want)
    both = rescaled(permuted(base, seed + 30), seed + 1)
    assert_identical(normalize(both, "rescale,canonical", signature=signature)[0], want)


def test_canonical_orders_identical_neurons_by_their_outgoing_weights():
    # neurons 0 and 2 of layer 0 have identical incoming weights and biases but different
    # outgoing columns: only the backward pass can put them in a canonical order
    w0 = np.array([[1.0, -2.0], [0.5, 0.5], [1.0, -2.0], [-1.0, 3.0]])
    b0 = np.array([0.25, 0.0, 0.25, -0.5])
    w1 = np.array([[1.0, 2.0, -3.0, 4.0], [0.0, 1.0, 5.0, -1.0]])
    base = MLP([Layer(w0, b0), Layer(w1, np.zeros(2), "linear")])
    want, _ = normalize(base, "canonical")
    for seed in range(6):
        assert_identical(normalize(permuted(base, seed), "canonical")[0], want)


def test_canonical_is_idempotent_and_preserves_outputs():
    m = random_mlp((5, 8, 6, 2), seed=3)
    once, steps = normalize(m, "canonical")
    twice, again = normalize(once, "canonical")
    assert_identical(once, twice)
    assert again[0].is_noop
    x = inputs(5)
    np.testing.assert_allclose(once.forward(x), m.forward(x), rtol=1e-6, atol=1e-12)
    assert steps[0].changes["moved"]  # a random net is not already in canonical order


@pytest.mark.parametrize("name", ["zero-out", "constant", "exact-duplicates", "rescale"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exact_rules_keep_outputs(name, dtype):
    m = redundant_net(dtype)
    child, steps = normalize(m, [name])
    x = inputs(m.input_width)
    np.testing.assert_allclose(child.forward(x), m.forward(x), rtol=1e-6, atol=1e-7)
    assert steps[0].max_output_change <= 1e-6
    assert not steps[0].is_noop  # the net holds something for every rule to remove
    if name == "rescale":  # powers of two: bit-exact
        assert np.array_equal(child.forward(x), m.forward(x))


def redundant_net(dtype=np.float64) -> MLP:
    """3 inputs → 6 ReLU → 4 ReLU → 2 linear, with one case for each exact rule."""
    w0 = np.array(
        [
            [1.0, -0.5, 0.25],  # 0: normal
            [-1.0, -1.0, 0.0],  # 1: never fires on [0,1]^3 (b = 0, upper bound exactly 0)
            [3.0, -1.5, 0.75],  # 2: 3 x neuron 0 (exact duplicate)
            [0.0, 0.0, 0.0],  # 3: constant relu(0.5) = 0.5
            [0.5, 2.0, -1.0],  # 4: normal, but its outgoing weights are all zero
            [-0.25, 1.0, 1.0],  # 5: normal
        ]
    )
    b0 = np.array([0.125, 0.0, 0.375, 0.5, -0.2, 0.05])
    w1 = np.array(
        [
            [1.0, 2.0, -1.0, 0.5, 0.0, 0.75],
            [-0.5, 1.0, 2.0, 1.0, 0.0, -1.0],
            [0.25, -1.0, 0.5, 2.0, 0.0, 1.5],
            [1.5, 0.5, -0.75, -1.0, 0.0, 0.5],
        ]
    )
    b1 = np.array([0.0, 0.1, -0.1, 0.2])
    w2 = np.array([[1.0, -1.0, 0.5, 2.0], [0.5, 0.25, -1.0, 1.0]])
    return MLP(
        [
            Layer(w0.astype(dtype), b0.astype(dtype)),
            Layer(w1.astype(dtype), b1.astype(dtype)),
            Layer(w2.astype(dtype), np.zeros(2, dtype), "linear"),
        ],
        name="redundant",
    )


def test_zero_out_removes_silent_neurons_and_what_only_fed_them():
    w0 = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    w1 = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 2.0]])  # neuron 1 of layer 0 feeds nothing
    w2 = np.array([[1.0, 0.0]])  # neuron 1 of layer 1 feeds nothing
    m = MLP([Layer(w0, np.zeros(3)), Layer(w1, np.zeros(2)), Layer(w2, np.zeros(1), "linear")])
    child, steps = normalize(m, "zero-out")
    # layer 1 loses neuron 1; then layer 0's neuron 2 (which only fed it) goes too
    assert steps[0].changes["layers"] == {"0": {"removed": [1, 2]}, "1": {"removed": [1]}}
    assert child.widths == (2, 1, 1, 1)
    assert np.array_equal(child.forward(inputs(2)), m.forward(inputs(2)))


def test_constant_finds_exact_ties_and_folds_constants():
    m = redundant_net()
    child, steps = normalize(m, "constant", input_bounds=(0.0, 1.0))
    assert steps[0].changes["layers"] == {"0": {"removed": [1, 3]}}
    assert steps[0].params == {"input_bounds": [0.0, 1.0]}
    # relu(0.5) times neuron 3's outgoing column went into layer 1's bias
    np.testing.assert_array_equal(
        child.layers[1].bias, m.layers[1].bias + 0.5 * m.layers[1].weight[:, 3]
    )
    # on a box where neuron 1 can fire it must stay
    wide, steps = normalize(m, "constant", input_bounds=(-1.0, 1.0))
    assert steps[0].changes["layers"] == {"0": {"removed": [3]}}
    assert steps[0].params == {"input_bounds": [-1.0, 1.0]}


def test_constant_without_a_declared_domain_keeps_the_function_on_every_input():
    # nothing declares a box: every real input counts, so relu(-x - y) (neuron 1, dead
    # only on [0, 1]^3) stays and only neuron 3 (no weights: relu(0.5)) goes
    m = redundant_net()
    child, [step] = normalize(m, "constant")
    assert step.changes["layers"] == {"0": {"removed": [3]}}
    assert step.params == {"input_bounds": [None, None]}
    x = np.random.default_rng(3).normal(0.0, 10.0, (200, 3))
    np.testing.assert_allclose(child.forward(x), m.forward(x), rtol=1e-12, atol=1e-12)
    # the same as declaring the real line, in either form
    for spec in ((None, None), (-np.inf, np.inf), [[None, None]] * 3):
        assert normalize(m, "constant", input_bounds=spec)[0].id == child.id


def test_constant_on_the_real_line_finds_neurons_no_input_can_excite():
    # layer 0: relu(x), relu(-x) >= 0 for every real x; layer 1 neuron 0 = relu(-a - 2b - 1)
    # never fires; neuron 1 = relu(a - b) does; layer 2 neuron 0 = relu(-h - 0.5) never
    w0 = np.array([[1.0], [-1.0]])
    w1 = np.array([[-1.0, -2.0], [1.0, -1.0]])
    b1 = np.array([-1.0, 0.0])
    w2 = np.array([[0.0, -1.0], [0.0, 1.0]])
    b2 = np.array([-0.5, 0.0])
    m = MLP([Layer(w0, np.zeros(2)), Layer(w1, b1), Layer(w2, b2), Layer(np.ones((1, 2)), [0.0])])
    child, [step] = normalize(m, "constant")
    assert step.changes["layers"] == {"1": {"removed": [0]}, "2": {"removed": [0]}}
    x = np.linspace(-5, 5, 41)[:, None]
    np.testing.assert_array_equal(child.forward(x), m.forward(x))
    # SiLU outputs are >= -0.2785 on the real line: -a - 2b - 1 <= 3 * 0.2785 - 1 < 0 still
    silu = MLP([Layer(w0, np.zeros(2), "silu"), Layer(w1, b1), Layer(np.ones((1, 2)), [0.0])])
    child, [step] = normalize(silu, "constant")
    assert step.changes["layers"] == {"1": {"removed": [0]}}
    np.testing.assert_array_equal(child.forward(x), silu.forward(x))
    # with a bias of -0.8 interval bounds (sound, not complete) no longer prove it: it stays
    shallow = MLP(
        [Layer(w0, np.zeros(2), "silu"), Layer(w1, [-0.8, 0.0]), Layer(np.ones((1, 2)), [0.0])]
    )
    assert normalize(shallow, "constant")[1][0].is_noop


def test_the_osier_circuits_keep_their_function_under_the_exact_preset():
    # with the old default box [0, 1]^n, `constant` dropped relu(-x) and 10 of 15 circuits
    # changed on [-1, 1]; on the real line no circuit may change anywhere
    from roon.ingest.loaders import circuit_names, load_circuit

    x = np.random.default_rng(0).uniform(-3.0, 3.0, (256, 3))
    for name in circuit_names():
        mlp = load_circuit(name).mlp
        child, _ = normalize(mlp, "exact")
        xs = x[:, : mlp.input_width]
        np.testing.assert_allclose(child.forward(xs), mlp.forward(xs), atol=1e-12, err_msg=name)


def test_constant_propagates_bounds_to_deeper_layers():
    # layer 0 outputs lie in [0, 1] and [0, 2]; layer 1 neuron 0 peaks at 1 - 2*0 - 1 = 0
    w0 = np.array([[1.0, 0.0], [1.0, 1.0]])
    w1 = np.array([[1.0, -2.0], [-1.0, 1.0], [1.0, 0.0]])
    b1 = np.array([-1.0, 0.0, -1.5])  # neuron 0: x0 - 2(x0 + x1) - 1 <= 0; neuron 2 <= -0.5
    m = MLP([Layer(w0, np.zeros(2)), Layer(w1, b1), Layer(np.ones((1, 3)), np.zeros(1), "linear")])
    child, steps = normalize(m, "constant", input_bounds=(0, 1))
    assert steps[0].changes["layers"] == {"1": {"removed": [0, 2]}}
    assert child.widths == (2, 2, 1, 1)


def test_constant_never_empties_a_layer():
    w0 = np.array([[-1.0, -1.0], [0.0, -2.0]])
    m = MLP([Layer(w0, np.zeros(2)), Layer(np.ones((1, 2)), np.array([0.5]), "linear")])
    child, steps = normalize(m, "constant", input_bounds=(0, 1))
    assert steps[0].changes["layers"]["0"] == {"removed": [0, 1], "placeholder": True}
    assert child.widths == (2, 1, 1)
    assert not np.any(child.layers[0].weight) and not np.any(child.layers[1].weight)
    again, steps = normalize(child, "constant", input_bounds=(0, 1))
    assert steps[0].is_noop


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exact_duplicates_merges_positive_multiples_only(dtype):
    m = redundant_net(dtype)
    child, steps = normalize(m, "exact-duplicates")
    assert steps[0].changes["layers"] == {"0": {"merged": [[0, 2]]}}
    want = m.layers[1].weight[:, 0].astype(float) + 3.0 * m.layers[1].weight[:, 2]
    np.testing.assert_array_equal(child.layers[1].weight[:, 0], want.astype(dtype))
    # a negative multiple, or a multiple off by one ulp, is not a duplicate
    w0 = np.array([[1.0, -0.5], [-2.0, 1.0], [np.nextafter(dtype(2), dtype(3)), -1.0]], dtype=dtype)
    m2 = MLP([Layer(w0, np.zeros(3, dtype)), Layer(np.ones((1, 3), dtype), np.zeros(1, dtype))])
    assert normalize(m2, "exact-duplicates")[1][0].is_noop


def test_exact_duplicates_for_tanh_needs_identical_rows():
    w0 = np.array([[1.0, -0.5], [2.0, -1.0], [1.0, -0.5]])
    m = MLP([Layer(w0, np.zeros(3), "tanh"), Layer(np.array([[1.0, 2.0, 3.0]]), np.zeros(1))])
    child, steps = normalize(m, "exact-duplicates")
    assert steps[0].changes["layers"] == {"0": {"merged": [[0, 2]]}}
    assert child.layers[1].weight.tolist() == [[4.0, 2.0]]


def test_rescale_canonical_magnitudes_and_refusal():
    m = random_mlp((4, 6, 5, 2), seed=5, dtype=np.float32)
    child, _ = normalize(m, "rescale")
    for layer in child.layers[:-1]:
        peak = np.max(np.abs(np.column_stack([layer.weight, layer.bias])), axis=1)
        assert np.all((peak >= 1.0) & (peak < 2.0))
    silu = random_mlp((4, 6, 2), seed=1, activation="silu")
    with pytest.raises(UnsupportedArchitectureError, match="silu"):
        normalize(silu, "rescale")
    with pytest.raises(UnsupportedArchitectureError, match="rescale"):
        normalize(silu, "exact")


def test_every_rule_is_described():
    for name, rule in RULES.items():
        assert rule.name == name
        assert rule.description and "\n" not in rule.description


@settings(max_examples=30, deadline=None)
@given(
    widths=st.lists(st.integers(1, 7), min_size=2, max_size=4),
    seed=st.integers(0, 2**16),
    shift=st.floats(-1.5, 0.5),
)
def test_exact_preset_keeps_outputs_and_is_permutation_invariant(widths, seed, shift):
    base = random_mlp((3, *widths), seed=seed, dtype=np.float64)
    # push biases down so that many neurons are dead or constant on [0, 1]^3
    layers = [Layer(la.weight, la.bias + shift, la.activation) for la in base.layers]
    m = base.replace(layers)
    child, _ = normalize(m, "exact")
    x = inputs(3, seed=seed)
    np.testing.assert_allclose(child.forward(x), m.forward(x), rtol=1e-9, atol=1e-12)
    assert_identical(normalize(permuted(m, seed), "exact")[0], child)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exact_preset_is_canonical_with_duplicates_and_folds(dtype):
    # 0 and 2 are 1:3 multiples; 1 and 3 are constant (folded); 4 feeds nothing
    m = redundant_net(dtype)
    want, _ = normalize(m, "exact", input_bounds=(0, 1))
    assert want.widths == (3, 2, 4, 2)
    for seed in range(8):
        assert_identical(normalize(permuted(m, seed), "exact", input_bounds=(0, 1))[0], want)


def test_exact_preset_undoes_scalings_of_duplicates_with_any_ratio():
    # f = relu(x) + relu(3x); scaling the second neuron by 2^-2 keeps f, and must keep the
    # normal form: exact-duplicates used to keep the smaller raw row (3/4 here, 1 before)
    m = MLP([Layer(np.array([[1.0], [3.0]]), np.zeros(2)), Layer(np.ones((1, 2)), [0.0], "linear")])
    scaled = MLP(
        [
            Layer(np.array([[1.0], [0.75]]), np.zeros(2)),
            Layer(np.array([[1.0, 4.0]]), [0.0], "linear"),
        ]
    )
    x = np.linspace(-2, 2, 9)[:, None]
    np.testing.assert_array_equal(m.forward(x), scaled.forward(x))
    want, _ = normalize(m, "exact")
    assert want.widths == (1, 1, 1)
    assert_identical(normalize(scaled, "exact")[0], want)


RATIOS = np.array([1.5, 3.0, 5.0, 0.75, 1.25, 6.0, 0.375, 2.0])


def duplicate_heavy_net(rng: np.random.Generator, dtype: type) -> MLP:
    """A tiny ReLU net on a 1/4 grid in which about half the hidden neurons are positive
    multiples (ratios 3, 1.5, 0.375, ... and 2) of earlier ones, exactly representable."""
    widths = [int(rng.integers(1, 4))]
    widths += [int(rng.integers(2, 6)) for _ in range(int(rng.integers(1, 3)))]
    widths.append(int(rng.integers(1, 3)))
    layers = []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        w = rng.integers(-8, 9, (n_out, n_in)) / 4.0
        b = rng.integers(-8, 9, n_out) / 4.0
        for j in range(1, n_out):
            if rng.random() < 0.5:
                src, ratio = int(rng.integers(j)), rng.choice(RATIOS)
                w[j], b[j] = w[src] * ratio, b[src] * ratio
        act = "linear" if i == len(widths) - 2 else "relu"
        layers.append(Layer(w.astype(dtype), b.astype(dtype), act))
    return MLP(layers)


def scaled_by_powers_of_two(mlp: MLP, rng: np.random.Generator) -> MLP:
    """Every hidden neuron scaled by 2^k, k in -3..3, its outgoing weights by 2^-k."""
    ws = [np.array(la.weight) for la in mlp.layers]
    bs = [np.array(la.bias) for la in mlp.layers]
    for i in range(len(ws) - 1):
        k = rng.integers(-3, 4, ws[i].shape[0])
        ws[i] = np.ldexp(ws[i], k[:, None]).astype(ws[i].dtype)
        bs[i] = np.ldexp(bs[i], k).astype(bs[i].dtype)
        ws[i + 1] = np.ldexp(ws[i + 1], -k[None, :]).astype(ws[i + 1].dtype)
    return mlp.replace(
        [Layer(w, b, la.activation) for w, b, la in zip(ws, bs, mlp.layers, strict=True)]
    )


def test_exact_preset_is_canonical_under_permutations_and_rescalings():
    # 1,000 trials: 250 nets, each against 4 random permutations with power-of-two
    # rescalings of every hidden neuron; before the fix 1 in 4 gave another model id
    rng = np.random.default_rng(2024)
    different = []
    for trial in range(250):
        m = duplicate_heavy_net(rng, np.float32 if trial % 2 else np.float64)
        want, _ = normalize(m, "exact")
        for _ in range(4):
            got, _ = normalize(scaled_by_powers_of_two(permuted(m, rng), rng), "exact")
            if got.id != want.id:
                different.append((trial, m.widths, want.widths, got.widths))
    assert different == []


def test_zero_out_drops_neurons_whose_whole_row_is_zero():
    # layer 0 neuron 1 has w = 0, b = 0: relu gives exactly 0, whatever its outgoing
    # weights; layer 1 neuron 0 is fed only by it, so it outputs 0 too (a second pass)
    w0 = np.array([[1.0, -1.0], [0.0, 0.0]])
    w1 = np.array([[0.0, 2.0], [1.0, 1.0]])
    m = MLP(
        [Layer(w0, np.zeros(2)), Layer(w1, np.zeros(2)), Layer(np.ones((1, 2)), [0.0], "linear")]
    )
    child, [step] = normalize(m, "zero-out")
    assert step.changes["layers"] == {"0": {"removed": [1]}, "1": {"removed": [0]}}
    assert child.widths == (2, 1, 1, 1)
    x = corners_and_points(2, 0)
    np.testing.assert_array_equal(child.forward(x), m.forward(x))
    # sigmoid(0) = 1/2 is not zero: such a neuron is constant, not silent (rule 'constant')
    sig = MLP([Layer(w0, np.zeros(2), "sigmoid"), Layer(np.ones((1, 2)), [0.0], "linear")])
    assert normalize(sig, "zero-out")[1][0].is_noop


def structured_net(rng: np.random.Generator, dtype: type, acts: list[str]) -> MLP:
    """A random net with a case for every exact rule: zero rows, dead ReLUs, identical
    and positively scaled (x2, x3) rows, columns of zeros (silent neurons)."""
    widths = [int(rng.integers(2, 6)) for _ in range(len(acts) + 1)]
    layers = []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        w, b = rng.normal(size=(n_out, n_in)), rng.normal(0, 0.5, size=n_out)
        for j in range(1, n_out):
            kind = rng.integers(6)
            if kind == 0:
                w[j], b[j] = 0.0, rng.normal()
            elif kind in (1, 2):
                w[j], b[j] = w[j - 1] * kind, b[j - 1] * kind
            elif kind == 3:
                b[j] = -100.0
        if i:
            w[:, rng.random(n_in) < 0.15] = 0.0
        act = "linear" if i == len(acts) - 1 else acts[i]
        layers.append(Layer(w.astype(dtype), b.astype(dtype), act))
    return MLP(layers)


ACTS = ["relu", "linear", "tanh", "sigmoid"]


def corners_and_points(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.integers(0, 2, (40, n)), rng.random((40, n))]).astype(float)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", ACTS)
def test_exact_rules_keep_the_function_for_every_activation(dtype, act):
    rng = np.random.default_rng([ACTS.index(act), np.dtype(dtype).itemsize])
    homogeneous = act in ("relu", "linear")
    for trial in range(6):
        m = structured_net(rng, dtype, [act] * int(rng.integers(2, 4)))
        x = corners_and_points(m.input_width, trial)
        want = m.forward(x)
        scale = max(1.0, float(np.abs(want).max()))
        rules = ["zero-out", "constant", "exact-duplicates", "canonical"]
        rules += ["rescale", "exact"] if homogeneous else []
        for rule in rules:
            child, steps = normalize(m, rule)
            # zero-out, rescale and canonical only move or drop exact zeros: the same
            # sums up to the order BLAS adds them; folds and merges round once per value
            tol = 1e-12 if rule in ("zero-out", "rescale", "canonical") else 1e-5
            tol = tol if dtype is np.float32 else min(tol, 1e-12)
            np.testing.assert_allclose(child.forward(x), want, rtol=0, atol=tol * scale)
            assert steps[-1].max_output_change <= tol * scale
        if not homogeneous:
            with pytest.raises(UnsupportedArchitectureError, match="positively homogeneous"):
                normalize(m, "rescale")


def tie_heavy_net(rng: np.random.Generator) -> MLP:
    """Weights and biases in {-1, 0, 1}: twins, shared signatures, ties everywhere."""
    widths = [int(rng.integers(1, 6)) for _ in range(int(rng.integers(3, 6)))]
    layers = []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        act = "linear" if i == len(widths) - 2 else "relu"
        w = rng.integers(-1, 2, (n_out, n_in)).astype(float)
        layers.append(Layer(w, rng.integers(-1, 2, n_out).astype(float), act))
    return MLP(layers)


def test_exact_preset_is_canonical_when_ties_abound():
    rng = np.random.default_rng(11)
    for _ in range(60):
        m = tie_heavy_net(rng)
        want, _ = normalize(m, "exact")
        for _ in range(3):
            got, _ = normalize(permuted(m, rng), "exact")
            assert got.id == want.id


@pytest.mark.xfail(
    strict=True,
    reason="canonical alone refines ties one pass each way; twin neurons (merged by "
    "exact-duplicates in the exact preset) can leave an order that depends on the input",
)
def test_canonical_alone_with_twin_neurons():
    # layer 1 neurons 1 and 2 are twins (w=1, b=-1); layer 2 neurons 0 and 1 connect to
    # one twin each and tie on everything else, so the backward pass cannot tell them
    # apart and their order follows the input order
    layers = [
        Layer(np.array([[0.0, -1.0, -1.0, 1.0]]), np.array([1.0])),
        Layer(np.array([[-1.0], [1.0], [1.0]]), np.array([0.0, -1.0, -1.0])),
        Layer(
            np.array(
                [[1.0, 0, 1], [1.0, 1, 0], [1.0, -1, 0], [1.0, 0, 1], [-1.0, -1, 1]],
            ),
            np.array([-1.0, -1, 0, -1, -1]),
        ),
        Layer(np.array([[0.0, 0, -1, 1, -1], [-1.0, -1, 1, -1, 1]]), np.array([-1.0, 0]), "linear"),
    ]
    m = MLP(layers)
    want, _ = normalize(m, "canonical")
    rng = np.random.default_rng(0)
    assert all(normalize(permuted(m, rng), "canonical")[0].id == want.id for _ in range(40))
