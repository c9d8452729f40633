"""DuckDB over the Parquet catalogue: one view per table, and read-only SQL.

Views read the table's files (:func:`roon.store.layout.table_glob`) when a query runs, so
they show every model committed by then. A table with no files when the connection
opens gets a typed empty view built from its schema file, so queries never fail for
lack of data (open a new connection to see its first rows).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from roon.errors import QueryError, one_line
from roon.schema import TABLES, duckdb_columns
from roon.store import layout

__all__ = ["scan_catalogue", "run_sql", "READ_ONLY_STATEMENTS"]

# Statement types `roon sql` runs; everything else could write (COPY, CREATE, ATTACH,
# INSTALL, EXPORT, SET, PRAGMA, ...) and is refused before it runs.
READ_ONLY_STATEMENTS = frozenset({"SELECT", "EXPLAIN"})


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _view_sql(root: Path, name: str) -> str:
    if not layout.table_files(root, name):
        return f'CREATE VIEW "{name}" AS SELECT * FROM (SELECT {_nulls(name)}) WHERE false'
    return (
        f'CREATE VIEW "{name}" AS SELECT * FROM '
        f"read_parquet({_quote(layout.table_glob(root, name))}, union_by_name = true)"
    )


def _nulls(name: str) -> str:
    cols = duckdb_columns(name).split(", ")
    return ", ".join(f"NULL::{c.split(' ', 1)[1]} AS {c.split(' ', 1)[0]}" for c in cols)


def scan_catalogue(path: str | os.PathLike[str], *, sandbox: bool = False) -> Any:
    """Open an in-memory DuckDB connection with one view per catalogue table.

    Args:
        path: the catalogue directory.
        sandbox: confine file access to the catalogue directory and lock the
            configuration (what ``roon sql`` uses).

    Returns:
        A ``duckdb.DuckDBPyConnection``; e.g. ``con.sql("select count(*) from neurons")``.

    Example:
        >>> con = scan_catalogue("roon-catalogue")            # doctest: +SKIP
        >>> con.sql("select method, count(*) from signatures group by 1").fetchall()
    """
    import duckdb

    root = layout.open_catalogue(path)
    con = duckdb.connect(":memory:")
    for name in TABLES:
        con.execute(_view_sql(root, name))
    if sandbox:
        con.execute(f"SET allowed_directories = [{_quote(str(root) + os.sep)}]")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    return con


def run_sql(path: str | os.PathLike[str], query: str) -> Any:
    """Run a read-only query over the catalogue and return its ``pyarrow.Table``.

    Raises:
        QueryError: the text holds a statement that could write, or does not parse or run.
    """
    import duckdb

    con = scan_catalogue(path, sandbox=True)
    try:
        statements = con.extract_statements(query)
    except duckdb.Error as exc:
        raise QueryError(f"SQL does not parse: {exc}") from None
    if not statements:
        raise QueryError("empty query; give a SELECT statement")
    for statement in statements:
        kind = str(statement.type).rsplit(".", 1)[-1]
        if kind not in READ_ONLY_STATEMENTS:
            raise QueryError(
                f"roon sql is read-only: {kind} statements are refused; use SELECT "
                "(or scan_catalogue() from Python for a writable connection)"
            )
    try:
        for statement in statements[:-1]:
            con.execute(statement)
        return con.sql(statements[-1].query).to_arrow_table()
    except duckdb.Error as exc:
        raise QueryError(one_line(exc)) from None
