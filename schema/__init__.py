"""roon's schemas: the single source of truth for tables and graph.

Installed as ``roon.schema``. Files beside this module:

* ``tables/<name>.json`` — one catalogue table each: columns with Arrow type, nullability
  and a description. :func:`table_schema` turns one into a ``pyarrow.Schema``;
  :func:`duckdb_columns` into DuckDB column definitions for empty views.
* ``neo4j.cypher`` — constraints and indexes that ``roon graph init`` applies.
* ``tokens.json`` — the grammar (regular expressions) of every token kind.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from roon.errors import InvalidArgumentError

__all__ = ["TABLES", "table_spec", "table_schema", "duckdb_columns", "duckdb_type", "read_text"]

# Catalogue tables in the order they are written for a model.
TABLES = (
    "models",
    "layers",
    "neurons",
    "edges",
    "provenance",
    "signatures",
    "tokens",
    "restricted",
    "input_space",
    "lineage",
    "matches",
    "activation_matches",
)

# Spec type -> DuckDB type. Counts that may exceed 64 bits are decimal128(38,0), which
# Parquet stores as DECIMAL(38,0) and DuckDB reads as DECIMAL(38,0): exact integers of up
# to 38 digits, summable and comparable in SQL (HUGEINT would reach 2^127 but has no
# Arrow or Parquet type of its own). "list<T>" is a list of T (DuckDB T[]).
_DUCKDB_TYPES = {
    "string": "VARCHAR",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "float64": "DOUBLE",
    "bool": "BOOLEAN",
    "timestamp[us, tz=UTC]": "TIMESTAMP WITH TIME ZONE",
    "decimal128(38,0)": "DECIMAL(38,0)",
}


def read_text(name: str) -> str:
    """Return the text of a schema file, e.g. ``read_text("neo4j.cypher")``."""
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


@cache
def table_spec(name: str) -> dict[str, Any]:
    """The parsed ``tables/<name>.json`` spec of one catalogue table."""
    if name not in TABLES:
        raise InvalidArgumentError(
            f"unknown catalogue table {name!r}; tables are {', '.join(TABLES)}"
        )
    return json.loads(read_text(f"tables/{name}.json"))


def _arrow_type(type_name: str) -> Any:
    import pyarrow as pa

    if type_name.startswith("list<") and type_name.endswith(">"):
        return pa.list_(_arrow_type(type_name[5:-1]))
    if type_name.startswith("timestamp["):
        return pa.timestamp("us", tz="UTC")
    return {
        "string": pa.string(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "decimal128(38,0)": pa.decimal128(38, 0),
    }[type_name]


def duckdb_type(type_name: str) -> str:
    """DuckDB type of a spec type (``"list<decimal128(38,0)>"`` -> ``"DECIMAL(38,0)[]"``)."""
    if type_name.startswith("list<") and type_name.endswith(">"):
        return duckdb_type(type_name[5:-1]) + "[]"
    return _DUCKDB_TYPES[type_name]


@cache
def table_schema(name: str) -> Any:
    """The ``pyarrow.Schema`` of a catalogue table, built from its JSON spec."""
    import pyarrow as pa

    spec = table_spec(name)
    return pa.schema(
        [
            pa.field(c["name"], _arrow_type(c["type"]), nullable=c["nullable"])
            for c in spec["columns"]
        ]
    )


def duckdb_columns(name: str) -> str:
    """DuckDB column list (``"a VARCHAR, b INTEGER"``) of a catalogue table."""
    return ", ".join(f'"{c["name"]}" {duckdb_type(c["type"])}' for c in table_spec(name)["columns"])
