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

from roon.kernels.exact import Int64Rows, to_int64, to_integers
from roon.kernels.result import NeuronCounts, key_sampled

__all__ = ["sample_inputs", "count_sampled", "count_sampled_rows", "exact_sums"]


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


# Inputs per lookup table of the exact sums: 8 binary digits (256 subset sums) or 5
# signed ones (3^5 = 243), one int64 table row per neuron.
_CHUNK = {2: 8, 3: 5}
# Neurons per batch of lookups, so the [samples, neurons] sums stay ~32 MiB.
_NEURONS_PER_PRODUCT = 1024


def exact_sums(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``x @ weights.T`` exactly on int64, for ``[S, n]`` int8 inputs (``{0,1}`` or
    ``{-1,0,1}``) and ``[N, n]`` int64 weights with ``Σ|w| <= 2^61`` per row: ``[S, N]``.

    By lookup tables, not multiplication: for every chunk of 8 binary (5 signed) inputs
    the 256 (243) partial sums of each neuron are tabulated once, and each sample adds
    one table row per chunk — integer adds only, so exact, single-threaded and
    independent of BLAS (whose threads made small products 10x slower on a busy
    2-core machine).
    """
    w = np.asarray(weights, dtype=np.int64)
    n_samples, n = x.shape
    out = np.zeros((n_samples, w.shape[0]), dtype=np.int64)
    if w.shape[0] == 0 or n == 0:
        return out
    signed = bool((x < 0).any())
    radix = 3 if signed else 2
    vals = (-1, 0, 1) if signed else (0, 1)
    step = _CHUNK[radix]
    if signed:
        digits = (x + 1).astype(np.intp)  # [S, n], 0..2
    else:  # the chunk indices are the packed bytes themselves
        packed = np.packbits(x, axis=1, bitorder="little")  # [S, ceil(n/8)]
    for c, a in enumerate(range(0, n, step)):
        z = min(a + step, n)
        table = np.zeros((1, w.shape[0]), dtype=np.int64)  # [radix^k, N] partial sums
        for j in range(a, z):  # digit j - a of the index is input j (least significant first)
            table = np.concatenate([table + v * w[None, :, j] for v in vals])
        index: np.ndarray = packed[:, c] if not signed else np.zeros(n_samples, dtype=np.intp)
        if signed:
            for j in range(z - 1, a - 1, -1):
                index = index * radix + digits[:, j]
        out += table[index]
    return out


def count_sampled_rows(
    weights: np.ndarray,
    bias: np.ndarray,
    rows: Int64Rows,
    domain: str,
    *,
    samples: int,
    seed: int,
    relevant: list[int | None],
) -> list[NeuronCounts]:
    """Approximate signatures of a batch of neurons of one fan-in: one matrix product.

    Args:
        weights: ``[N, n]`` float weights, each row sorted ascending.
        bias: ``[N]`` biases.
        rows: their int64 fixed point (:func:`roon.kernels.exact.to_int64`).
        domain: ``binary`` or ``signed``.
        samples: inputs drawn.
        seed: seed of the inputs.
        relevant: per neuron, the certified relevant count or None.

    Returns:
        One :class:`NeuronCounts` per neuron, as :func:`count_sampled` gives it.
    """
    n_rows, n = rows.weights.shape
    x = sample_inputs(domain, n, samples, seed)
    totals = np.maximum(np.abs(rows.weights).sum(axis=1) + np.abs(rows.bias), 1)
    out: list[NeuronCounts] = []
    for a in range(0, n_rows, _NEURONS_PER_PRODUCT):
        z = min(a + _NEURONS_PER_PRODUCT, n_rows)
        sums = exact_sums(x, rows.weights[a:z]) + rows.bias[a:z][None, :]  # [S, c]
        tol = rows.tol[a:z][None, :]
        excited = sums > tol
        mag = np.abs(sums)
        far = mag > tol  # where tol = 0 every sample is decided
        far |= tol == 0
        closest = np.where(far, mag, np.iinfo(np.int64).max).min(axis=0)
        # float(closest) / total, as Python divides a float by an int (both converted to
        # the nearest float64, then one IEEE division)
        margins = np.where(
            far.any(axis=0), closest.astype(np.float64) / totals[a:z].astype(np.float64), np.inf
        ).tolist()
        fractions = (np.count_nonzero(excited, axis=0) / samples).tolist()
        packed = np.packbits(excited.T, axis=1, bitorder="little")[:, ::-1]  # [c, S/8]
        # the hex of the little-endian integer: its bytes reversed, without leading zeros
        hexes = [row.tobytes().hex().lstrip("0") or "0" for row in packed]
        for j in np.flatnonzero(~far.all(axis=0)).tolist():
            i = a + j  # uncertain samples on the fixed point: re-decided with exact integers
            near = np.flatnonzero(~far[:, j])
            decided, margins[j] = _exact_decisions(
                weights[i], float(bias[i]), x, near, excited[:, j].copy(), margins[j]
            )
            bits = np.packbits(decided, bitorder="little")
            hexes[j] = format(int.from_bytes(bits.tobytes(), "little"), "x")
            fractions[j] = float(np.count_nonzero(decided)) / samples
        for j in range(z - a):
            out.append(
                NeuronCounts(
                    domain=domain,
                    fan_in=n,
                    exact=False,
                    method="sampled",
                    fire_count=None,
                    chow=None,
                    fire_fraction=fractions[j],
                    relevant=relevant[a + j],
                    margin=margins[j],
                    truth_table=None,
                    key=key_sampled(domain, n, seed, samples, hexes[j]),
                )
            )
    return out


def _exact_decisions(
    weights: np.ndarray,
    bias: float,
    x: np.ndarray,
    near: np.ndarray,
    excited: np.ndarray,
    margin: float,
) -> tuple[np.ndarray, float]:
    """Re-decide the samples ``near`` the threshold on exact Python integers."""
    ints, b = to_integers(weights, bias)
    total = sum(abs(v) for v in ints) + abs(b)
    rows = x[near].tolist()
    exact = [sum(v * c for v, c in zip(ints, row, strict=True)) + b for row in rows]
    excited[near] = [e > 0 for e in exact]
    return excited, min(margin, min(abs(e) for e in exact) / max(total, 1))


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
    only when the caller certified it. One neuron of :func:`count_sampled_rows`.
    """
    w = np.asarray(weights, dtype=np.float64)[None, :]
    b = np.array([float(bias)])
    rows = to_int64(w, b)
    return count_sampled_rows(w, b, rows, domain, samples=samples, seed=seed, relevant=[relevant])[
        0
    ]
