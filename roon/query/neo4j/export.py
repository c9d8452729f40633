"""Export the catalogue as CSV files for ``neo4j-admin database import full``.

The bulk road into Neo4j, for catalogues too large for transactional pushes: DuckDB
streams each node and relationship group from the Parquet files straight into a CSV
file (``COPY (SELECT ...) TO ...``, no Python loop over rows), beside a one-line header
file in neo4j-admin's header syntax (``id:ID(Neuron)``, ``:LABEL``,
``:START_ID(Neuron)``, ``:END_ID(Neuron)``, ``:TYPE``, ``weight:double``, ...). Headers
apart from the data is the layout neo4j-admin recommends for large files: a header can be
read or edited without opening gigabytes. ``README.md`` in the output directory holds the
exact import command.

The graph is the one ``roon graph push`` writes (the property mappings are shared, see
:mod:`roon.query.neo4j.model`), including ``pushed = true`` on every model, so a later
push to the imported database skips them.

Example:
    >>> from roon.query.neo4j.export import export_neo4j_admin
    >>> summary = export_neo4j_admin("roon-catalogue", "neo4j-import")  # doctest: +SKIP
    >>> print(summary.command)                                         # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from roon.errors import CatalogueError, InvalidArgumentError
from roon.query.neo4j import model as gm

__all__ = ["CsvGroup", "ExportSummary", "csv_groups", "import_command", "export_neo4j_admin"]


@dataclass(frozen=True)
class CsvGroup:
    """One node or relationship group: ``<name>.header.csv`` + ``<name>.csv``."""

    name: str
    kind: str  # "nodes" or "relationships"
    header: tuple[str, ...]
    sql: str


@dataclass
class ExportSummary:
    """What an export wrote: rows per group, the directory and the import command."""

    directory: Path
    database: str = "neo4j"
    rows: dict[str, int] = field(default_factory=dict)
    command: str = ""


def _typed(name: str, source: str) -> str:
    return f"{name}:{gm.neo4j_type(gm.property_type(source))}"


def _header(props: tuple[tuple[str, str], ...], group: str, key: str = "id") -> list[str]:
    return [f"{key}:ID({group})" if n == key else _typed(n, s) for n, s in props]


def _value(source: str, alias: str) -> str:
    """SQL for one column; timestamps as ISO 8601 with Z, which neo4j-admin parses."""
    column = f'{alias}."{source.split(".", 1)[1]}"'
    kind = gm.property_type(source)
    if kind.startswith("timestamp"):
        return f"strftime({column} AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%fZ')"
    if gm.as_text(source):  # wide integers as text, as a push sends them (graph_value)
        if kind.startswith("list<"):
            return f"array_to_string({column}, ',')"
        return f"CAST({column} AS VARCHAR)"
    return column


def _select(props: tuple[tuple[str, str], ...], aliases: dict[str, str]) -> str:
    return ", ".join(_value(s, aliases[s.split(".", 1)[0]]) for _, s in props)


def _nulls(count: int) -> str:
    return ", ".join(["NULL"] * count)


def csv_groups(min_weight: float = 0.0) -> list[CsvGroup]:
    """The CSV groups of an export, with their headers and DuckDB queries.

    The queries read the views of :func:`roon.query.scan.scan_catalogue`.
    """
    if not (min_weight >= 0 and math.isfinite(min_weight)):
        raise InvalidArgumentError(f"min weight {min_weight}: give a finite number >= 0")
    mp, lp, np_ = gm.MODEL_PROPERTIES, gm.LAYER_PROPERTIES, gm.NEURON_PROPERTIES
    mw = repr(float(min_weight))  # a float's repr is a valid SQL literal
    model_sql = (
        f"SELECT {_select(mp, {'models': 'm', 'provenance': 'p'})}, {mw}, true, 'Model' "
        "FROM models m LEFT JOIN provenance p USING (model_id) "
        # lineage may name models the catalogue lacks: bare nodes, as a push makes them
        f"UNION ALL SELECT id, {_nulls(len(mp) + 1)}, 'Model' FROM ("
        "SELECT parent_id AS id FROM lineage UNION SELECT child_id FROM lineage "
        "EXCEPT SELECT model_id FROM models)"
    )
    layer_sql = (
        f"SELECT {_select(lp, {'layers': 'l'})}, 'Layer' FROM layers l "
        "UNION ALL SELECT model_id || ':-1', model_id, -1, NULL, input_width, NULL, NULL, "
        "'Layer;Input' FROM models"
    )
    neuron_sql = (
        f"SELECT {_select(np_, {'neurons': 'n'})}, 'Neuron' FROM neurons n "
        "UNION ALL SELECT model_id || ':-1:' || i, model_id, -1, i, NULL, NULL, NULL, NULL, "
        "'Neuron;Input' FROM (SELECT model_id, unnest(range(input_width)) AS i FROM models)"
    )
    # one node per hash; its properties from the first neuron (by id) that computes it
    signature_sql = (
        f"SELECT {_select(gm.SIGNATURE_PROPERTIES, {'signatures': 's'})}, 'Signature' FROM ("
        "SELECT *, row_number() OVER (PARTITION BY hash ORDER BY neuron_id) AS k "
        "FROM signatures) s WHERE k = 1"
    )
    computes = _select(gm.COMPUTES_PROPERTIES, {"signatures": "s"})
    derived = _select(gm.DERIVED_FROM_PROPERTIES, {"lineage": "r"})
    return [
        CsvGroup(
            "models",
            "nodes",
            (*_header(mp, "Model"), "feeds_min_weight:double", "pushed:boolean", ":LABEL"),
            model_sql,
        ),
        CsvGroup("layers", "nodes", (*_header(lp, "Layer"), ":LABEL"), layer_sql),
        CsvGroup("neurons", "nodes", (*_header(np_, "Neuron"), ":LABEL"), neuron_sql),
        CsvGroup(
            "signatures",
            "nodes",
            (*_header(gm.SIGNATURE_PROPERTIES, "Signature", key="hash"), ":LABEL"),
            signature_sql,
        ),
        CsvGroup(
            "has_layer",
            "relationships",
            (":START_ID(Model)", ":END_ID(Layer)", ":TYPE"),
            "SELECT model_id, layer_id, 'HAS_LAYER' FROM layers "
            "UNION ALL SELECT model_id, model_id || ':-1', 'HAS_LAYER' FROM models",
        ),
        CsvGroup(
            "next",
            "relationships",
            (":START_ID(Layer)", ":END_ID(Layer)", ":TYPE"),
            "SELECT a.layer_id, b.layer_id, 'NEXT' FROM layers a JOIN layers b "
            "ON a.model_id = b.model_id AND b.layer = a.layer + 1 "
            "UNION ALL SELECT model_id || ':-1', layer_id, 'NEXT' FROM layers WHERE layer = 0",
        ),
        CsvGroup(
            "has_neuron",
            "relationships",
            (":START_ID(Layer)", ":END_ID(Neuron)", ":TYPE"),
            "SELECT model_id || ':' || layer, neuron_id, 'HAS_NEURON' FROM neurons "
            "UNION ALL SELECT model_id || ':-1', model_id || ':-1:' || i, 'HAS_NEURON' "
            "FROM (SELECT model_id, unnest(range(input_width)) AS i FROM models)",
        ),
        CsvGroup(
            "feeds",
            "relationships",
            (":START_ID(Neuron)", ":END_ID(Neuron)", _typed("weight", "edges.weight"), ":TYPE"),
            f"SELECT source_id, target_id, weight, 'FEEDS' FROM edges WHERE abs(weight) >= {mw}",
        ),
        CsvGroup(
            "computes",
            "relationships",
            (
                ":START_ID(Neuron)",
                ":END_ID(Signature)",
                *(_typed(n, s) for n, s in gm.COMPUTES_PROPERTIES),
                ":TYPE",
            ),
            f"SELECT s.neuron_id, s.hash, {computes}, 'COMPUTES' FROM signatures s",
        ),
        CsvGroup(
            "derived_from",
            "relationships",
            (
                ":START_ID(Model)",
                ":END_ID(Model)",
                *(_typed(n, s) for n, s in gm.DERIVED_FROM_PROPERTIES),
                ":TYPE",
            ),
            f"SELECT r.child_id, r.parent_id, {derived}, 'DERIVED_FROM' FROM lineage r",
        ),
    ]


def import_command(directory: str | os.PathLike[str], database: str = "neo4j") -> str:
    """The ``neo4j-admin database import full`` command for an export in ``directory``.

    The database name comes right after ``full`` (Neo4j 5.19+ reads the file lists
    greedily). ``--overwrite-destination`` is needed because a Neo4j server that has
    started once already holds an (empty) ``neo4j`` database; it replaces that database.
    Arguments are shell-quoted, so a directory with spaces pastes into a shell intact.
    """
    where = Path(directory)
    lines = [
        f"neo4j-admin database import full {shlex.quote(database)}",
        "--overwrite-destination=true",
    ]
    for group in csv_groups():
        files = f"{where / f'{group.name}.header.csv'},{where / f'{group.name}.csv'}"
        lines.append(shlex.quote(f"--{group.kind}={files}"))
    return " \\\n    ".join(lines)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def export_neo4j_admin(
    catalogue: str | os.PathLike[str],
    directory: str | os.PathLike[str],
    *,
    min_weight: float = 0.0,
    database: str = "neo4j",
) -> ExportSummary:
    """Write the catalogue as neo4j-admin CSV files (plus README.md) into ``directory``.

    Args:
        catalogue: the catalogue directory.
        directory: output directory (created; files of a previous export are replaced).
        min_weight: export only FEEDS with ``|weight| >= min_weight``.
        database: database name used in the import command of the README.

    Raises:
        CatalogueError: no catalogue at ``catalogue``, or ``directory`` is a file.
    """
    from roon.query.scan import scan_catalogue

    out = Path(directory).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise CatalogueError(f"export directory {out} is a file; choose a directory")
    if "," in str(out):  # neo4j-admin splits --nodes/--relationships file lists on commas
        raise CatalogueError(
            f"export directory {out} holds a comma, which neo4j-admin reads as a separator "
            "between files; choose a path without one"
        )
    groups = csv_groups(min_weight)
    con = scan_catalogue(catalogue)
    out.mkdir(parents=True, exist_ok=True)
    summary = ExportSummary(out, database)
    for group in groups:
        (out / f"{group.name}.header.csv").write_text(",".join(group.header) + "\n")
        target = out / f"{group.name}.csv"
        copy = f"COPY ({group.sql}) TO {_quote(str(target))} (FORMAT csv, HEADER false)"
        summary.rows[group.name] = int(con.execute(copy).fetchone()[0])  # rows written
    summary.command = import_command(out, database)
    (out / "README.md").write_text(_readme(summary, min_weight))
    return summary


def _readme(summary: ExportSummary, min_weight: float) -> str:
    counts = "\n".join(f"| {name} | {rows} |" for name, rows in summary.rows.items())
    feeds = "all stored edges" if min_weight == 0 else f"edges with |weight| >= {min_weight}"
    mount = shlex.quote(f"{summary.directory}:/import/roon:ro")
    return f"""# roon layer graph: neo4j-admin import files

Written by `roon graph export --format neo4j-admin`. Each group is a one-line header
file (`<group>.header.csv`) and a data file (`<group>.csv`, no header line). FEEDS holds
{feeds}.

| group | rows |
| --- | --- |
{counts}

## Import

Stop the server first (the import writes the store files directly), then run:

```sh
{summary.command}
```

This **replaces** the database. Start the server again and run `roon graph init` to add
the constraints and indexes (the import does not create them).

With the compose file of roon's repository (paths inside the container):

```sh
docker compose -f docker/compose.yaml stop neo4j
docker compose -f docker/compose.yaml run --rm -v {mount} \\
    neo4j {import_command("/import/roon", summary.database).replace(chr(10), chr(10) + "    ")}
docker compose -f docker/compose.yaml up -d --wait
roon graph init
```
"""
