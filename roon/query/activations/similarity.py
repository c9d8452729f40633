"""Similarity of neurons and layers: Pearson matrices, one-to-one matching, linear CKA.

Linear CKA (Kornblith et al. 2019) compares two layers' representations of the same
samples: with column-centred activations ``X [n, p]`` and ``Y [n, q]``,

    CKA(X, Y) = ‖XᵀY‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F),

1 for representations equal up to an orthogonal transform and an isotropic scaling, near
0 for unrelated ones. Only the centred cross-products enter, so it is computed from the
streaming sums of a capture. The debiased variant replaces each ``‖XᵀY‖²_F`` by the
unbiased HSIC estimator (Song et al. 2012), whose feature-space form

    ‖XᵀY‖²_F - n/(n-2) Σ_i |x_i|²|y_i|² + ‖X‖²_F ‖Y‖²_F / ((n-1)(n-2))

needs ``Σ_i |x_i|²|y_i|²`` as well, which the capture also streams. It removes the
upward bias of CKA on small samples of wide layers (two unrelated random layers score
near 0 instead of near ``p/n``) and can be slightly negative.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from roon.errors import InvalidArgumentError

__all__ = ["pearson", "match_neurons", "linear_cka", "cka_from_moments"]


def pearson(comoment: np.ndarray, var_a: np.ndarray, var_b: np.ndarray) -> np.ndarray:
    """Correlation matrix from centred cross-products and the two sides' ``Σ(x-μ)²``.

    Callers pass live neurons only (every variance > 0), so no NaN can appear; values
    are clipped to [-1, 1] against rounding.
    """
    scale = np.outer(np.sqrt(var_a), np.sqrt(var_b))
    return np.clip(comoment / scale, -1.0, 1.0)


def match_neurons(similarity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The one-to-one matching of rows to columns with the largest total similarity.

    ``scipy.optimize.linear_sum_assignment`` (Hungarian method, exact); a rectangular
    matrix matches every neuron of the smaller side. Signed similarity is maximised: a
    neuron that fires when another is silent is not the same neuron.

    Returns:
        ``(rows, cols)``: matched index pairs, rows ascending.
    """
    from scipy.optimize import linear_sum_assignment

    if similarity.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    rows, cols = linear_sum_assignment(similarity, maximize=True)
    return rows.astype(np.int64), cols.astype(np.int64)


def _hsic_terms(xty2: float, norms: float, sx: float, sy: float, n: int) -> float:
    """The debiased estimate of ``‖XᵀY‖²_F`` from its parts (see the module docstring)."""
    return xty2 - n / (n - 2.0) * norms + sx * sy / ((n - 1.0) * (n - 2.0))


def _cka(xy: float, xx: float, yy: float) -> float:
    if xx <= 0.0 or yy <= 0.0:
        return 0.0  # a constant layer shares no variation with anything
    return float(xy / np.sqrt(xx * yy))


def linear_cka(x: Any, y: Any, debiased: bool = False) -> float:
    """Linear CKA of two activation matrices over the same samples (``[n, p]``, ``[n, q]``).

    Raises:
        InvalidArgumentError: not 2-D, different sample counts, fewer than 2 samples
            (4 for ``debiased``).
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise InvalidArgumentError(
            f"activations of shapes {x.shape} and {y.shape}; expected [n, p] and [n, q]"
        )
    n = x.shape[0]
    if n < (4 if debiased else 2):
        raise InvalidArgumentError(f"{n} samples; CKA needs at least {4 if debiased else 2}")
    x, y = x - x.mean(axis=0), y - y.mean(axis=0)
    xy = float(np.linalg.norm(x.T @ y) ** 2)
    xx = float(np.linalg.norm(x.T @ x) ** 2)
    yy = float(np.linalg.norm(y.T @ y) ** 2)
    if debiased:
        qx, qy = np.einsum("ij,ij->i", x, x), np.einsum("ij,ij->i", y, y)
        sx, sy = float(qx.sum()), float(qy.sum())
        xy = _hsic_terms(xy, float(qx @ qy), sx, sy, n)
        xx = _hsic_terms(xx, float(qx @ qx), sx, sx, n)
        yy = _hsic_terms(yy, float(qy @ qy), sy, sy, n)
    return _cka(xy, xx, yy)


def cka_from_moments(moments: Any, a: int, b: int, debiased: bool = False) -> float:
    """Linear CKA of blocks ``a`` and ``b`` of a :class:`~.moments.Moments` (no raw data)."""
    n = moments.n
    if n < (4 if debiased else 2):
        raise InvalidArgumentError(f"{n} samples; CKA needs at least {4 if debiased else 2}")
    caa, cbb, cab = moments.comoment(a, a), moments.comoment(b, b), moments.comoment(a, b)
    xy, xx, yy = (float(np.sum(c * c)) for c in (cab, caa, cbb))
    if debiased:
        sx, sy = float(np.trace(caa)), float(np.trace(cbb))
        xy = _hsic_terms(xy, moments.centred_norm_products(a, b), sx, sy, n)
        xx = _hsic_terms(xx, moments.centred_norm_products(a, a), sx, sx, n)
        yy = _hsic_terms(yy, moments.centred_norm_products(b, b), sy, sy, n)
    return _cka(xy, xx, yy)
