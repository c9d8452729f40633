"""Pieces the loaders share: layer ordering from key names, layer checks, activations.

Loaders raise errors *without* the file name; :func:`roon.ingest.loaders.load_model`
prefixes every :class:`~roon.errors.RoonError` with the file (or ``<module Name>``)
in one place, so each message names its source exactly once.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from roon.errors import ModelFormatError, RoonError, UnsupportedArchitectureError, one_line
from roon.mlp import Layer, canonical_activation

__all__ = [
    "Loaded",
    "check_chain",
    "first_line",
    "hidden_activations",
    "layers_from_tensors",
    "make_layer",
    "natural_key",
    "sha256_file",
]

# How many layer groups we try to order by shape when names give no order (6! = 720).
_MAX_GROUPS_TO_PERMUTE = 6
# Conventional names of the layer a weight of this rank belongs to, for error messages.
_RANK_NAMES = {3: "Conv1d", 4: "Conv2d", 5: "Conv3d"}
# Names of the parts of a block that do not feed the next layer in line: a state_dict
# naming one holds a network that is not a chain (a residual block's shortcut, ...).
BRANCH_WORDS = frozenset(
    {
        "shortcut",
        "downsample",
        "skip",
        "residual",
        "attn",
        "attention",
        "branch",
        "bypass",
        "highway",
        "gate",
    }
)
_BUFFER_HINTS = {
    "running_mean": "a BatchNorm buffer",
    "running_var": "a BatchNorm buffer",
    "num_batches_tracked": "a BatchNorm buffer",
}


@dataclass
class Loaded:
    """What a format reader hands back to ``load_model``.

    Attributes:
        layers: the dense layers, input side first.
        activation_assumed: True when roon's default activation stood in for facts
            the source does not hold.
        metadata: format-specific facts (e.g. an .nnet normalization header).
        name: a name the file itself carries (``roon.name``), if any.
        state_dict_key: the checkpoint entry the weights were read from, if nested.
    """

    layers: list[Layer]
    activation_assumed: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    state_dict_key: str | None = None


def first_line(exc: BaseException, limit: int = 160) -> str:
    """A short one-line summary of a third-party exception, for wrapping it."""
    text = one_line(exc)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def natural_key(name: str) -> tuple[tuple[int, Any], ...]:
    """Sort key comparing digit runs as numbers: ``fc9`` < ``fc10``, ``0`` < ``2`` < ``10``."""
    return tuple(
        (0, int(tok)) if tok.isdigit() else (1, tok) for tok in re.split(r"(\d+)", name) if tok
    )


def make_layer(label: str, weight: Any, bias: Any, activation: str) -> Layer:
    """Build one :class:`Layer`, naming ``label`` in any error (bad shape, NaN, inf)."""
    try:
        layer = Layer(weight, bias, activation)
    except RoonError as exc:
        raise type(exc)(f"layer {label!r}: {exc}") from exc
    for part, arr in (("weight", layer.weight), ("bias", layer.bias)):
        if not np.all(np.isfinite(arr)):
            bad = "NaN" if np.any(np.isnan(arr)) else "infinite"
            raise ModelFormatError(f"layer {label!r} {part} holds {bad} values")
    return layer


def check_chain(labels: Sequence[str], layers: Sequence[Layer]) -> None:
    """Raise when one layer's outputs do not feed the next layer's inputs."""
    for k in range(1, len(layers)):
        if layers[k].fan_in != layers[k - 1].width:
            raise UnsupportedArchitectureError(
                f"layer {labels[k]!r} takes {layers[k].fan_in} inputs but {labels[k - 1]!r} "
                f"has {layers[k - 1].width} outputs: shapes do not chain"
            )


def hidden_activations(
    n_layers: int, activation: str | Sequence[str] | None, output_activation: str | None
) -> tuple[list[str], bool]:
    """Activations for a source that stores none (state_dicts, plain safetensors).

    Hidden layers get ``activation`` (default ``relu``, then recorded as assumed), the
    last layer ``output_activation`` (default ``linear``, the classifier convention).
    A sequence gives every layer's activation, the last included.

    Returns:
        The activation per layer and whether roon's default was assumed.
    """
    if activation is None or isinstance(activation, str):
        hidden = canonical_activation("relu" if activation is None else activation)
        last = canonical_activation("linear" if output_activation is None else output_activation)
        return [hidden] * (n_layers - 1) + [last], activation is None
    names = [canonical_activation(a) for a in activation]
    if output_activation is not None:
        raise UnsupportedArchitectureError(
            "give either one activation per layer or output_activation, not both"
        )
    if len(names) != n_layers:
        raise UnsupportedArchitectureError(
            f"activation lists {len(names)} names but the model has {n_layers} layers"
        )
    return names, False


def _split_key(key: str) -> tuple[str, str]:
    """``'net.fc1.weight'`` → ``('net.fc1', 'weight')``; anything else is not a dense layer."""
    prefix, _, param = key.rpartition(".")
    if param in ("weight", "bias"):
        return prefix, param
    hint = _BUFFER_HINTS.get(param, "not a weight or bias")
    raise UnsupportedArchitectureError(
        f"entry {key!r} is {hint}; roon reads dense layers only (Linear weight and bias)"
    )


def _skeleton(prefix: str) -> str:
    return re.sub(r"\d+", "#", prefix)


def _check_chain_names(prefixes: list[str]) -> None:
    """Refuse layer names that say the network is not a plain chain.

    A state_dict holds parameters, not the forward pass: it cannot say that a block adds
    its input back. Two signs that one might: a name part that is a branch
    (:data:`BRANCH_WORDS`), and numbered blocks of several numbered layers each
    (``blocks.0.fc1``, ``blocks.0.fc2``, ``blocks.1.fc1``): the inner numbers vary, so
    the layers are grouped, as residual blocks are.
    """
    fix = "if it is a plain chain, give the order with --layers k1,k2,..."
    for prefix in prefixes:
        words = {w.lower() for w in re.split(r"[._\-]|(?<=[a-z])(?=\d)|(?<=\d)(?=[a-z])", prefix)}
        branch = sorted(words & BRANCH_WORDS)
        if branch:
            raise UnsupportedArchitectureError(
                f"layer {prefix!r} names a {branch[0]} branch: the network is not a plain "
                f"chain of layers and a state_dict does not say how they connect; {fix}"
            )
    groups: dict[str, set[tuple[int, ...]]] = {}
    for prefix in prefixes:
        numbers = tuple(int(n) for n in re.findall(r"\d+", prefix))
        groups.setdefault(_skeleton(prefix), set()).add(numbers)
    for skeleton, numbered in groups.items():
        inner = {n[1:] for n in numbered if len(n) >= 2}
        outer = {n[0] for n in numbered if len(n) >= 2}
        if len(inner) > 1 and len(outer) > 1:
            shown = ", ".join(
                sorted((p for p in prefixes if _skeleton(p) == skeleton), key=natural_key)[:3]
            )
            raise UnsupportedArchitectureError(
                f"layers {shown}, ... are numbered blocks of several layers each: a block may "
                f"add its input back (a residual connection), which a state_dict does not "
                f"record; {fix}"
            )


def _given_order(prefixes: list[str], order: Sequence[str]) -> list[str]:
    """The layer order the user gave (``--layers``), checked against the file's layers."""
    given = [o.strip().removesuffix(".weight") for o in order if o.strip()]
    missing = [p for p in prefixes if p not in given]
    unknown = [o for o in given if o not in prefixes]
    twice = sorted({o for o in given if given.count(o) > 1})
    have = ", ".join(sorted(prefixes, key=natural_key))
    if unknown:
        raise UnsupportedArchitectureError(
            f"--layers names {unknown[0]!r}, which is not a layer of the file ({have})"
        )
    if twice:
        raise UnsupportedArchitectureError(f"--layers names {twice[0]!r} twice; name each once")
    if missing:
        raise UnsupportedArchitectureError(
            f"--layers leaves out {missing[0]!r}; name every layer of the file ({have})"
        )
    return given


def _order_prefixes(
    prefixes: list[str], shapes: Mapping[str, tuple[int, ...]], file_order: bool
) -> list[str]:
    """Order layer names: numerically when they share one numbering, else see below.

    When the names differ in more than their numbers (``features.0`` … ``classifier.1``)
    the sort would be alphabetical, which says nothing about the forward pass. A torch
    state_dict keeps registration order, which we then follow group by group
    (``file_order``); for formats that lose the order (safetensors) we take the one
    grouping whose shapes chain, and refuse to guess between several.
    """
    skeletons = {_skeleton(p) for p in prefixes}
    if len(skeletons) <= 1:
        return sorted(prefixes, key=natural_key)
    groups: dict[str, list[str]] = {}
    for p in prefixes:
        groups.setdefault(_skeleton(p), []).append(p)
    ordered_groups = [sorted(g, key=natural_key) for g in groups.values()]
    if file_order:
        return [p for g in ordered_groups for p in g]

    def chains(order: list[str]) -> bool:
        return all(shapes[b][1] == shapes[a][0] for a, b in itertools.pairwise(order))

    natural = sorted(ordered_groups, key=lambda g: natural_key(g[0]))
    if len(natural) > _MAX_GROUPS_TO_PERMUTE:
        return [p for g in natural for p in g]
    fits = []
    for perm in itertools.permutations(natural):
        order = [p for g in perm for p in g]
        if chains(order):
            fits.append(order)
    if len(fits) == 1:
        return fits[0]
    if not fits:  # let the chain check report the first mismatch, in name order
        return [p for g in natural for p in g]
    names = ", ".join(repr(g[0]) for g in natural)
    raise UnsupportedArchitectureError(
        f"cannot tell the layer order: names {names} share no numbering and their shapes "
        "chain in more than one order; number the layers (fc1, fc2, …) or save with "
        "roon.ingest.loaders.save_safetensors"
    )


def layers_from_tensors(
    tensors: Mapping[str, np.ndarray],
    activations: Sequence[str] | None,
    *,
    file_order: bool,
    activation: str | Sequence[str] | None = None,
    output_activation: str | None = None,
    order: Sequence[str] | None = None,
) -> tuple[list[Layer], bool]:
    """Turn a ``{key: array}`` dict (state_dict conventions) into ordered dense layers.

    Args:
        tensors: parameter name → array, e.g. ``fc1.weight``, ``net.0.bias``.
        activations: one activation per layer when the source records them, else None.
        file_order: whether the dict's order is the model's registration order.
        activation: hidden-layer activation (or one per layer) when ``activations`` is None.
        output_activation: last-layer activation when ``activations`` is None.
        order: the layer names (key prefixes) input side first, as the user gives them
            (``--layers``); without it the names must be a plain chain (see
            :func:`_check_chain_names`) and their numbering gives the order.

    Returns:
        The layers and whether the activations were assumed.
    """
    if not tensors:
        raise ModelFormatError("holds no tensors")
    params: dict[str, dict[str, np.ndarray]] = {}
    for key, value in tensors.items():
        prefix, param = _split_key(key)
        params.setdefault(prefix, {})[param] = value
    shapes: dict[str, tuple[int, ...]] = {}
    for prefix, parts in params.items():
        label = prefix or "<root>"
        if "weight" not in parts:
            raise UnsupportedArchitectureError(f"layer {label!r} has a bias but no weight")
        w = parts["weight"]
        if w.ndim in _RANK_NAMES:
            raise UnsupportedArchitectureError(
                f"layer {label!r} is {_RANK_NAMES[w.ndim]}-shaped ({w.ndim}-D weight); "
                "roon reads dense layers only (Linear)"
            )
        if w.ndim != 2:
            kind = " (a normalization layer?)" if w.ndim == 1 else ""
            raise UnsupportedArchitectureError(
                f"layer {label!r} has a {w.ndim}-D weight{kind}; "
                "roon reads dense layers only (Linear)"
            )
        shapes[prefix] = tuple(w.shape)
    if order is not None:
        order = _given_order(list(params), order)
    else:
        _check_chain_names(list(params))
        order = _order_prefixes(list(params), shapes, file_order)
    if activations is None:
        acts, assumed = hidden_activations(len(order), activation, output_activation)
    else:
        acts, assumed = list(activations), False
        if len(acts) != len(order):
            raise ModelFormatError(f"records {len(acts)} activations but holds {len(order)} layers")
    layers = []
    for prefix, act in zip(order, acts, strict=True):
        w = params[prefix]["weight"]
        b = params[prefix].get("bias")
        if b is None:  # Linear(bias=False)
            b = np.zeros(w.shape[0], dtype=w.dtype)
        layers.append(make_layer(prefix or "<root>", w, b, act))
    check_chain([p or "<root>" for p in order], layers)
    return layers, assumed
