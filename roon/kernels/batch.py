"""The :class:`SignatureBatch` that :func:`roon.signatures` returns: columns, built in bulk.

A batch holds one array (or list) per column for all its neurons; nothing per neuron is
built until asked for. Keys and hashes are made once per *distinct* function: neurons
with equal counts (or equal tables) share them, and at small fan-in most do — 40,000
random 5-input neurons compute a few thousand functions. :class:`NeuronCounts` objects
are made on demand (indexing, iteration), Arrow columns straight from the arrays.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from roon.kernels.result import (
    FRAGILE_MARGIN,
    NeuronCounts,
    signature_hash,
)

__all__ = ["SignatureBatch", "exact_ratio", "binary_keys", "distinct_rows"]

# Count columns of the catalogue: exact integers up to 38 decimal digits (Arrow
# decimal128(38, 0), DuckDB DECIMAL(38,0)). Every count of a neuron with fan-in <= 126
# fits (2^126 < 10^38); wider exact neurons (reduced or dp rows of, say, 784 inputs) whose
# counts do not fit store null there, and keep them in the API and in the hash.
COUNT_DIGITS = 38
_COUNT_MAX = 10**COUNT_DIGITS - 1


def exact_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` per element as Python's correctly rounded int division gives it.

    Both are int64 (or object) arrays. Where both fit in 53 bits the float64 division is
    exact-input IEEE division, which is correctly rounded too; the rest go through Python.
    """
    num = np.asarray(num)
    den = np.asarray(den)
    if num.dtype == np.int64 and den.dtype == np.int64:
        small = (np.abs(num) < 2**53) & (np.abs(den) < 2**53) & (den != 0)
        if small.all():
            return num.astype(np.float64) / den.astype(np.float64)
    out = np.empty(len(num), dtype=np.float64)
    for i, (a, b) in enumerate(zip(num.tolist(), den.tolist(), strict=True)):
        out[i] = a / b if b else 0.0
    return out


def binary_keys(n: int, fire: np.ndarray, chow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hash material and hashes of exact binary rows (int64 counts), once per function.

    Returns:
        ``(keys, hashes)``: object arrays ``[N]`` of str.
    """
    vector = np.empty((len(fire), n + 1), dtype=np.int64)
    vector[:, 0] = fire
    vector[:, 1:] = np.sort(chow, axis=1)  # the key is over the sorted Chow vector
    # key_binary_chow of a row already sorted, as one %-format (twice as fast as joins)
    template = f"binary|{n}|chow|%d|" + ",".join(["%d"] * n)

    def key_of(row: list[int]) -> str:
        return template % tuple(row)

    return _per_distinct(vector, key_of)


# Odd 64-bit multipliers of the row hash in distinct_rows (fixed, so runs are repeatable).
_MULTIPLIERS = np.random.default_rng(0x5EED).integers(1, 2**63, size=4096, dtype=np.uint64) | 1


def distinct_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a 2-D integer array: ``(first, inverse)``.

    ``first[u]`` is a row holding distinct row ``u`` and ``inverse[i]`` the distinct row
    of row ``i``. Rows are grouped by a 64-bit multiplicative hash (one sort of ``N``
    integers, not ``np.unique(axis=0)``'s row-wise sort, ~20x slower), and every group
    is checked against its first row, so a hash collision can never merge distinct rows:
    it sends the batch to ``np.unique`` instead.
    """
    size = len(rows)
    if size <= 1:
        return np.zeros(size, dtype=np.int64), np.zeros(size, dtype=np.int64)
    flat = np.ascontiguousarray(rows).reshape(size, -1).view(np.uint64)  # same bits
    width = flat.shape[1]
    if width > len(_MULTIPLIERS):
        _, first, inverse = np.unique(flat, axis=0, return_index=True, return_inverse=True)
        return first, np.asarray(inverse).reshape(-1)
    with np.errstate(over="ignore"):
        hashes = (flat * _MULTIPLIERS[:width]).sum(axis=1, dtype=np.uint64)
    _, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    inverse = np.asarray(inverse).reshape(-1)
    if not np.array_equal(flat, flat[first[inverse]]):  # a collision: group exactly
        _, first, inverse = np.unique(flat, axis=0, return_index=True, return_inverse=True)
        inverse = np.asarray(inverse).reshape(-1)
    return first, inverse


def _per_distinct(rows: np.ndarray, key_of: Any) -> tuple[np.ndarray, np.ndarray]:
    """``key_of(row)`` and its hash once per distinct row of ``rows`` (a 2-D array)."""
    if len(rows) == 0:
        empty = np.empty(0, dtype=object)
        return empty, empty
    first, inverse = distinct_rows(rows)
    keys = np.empty(len(first), dtype=object)
    hashes = np.empty(len(first), dtype=object)
    for u, row in enumerate(rows[first].tolist()):
        keys[u] = key_of(row)
        hashes[u] = signature_hash(keys[u])
    return keys[inverse], hashes[inverse]


class SignatureBatch:
    """Signatures of a batch of neurons of one fan-in and domain, held as columns.

    Sequence-like (``len``, indexing and iteration give
    :class:`~roon.kernels.result.NeuronCounts`); column views as attributes; rows for the
    catalogue through :meth:`to_arrow`, plain dicts for JSON through :meth:`to_dicts`.
    """

    __slots__ = (
        "domain",
        "n",
        "_fire",
        "_chow",
        "_fraction",
        "_relevant",
        "_margin",
        "_exact",
        "_method",
        "_table",
        "_key",
        "_hash",
        "fallbacks",
        "exact_seconds",
    )

    def __init__(
        self,
        neurons: Sequence[NeuronCounts] = (),
        *,
        fallbacks: int = 0,
        exact_seconds: float = 0.0,
    ) -> None:
        """A batch of per-neuron results, all of one fan-in and domain (empty: binary, 0).

        :func:`roon.signatures` builds its batches from columns (:meth:`from_columns`).
        """
        rows = tuple(neurons)
        first = rows[0] if rows else None
        domain, n = (first.domain, first.fan_in) if first else ("binary", 0)
        if any(r.domain != domain or r.fan_in != n for r in rows):
            from roon.errors import InvalidArgumentError

            raise InvalidArgumentError("a SignatureBatch holds neurons of one domain and fan-in")
        size = len(rows)
        fire = np.empty(size, dtype=object)
        chow = np.empty(size, dtype=object)
        for i, r in enumerate(rows):
            fire[i] = r.fire_count
            chow[i] = None if r.chow is None else tuple(r.chow[1:])
        tables = [r.truth_table for r in rows]
        self._set(
            domain,
            n,
            fire=fire,
            chow=chow,
            fraction=np.array([r.fire_fraction for r in rows], dtype=np.float64),
            relevant=np.array([-1 if r.relevant is None else r.relevant for r in rows], np.int64),
            margin=np.array([np.nan if r.margin is None else r.margin for r in rows], np.float64),
            exact=np.array([r.exact for r in rows], dtype=bool),
            method=np.array([r.method for r in rows], dtype=object),
            table=tables if any(t is not None for t in tables) else None,
            key=np.array([r.key for r in rows], dtype=object),
            hashes=np.array([r.hash for r in rows], dtype=object),
            fallbacks=fallbacks,
            exact_seconds=exact_seconds,
        )

    @classmethod
    def from_columns(
        cls,
        domain: str,
        n: int,
        *,
        fire: np.ndarray,
        chow: np.ndarray,
        fraction: np.ndarray,
        relevant: np.ndarray,
        margin: np.ndarray,
        exact: np.ndarray,
        method: np.ndarray | str,
        table: Sequence[str | None] | None,
        key: np.ndarray,
        hashes: np.ndarray,
        fallbacks: int = 0,
        exact_seconds: float = 0.0,
    ) -> SignatureBatch:
        """A batch from columns (what :func:`roon.signatures` builds, in bulk).

        Args:
            domain: ``binary`` or ``signed``.
            n: fan-in.
            fire: ``[N]`` int64, or object (Python ints, None where not exact).
            chow: ``[N, n]`` int64 per-input counts, or ``[N]`` object (tuples or None).
            fraction: ``[N]`` float64 fire fractions.
            relevant: ``[N]`` int64, -1 where not determined.
            margin: ``[N]`` float64, NaN where not computed.
            exact: ``[N]`` bool.
            method: ``[N]`` object (str), or one str for every neuron.
            table: hex truth tables (None entries where not shown), or None for none.
            key: ``[N]`` object (str), the hash material.
            hashes: ``[N]`` object (str).
            fallbacks: neurons sampled by the exact policy although an exact method
                reaches them (``exact="never"``, or over ``exact_budget``).
            exact_seconds: estimated seconds of beyond-exhaustive exact work spent.
        """
        batch = cls.__new__(cls)
        batch._set(
            domain,
            n,
            fire=fire,
            chow=chow,
            fraction=fraction,
            relevant=relevant,
            margin=margin,
            exact=exact,
            method=method,
            table=table,
            key=key,
            hashes=hashes,
            fallbacks=fallbacks,
            exact_seconds=exact_seconds,
        )
        return batch

    def _set(
        self,
        domain: str,
        n: int,
        *,
        fire: np.ndarray,
        chow: np.ndarray,
        fraction: np.ndarray,
        relevant: np.ndarray,
        margin: np.ndarray,
        exact: np.ndarray,
        method: np.ndarray | str,
        table: Sequence[str | None] | None,
        key: np.ndarray,
        hashes: np.ndarray,
        fallbacks: int,
        exact_seconds: float,
    ) -> None:
        self.domain = domain
        self.n = n
        self._fire = fire
        self._chow = chow
        self._fraction = fraction
        self._relevant = relevant
        self._margin = margin
        self._exact = exact
        self._method = method
        self._table = table
        self._key = key
        self._hash = hashes
        self.fallbacks = fallbacks
        self.exact_seconds = exact_seconds

    @classmethod
    def from_neurons(
        cls,
        domain: str,
        n: int,
        rows: Sequence[NeuronCounts],
        *,
        fallbacks: int = 0,
        exact_seconds: float = 0.0,
    ) -> SignatureBatch:
        """A batch of per-neuron results of ``domain`` and fan-in ``n`` (may be empty)."""
        if not rows:
            empty = cls.__new__(cls)
            none = np.empty(0, dtype=object)
            empty._set(
                domain, n, fire=none, chow=none, fraction=np.empty(0),
                relevant=np.empty(0, np.int64), margin=np.empty(0), exact=np.empty(0, bool),
                method=none, table=None, key=none, hashes=none, fallbacks=fallbacks,
                exact_seconds=exact_seconds,
            )  # fmt: skip
            return empty
        return cls(rows, fallbacks=fallbacks, exact_seconds=exact_seconds)

    # ------------------------------------------------------------------ sequence

    def __len__(self) -> int:
        return len(self._exact)

    def __getitem__(self, i: int) -> NeuronCounts:
        size = len(self)
        if not -size <= i < size:
            raise IndexError(f"neuron {i} out of range for a batch of {size}")
        i %= size
        fire = self._fire[i]
        return NeuronCounts(
            domain=self.domain,
            fan_in=self.n,
            exact=bool(self._exact[i]),
            method=self._method if isinstance(self._method, str) else str(self._method[i]),
            fire_count=None if fire is None else int(fire),
            chow=self._vector(i),
            fire_fraction=float(self._fraction[i]),
            relevant=None if self._relevant[i] < 0 else int(self._relevant[i]),
            margin=None if np.isnan(self._margin[i]) else float(self._margin[i]),
            truth_table=None if self._table is None else self._table[i],
            key=str(self._key[i]),
        )

    def __iter__(self) -> Iterator[NeuronCounts]:
        return (self[i] for i in range(len(self)))

    @property
    def neurons(self) -> tuple[NeuronCounts, ...]:
        """Every neuron as a :class:`NeuronCounts` (built now)."""
        return tuple(self)

    def _vector(self, i: int) -> tuple[int, ...] | None:
        if self._chow.dtype == object:
            per_input = self._chow[i]
            return None if per_input is None else (int(self._fire[i]), *per_input)
        return (int(self._fire[i]), *self._chow[i].tolist())

    # ------------------------------------------------------------------ columns

    @property
    def hash(self) -> list[str]:
        """128-bit signature digests (32 hex characters)."""
        return self._hash.tolist()

    @property
    def key(self) -> list[str]:
        """The canonical material each hash is taken over."""
        return self._key.tolist()

    @property
    def fan_in(self) -> np.ndarray:
        return np.full(len(self), self.n, dtype=np.int64)

    @property
    def fire_count(self) -> list[int | None]:
        """Excited inputs per neuron (Python ints: they may exceed 64 bits); None if sampled."""
        return self._fire.tolist()

    @property
    def chow(self) -> list[tuple[int, ...] | None]:
        """``(fire_count, c_0, ..., c_{n-1})`` over sorted positions, or None."""
        if self._chow.dtype == object:
            return [self._vector(i) for i in range(len(self))]
        full = np.concatenate([self._fire[:, None], self._chow], axis=1)
        return [tuple(row) for row in full.tolist()]

    @property
    def exact(self) -> np.ndarray:
        return self._exact.copy()

    @property
    def fragile(self) -> np.ndarray:
        return np.nan_to_num(self._margin, nan=np.inf) < FRAGILE_MARGIN

    @property
    def margin(self) -> list[float | None]:
        return [None if np.isnan(m) else m for m in self._margin.tolist()]

    @property
    def relevant(self) -> list[int | None]:
        return [None if r < 0 else r for r in self._relevant.tolist()]

    @property
    def method(self) -> list[str]:
        if isinstance(self._method, str):
            return [self._method] * len(self)
        return self._method.tolist()

    @property
    def fire_fraction(self) -> np.ndarray:
        return self._fraction.copy()

    @property
    def truth_table(self) -> list[str | None]:
        return [None] * len(self) if self._table is None else list(self._table)

    def to_dicts(self) -> list[dict[str, Any]]:
        """One plain dict per neuron (``chow`` as a list of ints), ready for JSON."""
        chow = self.chow
        columns = {
            "hash": self.hash,
            "relevant": self.relevant,
            "fire_count": self.fire_count,
            "fire_fraction": self._fraction.tolist(),
            "chow": [None if c is None else list(c) for c in chow],
            "truth_table": self.truth_table,
            "exact": self._exact.tolist(),
            "method": self.method,
            "fragile": self.fragile.tolist(),
            "margin": self.margin,
        }
        return [
            {
                "domain": self.domain,
                "hash": columns["hash"][i],
                "fan_in": self.n,
                "relevant": columns["relevant"][i],
                "fire_count": columns["fire_count"][i],
                "fire_fraction": columns["fire_fraction"][i],
                "chow": columns["chow"][i],
                "truth_table": columns["truth_table"][i],
                "exact": columns["exact"][i],
                "method": columns["method"][i],
                "fragile": columns["fragile"][i],
                "margin": columns["margin"][i],
            }
            for i in range(len(self))
        ]

    def to_arrow(self) -> Any:
        """A ``pyarrow.Table`` with the signature columns of the catalogue's signatures table.

        The columns are those of ``schema/tables/signatures.json`` after the neuron's
        identity (``neuron_id, model_id, layer, neuron``), with the types given there:
        ``fire_count`` a decimal128(38, 0) integer and ``chow`` a list of them, null where
        not exact or (fan-in above 126 only) where a count exceeds 38 digits.
        """
        import pyarrow as pa

        from roon.schema import table_schema

        schema = pa.schema(list(table_schema("signatures"))[4:])
        size = len(self)
        fire, chow = self._count_arrays()
        relevant = self._relevant.astype(np.int32)
        columns = {
            "domain": pa.array(np.full(size, self.domain, dtype=object), pa.string()),
            "hash": pa.array(self._hash, pa.string()),
            "fan_in": pa.array(np.full(size, self.n, dtype=np.int32)),
            "relevant": pa.array(relevant, mask=self._relevant < 0),
            "fire_count": fire,
            "fire_fraction": pa.array(self._fraction),
            "chow": chow,
            "truth_table": pa.array(self.truth_table, pa.string()),
            "exact": pa.array(self._exact),
            "method": pa.array(self.method, pa.string()),
            "fragile": pa.array(self.fragile),
            "margin": pa.array(self._margin, mask=np.isnan(self._margin)),
        }
        return pa.table([columns[name] for name in schema.names], schema=schema)

    def _count_arrays(self) -> tuple[Any, Any]:
        """``fire_count`` and ``chow`` as Arrow decimal arrays (see :meth:`to_arrow`)."""
        import pyarrow as pa

        decimal = pa.decimal128(COUNT_DIGITS, 0)
        size, n = len(self), self.n
        if self._chow.dtype != object:  # every row exact, in int64: cast in bulk
            values = np.concatenate([self._fire[:, None], self._chow], axis=1).reshape(-1)
            offsets = pa.array(np.arange(size + 1, dtype=np.int32) * (n + 1))
            flat = pa.array(values).cast(decimal)
            return pa.array(self._fire).cast(decimal), pa.ListArray.from_arrays(offsets, flat)
        from decimal import Decimal

        fire: list[Decimal | None] = []
        chow: list[list[Decimal] | None] = []
        for i in range(size):
            vector = self._vector(i)
            if vector is None or vector[0] > _COUNT_MAX:  # |c_i| <= fire_count
                fire.append(None)
                chow.append(None)
            else:
                fire.append(Decimal(vector[0]))
                chow.append([Decimal(v) for v in vector])
        return pa.array(fire, decimal), pa.array(chow, pa.list_(decimal))
