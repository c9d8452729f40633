"""Exact dyadic-rational arrays: Python integers times one power of two.

Every finite float is ``odd · 2^k`` (:func:`roon.kernels.exact.decompose`), so an array of
floats is exactly ``m · 2^e`` with integer ``m`` (numpy object arrays of Python ints, any
size) and ``e`` the smallest exponent in it. Sums and products of such arrays stay
dyadic, so a whole ReLU network can be evaluated exactly on a point without
``fractions.Fraction`` and its gcd work; numpy's object arithmetic (``@``, ``+``,
comparisons) runs on Python's exact integers.

Example:
    >>> m, e = to_dyadic([0.5, 0.75])
    >>> m.tolist(), e
    ([2, 3], -2)
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from roon.errors import InvalidArgumentError
from roon.kernels.exact import decompose

__all__ = ["to_dyadic", "align", "scaled", "to_float", "float_error", "min_exponent"]


def min_exponent(values: Any) -> int | None:
    """The smallest ``k`` over the nonzero entries ``odd · 2^k`` (None when all are 0)."""
    odd, k = decompose(np.asarray(values, dtype=np.float64))
    nz = odd != 0
    return int(k[nz].min()) if np.any(nz) else None


def to_dyadic(values: Any) -> tuple[np.ndarray, int]:
    """Exact ``(m, e)`` with ``values == m · 2^e``; ``m`` an object array of Python ints.

    Raises:
        InvalidArgumentError: a NaN or infinite value.
    """
    a = np.asarray(values, dtype=np.float64)
    odd, k = decompose(a)
    nz = odd != 0
    e = int(k[nz].min()) if np.any(nz) else 0
    flat = [int(o) << (int(j) - e) if o else 0 for o, j in zip(odd.ravel(), k.ravel(), strict=True)]
    m = np.empty(a.size, dtype=object)
    m[:] = flat
    return m.reshape(a.shape), e


def scaled(m: np.ndarray, shift: int) -> np.ndarray:
    """``m · 2^shift`` for ``shift >= 0`` (object arrays stay exact)."""
    if shift < 0:
        raise InvalidArgumentError(f"shift must be >= 0; got {shift}")
    return m if shift == 0 else m * (1 << shift)


Dyadic = tuple[np.ndarray, int]  # (m, e): the values m · 2^e


def align(a: Dyadic, b: Dyadic) -> tuple[np.ndarray, np.ndarray, int]:
    """Both dyadic arrays on the finer of their two scales: ``(m_a, m_b, e)``."""
    (ma, ea), (mb, eb) = a, b
    e = min(ea, eb)
    return scaled(ma, ea - e), scaled(mb, eb - e), e


def _fraction(v: int, e: int) -> Fraction:
    return Fraction(v << e) if e >= 0 else Fraction(v, 1 << -e)


def to_float(m: np.ndarray, e: int, mode: str = "nearest") -> np.ndarray:
    """Float64 values of ``m · 2^e``: correctly rounded (``nearest``), or rounded
    ``down``/``up`` (the largest float below / smallest above the exact value).

    Python's ``int / int`` is correctly rounded, which is what ``nearest`` relies on.

    Raises:
        InvalidArgumentError: a value beyond the float64 range.
    """
    flat = np.asarray(m, dtype=object).ravel().tolist()
    out = np.empty(len(flat), dtype=np.float64)
    try:
        for i, v in enumerate(flat):
            v = int(v)
            f = float(v << e) if e >= 0 else v / (1 << -e)
            if mode != "nearest" and f != _fraction(v, e):
                exact = _fraction(v, e)
                if mode == "down" and Fraction(f) > exact:
                    f = float(np.nextafter(f, -np.inf))
                elif mode == "up" and Fraction(f) < exact:
                    f = float(np.nextafter(f, np.inf))
            out[i] = f
    except OverflowError:
        raise InvalidArgumentError(
            "a value exceeds the float64 range; rescale the model or its input box"
        ) from None
    return out.reshape(np.shape(m))


def float_error(m: np.ndarray, e: int, rounded: np.ndarray) -> list[Fraction]:
    """``|rounded - m · 2^e|`` per entry, exactly."""
    flat = np.asarray(m, dtype=object).ravel().tolist()
    return [
        abs(Fraction(float(f)) - _fraction(int(v), e))
        for v, f in zip(flat, np.asarray(rounded).ravel().tolist(), strict=True)
    ]
