"""The input domain of a model: bounds, interval propagation, and a fixed sample.

Decision (documented in the README): the input domain is a box ``[lo, hi]^n``, taken
from, in order: the ``input_bounds`` parameter; ``mlp.metadata["input_bounds"]`` (in the
coordinates of the MLP's own inputs); an .nnet model's header (``nnet.mins`` ...
``nnet.ranges``): the network sees ``(x - mean) / range`` of inputs clipped to
``[min, max]``, so its box is ``([min, max] - mean) / range``. With none of these the
model declares no domain and the box is the whole real line, ``(-inf, inf)^n``: an
exact rule must then keep the function on every input, so ``constant`` drops only
neurons that are constant for every real input. (Assuming ``[0, 1]^n`` instead dropped
relu(-x), changing Osier's circuits on negative inputs.) A bound may be infinite
(``None`` in JSON).

Interval bound propagation (IBP) is computed in float64 and widened by a rigorous
rounding bound, so every enclosure is sound: a neuron called constant is constant on the
whole box. Near-ties of a ReLU's upper bound with 0 (hand-built circuits sit on them) are
re-decided in exact rational arithmetic when every earlier activation is piecewise
linear (ReLU or linear); elsewhere IBP stays sound but may miss a constant neuron.

Step records measure the output change on a fixed sample of the box
(:func:`domain_sample`); where a side is unbounded the sample stands in ``[-1, 1]``
(a side of width 2 beside a finite bound), on the grid ``{-1, 0, 1}`` and inside.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

from roon.errors import InvalidArgumentError
from roon.mlp import MLP, activate

__all__ = [
    "UNBOUNDED",
    "METADATA_KEY",
    "SAMPLE_SIZE",
    "SAMPLE_SEED",
    "resolve_input_bounds",
    "finite_input_bounds",
    "declared_input_bounds",
    "compact_bounds",
    "domain_sample",
    "preactivation_bounds",
    "activation_bounds",
    "exact_input_bounds",
    "exact_upper",
]

# The box of a model that declares no input domain: every real input.
UNBOUNDED = (-np.inf, np.inf)
METADATA_KEY = "input_bounds"
# Where a box is unbounded, the output-change sample stands in an interval this wide.
STAND_IN_WIDTH = 2.0
# The output change of every step is measured on this many points of the input box,
# half of them random corners (binary inputs for the default box), half uniform inside.
SAMPLE_SIZE = 256
SAMPLE_SEED = 0

_U = 2.0**-53  # unit roundoff of float64
_TINY = float(np.finfo(np.float64).smallest_subnormal)
# Minima of the non-monotone activations (value, argmin), rounded outward.
_DIPS = {"silu": (-0.27846455, -1.2784645), "gelu": (-0.16997121, -0.75179760)}
_MONOTONE = frozenset({"linear", "relu", "sigmoid", "tanh", "softplus", "elu"})


def declared_input_bounds(mlp: MLP, input_bounds: Any = None) -> Any:
    """The box ``mlp``'s input domain is declared as, or None when nothing declares one.

    In order: ``input_bounds`` itself, ``mlp.metadata["input_bounds"]``, an .nnet header.
    """
    for spec in (input_bounds, mlp.metadata.get(METADATA_KEY)):
        if spec is not None:
            return spec
    return _nnet_bounds(mlp)


def _unbounded_sides(spec: Any) -> Any:
    """``None`` sides of ``(lo, hi)`` pairs (the JSON form of infinity) → ``∓inf``."""
    if (
        isinstance(spec, list | tuple)
        and len(spec) == 2
        and all(v is None or not isinstance(v, list | tuple | np.ndarray) for v in spec)
    ):
        return [-np.inf if spec[0] is None else spec[0], np.inf if spec[1] is None else spec[1]]
    if isinstance(spec, list | tuple):
        return [_unbounded_sides(pair) for pair in spec]
    return spec


def resolve_input_bounds(mlp: MLP, input_bounds: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """The input box of ``mlp`` as float64 ``(lo[n], hi[n])``; sides may be infinite.

    Args:
        mlp: the model.
        input_bounds: ``(lo, hi)`` for every input, or ``[n, 2]`` per-input pairs (a
            side may be ``None`` or infinite: unbounded); None uses the model's metadata
            (``input_bounds``, or an .nnet header), else the whole real line.

    Raises:
        InvalidArgumentError: a malformed or empty box, or a NaN bound.
    """
    spec = declared_input_bounds(mlp, input_bounds)
    if spec is None:
        spec = UNBOUNDED
    n = mlp.input_width
    try:
        arr = np.asarray(_unbounded_sides(spec), dtype=np.float64)
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
    if np.any(np.isnan(lo)) or np.any(np.isnan(hi)):
        raise InvalidArgumentError("input bounds hold NaN; give numbers such as (0, 1)")
    if np.any(lo == np.inf) or np.any(hi == -np.inf):
        raise InvalidArgumentError(
            "an input's lower bound is +inf or its upper bound -inf; the box is empty"
        )
    if np.any(lo > hi):
        bad = int(np.argmax(lo > hi))
        raise InvalidArgumentError(
            f"input {bad} has lower bound {lo[bad]} above upper bound {hi[bad]}"
        )
    return lo, hi


def finite_input_bounds(
    mlp: MLP, input_bounds: Any = None, *, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`resolve_input_bounds`, refused when a side is infinite.

    A box grid and the ``box`` signature domain need a finite box; roon assumes none (see
    the module docstring), so the user must give one.

    Args:
        mlp: the model.
        input_bounds: as for :func:`resolve_input_bounds`.
        what: what needs the box, for the message (e.g. ``"a box grid"``).

    Raises:
        InvalidArgumentError: the box is malformed, or a side is infinite (no box declared).
    """
    lo, hi = resolve_input_bounds(mlp, input_bounds)
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        declared = declared_input_bounds(mlp, input_bounds) is not None
        raise InvalidArgumentError(
            f"{what} needs finite input bounds and model {mlp.name or mlp.id[:12]!r} "
            f"{'has an unbounded input' if declared else 'declares none'}; give "
            "--input-bounds LO,HI (input_bounds= in Python), or bounds in the model "
            "metadata / .nnet header"
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


def _json_bound(value: float) -> float | None:
    return None if math.isinf(value) else value


def compact_bounds(lo: np.ndarray, hi: np.ndarray) -> list[Any]:
    """JSON form of a box: ``[lo, hi]`` when all inputs share it, else ``[[lo, hi], ...]``.

    An unbounded side is ``None`` (JSON has no infinity): ``[None, None]`` is the real line.
    """
    if lo.size and np.all(lo == lo[0]) and np.all(hi == hi[0]):
        return [_json_bound(float(lo[0])), _json_bound(float(hi[0]))]
    return [[_json_bound(float(a)), _json_bound(float(b))] for a, b in zip(lo, hi, strict=True)]


def domain_sample(
    lo: np.ndarray, hi: np.ndarray, size: int = SAMPLE_SIZE, seed: int = SAMPLE_SEED
) -> np.ndarray:
    """A fixed ``[size, n]`` float64 sample of the box: random corners, then uniform points.

    Unbounded sides stand in an interval of width 2 (``[-1, 1]`` for the real line); there
    the first half of the sample is the grid ``{lo, middle, hi}`` (``{-1, 0, 1}``, which
    holds the binary inputs ``{0, 1}``) instead of the corners.
    """
    rng = np.random.default_rng(seed)
    n = lo.size
    corners = rng.integers(0, 2, size=(size // 2, n)).astype(np.float64)
    inside = rng.random((size - size // 2, n))
    if np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)):
        unit = np.concatenate([corners, inside])
        return lo + unit * (hi - lo)
    open_side = ~(np.isfinite(lo) & np.isfinite(hi))
    lo, hi = _stand_in(lo, hi)
    grid = rng.integers(0, 3, size=(size // 2, n)) / 2.0
    unit = np.concatenate([np.where(open_side[None, :], grid, corners), inside])
    return lo + unit * (hi - lo)


def _stand_in(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Finite bounds for sampling: ``[-1, 1]`` for the real line, width 2 beside one bound."""
    new_lo = np.where(
        np.isfinite(lo), lo, np.where(np.isfinite(hi), hi - STAND_IN_WIDTH, -STAND_IN_WIDTH / 2)
    )
    new_hi = np.where(np.isfinite(hi), hi, new_lo + STAND_IN_WIDTH)
    return new_lo, new_hi


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
    zl = _dot(wp, lo) + _dot(wn, hi) + b
    zu = _dot(wp, hi) + _dot(wn, lo) + b
    n = w.shape[1] + 2
    gamma = n * _U / (1.0 - n * _U)
    # the finite sides bound every finite term; an infinite term makes its bound infinite
    finite_mag = np.maximum(_finite_or_zero(np.abs(lo)), _finite_or_zero(np.abs(hi)))
    mag = np.abs(w) @ finite_mag + np.abs(b)
    margin = 2.0 * gamma * mag + n * _TINY
    return zl, zu, margin


def _finite_or_zero(x: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(x), x, 0.0)


def _dot(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``w @ x`` where ``x`` may hold infinities, with ``0 · inf = 0`` (a zero weight on an
    unbounded input adds nothing). Callers pair signs so that infinities never cancel."""
    finite = np.isfinite(x)
    if np.all(finite):
        return w @ x
    total = w[:, finite] @ x[finite]
    wide = w[:, ~finite]
    with np.errstate(invalid="ignore"):
        terms = np.where(wide != 0.0, wide * x[~finite][None, :], 0.0)
    return total + terms.sum(axis=1)


def activation_bounds(name: str, zl: np.ndarray, zu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sound bounds of ``act(z)`` for ``zl <= z <= zu`` (outward-rounded)."""
    if name == "relu":
        return np.maximum(zl, 0.0), np.maximum(zu, 0.0)
    if name == "linear":
        return zl, zu
    with np.errstate(invalid="ignore"):
        a, b = activate(name, zl), activate(name, zu)
    # silu and gelu compute (-inf) · 0 at -inf; both tend to 0 there
    a = np.where(np.isnan(a) & (zl == -np.inf), 0.0, a)
    b = np.where(np.isnan(b) & (zu == -np.inf), 0.0, b)
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
) -> tuple[list[Fraction | None], list[Fraction | None]] | None:
    """Exact rational IBP bounds of the inputs of ``layer``, or None when an earlier
    activation is not piecewise linear (so no exact bound exists in rationals).

    An unbounded side is ``None`` (``-inf`` in the lower list, ``+inf`` in the upper).
    """
    if any(a not in ("relu", "linear") for a in activations[:layer]):
        return None
    low: list[Fraction | None] = [_fraction(v) for v in lo]
    high: list[Fraction | None] = [_fraction(v) for v in hi]
    for k in range(layer):
        new_low: list[Fraction | None] = []
        new_high: list[Fraction | None] = []
        for row, b in zip(weights[k].tolist(), biases[k].tolist(), strict=True):
            lo_k: Fraction | None = Fraction(b)
            hi_k: Fraction | None = Fraction(b)
            for w, a, c in zip(row, low, high, strict=True):
                if w > 0:
                    lo_k, hi_k = _add(lo_k, w, a), _add(hi_k, w, c)
                elif w < 0:
                    lo_k, hi_k = _add(lo_k, w, c), _add(hi_k, w, a)
            if activations[k] == "relu":
                lo_k = Fraction(0) if lo_k is None else max(lo_k, Fraction(0))
                hi_k = None if hi_k is None else max(hi_k, Fraction(0))
            new_low.append(lo_k)
            new_high.append(hi_k)
        low, high = new_low, new_high
    return low, high


def _fraction(value: float) -> Fraction | None:
    return None if math.isinf(value) else Fraction(float(value))


def _add(total: Fraction | None, w: float, x: Fraction | None) -> Fraction | None:
    """``total + w · x`` where None (an unbounded side) absorbs everything."""
    if total is None or x is None:
        return None
    return total + Fraction(w) * x


def exact_upper(
    row: np.ndarray, bias: float, low: list[Fraction | None], high: list[Fraction | None]
) -> Fraction | None:
    """Exact maximum of ``row · x + bias`` over the box ``[low, high]`` (None: unbounded)."""
    total: Fraction | None = Fraction(float(bias))
    for w, a, c in zip(row.tolist(), low, high, strict=True):
        if w > 0:
            total = _add(total, w, c)
        elif w < 0:
            total = _add(total, w, a)
    return total
