"""The public signature API: :func:`signatures` and the :class:`SignatureBatch` it returns."""

from __future__ import annotations

from typing import Any

import numpy as np

from roon.errors import InvalidArgumentError, ModelFormatError
from roon.kernels.batch import SignatureBatch, binary_keys, distinct_rows, exact_ratio
from roon.kernels.dispatch import gpu_missing, resolve_backend, run_exhaustive, run_mitm
from roon.kernels.exact import to_int64
from roon.kernels.exhaustive import (
    ExhaustiveCounts,
    exhaustive_exact,
    n_inputs,
)
from roon.kernels.mitm import MITM_MAX, Row, chow_mitm, exact_row
from roon.kernels.near import exact_near
from roon.kernels.plan import check_policy
from roon.kernels.result import DOMAINS, key_signed_table, signature_hash
from roon.progress import ProgressCallback, emit

__all__ = [
    "SignatureBatch",
    "signatures",
    "EXHAUSTIVE_LIMIT",
    "GPU_EXHAUSTIVE_LIMIT",
    "TABLE_LIMIT",
]

# Largest fan-in enumerated exhaustively by default: 2^20 inputs take ~0.1 ms per neuron
# in C and 3^12 signed ones ~1.5 ms (benchmarks/RESULTS.md); above, the beyond-exhaustive
# methods (MITM ~2 ms at n = 24) are as fast and grow as 2^(n/2).
EXHAUSTIVE_LIMIT = {"binary": 20, "signed": 12}
# With the Triton GPU path 2^24 inputs per neuron are ~2 µs of H100 time (a roofline
# estimate, ~10^13 subsets/s; not measured: no GPU was available).
GPU_EXHAUSTIVE_LIMIT = {"binary": 24, "signed": 12}
# Hard caps on exhaustive_limit: beyond them enumeration takes hours per neuron.
_MAX_EXHAUSTIVE = {"binary": 32, "signed": 20}
# Truth tables are returned (hex) up to this fan-in: 2^10 bits = 256 hex digits; 3^6 bits.
TABLE_LIMIT = {"binary": 10, "signed": 6}
# Inputs enumerated per backend call, so memory stays bounded (signed tables: 8 MiB) and
# progress is reported regularly; the GPU gets far larger launches to fill its SMs.
_CHUNK_INPUTS = {"ref": 1 << 24, "cpu": 1 << 26, "triton": 1 << 32}
_INTERPRETER_CHUNK_INPUTS = 1 << 16
# Most samples of an approximate signature: 2^20 inputs, a few seconds per wide neuron.
_MAX_SAMPLES = 1 << 20
# Subset sums per meet-in-the-middle call (about 2^(n/2) per neuron): 2^20 keeps a call
# near 10 ms of work, so progress is reported regularly and threads get whole pieces.
_MITM_CHUNK_SUMS = 1 << 20


def signatures(
    weights: Any,
    bias: Any,
    domain: str = "binary",
    backend: str = "auto",
    *,
    exhaustive_limit: int | None = None,
    table_limit: int | None = None,
    mitm_limit: int | None = None,
    samples: int = 4096,
    seed: int = 0,
    exact: str = "auto",
    exact_budget: float | None = None,
    progress: ProgressCallback | None = None,
) -> SignatureBatch:
    """Exact excited-state signatures of neurons ``(w, b)`` (README, "Signatures").

    A neuron is *excited* on an input ``x`` iff ``w·x + b > 0`` (strict) in exact
    arithmetic over the stored floats, with ``x`` in ``{0,1}^n`` (``binary``) or
    ``{-1,0,1}^n`` (``signed``) over *sorted positions* (weights ascending, stable).
    Every backend decides identically: each neuron becomes int64 fixed point
    (:func:`roon.kernels.exact.to_int64`); where that is exact (``tol = 0``) the int64 sum
    decides ``s > 0``; otherwise ``s > tol`` and ``s < -tol`` decide and the neurons with
    an input at ``|s| <= tol`` are redone on exact Python integers. No float rounding can
    flip a decision. ``margin`` is ``min_x |w·x+b| / (Σ|w| + |b|)``; ``fragile`` means
    ``margin < FRAGILE_MARGIN`` (``roon.kernels.result``), exact ties included.

    Routing by fan-in ``n``: up to ``table_limit`` every input is enumerated and the
    truth table returned (method ``exhaustive``); binary neurons above it, up to
    ``exhaustive_limit``, are counted by meet-in-the-middle (``mitm``: fire count and
    Chow parameters in ``O(n·2^(n/2))``, no table) — except on a GPU, which enumerates
    up to its own limit; signed neurons are enumerated up to ``exhaustive_limit``. These
    are always exact. Larger fan-ins go to the beyond-exhaustive methods (``mitm``,
    ``reduced``, ``dp``, ``sampled``; :mod:`roon.kernels.beyond`), chosen per neuron by
    a cost model under the exact policy (:mod:`roon.kernels.plan`).

    Args:
        weights: ``[N, n]`` floats (NumPy, lists, torch tensors); a 1-D ``[n]`` with a
            scalar bias is one neuron.
        bias: ``[N]`` floats.
        domain: ``binary`` or ``signed``.
        backend: ``auto``, ``ref``, ``cpu`` or ``triton``; ``auto`` defers to
            ``ROON_BACKEND`` (see :mod:`roon.kernels.dispatch`).
        exhaustive_limit: largest fan-in always computed exactly (default 20 binary, 24
            on a GPU, 12 signed).
        table_limit: largest fan-in whose truth table is returned (default 10 binary,
            6 signed).
        mitm_limit: largest number of inputs counted by meet-in-the-middle beyond the
            exhaustive limit, 0..``MITM_MAX`` (default ``MITM_MAX``, 54).
        samples: samples of an approximate signature (beyond methods), 1..2^20.
        seed: seed of those samples, a non-negative integer.
        exact: beyond the exhaustive limit, ``auto`` (exact within ``exact_budget``),
            ``always`` (every neuron an exact method reaches) or ``never`` (sampled).
        exact_budget: estimated seconds of exact work ``auto`` may spend on this batch,
            cheapest neurons first (default
            :data:`roon.kernels.plan.DEFAULT_EXACT_BUDGET`); the batch's ``fallbacks``
            counts the neurons it sampled instead.
        progress: receives ``Progress("neurons", done, total)`` events now and then.

    Returns:
        A :class:`SignatureBatch`, one entry per neuron in input order.

    Raises:
        ModelFormatError: a weight or bias is NaN or infinite.
        InvalidArgumentError: bad shapes, an unknown domain, backend or exact policy, or
            a limit, budget, ``samples`` or ``seed`` out of range.
        KernelUnavailableError: an explicit backend that cannot run here.

    Example:
        >>> sig = signatures([[0.7, 0.7]], [-1.0])
        >>> sig.truth_table, sig.chow
        (['8'], [(1, 1, 1)])
    """
    if not isinstance(domain, str) or domain not in DOMAINS:
        raise InvalidArgumentError(f"unknown domain {domain!r}; choose one of {', '.join(DOMAINS)}")
    w, b = _as_neurons(weights, bias)
    name = resolve_backend(backend)
    on_gpu = name == "triton" and gpu_missing() is None
    limit = _limit(
        exhaustive_limit,
        (GPU_EXHAUSTIVE_LIMIT if on_gpu else EXHAUSTIVE_LIMIT)[domain],
        _MAX_EXHAUSTIVE[domain],
        "exhaustive_limit",
    )
    shown = _limit(table_limit, TABLE_LIMIT[domain], 64, "table_limit")
    # the beyond-exhaustive arguments are checked here, whatever the fan-in, so a bad one
    # is an InvalidArgumentError on every batch (not a ValueError only once a wide neuron appears)
    wide = _limit(mitm_limit, MITM_MAX, MITM_MAX, "mitm_limit")
    _limit(samples, None, _MAX_SAMPLES, "samples", low=1)
    _limit(seed, None, 2**63 - 1, "seed")
    budget = check_policy(exact, exact_budget)
    n_rows, n = w.shape
    ws = np.sort(w, axis=1, kind="stable")  # [N, n] ascending: the sorted positions
    if n > limit:
        from roon.kernels.beyond import beyond_rows

        return beyond_rows(
            ws,
            b,
            domain,
            mitm_limit=wide,
            samples=samples,
            seed=seed,
            budget=budget,
            backend=name,
            progress=progress,
        )
    if domain == "binary" and n > shown and not on_gpu:
        return _by_mitm(ws, b, name, progress)
    return _by_enumeration(ws, b, domain, name, on_gpu, n <= shown, progress)


def _by_enumeration(
    ws: np.ndarray,
    b: np.ndarray,
    domain: str,
    name: str,
    on_gpu: bool,
    show: bool,
    progress: ProgressCallback | None,
) -> SignatureBatch:
    """Every input of every neuron enumerated, chunk by chunk; columns built in bulk."""
    n_rows, n = ws.shape
    want_table = domain == "signed" or show
    interpreter = name == "triton" and not on_gpu
    chunk = _INTERPRETER_CHUNK_INPUTS if interpreter else _CHUNK_INPUTS[name]
    step = max(1, chunk // n_inputs(domain, n))
    parts: list[ExhaustiveCounts] = []
    scales = []
    redo: dict[int, tuple[ExhaustiveCounts, int]] = {}
    for a in range(0, n_rows, step):
        z = min(a + step, n_rows)
        rows = to_int64(ws[a:z], b[a:z])
        counts = run_exhaustive(name, rows.weights, rows.bias, rows.tol, domain, want_table)
        parts.append(counts)
        scales.append(np.abs(rows.weights).sum(axis=1) + np.abs(rows.bias))
        # rows rounded to int64 with inputs within tol of 0: redo on exact Python ints
        for i in np.flatnonzero((rows.tol > 0) & (counts.uncertain > 0)).tolist():
            if want_table:
                redo[a + i] = exhaustive_exact(ws[a + i], b[a + i], domain, want_table=True)
            else:  # binary, no table: the same counts in O(2^(n/2)) Python-int steps
                redo[a + i] = _exact_counts_by_mitm(ws[a + i], float(b[a + i]))
        emit(progress, "neurons", z, n_rows)
    fire = _joined([p.fire for p in parts], (0,))
    chow = _joined([p.chow for p in parts], (0, n))
    min_abs = _joined([p.min_abs.astype(np.int64) for p in parts], (0,))
    table = _joined([p.table for p in parts], (0, 0)) if want_table else None
    margin = exact_ratio(min_abs, _joined(scales, (0,)))
    for i, (counts, denom) in redo.items():
        fire[i], chow[i] = counts.fire[0], counts.chow[0]
        margin[i] = int(counts.min_abs[0]) / denom if denom else 0.0
        if table is not None and counts.table is not None:
            table[i] = counts.table[0]
    return _columns(ws, domain, n, "exhaustive", fire, chow, margin, table, show)


def _by_mitm(
    ws: np.ndarray, b: np.ndarray, name: str, progress: ProgressCallback | None
) -> SignatureBatch:
    """Binary neurons without a table: counted by meet-in-the-middle, in chunks."""
    n_rows, n = ws.shape
    step = max(1, _MITM_CHUNK_SUMS >> (n // 2))
    fire = np.empty(n_rows, dtype=np.int64)
    chow = np.empty((n_rows, n), dtype=np.int64)
    margin = np.empty(n_rows, dtype=np.float64)
    for a in range(0, n_rows, step):
        z = min(a + step, n_rows)
        rows = to_int64(ws[a:z], b[a:z])
        got = run_mitm(name, rows.weights, rows.bias, rows.tol)
        fire[a:z], chow[a:z] = got.fire, got.chow
        scale = np.abs(rows.weights).sum(axis=1) + np.abs(rows.bias)
        margin[a:z] = exact_ratio(got.min_abs(), scale)
        for i in np.flatnonzero((rows.tol > 0) & (got.uncertain > 0)).tolist():
            # rounded row, inputs within tol: only those are redone exactly (near.py)
            row = Row(rows.weights[i], int(rows.bias[i]), int(rows.tol[i]), 0)
            near = (
                None
                if name == "ref"
                else exact_near(
                    ws[a + i],
                    float(b[a + i]),
                    row,
                    np.arange(n),
                    int(got.fire[i]),
                    got.chow[i].tolist(),
                )
            )
            if near is None:
                counts, denom = _exact_counts_by_mitm(ws[a + i], float(b[a + i]))
                near = (int(counts.fire[0]), counts.chow[0].tolist(), int(counts.min_abs[0]), denom)
            fire[a + i], chow[a + i] = near[0], near[1]
            margin[a + i] = near[2] / near[3] if near[3] else 0.0
        emit(progress, "neurons", z, n_rows)
    return _columns(ws, "binary", n, "mitm", fire, chow, margin, None, False)


def _joined(arrays: list[Any], empty: tuple[int, ...]) -> np.ndarray:
    if not arrays:
        return np.zeros(empty, dtype=np.int64)
    return np.concatenate(arrays) if len(arrays) > 1 else np.array(arrays[0])


def _columns(
    ws: np.ndarray,
    domain: str,
    n: int,
    method: str,
    fire: np.ndarray,
    chow: np.ndarray,
    margin: np.ndarray,
    table: np.ndarray | None,
    show: bool,
) -> SignatureBatch:
    """A batch of exact rows from int64 counts: keys, hashes and tables once per function."""
    size = len(fire)
    if domain == "binary":  # an LTF input is irrelevant iff 2·N_i = N
        relevant = (2 * chow != fire[:, None]).sum(axis=1).astype(np.int64)
        keys, hashes = binary_keys(n, fire, chow)
    else:
        assert table is not None  # the signed key is a function of the table
        relevant, keys, hashes = _signed_columns(n, table, chow, ws)
    hexes = _table_hex(table) if show and table is not None else None
    return SignatureBatch.from_columns(
        domain,
        n,
        fire=fire,
        chow=chow,
        fraction=exact_ratio(fire, np.full(size, n_inputs(domain, n), dtype=np.int64)),
        relevant=relevant,
        margin=margin,
        exact=np.ones(size, dtype=bool),
        method=method,
        table=hexes,
        key=keys,
        hashes=hashes,
    )


def _table_hex(table: np.ndarray) -> list[str | None]:
    """Hex of each packed table, formatted once per distinct table."""
    if not len(table):
        return []
    first, inverse = distinct_rows(table)
    words = np.ascontiguousarray(table[first], dtype="<u8")
    step = 8 * words.shape[1]
    raw = words.tobytes()  # table_hex of each row, without a NumPy call per row
    hexes = np.array(
        [
            format(int.from_bytes(raw[i : i + step], "little"), "x")
            for i in range(0, len(raw), step)
        ],
        dtype=object,
    )
    return hexes[inverse].tolist()


def _signed_columns(
    n: int, table: np.ndarray, chow: np.ndarray, ws: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Relevant counts, keys and hashes of signed rows, once per distinct table.

    The table determines the function, hence its Chow vector and the signs of its
    relevant inputs: any neuron with that table stands for all of them.
    """
    first, inverse = distinct_rows(table)
    rel = np.empty(len(first), dtype=np.int64)
    keys = np.empty(len(first), dtype=object)
    hashes = np.empty(len(first), dtype=object)
    for u, i in enumerate(first.tolist()):
        rel[u], keys[u] = _signed_key(n, table[i], chow[i].tolist(), ws[i])
        hashes[u] = signature_hash(keys[u])
    return rel[inverse], keys[inverse], hashes[inverse]


def _exact_counts_by_mitm(ws: np.ndarray, bias: float) -> tuple[ExhaustiveCounts, int]:
    """What :func:`exhaustive_exact` returns for a binary row without a table, by MITM.

    Enumerating ``2^n`` Python integers takes seconds from ``n = 22`` (4 s at the GPU
    default limit of 24); meet-in-the-middle on the same exact integers counts the same
    fire count, Chow parameters and closest pre-activation in ``O(2^(n/2))``.
    """
    row = exact_row(ws, bias)
    counts = chow_mitm(row)
    near = [v for v in (counts.high, None if counts.low is None else -counts.low) if v is not None]
    min_abs = np.empty(1, dtype=object)
    min_abs[0] = min(near)
    found = ExhaustiveCounts(
        fire=np.array([counts.fire], dtype=np.int64),
        chow=np.array([counts.chow], dtype=np.int64).reshape(1, len(ws)),
        min_abs=min_abs,
        uncertain=np.zeros(1, dtype=np.int64),
        table=None,
    )
    return found, row.total


def _limit(value: int | None, default: int | None, cap: int, what: str, low: int = 0) -> int:
    if value is None and default is not None:
        return default
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or not (low <= value <= cap)
    ):
        raise InvalidArgumentError(f"{what} must be an integer in {low}..{cap}; got {value!r}")
    return int(value)


def _to_numpy(x: Any, what: str) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensors, possibly on a GPU or requiring grad
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":  # NumPy has no bfloat16; float32 holds it exactly
            x = x.float()
        x = x.numpy()
    try:
        a = np.asarray(x)
    except (ValueError, TypeError) as exc:
        raise InvalidArgumentError(f"{what} must be a numeric array; {exc}") from None
    if a.dtype.kind in "biu":
        if a.size and np.abs(a.astype(np.float64)).max() > 2.0**53:
            raise InvalidArgumentError(f"{what} holds integers beyond 2^53; pass them as floats")
        return a.astype(np.float64)
    if a.dtype not in (np.float16, np.float32, np.float64):
        raise InvalidArgumentError(
            f"{what} must hold float16/32/64 or integer values; got dtype {a.dtype}"
        )
    return a.astype(np.float64)  # widening is exact


def _as_neurons(weights: Any, bias: Any) -> tuple[np.ndarray, np.ndarray]:
    w = _to_numpy(weights, "weights")
    b = _to_numpy(bias, "bias")
    if w.ndim == 1 and b.ndim == 0:
        w, b = w[None, :], b[None]
    if w.ndim != 2:
        raise InvalidArgumentError(f"weights must be 2-D [neurons, fan_in]; got shape {w.shape}")
    if b.shape != (w.shape[0],):
        raise InvalidArgumentError(
            f"bias must have shape ({w.shape[0]},) to match weights {w.shape}; got {b.shape}"
        )
    bad = ~(np.isfinite(w).all(axis=1) & np.isfinite(b))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ModelFormatError(
            f"neuron {i} has a NaN or infinite weight or bias; signatures need finite values"
        )
    return w, b


def _signed_key(n: int, words: np.ndarray, chow: list[int], ws: np.ndarray) -> tuple[int, str]:
    """Relevant-input count and hash material of a signed table (see ``key_signed_table``).

    Input ``i`` is irrelevant iff the table does not depend on digit ``i``. For a threshold
    function that is read off its signed Chow parameter: f is monotone in ``x_i``, so
    ``c_i = #{f(+1, ·) = 1} - #{f(-1, ·) = 1}`` is 0 exactly when ``f(+1, ·) = f(-1, ·)``
    everywhere, and then ``f(0, ·)``, squeezed between them, equals both. The tests check
    this against the direct table comparison. The reduced table keeps the relevant digits
    (irrelevant ones fixed at ``x = 0``, digit 1) in sorted order.
    """
    raw = np.ascontiguousarray(words, dtype="<u8").view(np.uint8)
    bits = np.unpackbits(raw, bitorder="little")[: 3**n].reshape((3,) * n)
    relevant = [i for i in range(n) if chow[i] != 0]
    # digit i is axis n - 1 - i (C order: the last axis varies fastest)
    index = tuple(slice(None) if chow[i] != 0 else 1 for i in reversed(range(n)))
    packed = np.packbits(bits[index].reshape(-1), bitorder="little").tobytes()
    k_neg = sum(1 for i in relevant if ws[i] < 0)
    reduced_hex = format(int.from_bytes(packed, "little"), "x")
    return len(relevant), key_signed_table(n, len(relevant), k_neg, reduced_hex)
