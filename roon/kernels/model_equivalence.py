"""Whether two networks compute the same function on an input space (seed 000's "try every
possible input"), for whole models and for circuit embeddings.

:func:`compare_on_space` evaluates both networks on every point of one
:class:`~roon.kernels.spaces.InputSpace` (:func:`roon.kernels.input_space.evaluate_space`,
certified signs) and compares, point by point:

* ``outputs="boolean"``: the output neurons' firing (pre-activation > 0). The decision is
  exact: both sign patterns are certified, so "equivalent" means equal output patterns.
* ``outputs="real"``: the output values; a point agrees when
  ``|a - b| <= tolerance·(1 + max(|a|, |b|))`` (default :data:`REAL_TOLERANCE`). The
  values are float64, so this comparison is approximate by nature (``exact = false``).

In both modes ``max_difference`` is the largest ``|a - b|`` over points and outputs, and the
counterexample is the first point (in the space's order) where the two disagree.

:func:`embedding_mlp` cuts a target sub-network under neuron maps (every unmapped input
held at 0) and :func:`check_embedding` compares it with a pattern network neuron by
neuron, with the matcher's rule that points where the pattern neuron's pre-activation is
exactly 0 are don't-care.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from roon.errors import InvalidArgumentError
from roon.kernels.input_space import chunk_points, evaluate_space
from roon.kernels.spaces import InputSpace, binary_space, signed_space
from roon.mlp import MLP, Layer
from roon.progress import ProgressCallback

__all__ = [
    "OUTPUT_MODES",
    "REAL_TOLERANCE",
    "Comparison",
    "compare_on_space",
    "embedding_mlp",
    "check_embedding",
]

OUTPUT_MODES = ("boolean", "real")
# Real outputs agree at a point when |a - b| <= REAL_TOLERANCE·(1 + max(|a|, |b|)): far
# above float64 evaluation noise (~1e-16 relative) and the rounding of a float32 copy
# rescaled by a power of two or permuted (none) or by any positive factor (~1e-7
# relative per weight), far below any difference that changes a decision.
REAL_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Comparison:
    """What comparing two networks on a space found.

    Attributes:
        equivalent: no point disagrees (see the module docstring for each mode).
        outputs: ``boolean`` or ``real``.
        space: the space compared on.
        points: its number of points.
        differing: points where the two disagree.
        max_difference: largest ``|a - b|`` of the output values (after the last
            activation) over every point and output.
        counterexample: the first disagreeing point, or None.
        counterexample_index: its index in the space's order, or None.
        exact: the verdict is certified (boolean mode with every decision certified).
    """

    equivalent: bool
    outputs: str
    space: InputSpace
    points: int
    differing: int
    max_difference: float
    counterexample: np.ndarray | None
    counterexample_index: int | None
    exact: bool


def _check_pair(a: MLP, b: MLP, neurons: str) -> None:
    if a.input_width != b.input_width:
        raise InvalidArgumentError(
            f"the models take {a.input_width} and {b.input_width} inputs; "
            "only models of one input width can be compared"
        )
    if neurons == "all":
        if a.widths != b.widths:
            raise InvalidArgumentError(
                f"neuron by neuron comparison needs equal widths; got {a.widths} and {b.widths}"
            )
    elif a.output_width != b.output_width:
        raise InvalidArgumentError(
            f"the models have {a.output_width} and {b.output_width} outputs; "
            "only models of one output width can be compared"
        )


def compare_on_space(
    a: MLP,
    b: MLP,
    space: InputSpace,
    *,
    outputs: str = "boolean",
    tolerance: float = REAL_TOLERANCE,
    neurons: str = "outputs",
    ties: str = "care",
    progress: ProgressCallback | None = None,
) -> Comparison:
    """Compare two networks on every point of ``space``.

    Args:
        a: the first network (the pattern, for ``ties="dont-care"``).
        b: the second.
        space: the points (``space.n`` = both input widths).
        outputs: ``boolean`` (firing patterns, exact) or ``real`` (values within
            ``tolerance``).
        tolerance: relative tolerance of the real mode (>= 0).
        neurons: ``outputs`` (the last layer) or ``all`` (every neuron of equal-shaped
            networks, layer by layer; boolean mode only).
        ties: ``care``, or ``dont-care``: in boolean mode, points where ``a``'s
            pre-activation is exactly 0 are not compared for that neuron.
        progress: ``points`` events of the first network's evaluation.

    Raises:
        InvalidArgumentError: an unknown mode, a bad tolerance, or networks of different
            shapes.
    """
    if outputs not in OUTPUT_MODES:
        raise InvalidArgumentError(f"outputs {outputs!r}; choose {' or '.join(OUTPUT_MODES)}")
    if neurons not in ("outputs", "all") or ties not in ("care", "dont-care"):
        raise InvalidArgumentError(
            f"neurons must be outputs or all and ties care or dont-care; got {neurons!r}, {ties!r}"
        )
    if neurons == "all" and outputs == "real":
        raise InvalidArgumentError("neurons='all' compares firing patterns; use outputs='boolean'")
    if not (isinstance(tolerance, (int, float)) and np.isfinite(tolerance) and tolerance >= 0):
        raise InvalidArgumentError(f"tolerance must be a finite number >= 0; got {tolerance!r}")
    _check_pair(a, b, neurons)
    step = min(chunk_points(a), chunk_points(b))
    layers = range(len(a.layers)) if neurons == "all" else [len(a.layers) - 1]
    differing, first, first_point = 0, None, None
    max_diff = 0.0
    exact = outputs == "boolean"
    stream_b = evaluate_space(b, space, chunk=step)
    for ca in evaluate_space(a, space, chunk=step, progress=progress):
        cb = next(stream_b)
        with np.errstate(invalid="ignore", over="ignore"):
            diff = np.abs(ca.outputs - cb.outputs)
        if diff.size:  # NaN (an overflow in either network) counts as infinitely far
            max_diff = max(max_diff, float(np.max(np.where(np.isnan(diff), np.inf, diff))))
        if outputs == "boolean":
            bad = np.zeros(ca.points.shape[0], dtype=bool)
            for k in layers:
                sa, sb = ca.signs[k], cb.signs[k]
                differs = (sa > 0) != (sb > 0)
                if ties == "dont-care":
                    differs &= sa != 0
                bad |= differs.any(axis=1)
                exact &= not (ca.uncertified[k].any() or cb.uncertified[k].any())
        else:
            scale = 1.0 + np.maximum(np.abs(ca.outputs), np.abs(cb.outputs))
            bad = ~(diff <= tolerance * scale).all(axis=1)
        count = int(bad.sum())
        if count and first is None:
            i = int(np.argmax(bad))
            first, first_point = ca.start + i, ca.points[i].copy()
        differing += count
    return Comparison(
        equivalent=differing == 0,
        outputs=outputs,
        space=space,
        points=space.size,
        differing=differing,
        max_difference=max_diff,
        counterexample=first_point,
        counterexample_index=first,
        exact=exact,
    )


def _indices(values: Sequence[int], size: int, what: str) -> np.ndarray:
    idx = np.asarray(list(values), dtype=np.int64) if len(values) else np.zeros(0, np.int64)
    if idx.ndim != 1 or idx.size == 0:
        raise InvalidArgumentError(f"{what} must be a non-empty list of indices")
    if np.any(idx < 0) or np.any(idx >= size):
        raise InvalidArgumentError(f"{what} {idx.tolist()} has an index outside 0..{size - 1}")
    if len(set(idx.tolist())) != idx.size:
        raise InvalidArgumentError(f"{what} {idx.tolist()} maps two neurons to one: not injective")
    return idx


def embedding_mlp(
    target: MLP,
    layer_offset: int,
    input_map: Sequence[int],
    neuron_maps: Sequence[Sequence[int]],
) -> MLP:
    """The target sub-network an embedding picks out, as an MLP of the pattern's shape.

    Pattern layer ``j`` is target layer ``layer_offset + j``; pattern neuron ``i`` of layer
    ``j`` is target neuron ``neuron_maps[j][i]``; pattern input ``i`` is target input
    ``input_map[i]`` of layer ``layer_offset``. Every target input outside the maps is held
    at 0 (its weights are dropped), as in the matching semantics.

    Raises:
        InvalidArgumentError: an offset or index out of range, or a map that is not injective.
    """
    if not isinstance(layer_offset, (int, np.integer)) or not (
        0 <= layer_offset < len(target.layers)
    ):
        raise InvalidArgumentError(
            f"layer offset {layer_offset!r} is outside 0..{len(target.layers) - 1}"
        )
    if not neuron_maps or layer_offset + len(neuron_maps) > len(target.layers):
        raise InvalidArgumentError(
            f"{len(neuron_maps)} mapped layers from offset {layer_offset} do not fit the "
            f"target's {len(target.layers)} layers"
        )
    prev = _indices(input_map, target.layers[layer_offset].fan_in, "input map")
    layers = []
    for j, mapping in enumerate(neuron_maps):
        t = target.layers[layer_offset + j]
        rows = _indices(mapping, t.width, f"neuron map of layer {j}")
        layers.append(Layer(t.weight[np.ix_(rows, prev)], t.bias[rows], t.activation))
        prev = rows
    return MLP(tuple(layers), name=f"{target.name or target.id[:12]}@{layer_offset}")


def check_embedding(
    pattern: MLP,
    target: MLP,
    layer_offset: int,
    input_map: Sequence[int],
    neuron_maps: Sequence[Sequence[int]],
    *,
    space: InputSpace | str = "binary",
    progress: ProgressCallback | None = None,
) -> Comparison:
    """Whether every pattern neuron and its image fire on the same points of ``space``.

    The target sub-network (:func:`embedding_mlp`) is compared with the pattern neuron by
    neuron (``neurons="all"``), points where a pattern neuron's pre-activation is exactly 0
    being don't-care. ``space`` is an :class:`InputSpace` or ``binary``/``signed`` (the
    cube of the pattern's inputs, the domain of the target layer it is placed at).

    Raises:
        InvalidArgumentError: maps that do not fit the pattern or the target.
    """
    sub = embedding_mlp(target, layer_offset, input_map, neuron_maps)
    if sub.widths != pattern.widths:
        raise InvalidArgumentError(
            f"the maps pick a {'-'.join(map(str, sub.widths))} sub-network for a "
            f"{'-'.join(map(str, pattern.widths))} pattern"
        )
    if isinstance(space, str):
        if space not in ("binary", "signed"):
            raise InvalidArgumentError(f"space {space!r}; give binary, signed or an InputSpace")
        space = (binary_space if space == "binary" else signed_space)(pattern.input_width)
    return compare_on_space(pattern, sub, space, neurons="all", ties="dont-care", progress=progress)
