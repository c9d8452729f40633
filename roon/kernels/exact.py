"""Exact integer arithmetic for threshold decisions.

The rule (every backend and every method follows it):

    A neuron ``(w, b)`` is *excited* on input ``x`` iff ``w·x + b > 0`` evaluated in exact
    arithmetic over the stored floating-point values (float32 widens to float64 exactly).

Every finite float is a dyadic rational ``odd · 2^k``. Per neuron (one row of
``[w, b]``), scaling all values by ``2^-min(k)`` gives integers whose signs of sums are
those of the original sums, because a positive scale never changes a sign.

* When those integers fit — ``Σ|int| <= 2^61``, so no subset sum and no difference of
  two sums can overflow int64 — :func:`to_int64` returns them with tolerance ``tol = 0``
  and every backend decides ``s > 0`` on int64 sums: bit-exact by construction.
* Otherwise (e.g. float64 weights parsed from decimal text have 53-bit mantissas
  spread over many binades) the row is rounded to a coarser power-of-two scale so that
  ``Σ|int| <= 2^61``. Each of the ``n + 1`` terms then errs by at most 1/2 unit, so an
  int64 sum ``s`` is within ``tol = ceil((n + 1) / 2)`` of the exact scaled sum for every
  input in ``{0, 1}^n`` or ``{-1, 0, 1}^n``. Backends decide ``s > tol`` (excited) and
  ``s < -tol`` (not excited) directly and report the inputs with ``|s| <= tol`` as
  *uncertain*; those are re-decided with Python integers from :func:`to_integers`,
  which are exact at any size. No float rounding can flip a decision.

Example:
    >>> import numpy as np
    >>> rows = to_int64(np.array([[0.5, 0.25]]), np.array([-0.75]))
    >>> rows.weights.tolist(), rows.bias.tolist(), rows.tol.tolist()
    ([[2, 1]], [-3], [0])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from roon.errors import InvalidArgumentError

__all__ = ["Int64Rows", "SUM_BITS", "to_int64", "to_integers", "decompose"]

# Largest bit length allowed for Σ|w_int| + |b_int|: every subset sum stays below 2^61 and
# every difference or comparison offset of two sums below 2^62, far from int64 overflow.
SUM_BITS = 61


@dataclass(frozen=True)
class Int64Rows:
    """Per-neuron fixed-point integers.

    Attributes:
        weights: ``[N, n]`` int64, ``w · 2^-shift`` (rounded where ``tol > 0``).
        bias: ``[N]`` int64, ``b · 2^-shift`` (rounded likewise).
        tol: ``[N]`` int64; ``0`` means the integers are exact, otherwise every sum is
            within ``tol`` of the exact scaled sum.
        shift: ``[N]`` int64 power-of-two exponent of the scale of each row.
    """

    weights: np.ndarray
    bias: np.ndarray
    tol: np.ndarray
    shift: np.ndarray

    @property
    def exact(self) -> np.ndarray:
        """``[N]`` bool: rows represented without rounding."""
        return self.tol == 0


def decompose(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split finite floats into ``odd · 2^k`` exactly.

    Returns:
        ``(odd, k)``: int64 arrays of the same shape; ``odd`` is odd (or 0 for zeros, with
        ``k = 0``), ``|odd| < 2^53``.
    """
    a = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise InvalidArgumentError("weights and biases must be finite")
    m, e = np.frexp(a)  # a = m · 2^e, 0.5 <= |m| < 1
    mant = np.ldexp(m, 53).astype(np.int64)  # exact: 53 significant bits at most
    k = e.astype(np.int64) - 53
    nz = mant != 0
    low = np.where(nz, mant & -mant, 1)  # lowest set bit, a power of two < 2^53
    tz = np.frexp(low.astype(np.float64))[1].astype(np.int64) - 1
    odd = np.where(nz, mant >> tz, 0)
    k = np.where(nz, k + tz, 0)
    return odd, k


def _bit_length(x: np.ndarray) -> np.ndarray:
    """Bit length of ``|x|`` for int64 ``|x| < 2^53`` (0 for 0)."""
    return np.frexp(np.abs(x).astype(np.float64))[1].astype(np.int64)


def to_int64(weights: np.ndarray, bias: np.ndarray) -> Int64Rows:
    """Convert neurons to int64 fixed point per row (see the module docstring).

    Args:
        weights: ``[N, n]`` float32 or float64.
        bias: ``[N]`` float32 or float64.

    Returns:
        :class:`Int64Rows` with ``Σ|weights| + |bias| <= 2^61`` in every row.
    """
    w = np.asarray(weights, dtype=np.float64)
    b = np.asarray(bias, dtype=np.float64)
    if w.ndim != 2 or b.shape != (w.shape[0],):
        raise InvalidArgumentError(
            f"weights must be [N, n] and bias [N]; got {w.shape} and {b.shape}"
        )
    n_rows, n = w.shape
    allv = np.concatenate([w, b[:, None]], axis=1)  # [N, n+1]
    odd, k = decompose(allv)
    nz = odd != 0
    big = np.int64(1 << 40)
    base = np.where(nz, k, big).min(axis=1)  # lowest binade in the row
    base = np.where(base == big, 0, base)  # all-zero rows
    top = np.where(nz, k + _bit_length(odd), -big).max(axis=1)  # exclusive top bit
    top = np.where(top == -big, 0, top)
    # Σ|int| < (n + 1) · 2^(top - shift) <= 2^(top - shift + ceil(log2(n + 1)))
    headroom = int(np.ceil(np.log2(n + 1))) if n + 1 > 1 else 0
    budget = SUM_BITS - headroom
    shift = np.maximum(base, top - budget)  # [N]
    rounded = shift > base
    rel = k - shift[:, None]  # exponent relative to the row scale
    out = np.zeros_like(odd)
    up = nz & (rel >= 0)
    out[up] = odd[up] << rel[up]
    down = nz & (rel < 0)
    if np.any(down):
        # round half away from zero; |error| <= 1/2 unit per term
        r = -rel[down]
        mag = np.abs(odd[down])
        half = np.int64(1) << np.minimum(r - 1, 62)
        q = np.where(r >= 63, 0, (mag + half) >> np.minimum(r, 62))
        out[down] = np.sign(odd[down]) * q
    tol = np.where(rounded, (n + 2) // 2, 0).astype(np.int64)
    return Int64Rows(
        weights=np.ascontiguousarray(out[:, :n]),
        bias=np.ascontiguousarray(out[:, n]),
        tol=tol,
        shift=shift.astype(np.int64),
    )


def to_integers(weights: np.ndarray, bias: float) -> tuple[list[int], int]:
    """Exact Python integers for one neuron: ``w = ints · 2^s``, ``b = bias_int · 2^s``.

    Unlike :func:`to_int64` this never rounds; the integers may exceed 64 bits.
    """
    allv = np.concatenate([np.asarray(weights, dtype=np.float64).ravel(), [float(bias)]])
    odd, k = decompose(allv)
    nz = odd != 0
    base = int(k[nz].min()) if np.any(nz) else 0
    pairs = zip(odd.tolist(), k.tolist(), strict=True)
    ints = [int(o) << (int(e) - base) if o else 0 for o, e in pairs]
    return ints[:-1], ints[-1]
