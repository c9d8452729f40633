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
    """Drop hidden neurons that add nothing to the next layer (bit-exact).

    A neuron adds nothing when its outgoing weights are all zero, or when its incoming
    weights and bias are all zero and its activation maps 0 to 0 (ReLU, linear, tanh,
    SiLU, GELU, ELU): its output is then exactly 0 on every input. The second kind is
    what merging duplicates can leave (a neuron whose inputs were merged into a column
    that cancels to zero); it must go, because no rescaling can give its outgoing weights
    a canonical scale. Passes repeat until nothing changes, so a neuron whose only
    non-zero outgoing weights fed dropped neurons, or whose only non-zero inputs came
    from them, is dropped too.
    """
    s = Surgery(mlp)
    zero_at_zero = [bool(activate(act, np.zeros(1))[0] == 0.0) for act in s.activations[:-1]]
    changed = True
    while changed:
        changed = False
        for i in reversed(s.hidden_layers):
            if s.is_placeholder_only(i):
                continue
            silent = ~np.any(s.weights[i + 1] != 0, axis=0)
            if zero_at_zero[i]:
                silent |= ~np.any(s.rows(i) != 0, axis=1)
            if np.any(silent):
                s.remove(i, np.flatnonzero(silent))
                changed = True
    return s.to_mlp(), s.changes()


def constant(mlp: MLP, *, input_bounds: Any = None) -> tuple[MLP, dict[str, Any]]:
    """Drop hidden neurons that are constant on the input box, folding the constant into
    the next layer's bias. With no declared box, the box is every real input
    (:func:`~.bounds.resolve_input_bounds`).

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
        with np.errstate(invalid="ignore"):  # 0 · inf: a zero weight on an unbounded input
            fixed = np.where(w[pinned] != 0, w[pinned] * lo[None, :], 0.0)
        values[pinned] = activate(act, exact_row_sums(b[pinned], fixed))
        const = pinned.copy()
        if act == "relu":
            const |= zu + margin <= 0.0
            unsure = np.flatnonzero(~const & (zu - margin <= 0.0))
            exact = None
            if unsure.size:
                exact = exact_input_bounds(s.weights, s.biases, s.activations, i, *box)
            if exact is not None:
                for j in unsure:
                    upper = exact_upper(w[j], b[j], *exact)
                    if upper is not None and upper <= 0:
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
    ``Σ a_k · v_k``. For other activations only identical rows merge (``a = 1``).

    Which member is kept must not depend on how the network happens to be scaled, or
    two networks that differ by power-of-two rescalings of hidden neurons (which
    ``rescale`` undoes) would merge to different neurons whenever the members' ratio is
    not a power of two (relu(x) + relu(3x)). So each neuron is judged as ``rescale``
    would leave it: its row with the earlier layers' canonical power-of-two scales
    applied to its inputs (:func:`_rescale_shifts`, computed, not applied); the kept
    member is the one whose largest ``|[w, b]|`` there has the smallest binary mantissa.
    Members that tie on it are power-of-two multiples of each other, which give the same
    normal form; the one with the smallest peak is kept. Each column is an
    order-independent correctly rounded sum, so permuted networks merge to the same
    neuron, and the ``exact`` preset gives all of them one normal form. Candidates are
    bucketed by the row divided by ``|first non-zero|``: exact multiples give identical
    correctly rounded quotients.
    """
    s = Surgery(mlp)
    inputs = np.zeros(mlp.input_width, dtype=np.int64)  # canonical shifts of layer i's inputs
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
        mantissa, _ = np.frexp(_canonical_peaks(rows, inputs))  # scale-free, in [0.5, 1)
        for group in members.values():
            if len(group) < 2:
                continue
            keep = min(group, key=lambda k: (mantissa[k], peak[k], k))
            scale = {k: float(f / group[keep]) for k, f in group.items()}
            terms = np.stack([scale[k] * out[:, k] for k in sorted(group)], axis=1)
            columns[keep] = exact_row_sums(np.zeros(out.shape[0]), terms)
            groups[keep] = sorted(k for k in group if k != keep)
        if groups:
            s.merge_groups(i, groups, columns)
        inputs = _rescale_shifts(_canonical_peaks(s.rows(i), inputs))
    return s.to_mlp(), s.changes()


def _canonical_peaks(rows: np.ndarray, input_shifts: np.ndarray) -> np.ndarray:
    """``max|[w, b]|`` per row once the inputs carry their canonical scales.

    ``rescale`` divides neuron ``j`` of the layer before by ``2^input_shifts[j]`` and
    multiplies its outgoing weights (this layer's column ``j``) by the same power.
    """
    with np.errstate(over="ignore", under="ignore"):
        weights = np.ldexp(rows[:, :-1], input_shifts[None, :])
    return np.maximum(np.max(np.abs(weights), axis=1, initial=0.0), np.abs(rows[:, -1]))


def _rescale_shifts(peak: np.ndarray) -> np.ndarray:
    """The power of two ``rescale`` divides each neuron by: ``peak / 2^shift`` in ``[1, 2)``."""
    _, e = np.frexp(peak)
    return np.where(peak > 0, e - 1, 0).astype(np.int64)


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
        shift = _rescale_shifts(np.max(np.abs(s.rows(i)), axis=1))  # [N]
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
