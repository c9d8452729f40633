"""Input spaces: the finite point sets a whole model is evaluated on.

An :class:`InputSpace` is a finite set of points of the model's inputs, in a fixed order:

* ``binary`` — the cube ``{0,1}^n``; point ``m`` has ``x_i = (m >> i) & 1`` (input 0 is
  the lowest bit, as in the signatures' truth tables);
* ``signed`` — the cube ``{-1,0,1}^n``; base-3 digit ``i`` of ``m`` is ``x_i + 1``;
* ``box`` — a grid of ``K`` points per axis of a box ``[lo, hi]`` (``K = 2``: its
  ``2^n`` vertices); base-``K`` digit ``i`` of ``m`` is ``d`` and ``x_i`` is ``lo_i`` for
  ``d = 0``, ``hi_i`` for ``d = K - 1`` and the float64 value ``lo_i + (hi_i - lo_i)·(d/(K-1))``
  between; the points are these floats, whatever rounding put them there;
* ``probe`` — points given by the user, in their order.

The cubes and the box vertices are *complete* (every point of the domain); a grid or a
probe set is a sample of it, and an input-space signature on it is exact for those points
and silent about the others.

Each space has a canonical ``key`` (kind, width, grid and a digest of the box or of the
points); pattern hashes are taken over it, so patterns on different spaces never compare
equal, and patterns of two models on the same space are comparable bit for bit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from roon.errors import InvalidArgumentError

__all__ = [
    "SPACE_KINDS",
    "MAX_POINTS",
    "POINTS_CAP",
    "GRID_TARGET",
    "MAX_GRID",
    "InputSpace",
    "binary_space",
    "signed_space",
    "box_space",
    "probe_space",
    "default_grid",
    "space_from_spec",
]

SPACE_KINDS = ("binary", "signed", "box", "probe")
# Default limit on the points of one space: 2^20 (a 20-input binary cube) is ~3.5 CPU
# seconds of certified evaluation for a 32-32-1 network (benchmarks/RESULTS.md) and
# 128 KiB of pattern per neuron.
MAX_POINTS = 1 << 20
# Hard cap, whatever the caller asks: 2^24 points is ~16× the default's time and memory.
POINTS_CAP = 1 << 24
# A box grid by default gets the most points per axis (at most MAX_GRID) that keep it
# within GRID_TARGET points: ACAS Xu's 5 inputs get 9 per axis (59,049 points).
GRID_TARGET = 1 << 16
MAX_GRID = 9


def _digest(*parts: bytes) -> str:
    h = hashlib.blake2b(b"roon-space-v1", digest_size=16)
    for part in parts:
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()


def _float_bytes(a: np.ndarray) -> bytes:
    # -0.0 and 0.0 are one point
    return (np.ascontiguousarray(a, dtype="<f8") + 0.0).tobytes()


@dataclass(frozen=True, eq=False)
class InputSpace:
    """A finite, ordered set of points of a model's inputs (see the module docstring).

    Attributes:
        kind: ``binary``, ``signed``, ``box`` or ``probe``.
        n: number of model inputs.
        grid: points per axis of a box (2 = its vertices); 0 otherwise.
        lo: ``[n]`` float64 lower corner of a box, else None.
        hi: ``[n]`` float64 upper corner of a box, else None.
        probe: ``[P, n]`` float64 points of a probe set, else None.
        source: where a probe set came from (a file name), for the record.
    """

    kind: str
    n: int
    grid: int = 0
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None
    probe: np.ndarray | None = None
    source: str | None = None

    def __repr__(self) -> str:
        return f"InputSpace({self.describe()})"

    @property
    def size(self) -> int:
        """Number of points."""
        if self.kind == "binary":
            return 1 << self.n
        if self.kind == "signed":
            return 3**self.n
        if self.kind == "box":
            return self.grid**self.n
        assert self.probe is not None
        return int(self.probe.shape[0])

    @property
    def digest(self) -> str:
        """128-bit digest of what identifies the points beyond kind and width ('' for cubes)."""
        cached = self.__dict__.get("_digest")
        if cached is None:
            if self.kind == "box":
                assert self.lo is not None and self.hi is not None
                cached = _digest(_float_bytes(self.lo), _float_bytes(self.hi))
            elif self.kind == "probe":
                assert self.probe is not None
                cached = _digest(f"{self.probe.shape}".encode(), _float_bytes(self.probe))
            else:
                cached = ""
            object.__setattr__(self, "_digest", cached)
        return cached

    @property
    def key(self) -> str:
        """Canonical description of the point set (what pattern hashes are taken over)."""
        if self.kind in ("binary", "signed"):
            return f"{self.kind}|{self.n}"
        if self.kind == "box":
            return f"box|{self.n}|{self.grid}|{self.digest}"
        return f"probe|{self.n}|{self.size}|{self.digest}"

    @property
    def id(self) -> str:
        """128-bit digest of :attr:`key`: rows with equal ids are comparable."""
        return hashlib.blake2b(self.key.encode(), digest_size=16).hexdigest()

    @property
    def label(self) -> str:
        """``binary``, ``signed``, ``box`` or ``probe:<first 16 hex digits of the digest>``."""
        return f"probe:{self.digest[:16]}" if self.kind == "probe" else self.kind

    @property
    def complete(self) -> bool:
        """Whether the points are the whole domain (cubes, box vertices), not a sample."""
        return self.kind in ("binary", "signed") or (self.kind == "box" and self.grid == 2)

    def spec(self) -> dict[str, Any]:
        """A JSON-ready description from which :func:`space_from_spec` rebuilds the space
        (a probe set records its digest and source; its points live in the source file)."""
        out: dict[str, Any] = {"kind": self.kind, "n": self.n, "points": self.size}
        if self.kind == "box":
            assert self.lo is not None and self.hi is not None
            out["grid"] = self.grid
            out["bounds"] = [[float(a), float(b)] for a, b in zip(self.lo, self.hi, strict=True)]
        if self.kind == "probe":
            out["digest"] = self.digest
            out["source"] = self.source
        return out

    def describe(self) -> str:
        """A short human description, e.g. ``binary {0,1}^2 (4 points)``."""
        if self.kind == "binary":
            what = f"binary {{0,1}}^{self.n}"
        elif self.kind == "signed":
            what = f"signed {{-1,0,1}}^{self.n}"
        elif self.kind == "box":
            what = (
                f"box vertices ({self.n} inputs)"
                if self.grid == 2
                else (f"box grid {self.grid}^{self.n}")
            )
        else:
            what = f"probe set {self.digest[:16]}"
        return f"{what} ({self.size:,} points)"

    def points(self, start: int, stop: int) -> np.ndarray:
        """``[stop - start, n]`` float64 points ``start .. stop - 1`` in the space's order."""
        start, stop = max(0, start), min(stop, self.size)
        if self.kind == "probe":
            assert self.probe is not None
            return self.probe[start:stop]
        idx = np.arange(start, stop, dtype=np.int64)
        if self.kind == "binary":
            return ((idx[:, None] >> np.arange(self.n)) & 1).astype(np.float64)
        base = 3 if self.kind == "signed" else self.grid
        digits = (idx[:, None] // (base ** np.arange(self.n, dtype=np.int64))) % base
        if self.kind == "signed":
            return (digits - 1).astype(np.float64)
        assert self.lo is not None and self.hi is not None
        lo, hi = self.lo[None, :], self.hi[None, :]
        inside = lo + (hi - lo) * (digits / (self.grid - 1))
        return np.where(digits == 0, lo, np.where(digits == self.grid - 1, hi, inside))


def _check_size(space: InputSpace, max_points: int) -> InputSpace:
    limit = _limit(max_points)
    if space.size > limit:
        raise InvalidArgumentError(
            f"{space.describe()} exceeds the limit of {limit:,} points; "
            "choose a smaller space (box:K, a probe set) or, in Python, raise max_points"
        )
    return space


def _limit(max_points: int) -> int:
    if isinstance(max_points, bool) or not isinstance(max_points, (int, np.integer)):
        raise InvalidArgumentError(f"max_points must be an integer; got {max_points!r}")
    if not 1 <= max_points <= POINTS_CAP:
        raise InvalidArgumentError(f"max_points must be in 1..{POINTS_CAP:,}; got {max_points}")
    return int(max_points)


def _width(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InvalidArgumentError(f"a space needs a positive number of inputs; got {n!r}")
    return int(n)


def binary_space(n: int, *, max_points: int = MAX_POINTS) -> InputSpace:
    """The cube ``{0,1}^n`` (2^n points)."""
    n = _width(n)
    if n > 62:
        raise InvalidArgumentError(f"{{0,1}}^{n} has too many points; use a probe set")
    return _check_size(InputSpace("binary", n), max_points)


def signed_space(n: int, *, max_points: int = MAX_POINTS) -> InputSpace:
    """The cube ``{-1,0,1}^n`` (3^n points)."""
    n = _width(n)
    if n > 39:
        raise InvalidArgumentError(f"{{-1,0,1}}^{n} has too many points; use a probe set")
    return _check_size(InputSpace("signed", n), max_points)


def default_grid(n: int, max_points: int = MAX_POINTS) -> int:
    """Points per axis of a default box grid: the most (up to :data:`MAX_GRID`) that keep
    it within :data:`GRID_TARGET` points, else 2 (the vertices) when those fit ``max_points``."""
    for k in range(MAX_GRID, 2, -1):
        if k**n <= min(GRID_TARGET, max_points):
            return k
    return 2


def box_space(
    lo: Any, hi: Any, *, grid: int | None = None, max_points: int = MAX_POINTS
) -> InputSpace:
    """A grid of ``grid`` points per axis of the box ``[lo, hi]`` (2: the vertices;
    default :func:`default_grid`).

    Raises:
        InvalidArgumentError: a malformed or non-finite box, an empty side, or too many points.
    """
    lo_a = np.ascontiguousarray(lo, dtype=np.float64).ravel()
    hi_a = np.ascontiguousarray(hi, dtype=np.float64).ravel()
    if lo_a.shape != hi_a.shape or lo_a.size == 0:
        raise InvalidArgumentError(
            f"a box needs lo and hi of one shape; got {lo_a.shape} and {hi_a.shape}"
        )
    if not (np.all(np.isfinite(lo_a)) and np.all(np.isfinite(hi_a))):
        raise InvalidArgumentError("box bounds must be finite")
    if np.any(lo_a > hi_a):
        bad = int(np.argmax(lo_a > hi_a))
        raise InvalidArgumentError(
            f"input {bad} has lower bound {lo_a[bad]} above upper bound {hi_a[bad]}"
        )
    n = lo_a.size
    k = default_grid(n, _limit(max_points)) if grid is None else grid
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 2 <= k <= 1 << 16:
        raise InvalidArgumentError(f"a box grid needs 2..65536 points per axis; got {k!r}")
    if n * np.log2(float(k)) > 62:
        raise InvalidArgumentError(f"a {k}^{n} box grid has too many points; use a probe set")
    lo_a.flags.writeable = False
    hi_a.flags.writeable = False
    return _check_size(InputSpace("box", n, int(k), lo_a, hi_a), max_points)


def probe_space(
    points: Any, *, source: str | None = None, max_points: int = MAX_POINTS
) -> InputSpace:
    """A user-supplied probe set: ``[P, n]`` finite numbers (float, integer or bool).

    Raises:
        InvalidArgumentError: not a 2-D numeric array, no points, or a NaN or infinite value.
    """
    where = f"{source}: " if source else ""
    arr = np.asarray(points)
    if arr.dtype.kind not in "biuf":
        raise InvalidArgumentError(f"{where}probe points must be numbers; got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InvalidArgumentError(
            f"{where}probe points must be a [points, inputs] array; got shape {arr.shape}"
        )
    if arr.dtype.kind in "iu" and arr.size and np.abs(arr.astype(np.float64)).max() > 2.0**53:
        raise InvalidArgumentError(f"{where}probe points hold integers beyond 2^53")
    pts = np.ascontiguousarray(arr, dtype=np.float64)  # float16/32 widen exactly
    if not np.all(np.isfinite(pts)):
        raise InvalidArgumentError(f"{where}probe points hold NaN or infinite values")
    pts.flags.writeable = False
    return _check_size(InputSpace("probe", int(pts.shape[1]), probe=pts, source=source), max_points)


def space_from_spec(spec: dict[str, Any], probe: Any = None) -> InputSpace:
    """Rebuild a space from :meth:`InputSpace.spec` (a probe set needs its points back).

    Raises:
        InvalidArgumentError: a malformed spec, or probe points whose digest differs.
    """
    try:
        kind, n, size = spec["kind"], int(spec["n"]), int(spec["points"])
    except (KeyError, TypeError, ValueError):
        raise InvalidArgumentError(f"input space spec {spec!r} lacks kind, n or points") from None
    limit = max(min(size, POINTS_CAP), 1)
    if kind == "binary":
        return binary_space(n, max_points=limit)
    if kind == "signed":
        return signed_space(n, max_points=limit)
    if kind == "box":
        try:
            bounds = np.asarray(spec["bounds"], dtype=np.float64)
            lo, hi = bounds[:, 0], bounds[:, 1]
        except (KeyError, TypeError, ValueError, IndexError):
            raise InvalidArgumentError(f"box spec {spec!r} has no [[lo, hi], ...] bounds") from None
        return box_space(lo, hi, grid=int(spec.get("grid", 2)), max_points=limit)
    if kind == "probe":
        if probe is None:
            raise InvalidArgumentError("a probe space needs its points back")
        space = probe_space(probe, source=spec.get("source"), max_points=limit)
        if space.digest != spec.get("digest"):
            raise InvalidArgumentError(
                f"probe points from {spec.get('source')} have digest {space.digest[:16]}, "
                f"not the recorded {str(spec.get('digest'))[:16]}: the file changed"
            )
        return space
    raise InvalidArgumentError(f"unknown input space kind {kind!r}; kinds are {SPACE_KINDS}")
