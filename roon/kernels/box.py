"""Box-domain local signatures: a neuron judged on the vertices of its own input box.

The ``binary`` signature judges a neuron on ``{0,1}^n``: each input off or on. Real-range
networks (ACAS Xu's normalized inputs lie in about [-0.5, 0.7]) never see those points.
The ``box`` domain judges a neuron ``(w, b)`` whose inputs lie in ``[lo, hi]`` on the
corners ``x = lo + t·(hi - lo)``, ``t ∈ {0,1}^n``:

    w·x + b = Σ_i w_i·(hi_i - lo_i)·t_i + (b + w·lo),

so the box signature is the binary signature of the *transformed* neuron
``w'_i = w_i·(hi_i - lo_i)``, ``b' = b + w·lo`` (:func:`box_rows`). The model's input box
comes from the caller; every later layer's box is propagated by interval arithmetic
(:func:`propagate_box`): a ReLU output lies in ``[0, max(z_hi, 0)]`` (so "off" is the
lower corner, as in the binary domain), a linear one in ``[z_lo, z_hi]``, others in the
activation's range over ``[z_lo, z_hi]``. The bounds are computed exactly (dyadic
rationals) and rounded outward to float64, so every machine gets the same boxes.

Exactness: ``w'`` and ``b'`` are exact dyadic rationals but rarely float64 numbers
(``w·(hi - lo)`` needs up to 106 bits). They are rounded to the nearest float64 with the
exact total rounding error ``E = Σ|Δw'| + |Δb'|`` per row; a vertex's pre-activation moves
by at most ``E``. The rounded rows go through :func:`roon.kernels.signatures` (domain
``binary``); a row is *certified* when ``E = 0`` or its exact margin over the vertices
(``min |w'·t + b'|``) exceeds ``E`` — then no vertex changes side. Any other row that
the exact policy counted exactly is recounted on the exact integers of ``w'`` and ``b'``
by meet-in-the-middle (compiled, on a fixed-point rounding of them plus the inputs near
the threshold summed exactly, up to :data:`~roon.kernels.mitm.MITM_MAX` inputs; on Python
integers up to 48 without the compiled face); beyond that it is flagged ``exact = false``.
A row the policy sampled (``exact = "never"``, or over ``exact_budget``) stays sampled.

Hash: a box signature's hash is taken over ``box|`` and the binary material, so it never
equals a binary one. A box truth table states what a neuron does at the corners of *its*
box (an input at its lower or upper end), which is a different statement from its
behaviour on ``{0,1}``, even when the tables coincide; compare across domains by ``chow``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from roon.errors import InvalidArgumentError
from roon.kernels.dyadic import align, to_dyadic, to_float
from roon.kernels.mitm import MITM_MAX, Row, chow_mitm, subset_sums
from roon.kernels.result import NeuronCounts, key_binary_chow
from roon.kernels.signatures import TABLE_LIMIT, SignatureBatch, signatures
from roon.mlp import MLP, activate
from roon.progress import ProgressCallback

__all__ = ["BoxRows", "box_rows", "propagate_box", "layer_boxes", "box_signatures"]

# Widest row recounted on Python integers when the compiled face cannot: the object-array
# meet-in-the-middle needs 2^24 Python ints a half (gigabytes, minutes) at 48 inputs.
_PYTHON_RECOUNT_MAX = 48
_SLACK = 2.0**-40  # relative slack for float roundings in the certificate
_ETA = float(np.finfo(np.float64).smallest_subnormal)
# Global minima (value, argmin) of the two non-monotone activations, rounded outward.
_DIPS = {"silu": (-0.27846455, -1.2784645), "gelu": (-0.16997121, -0.75179760)}


@dataclasses.dataclass(frozen=True)
class BoxRows:
    """Neurons transformed to their box corners (see the module docstring).

    Attributes:
        weights: ``[N, n]`` float64 nearest to the exact ``w'``.
        bias: ``[N]`` float64 nearest to the exact ``b'``.
        error: ``[N]`` float64, an upper bound of the exact ``Σ|Δw'| + |Δb'|`` (0: exact).
        exact_weights: ``[N, n]`` object array of Python ints, ``w'`` at ``2^exponent``.
        exact_bias: ``[N]`` object array, ``b'`` at the same scale.
        exponent: the common power of two.
    """

    weights: np.ndarray
    bias: np.ndarray
    error: np.ndarray
    exact_weights: np.ndarray
    exact_bias: np.ndarray
    exponent: int


def _box(lo: Any, hi: Any, n: int) -> tuple[tuple[np.ndarray, int], tuple[np.ndarray, int]]:
    lo_a, hi_a = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    if lo_a.shape != (n,) or hi_a.shape != (n,):
        raise InvalidArgumentError(
            f"the box needs {n} lower and upper bounds; got shapes {lo_a.shape} and {hi_a.shape}"
        )
    if np.any(lo_a > hi_a):
        bad = int(np.argmax(lo_a > hi_a))
        raise InvalidArgumentError(
            f"input {bad} has lower bound {lo_a[bad]} above upper bound {hi_a[bad]}"
        )
    return to_dyadic(lo_a), to_dyadic(hi_a)


def box_rows(weights: Any, bias: Any, lo: Any, hi: Any) -> BoxRows:
    """Transform neurons ``(w, b)`` with inputs in ``[lo, hi]`` to ``w' = w·(hi - lo)``,
    ``b' = b + w·lo``, exactly, then rounded to float64 with the exact rounding error.

    Example:
        >>> rows = box_rows([[2.0, -1.0]], [0.5], [0.0, -1.0], [0.5, 1.0])
        >>> rows.weights.tolist(), rows.bias.tolist(), rows.error.tolist()
        ([[1.0, -2.0]], [1.5], [0.0])
    """
    w = np.asarray(weights, dtype=np.float64)
    b = np.asarray(bias, dtype=np.float64)
    if w.ndim != 2 or b.shape != (w.shape[0],):
        raise InvalidArgumentError(
            f"weights must be [N, n] and bias [N]; got {w.shape} and {b.shape}"
        )
    (lm, le), (hm, he) = _box(lo, hi, w.shape[1])
    lm, hm, xe = align((lm, le), (hm, he))
    wm, we = to_dyadic(w)
    bm, be = to_dyadic(b)
    scaled_w = wm * (hm - lm)[None, :]  # [N, n] at 2^(we + xe)
    shift = wm @ lm  # [N] at 2^(we + xe)
    shifted, bias_m, e = align((shift, we + xe), (bm, be))
    new_b = shifted + bias_m
    new_w, new_b, e = align((scaled_w, we + xe), (new_b, e))
    wf = to_float(new_w, e)
    bf = to_float(new_b, e)
    # exact rounding error, per row, on a common scale with the rounded floats
    rm, re_ = to_dyadic(np.concatenate([wf, bf[:, None]], axis=1))
    exact = np.concatenate([new_w, new_b[:, None]], axis=1)
    rm, exact_m, de = align((rm, re_), (exact, e))
    err = np.abs(rm - exact_m).sum(axis=1)
    return BoxRows(
        weights=wf,
        bias=bf,
        error=to_float(err, de, mode="up"),
        exact_weights=new_w,
        exact_bias=new_b,
        exponent=e,
    )


def propagate_box(
    weight: Any, bias: Any, activation: str, lo: Any, hi: Any
) -> tuple[np.ndarray, np.ndarray]:
    """The box of a layer's outputs from the box of its inputs, rounded outward to float64.

    ReLU: ``[0, max(z_hi, 0)]``; linear: ``[z_lo, z_hi]``; other activations: their range
    over ``[z_lo, z_hi]`` (the interval bounds ``z_lo``, ``z_hi`` are exact).
    """
    w = np.asarray(weight, dtype=np.float64)
    b = np.asarray(bias, dtype=np.float64)
    (lm, le), (hm, he) = _box(lo, hi, w.shape[1])
    lm, hm, xe = align((lm, le), (hm, he))
    wm, we = to_dyadic(w)
    pos = np.where(wm > 0, wm, 0)
    neg = np.where(wm < 0, wm, 0)
    bm, be = to_dyadic(b)
    upper, bu, ue = align((pos @ hm + neg @ lm, we + xe), (bm, be))
    lower, bl, _ = align((pos @ lm + neg @ hm, we + xe), (bm, be))
    upper, lower = upper + bu, lower + bl
    if activation == "relu":
        return np.zeros(w.shape[0]), to_float(np.where(upper > 0, upper, 0), ue, mode="up")
    zl, zu = to_float(lower, ue, mode="down"), to_float(upper, ue, mode="up")
    if activation == "linear":
        return zl, zu
    a, c = activate(activation, zl), activate(activation, zu)
    out_lo, out_hi = np.minimum(a, c), np.maximum(a, c)
    if activation in _DIPS:
        value, where = _DIPS[activation]
        out_lo = np.where((zl < where) & (where < zu), value, out_lo)
    # library activations are accurate to a few ulps; widen far beyond that
    return (
        out_lo - (np.abs(out_lo) * _SLACK + _ETA),
        out_hi + (np.abs(out_hi) * _SLACK + _ETA),
    )


def layer_boxes(mlp: MLP, lo: Any, hi: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """The input box of every layer, from the model's input box ``[lo, hi]``."""
    lo_a = np.broadcast_to(np.asarray(lo, dtype=np.float64), (mlp.input_width,)).copy()
    hi_a = np.broadcast_to(np.asarray(hi, dtype=np.float64), (mlp.input_width,)).copy()
    boxes = [(lo_a, hi_a)]
    for layer in mlp.layers[:-1]:
        boxes.append(propagate_box(layer.weight, layer.bias, layer.activation, *boxes[-1]))
    return boxes


def box_signatures(
    weights: Any,
    bias: Any,
    lo: Any,
    hi: Any,
    *,
    backend: str = "auto",
    progress: ProgressCallback | None = None,
    **options: Any,
) -> SignatureBatch:
    """Exact box-domain signatures of neurons ``(w, b)`` whose inputs lie in ``[lo, hi]``.

    The binary signatures of :func:`box_rows`' rows, certified or recounted exactly (see
    the module docstring), with ``domain = "box"`` and a hash distinct from binary ones.
    ``options`` go to :func:`roon.kernels.signatures` (limits, samples, seed).

    Example:
        >>> sig = box_signatures([[1.0, 1.0]], [-1.0], [0.0, 0.0], [2.0, 2.0])
        >>> sig.truth_table, sig.chow  # on the corners {0,2}^2: OR, not AND
        (['e'], [(3, 2, 2)])
    """
    rows = box_rows(weights, bias, lo, hi)
    batch = signatures(
        rows.weights, rows.bias, domain="binary", backend=backend, progress=progress, **options
    )
    scale = np.abs(rows.weights).sum(axis=1) + np.abs(rows.bias)
    out = []
    for i, counts in enumerate(batch):
        certified = rows.error[i] == 0 or (
            counts.exact
            and counts.margin is not None
            and counts.margin * scale[i] * (1.0 - _SLACK) > rows.error[i] * (1.0 + _SLACK)
        )
        if not certified and counts.exact:  # a row the exact policy sampled stays sampled
            counts = _recount(rows, i, counts)
        out.append(dataclasses.replace(counts, domain="box", key=f"box|{counts.key}"))
    return SignatureBatch(tuple(out), fallbacks=batch.fallbacks, exact_seconds=batch.exact_seconds)


def _recount(rows: BoxRows, i: int, rounded: NeuronCounts) -> NeuronCounts:
    """Exact counts of row ``i`` from its exact integers, or the rounded counts flagged
    inexact when no exact method reaches the row."""
    n = rows.weights.shape[1]
    ints = sorted(int(v) for v in rows.exact_weights[i])  # sorted positions, ascending
    b = int(rows.exact_bias[i])
    total = sum(abs(v) for v in ints) + abs(b)
    counted = _count_compiled(ints, b) if n <= MITM_MAX else None
    if counted is None and n <= _PYTHON_RECOUNT_MAX:
        w = np.empty(n, dtype=object)
        w[:] = ints
        counts = chow_mitm(Row(w, b, 0, total))
        near = [
            v for v in (counts.high, None if counts.low is None else -counts.low) if v is not None
        ]
        counted = counts.fire, list(counts.chow), min(near)
    if counted is None:
        return dataclasses.replace(rounded, exact=False)
    fire, chow, closest = counted
    vector = (fire, *chow)
    table = None
    if n <= TABLE_LIMIT["binary"]:
        w = np.empty(n, dtype=object)
        w[:] = ints
        excited = subset_sums(w) + b > 0
        bits = sum(1 << m for m, on in enumerate(excited.tolist()) if on)
        table = format(bits, "x")
    return NeuronCounts(
        domain="binary",
        fan_in=n,
        exact=True,
        method="mitm",
        fire_count=fire,
        chow=vector,
        fire_fraction=fire / (1 << n),
        relevant=sum(1 for c in chow if 2 * c != fire),
        margin=closest / total if total else 0.0,
        truth_table=table,
        key=key_binary_chow(n, vector),
    )


def _count_compiled(ints: list[int], b: int) -> tuple[int, list[int], int] | None:
    """``(fire, chow, min |s|)`` of an exact integer row by the compiled meet-in-the-middle.

    The row is rounded to int64 fixed point (``Σ|w| + |b|`` below ``2^(SUM_BITS - 2)``,
    each term to the nearest unit, so a sum errs by at most ``(n + 1) / 2`` units and
    ``tol = n + 1`` covers it); inputs within ``tol`` of the threshold are then summed
    exactly (:func:`roon.kernels.near.exact_window`). ``min |s|`` is on the exact scale
    where the row needed no rounding or had uncertain inputs, else the fixed-point value
    scaled back (its relative error below ``tol / min |s|``, far under float precision).
    None when the compiled face is missing or the window is too full.
    """
    from roon.kernels.cpu import cpu_missing

    if cpu_missing() is not None:
        return None
    from roon.kernels.cpu import mitm_cpu
    from roon.kernels.exact import SUM_BITS
    from roon.kernels.mitm import NO_HIGH, NO_LOW
    from roon.kernels.near import exact_window

    n = len(ints)
    total = sum(abs(v) for v in ints) + abs(b)
    shift = max(0, total.bit_length() - (SUM_BITS - 2))
    if shift:
        half = 1 << (shift - 1)
        fixed = [(v + half) >> shift for v in ints]
        row = Row(np.array(fixed, dtype=np.int64), (b + half) >> shift, n + 1, 0)
    else:
        row = Row(np.array(ints, dtype=np.int64), b, 0, total)
    got = mitm_cpu(row.w[None, :], np.array([row.b]), np.array([row.tol]))
    fire, chow = int(got.fire[0]), got.chow[0].tolist()
    if got.uncertain[0]:
        near = exact_window(ints, b, row, np.arange(n), fire, chow)
        return None if near is None else near[:3]
    high, low = int(got.high[0]), int(got.low[0])
    closest = min(high, NO_HIGH if low == NO_LOW else -low)
    return fire, chow, closest << shift
