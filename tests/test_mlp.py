"""The MLP type: validation, content hash, forward pass."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures import abs_net, and_or_net, random_mlp

from roon import MLP, Layer, ModelFormatError, UnsupportedArchitectureError


def test_widths_and_counts():
    m = random_mlp((4, 6, 5, 3))
    assert m.widths == (4, 6, 5, 3)
    assert m.input_width == 4 and m.output_width == 3
    assert m.n_neurons == 6 + 5 + 3
    assert m.n_params == 4 * 6 + 6 + 6 * 5 + 5 + 5 * 3 + 3
    assert m.activations == ("relu", "relu", "linear")


def test_forward_matches_hand_computation():
    m = and_or_net()
    # hidden = [relu(0.7a+0.7b-1), relu(a+b)]; out = -2*h0 + h1
    x = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=float)
    h0 = np.maximum(0.7 * x[:, 0] + 0.7 * x[:, 1] - 1.0, 0)
    h1 = np.maximum(x[:, 0] + x[:, 1], 0)
    np.testing.assert_allclose(m.forward(x)[:, 0], -2 * h0 + h1)
    np.testing.assert_allclose(abs_net().forward(np.array([[-3.0], [2.5]]))[:, 0], [3.0, 2.5])


def test_id_is_content_hash():
    a, b = random_mlp(seed=3), random_mlp(seed=3, name="other name")
    assert a.id == b.id and a == b and len(a.id) == 32
    assert random_mlp(seed=4).id != a.id
    # the same values in float64 are the same model
    c = MLP([Layer(x.weight.astype(np.float64), x.bias, x.activation) for x in a.layers])
    assert c.id == a.id
    # an activation change is a different model
    d = MLP([Layer(x.weight, x.bias, "tanh") for x in a.layers])
    assert d.id != a.id


def test_negative_zero_hashes_like_zero():
    w = np.array([[0.0, 1.0]])
    a = MLP([Layer(w, np.array([0.0]))])
    b = MLP([Layer(w * np.array([[-1.0, 1.0]]), np.array([-0.0]))])
    assert b.layers[0].weight[0, 0] == 0 and np.signbit(b.layers[0].weight[0, 0])
    assert a.id == b.id


def test_one_weight_bit_changes_the_id():
    a = random_mlp(seed=5)
    w = a.layers[0].weight.copy()
    w[0, 0] = np.nextafter(w[0, 0], np.float32(np.inf))
    b = a.replace([Layer(w, a.layers[0].bias, "relu"), *a.layers[1:]])
    assert a.id != b.id


def test_arrays_are_read_only():
    m = random_mlp()
    with pytest.raises(ValueError):
        m.layers[0].weight[0, 0] = 1.0


@pytest.mark.parametrize(
    ("layers", "error", "needle"),
    [
        ([], UnsupportedArchitectureError, "no dense layers"),
        (
            [Layer(np.ones((3, 2)), np.zeros(3)), Layer(np.ones((1, 4)), np.zeros(1))],
            UnsupportedArchitectureError,
            "do not chain",
        ),
        ([Layer(np.array([[np.nan]]), np.zeros(1))], ModelFormatError, "NaN"),
        ([Layer(np.array([[1.0]]), np.array([np.inf]))], ModelFormatError, "infinite"),
    ],
)
def test_invalid_models_are_refused(layers, error, needle):
    with pytest.raises(error, match=needle):
        MLP(layers)


def test_layer_validation():
    with pytest.raises(UnsupportedArchitectureError, match="2-D"):
        Layer(np.ones((2, 2, 2)), np.zeros(2))
    with pytest.raises(UnsupportedArchitectureError, match="at least one neuron"):
        Layer(np.ones((0, 3)), np.zeros(0))
    with pytest.raises(UnsupportedArchitectureError, match="at least one neuron"):
        Layer(np.ones((2, 0)), np.zeros(2))
    with pytest.raises(UnsupportedArchitectureError, match="output rows"):
        Layer(np.ones((2, 3)), np.zeros(3))
    with pytest.raises(UnsupportedArchitectureError, match="unknown activation 'swishy'"):
        Layer(np.ones((1, 1)), np.zeros(1), "swishy")
    assert Layer(np.ones((1, 1)), np.zeros(1), "Identity").activation == "linear"
    with pytest.raises(ModelFormatError, match="dtype"):
        Layer(np.array([["a"]]), np.zeros(1))


def test_float16_widens_to_float32_and_ints_to_float64():
    assert Layer(np.ones((1, 1), np.float16), np.zeros(1, np.float16)).weight.dtype == np.float32
    assert Layer(np.ones((1, 1), np.int8), np.zeros(1, np.int8)).weight.dtype == np.float64
