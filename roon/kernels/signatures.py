"""The public signature API: :func:`signatures` and the :class:`SignatureBatch` it returns."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from roon.errors import InvalidArgumentError, ModelFormatError
from roon.kernels.dispatch import gpu_missing, resolve_backend, run_exhaustive
from roon.kernels.exact import to_int64
from roon.kernels.exhaustive import (
    ExhaustiveCounts,
    exhaustive_exact,
    n_inputs,
    table_hex,
)
from roon.kernels.mitm import MITM_MAX, chow_mitm, exact_row
from roon.kernels.result import DOMAINS, NeuronCounts, key_binary_chow, key_signed_table
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


@dataclass(frozen=True)
class SignatureBatch:
    """Signatures of a batch of neurons, one :class:`~roon.kernels.result.NeuronCounts` each.

    Sequence-like (``len``, indexing, iteration); column views as attributes; rows for the
    catalogue through :meth:`to_arrow`, plain dicts for JSON through :meth:`to_dicts`.
    """

    neurons: tuple[NeuronCounts, ...]

    def __len__(self) -> int:
        return len(self.neurons)

    def __getitem__(self, i: int) -> NeuronCounts:
        return self.neurons[i]

    def __iter__(self) -> Iterator[NeuronCounts]:
        return iter(self.neurons)

    @property
    def hash(self) -> list[str]:
        """128-bit signature digests (32 hex characters)."""
        return [c.hash for c in self.neurons]

    @property
    def fan_in(self) -> np.ndarray:
        return np.array([c.fan_in for c in self.neurons], dtype=np.int64)

    @property
    def fire_count(self) -> list[int | None]:
        """Excited inputs per neuron (Python ints: they may exceed 64 bits); None if sampled."""
        return [c.fire_count for c in self.neurons]

    @property
    def chow(self) -> list[tuple[int, ...] | None]:
        """``(fire_count, c_0, ..., c_{n-1})`` over sorted positions, or None."""
        return [c.chow for c in self.neurons]

    @property
    def exact(self) -> np.ndarray:
        return np.array([c.exact for c in self.neurons], dtype=bool)

    @property
    def fragile(self) -> np.ndarray:
        return np.array([c.fragile for c in self.neurons], dtype=bool)

    @property
    def margin(self) -> list[float | None]:
        return [c.margin for c in self.neurons]

    @property
    def method(self) -> list[str]:
        return [c.method for c in self.neurons]

    @property
    def truth_table(self) -> list[str | None]:
        return [c.truth_table for c in self.neurons]

    def to_dicts(self) -> list[dict[str, Any]]:
        """One plain dict per neuron (``chow`` as a list of ints), ready for JSON."""
        return [
            {
                "domain": c.domain,
                "hash": c.hash,
                "fan_in": c.fan_in,
                "relevant": c.relevant,
                "fire_count": c.fire_count,
                "fire_fraction": c.fire_fraction,
                "chow": None if c.chow is None else [int(v) for v in c.chow],
                "truth_table": c.truth_table,
                "exact": c.exact,
                "method": c.method,
                "fragile": c.fragile,
                "margin": c.margin,
            }
            for c in self.neurons
        ]

    def to_arrow(self) -> Any:
        """A ``pyarrow.Table`` with the signature columns of the catalogue's signatures table.

        The columns are those of ``schema/tables/signatures.json`` after the neuron's
        identity (``neuron_id, model_id, layer, neuron``), with the types given there;
        ``fire_count`` and ``chow`` are decimal strings because counts may exceed 64 bits.
        """
        import pyarrow as pa

        from roon.schema import table_schema

        schema = pa.schema(list(table_schema("signatures"))[4:])
        cols: dict[str, list[Any]] = {name: [] for name in schema.names}
        for row in self.to_dicts():
            for name in schema.names:
                cols[name].append(row[name])
        cols["fire_count"] = [None if v is None else str(v) for v in cols["fire_count"]]
        cols["chow"] = [None if v is None else ",".join(map(str, v)) for v in cols["chow"]]
        return pa.table(cols, schema=schema)


def signatures(
    weights: Any,
    bias: Any,
    domain: str = "binary",
    backend: str = "auto",
    *,
    exhaustive_limit: int | None = None,
    table_limit: int | None = None,
    mitm_limit: int = 40,
    samples: int = 4096,
    seed: int = 0,
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

    Fan-ins up to ``exhaustive_limit`` enumerate every input; larger ones go to the
    beyond-exhaustive methods (``mitm``, ``dp``, ``reduced``, ``sampled``).

    Args:
        weights: ``[N, n]`` floats (NumPy, lists, torch tensors); a 1-D ``[n]`` with a
            scalar bias is one neuron.
        bias: ``[N]`` floats.
        domain: ``binary`` or ``signed``.
        backend: ``auto``, ``ref``, ``cpu`` or ``triton``; ``auto`` defers to
            ``ROON_BACKEND`` (see :mod:`roon.kernels.dispatch`).
        exhaustive_limit: largest fan-in enumerated (default 20 binary, 24 on a GPU,
            12 signed).
        table_limit: largest fan-in whose truth table is returned (default 10 binary,
            6 signed).
        mitm_limit: largest number of relevant inputs counted by meet-in-the-middle
            (beyond methods), 0..48.
        samples: samples of an approximate signature (beyond methods), 1..2^20.
        seed: seed of those samples, a non-negative integer.
        progress: receives ``Progress("neurons", done, total)`` events now and then.

    Returns:
        A :class:`SignatureBatch`, one entry per neuron in input order.

    Raises:
        ModelFormatError: a weight or bias is NaN or infinite.
        InvalidArgumentError: bad shapes, an unknown domain or backend, or a limit, ``samples`` or
            ``seed`` out of range.
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
    # is a InvalidArgumentError on every batch (not a ValueError only once a wide neuron appears)
    _limit(mitm_limit, None, MITM_MAX, "mitm_limit")
    _limit(samples, None, _MAX_SAMPLES, "samples", low=1)
    _limit(seed, None, 2**63 - 1, "seed")
    n_rows, n = w.shape
    order = np.argsort(w, axis=1, kind="stable")
    ws = np.take_along_axis(w, order, axis=1)  # [N, n] ascending
    if n > limit:
        return SignatureBatch(tuple(_beyond(ws, b, domain, mitm_limit, samples, seed, progress)))

    want_table = domain == "signed" or n <= shown
    interpreter = name == "triton" and not on_gpu
    chunk = _INTERPRETER_CHUNK_INPUTS if interpreter else _CHUNK_INPUTS[name]
    step = max(1, chunk // n_inputs(domain, n))
    out: list[NeuronCounts] = []
    for a in range(0, n_rows, step):
        z = min(a + step, n_rows)
        rows = to_int64(ws[a:z], b[a:z])
        counts = run_exhaustive(name, rows.weights, rows.bias, rows.tol, domain, want_table)
        scale = (np.abs(rows.weights).sum(axis=1) + np.abs(rows.bias)).tolist()
        found = _neurons(counts, scale, ws[a:z], domain, n <= shown)
        # rows rounded to int64 with inputs within tol of 0: redo on exact Python ints
        for i in np.flatnonzero((rows.tol > 0) & (counts.uncertain > 0)).tolist():
            if want_table:
                exact, denom = exhaustive_exact(ws[a + i], b[a + i], domain, want_table=True)
            else:  # binary, no table: the same counts in O(2^(n/2)) Python-int steps
                exact, denom = _exact_counts_by_mitm(ws[a + i], float(b[a + i]))
            found[i] = _neurons(exact, [denom], ws[a + i : a + i + 1], domain, n <= shown)[0]
        out.extend(found)
        emit(progress, "neurons", z, n_rows)
    return SignatureBatch(tuple(out))


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


def _neurons(
    counts: ExhaustiveCounts, scale: list[int], ws: np.ndarray, domain: str, show: bool
) -> list[NeuronCounts]:
    """One NeuronCounts per row of an exhaustive result (per-row work kept to a minimum)."""
    n = int(counts.chow.shape[1])
    total = n_inputs(domain, n)
    fire = counts.fire.tolist()
    chow = counts.chow.tolist()
    min_abs = [int(m) for m in counts.min_abs.tolist()]  # object rows hold Python ints
    if domain == "binary":  # an LTF input is irrelevant iff 2·N_i = N
        relevant = (2 * counts.chow != counts.fire[:, None]).sum(axis=1).tolist()
    out = []
    for i, (f, c, m, sc) in enumerate(zip(fire, chow, min_abs, scale, strict=True)):
        vector = (f, *c)
        words = counts.table[i] if counts.table is not None else None
        if domain == "binary":
            rel, key = relevant[i], key_binary_chow(n, vector)
        else:
            assert words is not None  # the signed key is a function of the table
            rel, key = _signed_key(n, words, c, ws[i])
        out.append(
            NeuronCounts(
                domain=domain,
                fan_in=n,
                exact=True,
                method="exhaustive",
                fire_count=f,
                chow=vector,
                fire_fraction=f / total,
                relevant=rel,
                margin=m / sc if sc else 0.0,  # Python ints: a correctly rounded float
                truth_table=table_hex(words) if show and words is not None else None,
                key=key,
            )
        )
    return out


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


def _beyond(
    ws: np.ndarray,
    b: np.ndarray,
    domain: str,
    mitm_limit: int,
    samples: int,
    seed: int,
    progress: ProgressCallback | None,
) -> Iterator[NeuronCounts]:
    """Neurons above the exhaustive limit, one at a time through ``count_beyond``."""
    from roon.kernels.beyond import count_beyond

    for i in range(ws.shape[0]):
        yield count_beyond(
            ws[i], float(b[i]), domain, mitm_limit=mitm_limit, samples=samples, seed=seed
        )
        emit(progress, "neurons", i + 1, ws.shape[0])
