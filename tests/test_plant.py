"""roon.zoo.plant: circuits planted in random networks, and the demo's planted control."""

from __future__ import annotations

from itertools import product

import numpy as np
import pytest

from roon.errors import InvalidArgumentError
from roon.ingest.loaders.circuit import list_circuits, load_circuit
from roon.zoo.plant import FILLER_BIAS, FILLER_WEIGHT, plant, planted_control_models


def _sub_network(mlp, offset, input_map, maps, x):
    """The planted neurons alone, fed ``x`` on their inputs (the rest at 0)."""
    h = np.zeros((len(x), mlp.layers[offset].fan_in))
    h[:, input_map] = x
    cols = input_map
    for j, rows in enumerate(maps):
        layer = mlp.layers[offset + j]
        z = h[:, cols] @ layer.weight[np.ix_(rows, cols)].T + layer.bias[rows]
        out = np.maximum(z, 0) if layer.activation == "relu" else z
        h = np.zeros((len(x), layer.width))
        h[:, rows] = out
        cols = rows
    return h[:, cols]


@pytest.mark.parametrize("name", [c.name for c in list_circuits()])
def test_a_zero_extra_plant_computes_its_circuit_up_to_a_positive_scale(name: str):
    circuit = load_circuit(name)
    digits = [0.0, 1.0] if circuit.input_domain == "binary" else [-1.0, 0.0, 1.0]
    x = np.array(list(product(digits, repeat=circuit.mlp.input_width)))
    want = circuit.mlp.forward(x)
    mlp, (input_map, maps) = plant(circuit.mlp, offset=0, rng=np.random.default_rng(1))
    got = _sub_network(mlp, 0, input_map, maps, x)
    for o in range(want.shape[1]):
        scale = (want[:, o] @ got[:, o]) / (want[:, o] @ want[:, o])
        assert scale > 0
        np.testing.assert_allclose(got[:, o], scale * want[:, o], atol=1e-9)


def test_fillers_are_excited_on_every_point_of_three_inputs():
    mlp, (_, maps) = plant(load_circuit("and").mlp, offset=0, rng=np.random.default_rng(2))
    layer = mlp.layers[0]
    fillers = [t for t in range(layer.width) if t not in maps[0]]
    assert fillers
    for t in fillers:
        assert FILLER_BIAS[0] <= layer.bias[t] <= FILLER_BIAS[1]
        assert np.abs(layer.weight[t]).max() <= FILLER_WEIGHT
        for cols in [(0, 1, 2), (3, 4, 5)]:
            for x in product([-1.0, 0.0, 1.0], repeat=3):
                assert layer.weight[t, list(cols)] @ np.array(x) + layer.bias[t] > 0


def test_planted_control_models_are_deterministic_and_as_documented():
    first = planted_control_models(per_circuit=3)
    again = planted_control_models(per_circuit=3)
    assert [p.mlp.id for p in first] == [p.mlp.id for p in again]
    assert len(first) == 3 * len(list_circuits())
    for p in first:
        c = load_circuit(p.circuit)
        i = int(p.mlp.name.rsplit("-", 1)[1])
        assert p.mlp.name == f"planted-{p.circuit}-{i}"
        assert p.offset == (1 if c.input_domain == "binary" and i == 2 else 0)
        assert p.extra == ("zero", "small")[i % 2]
        assert p.mlp.metadata["input_domain"] == c.input_domain
    assert len({p.mlp.id for p in first}) == len(first)


def test_bad_plants_are_refused():
    xor = load_circuit("xor").mlp
    with pytest.raises(InvalidArgumentError, match="too narrow"):
        plant(xor, offset=0, rng=np.random.default_rng(0), inputs=1)
    with pytest.raises(InvalidArgumentError, match="offset -1"):
        plant(xor, offset=-1, rng=np.random.default_rng(0))
    with pytest.raises(InvalidArgumentError, match="extra 'big'"):
        plant(xor, offset=0, rng=np.random.default_rng(0), extra="big")
    with pytest.raises(InvalidArgumentError, match="per_circuit 0"):
        planted_control_models(per_circuit=0)
