"""DuckDB over the Parquet catalogue: one view per table, and read-only SQL.

How the views read the files. Each table is a ``pyarrow.dataset`` over the explicit list
of segment files of one manifest generation (:func:`roon.store.layout.snapshot`, taken
once when the connection opens) with the table's schema from ``schema/tables/``,
registered in DuckDB under the table's name. So:

* **One snapshot per connection.** Every view of a connection shows the models that
  were committed when it opened, however many writers commit meanwhile (open a new
  connection to see them). A query that reads ``neurons`` twice sees one set of models.
  The connection leases that generation: ``roon compact`` and removals do not delete
  the files it reads while it lives.
* **No schema is read per connection.** Segment files are written with exactly the
  table's schema (conformed at write time); the dataset is given that schema, so opening
  a view reads no file. Files of an older definition of a table (a version-1 catalogue,
  a derived table before ``roon reindex``) are read by column name, missing columns as
  NULL: what ``union_by_name`` would do, without reading every footer up front.
* **Arrow reads the files, not DuckDB.** The read-only connection of ``roon sql``
  (``sandbox=True``) is then locked down with ``enable_external_access = false``, no
  allowed paths, no extension loading and a locked configuration: DuckDB itself can
  open no file at all, for reading or writing, inside the catalogue or outside it. The
  catalogue is unwritable to the query by construction; the statement check in
  :func:`check_read_only` (DuckDB's own parser decides the statement type) is a second
  wall that gives a clear message first.

A table with no files is an empty view of the right column types.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from roon.errors import InvalidArgumentError, QueryError, one_line
from roon.schema import TABLES, table_schema
from roon.store import layout

__all__ = [
    "READ_ONLY_STATEMENTS",
    "BATCH_ROWS",
    "scan_catalogue",
    "guarded_scan",
    "check_read_only",
    "stream_sql",
    "run_sql",
]

# Statement types `roon sql` runs: SELECT (which DuckDB's parser also gives DESCRIBE,
# SHOW, SUMMARIZE, VALUES and FROM-first queries), and EXPLAIN [ANALYZE] of a SELECT.
# Everything else could write or change the connection (COPY, EXPORT, ATTACH, INSTALL,
# LOAD, SET, PRAGMA, CREATE, INSERT, CALL, PIVOT's MULTI, ...) and is refused before it
# runs.
READ_ONLY_STATEMENTS = frozenset({"SELECT", "EXPLAIN"})
# Settings of the sandboxed connection, applied in this order; the last two close it.
_SANDBOX_SETTINGS = (
    ("python_enable_replacements", "false"),  # no scans of Python variables by name
    ("autoinstall_known_extensions", "false"),
    ("autoload_known_extensions", "false"),
    ("allow_community_extensions", "false"),
    ("allow_persistent_secrets", "false"),
    ("enable_external_access", "false"),  # DuckDB opens no file from here on
    ("lock_configuration", "true"),  # and no statement can change that
)
# Rows per Arrow batch streamed out of a query (bounded memory for any result size).
BATCH_ROWS = 65_536


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _register_views(con: Any, files: dict[str, list[Path]]) -> None:
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs

    local = pafs.LocalFileSystem()
    parquet = ds.ParquetFileFormat()
    for name in TABLES:
        # from_paths: no directory listing, no stat and no footer read per file
        dataset = ds.FileSystemDataset.from_paths(
            [str(f) for f in files[name]],
            schema=table_schema(name),
            format=parquet,
            filesystem=local,
        )
        con.register(name, dataset)


def _open(
    root: Path, *, sandbox: bool, temp_directory: Path | None = None
) -> tuple[Any, set[Path]]:
    """A connection with the views, and the files behind them (to tell a damaged file
    from any other error)."""
    import duckdb

    con = duckdb.connect(":memory:")
    snapshot = layout.snapshot(root)
    snapshot.keep_with(con)  # the files stay while the connection lives
    files = {t: snapshot.files(t) for t in TABLES}
    _register_views(con, files)
    if sandbox:
        # where DuckDB spills big sorts and joins: a private folder roon removes, or
        # nowhere (DuckDB would otherwise create .tmp/ in the working directory)
        spill = "" if temp_directory is None else str(temp_directory)
        con.execute(f"SET temp_directory = {_quote(spill)}")
        for setting, value in _SANDBOX_SETTINGS:
            con.execute(f"SET {setting} = {value}")
    return con, {f for paths in files.values() for f in paths}


def scan_catalogue(path: str | os.PathLike[str], *, sandbox: bool = False) -> Any:
    """Open an in-memory DuckDB connection with one view per catalogue table.

    Args:
        path: the catalogue directory.
        sandbox: lock the connection down as ``roon sql`` does: DuckDB may open no file
            (the views still read the catalogue, through Arrow), load no extension, and
            change no setting.

    Returns:
        A ``duckdb.DuckDBPyConnection``; e.g. ``con.sql("select count(*) from neurons")``.
        Its views show the models committed when it opened.

    Example:
        >>> con = scan_catalogue("roon-catalogue")            # doctest: +SKIP
        >>> con.sql("select method, count(*) from signatures group by 1").fetchall()
    """
    return _open(layout.open_catalogue(path), sandbox=sandbox)[0]


@contextlib.contextmanager
def guarded_scan(path: str | os.PathLike[str]) -> Iterator[Any]:
    """:func:`scan_catalogue` for roon's own queries: an error reading a damaged file of
    the views becomes the one-line :class:`~roon.errors.CatalogueError` that ``roon sql``
    gives (the model and ``roon check --repair``); any other error propagates as it is.
    The connection closes when the ``with`` block ends.

    Raises:
        CatalogueError: no catalogue, or a damaged file read inside the block.

    Example:
        >>> with guarded_scan("roon-catalogue") as con:  # doctest: +SKIP
        ...     con.execute("select count(*) from neurons").fetchall()
    """
    from roon.store.check import damage_error

    root = layout.open_catalogue(path)
    con, files = _open(root, sandbox=False)
    try:
        yield con
    except Exception as exc:  # DuckDB or Arrow failing on a file
        damaged = damage_error(root, one_line(exc), files)
        if damaged is None:
            raise
        raise damaged from None
    finally:
        con.close()


def _kind(statement: Any) -> str:
    return str(statement.type).rsplit(".", 1)[-1]


def _explained(con: Any, query: str) -> str | None:
    """The text of the statement an ``EXPLAIN [ANALYZE | (options)]`` wraps, or None."""
    import duckdb

    everything = duckdb.tokenize(query)
    starts = [pos for pos, _ in everything] + [len(query)]
    tokens = [  # (start, kind, text) of every token but comments
        (starts[k], str(kind).rsplit(".", 1)[-1], query[starts[k] : starts[k + 1]].strip())
        for k, (_, kind) in enumerate(everything)
        if not str(kind).endswith("comment")
    ]
    if not tokens or tokens[0][2].upper() != "EXPLAIN":
        return None
    i = 1
    if i < len(tokens) and tokens[i][2].upper() in ("ANALYZE", "ANALYSE"):
        i += 1
    elif i < len(tokens) and tokens[i][2] == "(":  # EXPLAIN (ANALYZE, FORMAT json) ...
        depth = 0
        while i < len(tokens):
            if tokens[i][1] == "operator":
                depth += tokens[i][2].count("(") - tokens[i][2].count(")")
            i += 1
            if depth <= 0:
                break
    return query[tokens[i][0] :] if i < len(tokens) else None


def check_read_only(con: Any, query: str) -> str:
    """The one read statement of ``query``, or a :class:`QueryError` saying why not.

    Statement types come from DuckDB's own parser, never from the text: a SELECT, or an
    EXPLAIN (with or without ANALYZE, which runs the statement) of a SELECT.

    Raises:
        QueryError: the text does not parse, is empty, holds more than one statement, or
            holds a statement that is not a read.
    """
    import duckdb

    try:
        statements = con.extract_statements(query)
    except duckdb.Error as exc:
        raise QueryError(f"SQL does not parse: {one_line(exc)}") from None
    if not statements:
        raise QueryError("empty query; give a SELECT statement")
    if len(statements) > 1:
        raise QueryError(
            f"roon sql runs one statement at a time and was given {len(statements)}; "
            "give one SELECT (join or union the parts, or run roon sql once per statement)"
        )
    statement = statements[0]
    kind = _kind(statement)
    if kind == "EXPLAIN":
        inner = _explained(con, statement.query)
        try:
            wrapped = con.extract_statements(inner) if inner else []
        except duckdb.Error:
            wrapped = []
        inner_kind = _kind(wrapped[0]) if len(wrapped) == 1 else "unknown"
        if inner_kind != "SELECT":
            raise QueryError(
                f"roon sql is read-only: EXPLAIN of a {inner_kind} statement is refused "
                "(EXPLAIN ANALYZE runs what it explains); explain a SELECT"
            )
    elif kind not in READ_ONLY_STATEMENTS:
        raise QueryError(
            f"roon sql is read-only: {kind} statements are refused; use SELECT "
            "(or scan_catalogue() from Python for a writable connection)"
        )
    return str(statement.query)


def _query_error(root: Path, files: set[Path], exc: Exception) -> Exception:
    """The one-line error for a failed query: a damaged file of the views named by its
    model, else DuckDB's own message."""
    from roon.store.check import damage_error

    damaged = damage_error(root, one_line(exc), files)
    return damaged if damaged is not None else QueryError(one_line(exc))


@contextlib.contextmanager
def stream_sql(
    path: str | os.PathLike[str], query: str, *, batch_rows: int = BATCH_ROWS
) -> Iterator[Any]:
    """Run one read-only query; yield its rows as a ``pyarrow.RecordBatchReader``.

    The rows are produced as they are read (memory stays bounded for any result size);
    the connection closes when the ``with`` block ends.

    Raises:
        QueryError: a statement that could write, or SQL that does not parse or run.
        CatalogueError: no catalogue, or a damaged file (named with its model and the fix).

    Example:
        >>> with stream_sql("roon-catalogue", "select * from edges") as reader:  # doctest: +SKIP
        ...     for batch in reader:
        ...         ...
    """
    import duckdb

    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        raise InvalidArgumentError(f"batch_rows {batch_rows!r}; give a positive integer")
    root = layout.open_catalogue(path)
    scratch = Path(tempfile.mkdtemp(prefix="roon-sql-"))
    con = None
    try:
        con, files = _open(root, sandbox=True, temp_directory=scratch)
        statement = check_read_only(con, query)
        try:
            relation = con.sql(statement)
            # DuckDB 2 names it to_arrow_reader, 1.x fetch_arrow_reader
            fetch = getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader
            reader = fetch(batch_rows)
        except duckdb.Error as exc:
            raise _query_error(root, files, exc) from None
        yield _Guarded(reader, root, files)
    finally:
        if con is not None:
            con.close()
        shutil.rmtree(scratch, ignore_errors=True)


class _Guarded:
    """A record batch reader whose read errors become roon's one-line errors."""

    def __init__(self, reader: Any, root: Path, files: set[Path]) -> None:
        self._reader = reader
        self._root = root
        self._files = files
        self.schema = reader.schema

    def __iter__(self) -> Iterator[Any]:
        while True:
            try:
                batch = self._reader.read_next_batch()
            except StopIteration:
                return
            except Exception as exc:  # DuckDB or Arrow failing mid-stream
                raise _query_error(self._root, self._files, exc) from None
            yield batch

    def read_all(self) -> Any:
        import pyarrow as pa

        return pa.Table.from_batches(list(self), schema=self.schema)


def run_sql(path: str | os.PathLike[str], query: str) -> Any:
    """Run one read-only query over the catalogue and return its ``pyarrow.Table``.

    Raises:
        QueryError: the text holds a statement that could write, more than one
            statement, or does not parse or run.
        CatalogueError: no catalogue, or a damaged file (named with its model and the fix).
    """
    with stream_sql(path, query) as reader:
        return reader.read_all()
