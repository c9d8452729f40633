"""Approximate signatures from seeded samples, for neurons no exact method reaches.

The inputs are drawn over *sorted positions* from a stream fixed by ``(domain, n,
samples, seed)`` alone, so the excited bits are a function of the neuron's truth table
over sorted positions: equal functions (up to a permutation of the inputs) get equal
bits and equal keys, whatever their weights. Unequal functions may collide, which is why
every such result says ``exact = False`` and ``method = "sampled"``.

The stream is the raw output of NumPy's PCG64 bit generator, whose sequence for a given
seed is fixed by the algorithm (unlike ``Generator`` methods, which NumPy may change
between versions): binary inputs are its bits; signed inputs are base-3 digits of its
bytes below ``243 = 3^5``, five digits per byte (bytes ``>= 243`` are skipped), so every
value is exactly uniform. Every decision is exact (int64 fixed point; the few inputs
within ``tol`` of the threshold are re-decided with Python integers).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from roon.kernels.exact import to_integers
from roon.kernels.mitm import fixed_row
from roon.kernels.result import NeuronCounts, key_sampled

__all__ = ["sample_inputs", "count_sampled"]


def _raw_bytes(seed: int, count: int) -> np.ndarray:
    """The first ``count`` bytes of the seed's PCG64 stream (little-endian words)."""
    words = np.random.PCG64(seed).random_raw((count + 7) // 8)
    return words.astype("<u8").view(np.uint8)[:count]


# Base-3 digits (minus 1) of every byte value below 3^5, least significant first.
_TERNARY = (np.arange(243)[:, None] // 3 ** np.arange(5) % 3 - 1).astype(np.int8)  # [243, 5]


@lru_cache(maxsize=4)  # one layer's neurons share n; 4096 × 784 int8 inputs are 3 MiB
def sample_inputs(domain: str, n: int, samples: int, seed: int) -> np.ndarray:
    """The ``[samples, n]`` int8 inputs over sorted positions (read-only; see the module)."""
    size = samples * n
    if domain == "binary":
        raw = _raw_bytes(seed, (size + 7) // 8)
        flat = np.unpackbits(raw, bitorder="little")[:size]
    else:
        want = -(-size // 5)
        draw = want + want // 8 + 64  # acceptance is 243/256; rarely needs a second draw
        while True:
            raw = _raw_bytes(seed, draw)
            kept = raw[raw < 243][:want]
            if len(kept) == want:
                break
            draw *= 2  # a longer prefix of the same stream: the result does not change
        flat = _TERNARY[kept].reshape(-1)[:size]
    x = flat.astype(np.int8).reshape(samples, n)
    x.setflags(write=False)
    return x


# Inputs widened to int64 at a time for the exact sums (8 MiB).
_SUM_ELEMENTS = 1 << 20


def _sums(x: np.ndarray, w: np.ndarray, b: int) -> np.ndarray:
    """``x @ w + b`` on int64 (exact: Σ|w| + |b| <= 2^61), a bounded block at a time."""
    out = np.empty(x.shape[0], dtype=np.int64)
    step = max(1, _SUM_ELEMENTS // max(x.shape[1], 1))
    for a in range(0, x.shape[0], step):
        out[a : a + step] = x[a : a + step].astype(np.int64) @ w
    return out + b


def count_sampled(
    weights: np.ndarray,
    bias: float,
    domain: str,
    *,
    samples: int,
    seed: int,
    relevant: int | None = None,
) -> NeuronCounts:
    """Approximate signature of one neuron (float weights sorted ascending).

    ``fire_fraction`` is the excited fraction of the samples and ``margin`` the smallest
    relative ``|w·x + b|`` among them: an estimate (an upper bound of the true margin), so
    ``fragile`` may miss inputs closer to the threshold. ``relevant`` is passed through
    only when the caller certified it.
    """
    w = np.asarray(weights, dtype=np.float64)
    n = len(w)
    row = fixed_row(w, bias)
    x = sample_inputs(domain, n, samples, seed)  # [samples, n]
    s = _sums(x, row.w, row.b)  # [samples]
    excited = s > row.tol
    far = (np.abs(s) > row.tol) if row.tol else np.ones(len(s), dtype=bool)
    near = np.flatnonzero(~far)  # uncertain: re-decided with exact integers
    margin = float(np.abs(s[far]).min()) / max(row.total, 1) if np.any(far) else float("inf")
    if len(near):
        ints, b = to_integers(w, bias)
        total = sum(abs(v) for v in ints) + abs(b)
        exact_sums = [sum(v * int(c) for v, c in zip(ints, x[i], strict=True)) + b for i in near]
        excited[near] = [e > 0 for e in exact_sums]
        margin = min(margin, min(abs(e) for e in exact_sums) / max(total, 1))
    packed = np.packbits(excited, bitorder="little").tobytes()
    bits_hex = format(int.from_bytes(packed, "little"), "x")
    return NeuronCounts(
        domain=domain,
        fan_in=n,
        exact=False,
        method="sampled",
        fire_count=None,
        chow=None,
        fire_fraction=float(np.count_nonzero(excited)) / samples,
        relevant=relevant,
        margin=margin,
        truth_table=None,
        key=key_sampled(domain, n, seed, samples, bits_hex),
    )
