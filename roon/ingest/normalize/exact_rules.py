"""Exact normalizer rules: the function is preserved on the whole input domain.

Each rule takes an :class:`MLP` and returns ``(child, changes)``; the pipeline wraps it
into a step record. ``zero-out``, ``rescale`` and the ReLU part of ``constant`` are
bit-exact; folding a constant into a bias and merging duplicates add one rounding per
touched value (float64 arithmetic, rounded once to the model's dtype).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from roon.errors import UnsupportedArchitectureError
from roon.ingest.normalize.bounds import (
    activation_bounds,
    exact_input_bounds,
    exact_upper,
    preactivation_bounds,
    resolve_input_bounds,
)
from roon.ingest.normalize.surgery import Surgery, exact_row_sums
from roon.mlp import HOMOGENEOUS_ACTIVATIONS, MLP, activate

__all__ = ["zero_out", "constant", "exact_duplicates", "rescale", "require_homogeneous"]


def zero_out(mlp: MLP) -> tuple[MLP, dict[str, Any]]:
    """Drop hidden neurons whose outgoing weights are all zero (bit-exact).

    Layers are visited from the output side, so a neuron whose only non-zero outgoing
    weights fed neurons dropped in the same step is dropped too.
    """
    s = Surgery(mlp)
    for i in reversed(s.hidden_layers):
        if s.is_placeholder_only(i):
            continue
        silent = np.flatnonzero(~np.any(s.weights[i + 1] != 0, axis=0))
        s.remove(i, silent)
    return s.to_mlp(), s.changes()


def constant(mlp: MLP, *, input_bounds: Any = None) -> tuple[MLP, dict[str, Any]]:
    """Drop hidden neurons that are constant on the input box, folding the constant into
    the next layer's bias.

    Constant means: all incoming weights from non-degenerate inputs are zero (value
    ``act(b + w·lo)``), or a ReLU whose pre-activation can never exceed 0 (value 0,
    bit-exact). Bounds come from interval propagation, see :mod:`.bounds`.
    """
    box = resolve_input_bounds(mlp, input_bounds)
    lo, hi = box  # bounds of the current layer's inputs
    s = Surgery(mlp)
    for i in s.hidden_layers:
        act = s.activations[i]
        w = s.weights[i].astype(np.float64)
        b = s.biases[i].astype(np.float64)
        zl, zu, margin = preactivation_bounds(w, b, lo, hi)
        # every input with a non-zero weight is pinned (lo == hi): the neuron is constant
        pinned = ~np.any((w != 0) & (hi > lo)[None, :], axis=1)
        values = np.zeros(w.shape[0])
        values[pinned] = activate(act, exact_row_sums(b[pinned], w[pinned] * lo[None, :]))
        const = pinned.copy()
        if act == "relu":
            const |= zu + margin <= 0.0
            unsure = np.flatnonzero(~const & (zu - margin <= 0.0))
            exact = None
            if unsure.size:
                exact = exact_input_bounds(s.weights, s.biases, s.activations, i, *box)
            if exact is not None:
                for j in unsure:
                    if exact_upper(w[j], b[j], *exact) <= 0:
                        const[j] = True
            values[const & ~pinned] = 0.0
        if np.any(const) and not s.is_placeholder_only(i):
            idx = np.flatnonzero(const)
            s.remove(i, idx, values[idx])
        zl, zu, margin = preactivation_bounds(s.weights[i], s.biases[i], lo, hi)
        lo, hi = activation_bounds(act, zl - margin, zu + margin)
    return s.to_mlp(), s.changes()


def _positive_multiple(x: np.ndarray, y: np.ndarray, exact_products: bool) -> Fraction | None:
    """``a > 0`` with ``x == a · y`` exactly (rows ``[w, b]`` in float64), else None.

    Tested by cross-multiplication against the first non-zero entry ``p``:
    ``x[q] · y[p] == x[p] · y[q]`` for every ``q``. Products of float32 values are exact
    in float64 (``exact_products``); otherwise rationals decide.
    """
    support = x != 0
    if not np.array_equal(support, y != 0) or not np.any(support):
        return None
    if not np.array_equal(np.sign(x), np.sign(y)):
        return None
    p = int(np.argmax(support))
    if exact_products:
        if not np.array_equal(x * y[p], x[p] * y):
            return None
    else:
        xp, yp = Fraction(float(x[p])), Fraction(float(y[p]))
        for xq, yq in zip(x[support].tolist(), y[support].tolist(), strict=True):
            if Fraction(xq) * yp != xp * Fraction(yq):
                return None
    return Fraction(float(x[p])) / Fraction(float(y[p]))


def exact_duplicates(mlp: MLP) -> tuple[MLP, dict[str, Any]]:
    """Merge hidden neurons whose ``[w, b]`` rows are positive multiples of each other.

    For a positively homogeneous activation ``act(a·z) = a·act(z)``, so a group of
    neurons with rows ``a_k ·`` row ``r`` becomes neuron ``r`` with outgoing column
    ``Σ a_k · v_k``. For other activations only identical rows merge (``a = 1``). The
    kept neuron is the one with the smallest ``max|[w, b]|`` (members that tie on it have
    identical rows), so every ``a_k >= 1`` (integer multiples of a hand-built neuron stay
    exact), and each column is an order-independent correctly rounded sum, so permuted
    networks merge to the same neuron. Candidates are bucketed by the row divided by
    ``|first non-zero|``: exact multiples give identical correctly rounded quotients.
    """
    s = Surgery(mlp)
    for i in s.hidden_layers:
        exact_products = s.weights[i].dtype == np.float32
        homogeneous = s.activations[i] in HOMOGENEOUS_ACTIVATIONS
        rows = s.rows(i)  # [N, n+1]
        buckets: dict[bytes, list[int]] = {}
        members: dict[int, dict[int, Fraction]] = {}  # first member -> {member: factor}
        for j, row in enumerate(rows):
            nonzero = np.flatnonzero(row)
            if homogeneous and nonzero.size:
                key = (row / abs(row[nonzero[0]]) + 0.0).tobytes()
            else:
                key = (row + 0.0).tobytes()
            for first in buckets.get(key, []):
                if not nonzero.size or not homogeneous:
                    a = Fraction(1) if np.array_equal(row, rows[first]) else None
                else:
                    a = _positive_multiple(row, rows[first], exact_products)
                if a is not None:
                    members[first][j] = a
                    break
            else:
                buckets.setdefault(key, []).append(j)
                members[j] = {j: Fraction(1)}
        groups: dict[int, list[int]] = {}
        columns: dict[int, np.ndarray] = {}
        out = s.out_columns(i)  # [next, N]
        peak = np.max(np.abs(rows), axis=1)
        for group in members.values():
            if len(group) < 2:
                continue
            keep = min(group, key=lambda k: (peak[k], k))  # factors a_k >= 1
            scale = {k: float(f / group[keep]) for k, f in group.items()}
            terms = np.stack([scale[k] * out[:, k] for k in sorted(group)], axis=1)
            columns[keep] = exact_row_sums(np.zeros(out.shape[0]), terms)
            groups[keep] = sorted(k for k in group if k != keep)
        if groups:
            s.merge_groups(i, groups, columns)
    return s.to_mlp(), s.changes()


def require_homogeneous(mlp: MLP, rule: str) -> None:
    """Raise unless every hidden activation is positively homogeneous."""
    for i, layer in enumerate(mlp.layers[:-1]):
        if layer.activation not in HOMOGENEOUS_ACTIVATIONS:
            ok = ", ".join(sorted(HOMOGENEOUS_ACTIVATIONS))
            raise UnsupportedArchitectureError(
                f"rule {rule!r} needs positively homogeneous hidden activations ({ok}); "
                f"layer {i} uses {layer.activation}: drop {rule!r} from the rules"
            )


def rescale(mlp: MLP) -> tuple[MLP, dict[str, Any]]:
    """Scale each hidden neuron's ``[w, b]`` by the power of two that puts ``max|[w, b]|``
    in ``[1, 2)``, and its outgoing column by the inverse (bit-exact).

    Power-of-two factors commute with float rounding, so ``act`` of the scaled neuron is
    exactly the scaled output for ReLU and linear. A neuron whose scaled values would
    overflow or lose bits to underflow keeps its scale (checked by scaling back).

    Raises:
        UnsupportedArchitectureError: a hidden activation is not ReLU or linear.
    """
    require_homogeneous(mlp, "rescale")
    s = Surgery(mlp)
    rescaled: dict[str, int] = {}
    for i in s.hidden_layers:
        peak = np.max(np.abs(s.rows(i)), axis=1)
        _, e = np.frexp(peak)  # peak = f · 2^e, 0.5 <= f < 1, so 2^(e-1) <= peak < 2^e
        shift = np.where(peak > 0, e - 1, 0).astype(np.int64)  # [N]
        w, b, out = s.weights[i], s.biases[i], s.weights[i + 1]
        with np.errstate(over="ignore", under="ignore"):
            w2 = np.ldexp(w, -shift[:, None]).astype(w.dtype)
            b2 = np.ldexp(b, -shift).astype(b.dtype)
            out2 = np.ldexp(out, shift[None, :]).astype(out.dtype)
            ok = (
                np.all(np.ldexp(w2, shift[:, None]) == w, axis=1)
                & (np.ldexp(b2, shift) == b)
                & np.all(np.isfinite(out2) & (np.ldexp(out2, -shift[None, :]) == out), axis=0)
            )
        shift = np.where(ok, shift, 0)
        s.weights[i] = np.where(ok[:, None], w2, w)
        s.biases[i] = np.where(ok, b2, b)
        s.weights[i + 1] = np.where(ok[None, :], out2, out)
        if np.any(shift != 0):
            rescaled[str(i)] = int(np.count_nonzero(shift))
    return s.to_mlp(), s.changes(rescaled=rescaled)
