"""Planted circuits: a known circuit inserted into a random ReLU network, for controls.

``roon where`` must find a circuit that is really there. :func:`plant` builds a random
ReLU network and writes a circuit's weights into some of its neurons — hidden units in
shuffled positions, each rescaled by a positive factor (a symmetry of ReLU networks that
the matcher must see through), at a chosen layer offset, with the other inputs of those
neurons at zero or small. The rest are *fillers* that can compute none of the library
circuits: biases in :data:`FILLER_BIAS` and weights within ±:data:`FILLER_WEIGHT`, so
that on the few inputs of any circuit they are excited everywhere, a constant.

The demo's planted control (:func:`planted_control_models`) and the matcher's tests use
the same function.

Example:
    >>> import numpy as np
    >>> from roon.ingest.loaders.circuit import load_circuit
    >>> mlp, (inputs, maps) = plant(load_circuit("xor").mlp, offset=0,
    ...                             rng=np.random.default_rng(0))
    >>> mlp.widths, len(inputs), [len(m) for m in maps]
    ((6, 7, 9, 11), 2, [2, 1])
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from roon.errors import InvalidArgumentError
from roon.mlp import MLP, Layer

__all__ = [
    "FILLER_BIAS",
    "FILLER_WEIGHT",
    "PlantedModel",
    "plant",
    "planted_control_models",
]

# A filler's bias in [0.5, 1] outweighs what any 3 of its inputs on the domain cube can
# take away (3 × 0.1 = 0.3). The matcher judges a sub-network on the circuit's inputs in
# {0,1} or {−1,0,1}, every other input at 0, and library circuits have at most 3 inputs:
# there every filler is excited everywhere, a constant, which no library circuit is.
FILLER_BIAS = (0.5, 1.0)
FILLER_WEIGHT = 0.1
# A planted neuron's rescaling: positive factors in this range (ReLU networks are
# positively homogeneous, so c·f is the same circuit; the matcher must find it).
PLANT_SCALE = (0.3, 3.0)
# "small" extra weights: N(0, 0.02) from every unmapped input of a planted neuron.
SMALL_EXTRA_STD = 0.02
EXTRAS = ("zero", "small")


@dataclass(frozen=True)
class PlantedModel:
    """One network of the planted control.

    Attributes:
        circuit: the library circuit planted.
        mlp: the network (named ``planted-<circuit>-<i>``, input domain in its metadata).
        offset: the layer the circuit's first layer was written into.
        extra: ``zero`` or ``small``: the unmapped inputs of planted neurons.
        input_map: model inputs (or neurons of layer ``offset - 1``) of the circuit's inputs.
        maps: per circuit layer, the target neuron of each circuit neuron.
    """

    circuit: str
    mlp: MLP
    offset: int
    extra: str
    input_map: list[int]
    maps: list[list[int]]


def plant(
    circuit: MLP,
    *,
    offset: int,
    rng: np.random.Generator,
    extra: str = "zero",
    inputs: int = 6,
    width: int = 7,
    tail: bool = True,
) -> tuple[MLP, tuple[list[int], list[list[int]]]]:
    """A random ReLU network with ``circuit`` planted at ``offset``; it and the maps.

    Args:
        circuit: the network to plant (a library circuit's ``mlp``).
        offset: the target layer of the circuit's first layer (0: on the model inputs).
        rng: where the random choices come from.
        extra: ``zero`` (planted neurons take nothing from unmapped inputs) or ``small``
            (N(0, 0.02) weights from them).
        inputs: the network's input width.
        width: hidden width of layer 0; layer ``j`` has ``width + 2j`` neurons.
        tail: add one filler layer after the circuit's last layer.

    Returns:
        ``(mlp, (input_map, maps))``: ``input_map[i]`` is the target input of circuit
        input ``i``, ``maps[j][p]`` the target neuron of circuit neuron ``p`` of layer ``j``.

    Raises:
        InvalidArgumentError: a negative offset, an unknown ``extra``, or a network too
            narrow to hold the circuit.
    """
    depth = len(circuit.layers)
    sizes = [inputs] + [width + 2 * j for j in range(offset + depth + (1 if tail else 0))]
    if offset < 0 or extra not in EXTRAS:
        raise InvalidArgumentError(
            f"offset {offset}, extra {extra!r}: give an offset >= 0 and extra zero or small"
        )
    needed = [circuit.input_width, *(layer.width for layer in circuit.layers)]
    if any(sizes[offset + j] < n for j, n in enumerate(needed)):
        raise InvalidArgumentError(
            f"inputs {inputs}, width {width}: too narrow for a {'-'.join(map(str, needed))} "
            "circuit; give more inputs or a larger width"
        )
    weights, biases = [], []
    for i in range(len(sizes) - 1):
        weights.append(rng.uniform(-FILLER_WEIGHT, FILLER_WEIGHT, size=(sizes[i + 1], sizes[i])))
        biases.append(rng.uniform(*FILLER_BIAS, size=sizes[i + 1]))
    activations = ["relu"] * len(weights)
    psi = sorted(rng.choice(sizes[offset], size=circuit.input_width, replace=False).tolist())
    psi = list(rng.permutation(psi))
    maps = []
    prev, prev_scale = psi, np.ones(len(psi))
    for j, pl in enumerate(circuit.layers):
        w, b = weights[offset + j], biases[offset + j]
        rows = list(rng.choice(w.shape[0], size=pl.width, replace=False))
        scale = rng.uniform(*PLANT_SCALE, size=pl.width)
        for p, t in enumerate(rows):
            if extra == "zero":
                w[t] = 0.0
            else:
                w[t] = rng.normal(0.0, SMALL_EXTRA_STD, size=w.shape[1])
            w[t, prev] = pl.weight[p] / prev_scale * scale[p]
            b[t] = pl.bias[p] * scale[p]
        activations[offset + j] = pl.activation
        maps.append([int(t) for t in rows])
        prev, prev_scale = rows, scale
    layers = tuple(Layer(w, b, a) for w, b, a in zip(weights, biases, activations, strict=True))
    mlp = MLP(layers, name="planted")
    return mlp, ([int(x) for x in psi], maps)


def planted_control_models(
    circuits: Sequence[str] | None = None, *, per_circuit: int = 3, seed: int = 0
) -> list[PlantedModel]:
    """``per_circuit`` plants of each library circuit, zoo-sized, deterministic.

    Plant ``i`` of a circuit is at offset 0, except that binary circuits go one layer
    down on every third plant (where they see ReLU outputs, as in a deeper model); extras
    alternate zero and small. Signed circuits stay on the model inputs: their input
    domain is the real line, which hidden ReLU outputs are not.

    Args:
        circuits: library circuit names (default: the whole library).
        per_circuit: plants of each circuit.
        seed: with the circuit's name, seeds each circuit's plants.

    Raises:
        InvalidArgumentError: an unknown circuit or ``per_circuit < 1``.
    """
    from roon.ingest.loaders.circuit import list_circuits, load_circuit

    if isinstance(per_circuit, bool) or not isinstance(per_circuit, int) or per_circuit < 1:
        raise InvalidArgumentError(f"per_circuit {per_circuit!r}: give a positive integer")
    library = list_circuits() if circuits is None else [load_circuit(c) for c in circuits]
    out = []
    for c in library:
        rng = np.random.default_rng([seed, zlib.crc32(c.name.encode())])
        for i in range(per_circuit):
            offset = 1 if c.input_domain == "binary" and i % 3 == 2 else 0
            extra = EXTRAS[i % 2]
            mlp, (input_map, maps) = plant(c.mlp, offset=offset, rng=rng, extra=extra, width=6)
            metadata = {"input_domain": c.input_domain, "planted": c.name}
            mlp = mlp.replace(name=f"planted-{c.name}-{i}", metadata=metadata)
            out.append(PlantedModel(c.name, mlp, offset, extra, input_map, maps))
    return out
