"""Writing query results as they stream: CSV, JSON, NDJSON, Parquet, and a bounded head.

Every writer takes record batches (a ``pyarrow.RecordBatchReader``, or any iterable of
batches with a ``schema``) and a binary sink, and holds one batch at a time, so a result
of any size is written in bounded memory.

CSV has no nested values: list, struct and map columns are written as JSON text (``[1,2]``,
``{"a":1}``), the form every CSV reader can parse back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from roon.errors import InvalidArgumentError

__all__ = [
    "FORMATS",
    "Head",
    "head",
    "limited",
    "json_value",
    "write_csv",
    "write_json",
    "write_ndjson",
    "write_parquet",
    "write_format",
    "check_output_path",
]

FORMATS = ("table", "csv", "json", "ndjson", "parquet")


def json_value(value: Any) -> Any:
    """A value JSON can hold: dates as ISO text, big or exact numbers as text, bytes as hex."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _dumps(row: Any) -> str:
    return json.dumps(row, default=json_value, ensure_ascii=False)


def limited(batches: Iterable[Any], limit: int | None) -> Iterator[Any]:
    """The first ``limit`` rows of ``batches`` (all when ``limit`` is None)."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InvalidArgumentError(f"limit {limit!r}; give a number of rows >= 0")
    left = limit
    for batch in batches:
        if left is None:
            yield batch
            continue
        if left <= 0:
            return
        yield batch.slice(0, left)
        left -= min(left, batch.num_rows)


@dataclass(frozen=True)
class Head:
    """The first rows of a result, and how many rows followed them.

    Attributes:
        columns: the column names.
        rows: the first rows, as Python values.
        more: rows of the result not in ``rows``.
    """

    columns: list[str]
    rows: list[tuple[Any, ...]]
    more: int


def head(reader: Any, limit: int | None) -> Head:
    """Keep the first ``limit`` rows (all when None) and count the rest without keeping it."""
    limited(iter(()), limit)  # validates limit
    columns = list(reader.schema.names)
    rows: list[tuple[Any, ...]] = []
    more = 0
    for batch in reader:
        room = batch.num_rows if limit is None else max(0, limit - len(rows))
        if room:
            part = batch.slice(0, room).to_pylist()
            rows.extend(tuple(r[c] for c in columns) for r in part)
        more += batch.num_rows - min(room, batch.num_rows)
    return Head(columns, rows, more)


def _flat_type(arrow_type: Any) -> Any:
    """The type a column takes in CSV: nested values become JSON text."""
    import pyarrow as pa

    if pa.types.is_dictionary(arrow_type):
        return _flat_type(arrow_type.value_type)
    nested = (
        pa.types.is_list(arrow_type)
        or pa.types.is_large_list(arrow_type)
        or pa.types.is_fixed_size_list(arrow_type)
        or pa.types.is_struct(arrow_type)
        or pa.types.is_map(arrow_type)
        or pa.types.is_union(arrow_type)
    )
    return pa.string() if nested else arrow_type


def _flat(batch: Any, schema: Any) -> Any:
    """``batch`` cast to the flat ``schema``: nested columns as JSON text."""
    import pyarrow as pa

    columns = []
    for column, field in zip(batch.columns, schema, strict=True):
        if column.type == field.type:
            columns.append(column)
        elif pa.types.is_dictionary(column.type) and column.type.value_type == field.type:
            columns.append(column.cast(field.type))
        else:
            text = [None if v is None else _dumps(v) for v in column.to_pylist()]
            columns.append(pa.array(text, type=pa.string()))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def write_csv(batches: Iterable[Any], sink: IO[bytes], schema: Any) -> int:
    """CSV with a header line; nested values as JSON text. Returns the rows written."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    flat = pa.schema([pa.field(f.name, _flat_type(f.type)) for f in schema])
    rows = 0
    with pacsv.CSVWriter(sink, flat) as writer:
        for batch in batches:
            writer.write_batch(_flat(batch, flat))
            rows += batch.num_rows
    return rows


def write_ndjson(batches: Iterable[Any], sink: IO[bytes]) -> int:
    """One JSON object per line. Returns the rows written."""
    rows = 0
    for batch in batches:
        for row in batch.to_pylist():
            sink.write((_dumps(row) + "\n").encode())
            rows += 1
    return rows


def write_json(batches: Iterable[Any], sink: IO[bytes]) -> int:
    """One JSON array of objects, a row per line. Returns the rows written."""
    rows = 0
    sink.write(b"[")
    for batch in batches:
        for row in batch.to_pylist():
            sink.write((",\n  " if rows else "\n  ").encode() + _dumps(row).encode())
            rows += 1
    sink.write(b"\n]\n" if rows else b"]\n")
    return rows


def write_parquet(batches: Iterable[Any], sink: IO[bytes], schema: Any) -> int:
    """A Parquet file (zstd). Returns the rows written."""
    import pyarrow.parquet as pq

    rows = 0
    with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
        for batch in batches:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


def write_format(fmt: str, batches: Iterable[Any], sink: IO[bytes], schema: Any) -> int:
    """Write ``batches`` in ``fmt`` (csv, json, ndjson or parquet). Returns the rows written.

    Raises:
        InvalidArgumentError: an unknown format.
    """
    if fmt == "csv":
        return write_csv(batches, sink, schema)
    if fmt == "json":
        return write_json(batches, sink)
    if fmt == "ndjson":
        return write_ndjson(batches, sink)
    if fmt == "parquet":
        return write_parquet(batches, sink, schema)
    raise InvalidArgumentError(f"output format {fmt!r}; give one of csv, json, ndjson, parquet")


def check_output_path(path: str | os.PathLike[str], catalogue: Path) -> Path:
    """``path`` as an output file, refused inside the catalogue (which roon sql never writes).

    Raises:
        InvalidArgumentError: the path lies inside the catalogue, or is a directory.
    """
    target = Path(path).expanduser().resolve()
    if target == catalogue or catalogue in target.parents:
        raise InvalidArgumentError(
            f"--output {path} lies inside the catalogue {catalogue}, which roon sql never "
            "writes; choose a file outside it"
        )
    if target.is_dir():
        raise InvalidArgumentError(f"--output {path} is a directory; give a file name")
    return target
