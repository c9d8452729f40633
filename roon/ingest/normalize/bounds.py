"""The input domain of a model: bounds, interval propagation, and a fixed sample.

Decision (documented in the README): the input domain is a box ``[lo, hi]^n``, taken
from, in order: the ``input_bounds`` parameter; ``mlp.metadata["input_bounds"]`` (in the
coordinates of the MLP's own inputs); an .nnet model's header (``nnet.mins`` ...
``nnet.ranges``): the network sees ``(x - mean) / range`` of inputs clipped to
``[min, max]``, so its box is ``([min, max] - mean) / range``; otherwise ``[0, 1]^n``,
which contains the binary domain ``{0, 1}^n`` the signatures use.

Interval bound propagation (IBP) is computed in float64 and widened by a rigorous
rounding bound, so every enclosure is sound: a neuron called constant is constant on the
whole box. Near-ties of a ReLU's upper bound with 0 (hand-built circuits sit on them) are
re-decided in exact rational arithmetic when every earlier activation is piecewise
linear (ReLU or linear); elsewhere IBP stays sound but may miss a constant neuron.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from roon.errors import InvalidArgumentError
from roon.mlp import MLP, activate

__all__ = [
    "DEFAULT_BOUNDS",
    "METADATA_KEY",
    "SAMPLE_SIZE",
    "SAMPLE_SEED",
    "resolve_input_bounds",
    "compact_bounds",
    "domain_sample",
    "preactivation_bounds",
    "activation_bounds",
    "exact_input_bounds",
    "exact_upper",
]

DEFAULT_BOUNDS = (0.0, 1.0)
METADATA_KEY = "input_bounds"
# The output change of every step is measured on this many points of the input box,
# half of them random corners (binary inputs for the default box), half uniform inside.
SAMPLE_SIZE = 256
SAMPLE_SEED = 0

_U = 2.0**-53  # unit roundoff of float64
_TINY = float(np.finfo(np.float64).smallest_subnormal)
# Minima of the non-monotone activations (value, argmin), rounded outward.
_DIPS = {"silu": (-0.27846455, -1.2784645), "gelu": (-0.16997121, -0.75179760)}
_MONOTONE = frozenset({"linear", "relu", "sigmoid", "tanh", "softplus", "elu"})


def resolve_input_bounds(mlp: MLP, input_bounds: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """The input box of ``mlp`` as float64 ``(lo[n], hi[n])``.

    Args:
        mlp: the model.
        input_bounds: ``(lo, hi)`` for every input, or ``[n, 2]`` per-input pairs; None
            uses the model's metadata (``input_bounds``, or an .nnet header), else
            ``(0, 1)``.

    Raises:
        InvalidArgumentError: a malformed, non-finite or empty box.
    """
    spec = input_bounds
    if spec is None:
        spec = mlp.metadata.get(METADATA_KEY)
    if spec is None:
        spec = _nnet_bounds(mlp)
    if spec is None:
        spec = DEFAULT_BOUNDS
    n = mlp.input_width
    try:
        arr = np.asarray(spec, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"input bounds {spec!r} are not numbers; give (lo, hi)"
        ) from None
    if arr.shape == (2,):
        lo, hi = np.full(n, arr[0]), np.full(n, arr[1])
    elif arr.shape == (n, 2):
        lo, hi = arr[:, 0].copy(), arr[:, 1].copy()
    else:
        raise InvalidArgumentError(
            f"input bounds have shape {arr.shape}; give (lo, hi) or {n} (lo, hi) pairs"
        )
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise InvalidArgumentError("input bounds must be finite; give a bounded box such as (0, 1)")
    if np.any(lo > hi):
        bad = int(np.argmax(lo > hi))
        raise InvalidArgumentError(
            f"input {bad} has lower bound {lo[bad]} above upper bound {hi[bad]}"
        )
    return lo, hi


def _nnet_bounds(mlp: MLP) -> np.ndarray | None:
    """``[n, 2]`` box of an .nnet model's own inputs: ``([min, max] - mean) / range``.

    The .nnet loader keeps the file's normalization header in the metadata and does not
    fold it into layer 0, so the network sees normalized inputs. Rounded outward.
    """
    keys = ("nnet.mins", "nnet.maxes", "nnet.means", "nnet.ranges")
    if not all(k in mlp.metadata for k in keys):
        return None
    n = mlp.input_width
    try:
        mins, maxes, means, ranges = (np.asarray(mlp.metadata[k], dtype=np.float64) for k in keys)
        mins, maxes, means, ranges = mins[:n], maxes[:n], means[:n], ranges[:n]
    except (TypeError, ValueError):
        return None
    if mins.shape != (n,) or means.shape != (n,) or not np.all(ranges > 0):
        return None
    with np.errstate(all="ignore"):
        lo = np.nextafter((mins - means) / ranges, -np.inf)
        hi = np.nextafter((maxes - means) / ranges, np.inf)
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        return None
    return np.stack([lo, hi], axis=1)


def compact_bounds(lo: np.ndarray, hi: np.ndarray) -> list[Any]:
    """JSON form of a box: ``[lo, hi]`` when all inputs share it, else ``[[lo, hi], ...]``."""
    if lo.size and np.all(lo == lo[0]) and np.all(hi == hi[0]):
        return [float(lo[0]), float(hi[0])]
    return [[float(a), float(b)] for a, b in zip(lo, hi, strict=True)]


def domain_sample(
    lo: np.ndarray, hi: np.ndarray, size: int = SAMPLE_SIZE, seed: int = SAMPLE_SEED
) -> np.ndarray:
    """A fixed ``[size, n]`` float64 sample of the box: random corners, then uniform points."""
    rng = np.random.default_rng(seed)
    n = lo.size
    corners = rng.integers(0, 2, size=(size // 2, n)).astype(np.float64)
    inside = rng.random((size - size // 2, n))
    unit = np.concatenate([corners, inside])
    return lo + unit * (hi - lo)


def preactivation_bounds(
    weight: np.ndarray, bias: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Float64 IBP of ``W x + b`` over ``lo <= x <= hi``.

    Returns:
        ``(zl, zu, margin)``: the exact bounds lie in ``[zl - margin, zu + margin]``.
        ``margin`` bounds the rounding of the float64 dot products (Higham's
        ``|fl(x·y) - x·y| <= γ_n |x|·|y|``, doubled for the rounding of the bound itself),
        whatever order BLAS sums in.
    """
    w = weight.astype(np.float64)
    b = bias.astype(np.float64)
    wp, wn = np.maximum(w, 0.0), np.minimum(w, 0.0)
    zl = wp @ lo + wn @ hi + b
    zu = wp @ hi + wn @ lo + b
    n = w.shape[1] + 2
    gamma = n * _U / (1.0 - n * _U)
    mag = np.abs(w) @ np.maximum(np.abs(lo), np.abs(hi)) + np.abs(b)
    margin = 2.0 * gamma * mag + n * _TINY
    return zl, zu, margin


def activation_bounds(name: str, zl: np.ndarray, zu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sound bounds of ``act(z)`` for ``zl <= z <= zu`` (outward-rounded)."""
    if name == "relu":
        return np.maximum(zl, 0.0), np.maximum(zu, 0.0)
    if name == "linear":
        return zl, zu
    a, b = activate(name, zl), activate(name, zu)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    if name not in _MONOTONE:
        value, where = _DIPS[name]
        lo = np.where((zl < where) & (where < zu), value, lo)
    # the float activations are accurate to a few ulps; widen far beyond that
    return lo - (np.abs(lo) * 2.0**-40 + _TINY), hi + (np.abs(hi) * 2.0**-40 + _TINY)


def exact_input_bounds(
    weights: list[np.ndarray],
    biases: list[np.ndarray],
    activations: list[str],
    layer: int,
    lo: np.ndarray,
    hi: np.ndarray,
) -> tuple[list[Fraction], list[Fraction]] | None:
    """Exact rational IBP bounds of the inputs of ``layer``, or None when an earlier
    activation is not piecewise linear (so no exact bound exists in rationals)."""
    if any(a not in ("relu", "linear") for a in activations[:layer]):
        return None
    low = [Fraction(float(v)) for v in lo]
    high = [Fraction(float(v)) for v in hi]
    for k in range(layer):
        new_low, new_high = [], []
        for row, b in zip(weights[k].tolist(), biases[k].tolist(), strict=True):
            lo_k = hi_k = Fraction(b)
            for w, a, c in zip(row, low, high, strict=True):
                if w > 0:
                    lo_k += Fraction(w) * a
                    hi_k += Fraction(w) * c
                elif w < 0:
                    lo_k += Fraction(w) * c
                    hi_k += Fraction(w) * a
            if activations[k] == "relu":
                lo_k, hi_k = max(lo_k, Fraction(0)), max(hi_k, Fraction(0))
            new_low.append(lo_k)
            new_high.append(hi_k)
        low, high = new_low, new_high
    return low, high


def exact_upper(
    row: np.ndarray, bias: float, low: list[Fraction], high: list[Fraction]
) -> Fraction:
    """Exact maximum of ``row · x + bias`` over the box ``[low, high]``."""
    total = Fraction(float(bias))
    for w, a, c in zip(row.tolist(), low, high, strict=True):
        if w > 0:
            total += Fraction(w) * c
        elif w < 0:
            total += Fraction(w) * a
    return total
