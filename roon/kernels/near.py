"""Exact counts of a rounded row from its few inputs near the threshold.

A row that :func:`roon.kernels.exact.to_int64` had to round (``tol > 0``) decides every
input with ``|s| > tol`` exactly, so its fixed-point counts are off only by the
*uncertain* inputs, ``|s| <= tol``. Rather than redo all ``2^n`` inputs on Python
integers (minutes and gigabytes at ``n = 50``), the compiled meet-in-the-middle face lists
the inputs of a slightly wider window ``|s| <= 3·tol + 1`` — float64 weights at fan-in 50
have a handful — and only those are summed exactly:

* counts: the fixed counts plus the uncertain inputs that are excited exactly;
* margin: an uncertain input has ``|s_exact| <= 2·tol`` (in fixed units) and one outside
  the window ``|s_exact| >= 2·tol + 2``, so the exact ``min |s|`` lies in the window.

Both equal what enumerating every input on exact integers gives, bit for bit.
"""

from __future__ import annotations

import numpy as np

from roon.kernels.exact import to_integers
from roon.kernels.mitm import Row

__all__ = ["NEAR_CAP", "exact_near", "exact_window"]

# Most window inputs listed (8 bytes each): beyond it the caller's exact path runs.
NEAR_CAP = 1 << 16


def exact_near(
    weights: np.ndarray,
    bias: float,
    row: Row,
    keep: np.ndarray,
    fire: int,
    chow: list[int],
) -> tuple[int, list[int], int, int] | None:
    """Exact counts over the inputs ``keep`` of a rounded row with uncertain inputs.

    Args:
        weights: ``[n]`` float weights (sorted positions), ``bias`` the bias.
        bias: the bias.
        row: the neuron's fixed-point row, all ``n`` inputs.
        keep: the inputs counted (the others have weight 0 or are irrelevant).
        fire: fixed-point fire count over ``keep`` (inputs with ``s > tol``).
        chow: fixed-point Chow parameters over ``keep``.

    Returns:
        ``(fire, chow, min |s| exact, Σ|w| + |b| exact)``, or None when the compiled face
        is missing or the window holds more than :data:`NEAR_CAP` inputs.
    """
    ints, b_exact = to_integers(weights, bias)
    return exact_window(ints, b_exact, row, keep, fire, chow)


def exact_window(
    ints: list[int],
    b_exact: int,
    row: Row,
    keep: np.ndarray,
    fire: int,
    chow: list[int],
) -> tuple[int, list[int], int, int] | None:
    """:func:`exact_near` on a row given as exact integers ``ints``, ``b_exact``.

    ``row`` is any fixed-point row of it whose every sum errs by at most ``row.tol``
    (in fixed units); :mod:`roon.kernels.box` rounds its exact rows this way.
    """
    from roon.kernels.cpu import cpu_missing, mitm_window_cpu

    if cpu_missing() is not None:
        return None
    w = np.ascontiguousarray(row.w[keep], dtype=np.int64)
    m, reach = len(w), 3 * row.tol + 1
    masks = np.zeros(NEAR_CAP, dtype=np.uint64)
    count = mitm_window_cpu(w, row.b, -reach, reach, masks)
    if count > NEAR_CAP:
        return None
    masks = masks[:count]
    bits = ((masks[:, None] >> np.arange(m, dtype=np.uint64)) & np.uint64(1)).astype(np.int64)
    fixed = bits @ w + row.b  # [count], within 2^61
    exact_w = np.empty(m, dtype=object)
    exact_w[:] = [ints[i] for i in keep.tolist()]
    exact = bits.astype(object) @ exact_w + b_exact if m else np.full(count, b_exact, dtype=object)
    gained = (np.abs(fixed) <= row.tol) & (exact > 0)  # uncertain, and excited exactly
    fire += int(np.count_nonzero(gained))
    chow = (np.asarray(chow, dtype=np.int64) + bits[gained].sum(axis=0)).tolist()
    closest = min(abs(int(v)) for v in exact)  # the window holds the uncertain inputs
    return fire, chow, closest, sum(abs(v) for v in ints) + abs(b_exact)
