"""The one model type that flows through roon: a chain of dense layers.

An :class:`MLP` is an ordered tuple of :class:`Layer` (``weight[out, in]``,
``bias[out]``, activation name). It is validated on construction and immutable
afterwards, so its content hash can serve as the model id everywhere.

Example:
    >>> import numpy as np
    >>> from roon import MLP, Layer
    >>> m = MLP([Layer(np.eye(2), np.zeros(2), "relu")], name="tiny")
    >>> m.widths
    (2, 2)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from roon.errors import InvalidArgumentError, ModelFormatError, UnsupportedArchitectureError

__all__ = [
    "ACTIVATIONS",
    "NONNEGATIVE_ACTIVATIONS",
    "HOMOGENEOUS_ACTIVATIONS",
    "Layer",
    "MLP",
    "activate",
    "canonical_activation",
    "require_mlp",
]

# Element-wise activations roon understands, by canonical name.
ACTIVATIONS = ("relu", "linear", "sigmoid", "tanh", "softplus", "silu", "gelu", "elu")
# Outputs are >= 0, so the next layer sees inputs in the binary domain {0, 1}.
NONNEGATIVE_ACTIVATIONS = frozenset({"relu", "sigmoid", "softplus"})
# act(a * z) == a * act(z) for a > 0: neurons may be rescaled without changing the function.
HOMOGENEOUS_ACTIVATIONS = frozenset({"relu", "linear"})

_ALIASES = {
    "identity": "linear",
    "none": "linear",
    "swish": "silu",
    "logistic": "sigmoid",
}


def canonical_activation(name: str) -> str:
    """Return the canonical spelling of an activation name, or raise.

    Raises:
        UnsupportedArchitectureError: the name is not an element-wise activation roon knows.
    """
    key = str(name).strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in ACTIVATIONS:
        known = ", ".join(ACTIVATIONS)
        raise UnsupportedArchitectureError(f"unknown activation {name!r}; roon knows {known}")
    return key


def activate(name: str, z: np.ndarray) -> np.ndarray:
    """Apply the activation ``name`` element-wise (float64 math)."""
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "linear":
        return z
    if name == "sigmoid":
        return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic
    if name == "tanh":
        return np.tanh(z)
    if name == "softplus":
        return np.logaddexp(0.0, z)
    if name == "silu":
        return z * (0.5 * (1.0 + np.tanh(0.5 * z)))
    if name == "gelu":
        from math import erf

        return 0.5 * z * (1.0 + np.vectorize(erf)(z / np.sqrt(2.0)))
    if name == "elu":
        return np.where(z > 0, z, np.expm1(np.minimum(z, 0.0)))
    raise UnsupportedArchitectureError(f"unknown activation {name!r}")


def _as_float_array(value: Any, what: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype == np.float32 or arr.dtype == np.float64:
        out = np.array(arr, copy=True)
    elif np.issubdtype(arr.dtype, np.floating):
        out = arr.astype(np.float32)  # float16/bfloat16 widen to float32 exactly
    elif np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_:
        out = arr.astype(np.float64)
    else:
        raise ModelFormatError(f"{what} has dtype {arr.dtype}; expected floating-point numbers")
    out = np.ascontiguousarray(out)
    out.flags.writeable = False
    return out


# Values hashed per block of the model id (8 MiB of float64): bounded memory for any layer.
_HASH_BLOCK = 1 << 20


def _f8(values: np.ndarray) -> memoryview:
    """The little-endian float64 bytes of ``values``, with ``-0.0`` folded into ``0.0``."""
    return (np.ascontiguousarray(values, dtype="<f8") + 0.0).data.cast("B")


@dataclass(frozen=True, eq=False)
class Layer:
    """One dense layer: ``activation(weight @ x + bias)``.

    Attributes:
        weight: ``[out, in]`` float32 or float64 array (read-only).
        bias: ``[out]`` array of the same dtype (read-only).
        activation: canonical activation name (see :data:`ACTIVATIONS`).
    """

    weight: np.ndarray
    bias: np.ndarray
    activation: str = "relu"

    def __post_init__(self) -> None:
        weight = _as_float_array(self.weight, "weight")
        bias = _as_float_array(self.bias, "bias")
        if weight.ndim != 2:
            raise UnsupportedArchitectureError(
                f"weight has shape {weight.shape}; a dense layer needs a 2-D [out, in] matrix"
            )
        if 0 in weight.shape:
            raise UnsupportedArchitectureError(
                f"weight has shape {weight.shape}; a dense layer needs at least one neuron "
                "and one input"
            )
        if bias.ndim != 1 or bias.shape[0] != weight.shape[0]:
            raise UnsupportedArchitectureError(
                f"bias has shape {bias.shape} but weight has {weight.shape[0]} output rows"
            )
        if bias.dtype != weight.dtype:
            dtype = np.result_type(weight.dtype, bias.dtype)
            weight, bias = weight.astype(dtype), bias.astype(dtype)
            weight.flags.writeable = False
            bias.flags.writeable = False
        object.__setattr__(self, "weight", weight)
        object.__setattr__(self, "bias", bias)
        object.__setattr__(self, "activation", canonical_activation(self.activation))

    @property
    def fan_in(self) -> int:
        return int(self.weight.shape[1])

    @property
    def width(self) -> int:
        return int(self.weight.shape[0])


def _layer_list(layers: Any) -> list[Any]:
    if isinstance(layers, str | bytes | Mapping) or not hasattr(layers, "__iter__"):
        raise InvalidArgumentError(
            f"layers is a {type(layers).__name__}; give a list of roon.Layer (or "
            "(weight, bias[, activation]) tuples)"
        )
    return list(layers)


def _as_layer(i: int, layer: Any) -> Layer:
    if isinstance(layer, Layer):
        return layer
    if isinstance(layer, tuple | list) and len(layer) in (2, 3):
        return Layer(*layer)
    raise InvalidArgumentError(
        f"layer {i} is a {type(layer).__name__}; give a roon.Layer or a "
        "(weight, bias[, activation]) tuple"
    )


def require_mlp(value: Any, what: str = "model") -> MLP:
    """``value`` if it is an :class:`MLP`, else an error saying how to get one.

    Raises:
        InvalidArgumentError: ``value`` is not an MLP.
    """
    if isinstance(value, MLP):
        return value
    raise InvalidArgumentError(
        f"{what} is a {type(value).__name__}, not a roon.MLP; load one with roon.load_model(path)"
    )


@dataclass(frozen=True, eq=False)
class MLP:
    """An ordered chain of dense layers with a content hash.

    Args:
        layers: the dense layers, input side first. Widths must chain.
        name: a human-readable name (not part of the id).
        metadata: free-form facts about the model (e.g. an .nnet input normalization).
        provenance: the derivation steps that produced this model, oldest first.

    Raises:
        UnsupportedArchitectureError: no layers, or widths that do not chain.
        ModelFormatError: a NaN or infinite weight or bias.
    """

    layers: tuple[Layer, ...]
    name: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    provenance: tuple[Mapping[str, Any], ...] = ()

    def __post_init__(self) -> None:
        layers = tuple(_as_layer(i, layer) for i, layer in enumerate(_layer_list(self.layers)))
        if not layers:
            raise UnsupportedArchitectureError(f"model {self.name!r} has no dense layers")
        for i, layer in enumerate(layers):
            if i and layer.fan_in != layers[i - 1].width:
                raise UnsupportedArchitectureError(
                    f"layer {i} takes {layer.fan_in} inputs but layer {i - 1} "
                    f"has {layers[i - 1].width} outputs: shapes do not chain"
                )
            for part, arr in (("weight", layer.weight), ("bias", layer.bias)):
                if not np.all(np.isfinite(arr)):
                    bad = "NaN" if np.any(np.isnan(arr)) else "infinite"
                    raise ModelFormatError(f"layer {i} {part} holds {bad} values")
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "metadata", dict(self.metadata))
        object.__setattr__(self, "provenance", tuple(dict(p) for p in self.provenance))

    # -- shape -----------------------------------------------------------------
    @property
    def input_width(self) -> int:
        return self.layers[0].fan_in

    @property
    def output_width(self) -> int:
        return self.layers[-1].width

    @property
    def widths(self) -> tuple[int, ...]:
        """Input width followed by every layer's width."""
        return (self.input_width, *(layer.width for layer in self.layers))

    @property
    def activations(self) -> tuple[str, ...]:
        return tuple(layer.activation for layer in self.layers)

    @property
    def n_neurons(self) -> int:
        """Number of non-input neurons."""
        return sum(layer.width for layer in self.layers)

    @property
    def n_params(self) -> int:
        return sum(layer.weight.size + layer.bias.size for layer in self.layers)

    @property
    def dtype(self) -> np.dtype:
        return np.result_type(*(layer.weight.dtype for layer in self.layers))

    # -- identity --------------------------------------------------------------
    @property
    def id(self) -> str:
        """Content hash (128-bit, hex) over weights, biases and activations.

        Values are hashed as float64 with ``-0.0`` folded into ``0.0``, so the same
        network stored in float32 or float64 gets the same id; the name, metadata
        and provenance are not part of it.
        """
        cached = self.__dict__.get("_id")
        if cached is None:
            h = hashlib.blake2b(b"roon-mlp-v1", digest_size=16)
            for layer in self.layers:
                rows, cols = layer.weight.shape
                h.update(f"|{layer.activation}|{rows}x{cols}|".encode())
                # the float64 bytes of the weight, a block of rows at a time: the same
                # stream as the whole matrix at once, without a float64 copy of it
                step = max(1, _HASH_BLOCK // cols)
                for start in range(0, rows, step):
                    h.update(_f8(layer.weight[start : start + step]))
                h.update(_f8(layer.bias))
            cached = h.hexdigest()
            object.__setattr__(self, "_id", cached)
        return cached

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MLP) and self.id == other.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        shape = "-".join(str(w) for w in self.widths)
        return f"MLP({self.name!r}, {shape}, {','.join(self.activations)}, id={self.id[:12]})"

    # -- evaluation ------------------------------------------------------------
    def forward(self, x: np.ndarray, *, upto: int | None = None) -> np.ndarray:
        """Evaluate the network on ``x`` (``[batch, in]`` or ``[in]``) in float64.

        Args:
            x: inputs.
            upto: stop after this many layers (default: all), returning that layer's output.
        """
        h = np.asarray(x, dtype=np.float64)
        for layer in self.layers[: upto if upto is not None else len(self.layers)]:
            z = h @ layer.weight.astype(np.float64).T + layer.bias.astype(np.float64)
            h = activate(layer.activation, z)
        return h

    def replace(
        self,
        layers: Sequence[Layer] | None = None,
        *,
        name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        provenance: Sequence[Mapping[str, Any]] | None = None,
    ) -> MLP:
        """Return a new MLP with some fields replaced (the id is recomputed)."""
        return MLP(
            tuple(self.layers if layers is None else layers),
            name=self.name if name is None else name,
            metadata=self.metadata if metadata is None else metadata,
            provenance=self.provenance if provenance is None else tuple(provenance),
        )
