"""Exact truth tables of small neurons, and signature keys read off a table.

The matcher works with small fan-ins (a pattern neuron, a target neuron restricted to a
few of its inputs) and needs three things the batch kernel does not give it:

* the exact *sign* of every pre-activation (−1, 0, +1), over inputs in **positional**
  order (input ``i`` is digit ``i`` of the point index, not a sorted position), because
  a pattern's exact ties are don't-cares and the positional check needs positions;
* the signature key of an arbitrary truth table — a completion of a pattern neuron's
  ties, which has no weights of its own;
* all of it for many rows at once, without per-row Python work.

:func:`table_keys` reproduces the key :func:`roon.kernels.signatures` hashes, read off
the table: for ``binary`` the sorted Chow vector; for ``signed`` the table over the
relevant inputs ordered by their signed Chow parameter ``c_i = Σ_{f(x)=1} x_i``. For a
threshold function that order is the ascending weight order (``w_i > w_j`` implies
``c_i >= c_j``, with equality only for symmetric inputs, which any order treats alike),
so the keys agree with the kernel's (a test checks). A table that is no threshold
function gets a key no threshold function has (Chow's theorem for ``binary``; for
``signed`` the key holds the whole table), so looking its hash up never finds a false
match.

Decisions are exact: each row becomes int64 fixed point (:func:`roon.kernels.exact.to_int64`);
rows rounded to fit are redone on Python integers wherever a sum lies within the
rounding tolerance.
"""

from __future__ import annotations

from itertools import product

import numpy as np

from roon.errors import InvalidArgumentError
from roon.kernels.exact import to_int64, to_integers
from roon.kernels.result import DOMAINS, key_binary_chow, key_signed_table, signature_hash

__all__ = [
    "MAX_TABLE_FAN_IN",
    "points",
    "preactivation_signs",
    "table_keys",
    "table_hashes",
    "unique_table_hashes",
]

# Largest fan-in tabulated: 2^16 binary or 3^10 signed points per row (the arrays are
# [rows, points] int8, so 64 KiB per row at most).
MAX_TABLE_FAN_IN = {"binary": 16, "signed": 10}
_DIGITS = {"binary": (0, 1), "signed": (-1, 0, 1)}


def _check(domain: str, k: int) -> None:
    if domain not in DOMAINS:
        raise InvalidArgumentError(f"unknown domain {domain!r}; choose one of {', '.join(DOMAINS)}")
    if not 0 <= k <= MAX_TABLE_FAN_IN[domain]:
        raise InvalidArgumentError(
            f"fan-in {k} is beyond the {domain} table limit {MAX_TABLE_FAN_IN[domain]}"
        )


def points(domain: str, k: int) -> np.ndarray:
    """``[|D|^k, k]`` int64: every input of the domain, point ``m`` has digit ``i`` of ``m``
    (base 2, or base 3 with digits 0, 1, 2 meaning −1, 0, +1) as input ``i``."""
    _check(domain, k)
    digits = _DIGITS[domain]
    if k == 0:
        return np.zeros((1, 0), dtype=np.int64)
    # itertools.product varies the last factor fastest; reversed, input 0 varies fastest
    grid = np.array(list(product(digits, repeat=k)), dtype=np.int64)
    return np.ascontiguousarray(grid[:, ::-1])


def preactivation_signs(
    weights: np.ndarray, bias: np.ndarray, domain: str
) -> tuple[np.ndarray, np.ndarray]:
    """Exact signs of ``w·x + b`` for every row and every point of the domain.

    Args:
        weights: ``[N, k]`` floats, inputs in positional order.
        bias: ``[N]`` floats.
        domain: ``binary`` or ``signed``.

    Returns:
        ``(signs, margin)``: ``[N, |D|^k]`` int8 of −1, 0, +1 (point order as in
        :func:`points`) and ``[N]`` float64 ``min_x |w·x+b| / (Σ|w| + |b|)`` (0 for an
        exact tie, 0 for an all-zero row), as in the signatures table.
    """
    w = np.asarray(weights, dtype=np.float64)
    b = np.asarray(bias, dtype=np.float64)
    if w.ndim != 2 or b.shape != (w.shape[0],):
        raise InvalidArgumentError(f"weights must be [N, k] and bias [N]; got {w.shape}, {b.shape}")
    if not (np.isfinite(w).all() and np.isfinite(b).all()):
        raise InvalidArgumentError("weights and biases must be finite")
    n_rows, k = w.shape
    x = points(domain, k)  # [P, k]
    if n_rows == 0:
        return np.zeros((0, x.shape[0]), dtype=np.int8), np.zeros(0)
    rows = to_int64(w, b)
    # |Σ w x| <= Σ|w| <= 2^61: the int64 products and sums cannot overflow
    sums = rows.weights @ x.T + rows.bias[:, None]  # [N, P]
    tol = rows.tol[:, None]
    signs = np.where(sums > tol, 1, np.where(sums < -tol, -1, 0)).astype(np.int8)
    scale = (np.abs(rows.weights).sum(axis=1) + np.abs(rows.bias)).astype(np.float64)
    closest = np.abs(sums).min(axis=1).astype(np.float64)
    margin = np.divide(closest, scale, out=np.zeros(n_rows), where=scale > 0)
    unsure = (rows.tol > 0) & (np.abs(sums) <= tol).any(axis=1)
    for r in np.flatnonzero(unsure).tolist():
        ints, bint = to_integers(w[r], float(b[r]))
        exact = [sum(a * int(v) for a, v in zip(ints, p, strict=True)) + bint for p in x]
        signs[r] = [(e > 0) - (e < 0) for e in exact]
        total = sum(abs(a) for a in ints) + abs(bint)
        margin[r] = min(abs(e) for e in exact) / total if total else 0.0
    return signs, margin


def table_keys(domain: str, k: int, tables: np.ndarray) -> list[str]:
    """Signature keys of truth tables (see the module docstring for the key).

    Args:
        domain: ``binary`` or ``signed``.
        k: fan-in.
        tables: ``[N, |D|^k]`` bool, point order as in :func:`points`.

    Returns:
        One key per row, the material :func:`roon.kernels.result.signature_hash` takes.
    """
    _check(domain, k)
    t = np.asarray(tables, dtype=bool)
    x = points(domain, k)
    if t.ndim != 2 or t.shape[1] != x.shape[0]:
        raise InvalidArgumentError(f"tables must be [N, {x.shape[0]}]; got shape {t.shape}")
    fire = t.sum(axis=1).tolist()
    per_input = (t.astype(np.int64) @ x).tolist()  # binary N_i; signed c_i = Σ_{f=1} x_i
    if domain == "binary":
        return [key_binary_chow(k, (f, *c)) for f, c in zip(fire, per_input, strict=True)]
    # signed: the table over relevant inputs (c_i != 0) in ascending c_i order, the
    # irrelevant ones held at 0, indexed by Σ_r digit(rel[r]) · 3^r
    keys = []
    cube = (x + 1).T  # [k, P] digits 0, 1, 2
    for row, c in zip(t, per_input, strict=True):
        relevant = sorted((ci, i) for i, ci in enumerate(c) if ci != 0)
        order = [i for _, i in relevant]
        irrelevant = [i for i in range(k) if c[i] == 0]
        keep = np.all(cube[irrelevant] == 1, axis=0) if irrelevant else np.ones(len(row), bool)
        index = np.zeros(len(row), dtype=np.int64)
        for r, i in enumerate(order):
            index += cube[i] * 3**r
        value = sum(1 << int(m) for m in index[keep & row])
        k_neg = sum(1 for ci, _ in relevant if ci < 0)
        keys.append(key_signed_table(k, len(order), k_neg, format(value, "x")))
    return keys


def table_hashes(domain: str, k: int, tables: np.ndarray) -> list[str]:
    """The 128-bit signature hashes of truth tables (:func:`table_keys`, hashed)."""
    return [signature_hash(key) for key in table_keys(domain, k, tables)]


def unique_table_hashes(domain: str, k: int, tables: np.ndarray) -> list[str]:
    """:func:`table_hashes`, computing each distinct table's hash once (rows repeat a lot)."""
    t = np.asarray(tables, dtype=bool)
    if t.shape[0] == 0:
        return []
    packed = np.packbits(t, axis=1)
    uniq, inverse = np.unique(packed, axis=0, return_inverse=True)
    width = t.shape[1]
    hashes = table_hashes(domain, k, np.unpackbits(uniq, axis=1)[:, :width].astype(bool))
    return [hashes[i] for i in np.asarray(inverse).ravel().tolist()]
