"""Input-space signatures: every neuron's firing pattern over the points of an input space.

For a model and an :class:`~roon.kernels.spaces.InputSpace` ``X``, a neuron's input-space
signature is the bit set ``{x ∈ X : pre-activation(x) > 0}`` in the space's point order,
with a 128-bit hash; linear neurons also get the hash of their sign pattern
(``-1, 0, +1`` per point). Unlike the local signatures, these see the whole network up
to the neuron, on the model's own inputs.

**Exact decisions** (the same standard as the local signatures: no float rounding decides
a bit). Each chunk of points is evaluated in float64, and every pre-activation carries a
proven bound on its distance from the exact value of the network on that point:

* inputs are exact (points are floats, taken as given), so layer 0 starts with error 0;
* for a neuron with fan-in ``n``, computed inputs ``ĥ`` within ``e`` of the exact ``h``,
  ``|fl(w·ĥ + b) - (w·h + b)| <= γ_{n+1}·(Σ|w||ĥ| + |b|) + Σ|w|·e`` (Higham, *Accuracy
  and Stability of Numerical Algorithms*, §3.1: any summation order, with or without
  FMA), ``γ_k = k·u / (1 - k·u)``, ``u = 2^-53``. roon evaluates
  ``2γ·A + (1 + 2γ)·B + 4(n+2)·η``, times ``1 + 2^-40``, where ``A`` and ``B`` are the
  float64 values of the two sums: the doubling covers their own rounding, ``η`` (the
  smallest subnormal) underflow, and the last factor the few roundings of the bound itself;
* *error-free layers*: when the inputs are exact and every weight, bias and input is a
  multiple of ``2^g`` with ``Σ|w||h| + |b| < 2^53·2^g``, every product and partial sum is
  representable, so the float64 result *is* the exact value (bound 0, ties decided as
  ``0``). Hand-written circuits on the cubes take this path whole;
* ReLU passes the bound on (``|max(ẑ,0) - max(z,0)| <= |ẑ - z|``, and 0 where ``ẑ`` is
  below minus its bound); linear passes it on; other activations multiply it by their
  Lipschitz constant and add ``2^-40·|value|`` for the library function's own error.

A pre-activation whose magnitude exceeds its bound has the sign of its float value. Every
point with a pre-activation within its bound of 0 is re-evaluated *exactly* — the whole
path through the network for that point, in dyadic rationals over the stored float
values (:mod:`roon.kernels.dyadic`) — and its signs are taken from there. That is possible
up to the first activation that is not piecewise linear (ReLU, linear); a decision
beyond one that stays within its bound is taken from the float value and the neuron's
row says ``exact = false``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from roon.kernels.dyadic import align, min_exponent, to_dyadic
from roon.kernels.spaces import InputSpace
from roon.mlp import MLP, activate
from roon.progress import ProgressCallback, emit

__all__ = [
    "PATTERN_LIMIT",
    "Chunk",
    "LayerPatterns",
    "chunk_points",
    "exact_signs",
    "InputSpacePatterns",
    "evaluate_space",
    "input_space_signatures",
    "pattern_hash",
]

# Patterns are kept as hex (Σ_m bit_m·2^m, like the truth tables) up to this many points:
# 4,096 bits = 1,024 hex digits per neuron; beyond, only the hashes are kept.
PATTERN_LIMIT = 4096
# float64 elements of one [points, width] temporary: 2^18 (2 MiB) keeps the dozen
# temporaries of a layer in cache; on a 2-core EPYC VM chunks of 2^13 points ran ACAS Xu
# and the 20-input cube 1.3-3x faster than chunks of 2^16. Memory stays bounded at any
# number of points.
_CHUNK_ELEMENTS = 1 << 18
_MIN_CHUNK, _MAX_CHUNK = 1 << 10, 1 << 14

_U = 2.0**-53  # unit roundoff of float64
_ETA = float(np.finfo(np.float64).smallest_subnormal)
_SLACK = 2.0**-40  # covers the handful of roundings in computing a bound
_PIECEWISE_LINEAR = frozenset({"relu", "linear"})
# Upper bounds of |act'| (the error of an input is at most this times that of z).
_LIPSCHITZ = {"sigmoid": 0.25, "tanh": 1.0, "softplus": 1.0, "silu": 1.1, "gelu": 1.13, "elu": 1.0}


def _gamma(k: int) -> float:
    return k * _U / (1.0 - k * _U)


@dataclass(frozen=True)
class _Prepared:
    """A model's layers in float64, their magnitudes, exponents and exact integers."""

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    abs_weights: tuple[np.ndarray, ...]
    abs_biases: tuple[np.ndarray, ...]
    activations: tuple[str, ...]
    weight_exp: tuple[int | None, ...]  # smallest exponent of a nonzero weight, per layer
    bias_exp: tuple[int | None, ...]
    exact_depth: int  # layers whose pre-activations can be computed exactly

    @classmethod
    def of(cls, mlp: MLP) -> _Prepared:
        w = tuple(layer.weight.astype(np.float64) for layer in mlp.layers)
        b = tuple(layer.bias.astype(np.float64) for layer in mlp.layers)
        depth = 0
        for layer in mlp.layers:
            depth += 1
            if layer.activation not in _PIECEWISE_LINEAR:
                break
        return cls(
            weights=w,
            biases=b,
            abs_weights=tuple(np.abs(a) for a in w),
            abs_biases=tuple(np.abs(a) for a in b),
            activations=mlp.activations,
            weight_exp=tuple(min_exponent(a) for a in w),
            bias_exp=tuple(min_exponent(a) for a in b),
            exact_depth=depth,
        )

    def exact_ints(self) -> list[tuple[tuple[np.ndarray, int], tuple[np.ndarray, int]]]:
        cached = self.__dict__.get("_ints")
        if cached is None:
            cached = [
                (to_dyadic(self.weights[k]), to_dyadic(self.biases[k]))
                for k in range(self.exact_depth)
            ]
            object.__setattr__(self, "_ints", cached)
        return cached


@dataclass(frozen=True)
class Chunk:
    """Certified signs of every neuron on one chunk of points.

    Attributes:
        start: index of the first point.
        points: ``[P, n]`` float64 points.
        signs: per layer ``[P, width]`` int8 sign of the pre-activation (exact where
            ``uncertified`` is 0).
        outputs: ``[P, out]`` float64 values of the last layer (after its activation).
        rechecked: per layer ``[width]`` decisions re-made in exact arithmetic.
        uncertified: per layer ``[width]`` decisions within the float bound that no exact
            path reached (after a non-piecewise-linear activation).
    """

    start: int
    points: np.ndarray
    signs: tuple[np.ndarray, ...]
    outputs: np.ndarray
    rechecked: tuple[np.ndarray, ...]
    uncertified: tuple[np.ndarray, ...]


def chunk_points(mlp: MLP) -> int:
    """Points per chunk for ``mlp``: bounded memory, a multiple of 8 (whole pattern bytes)."""
    widest = max(mlp.widths)
    return int(np.clip(_CHUNK_ELEMENTS // widest, _MIN_CHUNK, _MAX_CHUNK)) // 8 * 8


def evaluate_space(
    mlp: MLP,
    space: InputSpace,
    *,
    chunk: int | None = None,
    progress: ProgressCallback | None = None,
) -> Iterator[Chunk]:
    """Evaluate ``mlp`` on every point of ``space``, chunk by chunk, with certified signs.

    Args:
        mlp: the model; ``space.n`` must equal its input width.
        space: the points.
        chunk: points per chunk (a multiple of 8; default :func:`chunk_points`).
        progress: ``points`` events.

    Raises:
        InvalidArgumentError: the space has another width than the model's inputs.
    """
    from roon.errors import InvalidArgumentError

    if space.n != mlp.input_width:
        raise InvalidArgumentError(
            f"the input space has {space.n} inputs but model {mlp.name or mlp.id[:12]!r} "
            f"takes {mlp.input_width}"
        )
    step = chunk or chunk_points(mlp)
    if step % 8:
        raise InvalidArgumentError(f"chunk must be a multiple of 8 points; got {step}")
    prep = _Prepared.of(mlp)
    label = mlp.name or mlp.id[:12]
    total = space.size
    for start in range(0, total, step):
        x = space.points(start, start + step)
        yield _evaluate_chunk(prep, start, x)
        emit(progress, "points", min(start + step, total), total, label)


def _input_exponent(x: np.ndarray) -> int | None:
    if np.all(x == np.round(x)) and np.all(np.abs(x) < 2.0**53):
        return 0  # integer points (the cubes): every value is a multiple of 2^0
    return min_exponent(x)


def _evaluate_chunk(prep: _Prepared, start: int, x: np.ndarray) -> Chunk:
    """One chunk: the float64 pass with its bounds, layer by layer, then the exact path
    for the points with an undecided pre-activation (see the module docstring)."""
    n_pts = x.shape[0]
    h, habs = x, np.abs(x)
    err: np.ndarray | None = None  # [P, width] bound on |ĥ - h|; None: inputs exact
    exact_in: np.ndarray | None = np.ones(n_pts, dtype=bool)  # None: no point exact
    grid = _input_exponent(x)  # inputs are multiples of 2^grid (None: unknown)
    signs, rechecked, uncertified = [], [], []
    redo = np.zeros(n_pts, dtype=bool)
    for k, act in enumerate(prep.activations):
        fan_in = prep.weights[k].shape[1]
        g = _gamma(fan_in + 1)
        c1 = 2.0 * g * (1.0 + _SLACK)  # on Σ|w||ĥ| + |b|
        c2 = (1.0 + 2.0 * g) * (1.0 + _SLACK)  # on Σ|w|·e
        c0 = 4.0 * (fan_in + 2) * _ETA * (1.0 + _SLACK)  # underflow
        with np.errstate(over="ignore", invalid="ignore"):
            z = h @ prep.weights[k].T
            z += prep.biases[k]  # [P, width]
            grid = _layer_grid(grid, prep.weight_exp[k], prep.bias_exp[k])
            free = None  # error-free entries: bound 0, the float value is exact
            if exact_in is not None and grid is not None and grid >= -1074:
                mag = habs @ prep.abs_weights[k].T
                mag += prep.abs_biases[k]  # Σ|w||ĥ| + |b|
                limit = np.ldexp(1.0, 53 + grid) - (fan_in + 2) * _ETA
                # Below the limit mag is exact (sums of multiples of 2^grid); the γ_n pad
                # keeps the test sound at any fan-in even if a BLAS rounds mag otherwise.
                free = exact_in[:, None] & (mag * ((1.0 + 2.0 * g) * (1.0 + _SLACK)) < limit)
                if not free.any():
                    free = None
                bound = mag
                bound *= c1
                if err is not None:
                    spread = err @ prep.abs_weights[k].T
                    spread *= c2
                    bound += spread
            else:
                # one product for both terms: |W|·(c1·|ĥ| + c2·e); its own rounding
                # (γ_n relative) is covered by the doubling in c1 and the slack
                scaled = habs * c1
                if err is not None:
                    scaled += err * c2
                bound = scaled @ prep.abs_weights[k].T
                bound += prep.abs_biases[k] * c1
            bound += c0
            if free is not None:
                bound[free] = 0.0
            unsure = ~(np.abs(z) > bound)  # NaN (overflow) is unsure too
            if free is not None:
                unsure[free] = False  # exact values: a 0 is a tie, decided
            sign = np.sign(z).astype(np.int8)
            signs.append(sign)
        count = unsure.sum(axis=0).astype(np.int64)
        none = np.zeros(z.shape[1], dtype=np.int64)
        if k < prep.exact_depth:
            rechecked.append(count)
            uncertified.append(none)
            redo |= unsure.any(axis=1)
        else:
            rechecked.append(none)
            uncertified.append(count)
        if act == "relu":
            negative = (sign < 0) & ~unsure  # certainly negative: the output is exactly 0
            h = np.maximum(z, 0.0, out=z)
            habs, err = h, bound
            err[negative] = 0.0
        elif act == "linear":
            h, habs, err = z, np.abs(z), bound
        else:
            h = activate(act, z)
            habs = np.abs(h)
            err = _LIPSCHITZ[act] * bound + _SLACK * habs + _ETA
            grid = None
        exact_in = None if free is None else ~np.any(err > 0, axis=1)
    if np.any(redo):
        rows = np.flatnonzero(redo)
        for k, exact_sign in enumerate(exact_signs(prep, x[rows])):
            signs[k][rows] = exact_sign
    return Chunk(start, x, tuple(signs), h, tuple(rechecked), tuple(uncertified))


def _layer_grid(grid: int | None, w_exp: int | None, b_exp: int | None) -> int | None:
    """Exponent ``g`` with every pre-activation term a multiple of ``2^g`` (None: unknown)."""
    if grid is None:
        return None
    terms = [e for e in (None if w_exp is None else w_exp + grid, b_exp) if e is not None]
    return min(terms) if terms else 0


def exact_signs(prep: _Prepared, x: np.ndarray) -> list[np.ndarray]:
    """Exact signs of the pre-activations of layers ``0 .. exact_depth - 1`` at points ``x``.

    The whole path is evaluated in dyadic rationals over the stored float values: each
    value is ``m · 2^e`` with Python-int ``m`` (numpy object arrays), so ReLU and linear
    layers stay exact at any size.
    """
    hm, he = to_dyadic(x)  # [U, n]
    out = []
    for k, ((wm, we), (bm, be)) in enumerate(prep.exact_ints()):
        zm = hm @ wm.T  # [U, width] Python ints, at exponent he + we
        zm, bb, ze = align((zm, he + we), (bm, be))
        zm = zm + bb[None, :]
        out.append((zm > 0).astype(np.int8) - (zm < 0).astype(np.int8))
        if prep.activations[k] == "relu":
            zm = np.where(zm > 0, zm, 0)
        hm, he = zm, ze
    return out


def pattern_hash(space_key: str, what: str, data: bytes) -> str:
    """128-bit digest of one pattern: ``what`` is ``fire`` (packed bits) or ``sign``."""
    h = hashlib.blake2b(f"roon-input-space-v1|{space_key}|{what}|".encode(), digest_size=16)
    h.update(data)
    return h.hexdigest()


@dataclass(frozen=True)
class LayerPatterns:
    """Input-space signatures of one layer's neurons.

    Attributes:
        layer: the layer index.
        fire_count: ``[width]`` points with pre-activation > 0.
        zero_count: ``[width]`` points with pre-activation exactly 0 (exact ties).
        hash: 128-bit digest of each firing pattern (32 hex characters).
        complement_hash: digest of the complemented pattern (a neuron firing exactly where
            this one does not has it as its ``hash``).
        sign_hash: digest of each sign pattern (linear layers only, else None).
        pattern: hex of ``Σ_m bit_m · 2^m`` per neuron when the space has at most
            :data:`PATTERN_LIMIT` points, else None.
        exact: ``[width]`` every decision certified.
        rechecked: ``[width]`` decisions made in exact arithmetic.
    """

    layer: int
    fire_count: np.ndarray
    zero_count: np.ndarray
    hash: list[str]
    complement_hash: list[str]
    sign_hash: list[str] | None
    pattern: list[str] | None
    exact: np.ndarray
    rechecked: np.ndarray


@dataclass(frozen=True)
class InputSpacePatterns:
    """Input-space signatures of every neuron of a model on one space."""

    space: InputSpace
    layers: tuple[LayerPatterns, ...]

    @property
    def hashes(self) -> list[list[str]]:
        """Firing-pattern hashes per layer."""
        return [layer.hash for layer in self.layers]


class _Hashes:
    """Streaming digests of one layer's patterns, chunk by chunk."""

    def __init__(self, key: str, width: int, signs: bool, keep: bool) -> None:
        def start(what: str) -> list[Any]:
            head = f"roon-input-space-v1|{key}|{what}|".encode()
            base = hashlib.blake2b(head, digest_size=16)
            return [base.copy() for _ in range(width)]

        self.fire, self.comp = start("fire"), start("fire")
        self.sign = start("sign") if signs else None
        self.kept: list[list[bytes]] | None = [[] for _ in range(width)] if keep else None
        self.fire_count = np.zeros(width, dtype=np.int64)
        self.zero_count = np.zeros(width, dtype=np.int64)
        self.rechecked = np.zeros(width, dtype=np.int64)
        self.uncertified = np.zeros(width, dtype=np.int64)

    def update(self, sign: np.ndarray, rechecked: np.ndarray, uncertified: np.ndarray) -> None:
        sign_t = np.ascontiguousarray(sign.T)  # [width, P]
        fires = sign_t > 0
        packed = np.packbits(fires, axis=1, bitorder="little")  # [width, ceil(P/8)]
        flipped = ~packed
        if sign_t.shape[1] % 8:  # the pad bits of the last byte stay 0
            flipped[:, -1] &= (1 << (sign_t.shape[1] % 8)) - 1
        for j in range(sign_t.shape[0]):
            row = packed[j].tobytes()
            self.fire[j].update(row)
            self.comp[j].update(flipped[j].tobytes())
            if self.sign is not None:
                self.sign[j].update(sign_t[j].tobytes())
            if self.kept is not None:
                self.kept[j].append(row)
        self.fire_count += fires.sum(axis=1)
        self.zero_count += (sign_t == 0).sum(axis=1)
        self.rechecked += rechecked
        self.uncertified += uncertified

    def result(self, layer: int) -> LayerPatterns:
        pattern = None
        if self.kept is not None:
            pattern = [format(int.from_bytes(b"".join(p), "little"), "x") for p in self.kept]
        return LayerPatterns(
            layer=layer,
            fire_count=self.fire_count,
            zero_count=self.zero_count,
            hash=[h.hexdigest() for h in self.fire],
            complement_hash=[h.hexdigest() for h in self.comp],
            sign_hash=None if self.sign is None else [h.hexdigest() for h in self.sign],
            pattern=pattern,
            exact=self.uncertified == 0,
            rechecked=self.rechecked,
        )


def input_space_signatures(
    mlp: MLP,
    space: InputSpace,
    *,
    progress: ProgressCallback | None = None,
) -> InputSpacePatterns:
    """The input-space signature of every neuron of ``mlp`` on ``space`` (see the module
    docstring for the exactness rule).

    Example:
        >>> import numpy as np
        >>> from roon import MLP, Layer
        >>> from roon.kernels.spaces import binary_space
        >>> hidden = Layer([[1.0, -1.0], [-1.0, 1.0]], [0.0, 0.0])
        >>> xor = MLP([hidden, Layer([[1.0, 1.0]], [0.0], "linear")])
        >>> input_space_signatures(xor, binary_space(2)).layers[1].pattern
        ['6']
    """
    keep = space.size <= PATTERN_LIMIT
    streams = [
        _Hashes(space.key, layer.width, layer.activation == "linear", keep) for layer in mlp.layers
    ]
    for chunk in evaluate_space(mlp, space, progress=progress):
        for k, stream in enumerate(streams):
            stream.update(chunk.signs[k], chunk.rechecked[k], chunk.uncertified[k])
    return InputSpacePatterns(space, tuple(s.result(k) for k, s in enumerate(streams)))
