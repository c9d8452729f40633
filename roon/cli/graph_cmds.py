"""Graph commands: ``roon graph init|push|export`` and ``roon cypher``.

Connection options default to the environment (``NEO4J_URI``, ``NEO4J_USER``,
``NEO4J_DATABASE``); the password comes from ``NEO4J_PASSWORD`` or a hidden prompt and
is handed to the driver only: never printed, never logged.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from roon.cli._common import (
    DEFAULT_CATALOGUE,
    CatalogueOption,
    JsonOption,
    ProgressBars,
    RoonGroup,
    console,
    plain,
    print_json,
    print_rows,
)
from roon.errors import GraphStoreError
from roon.query.neo4j import DEFAULT_BATCH_SIZE, DEFAULT_DATABASE, DEFAULT_URI, DEFAULT_USER

UriOption = Annotated[
    str,
    typer.Option("--uri", envvar="NEO4J_URI", help="Neo4j URI (env NEO4J_URI)."),
]
UserOption = Annotated[
    str, typer.Option("--user", envvar="NEO4J_USER", help="Neo4j user (env NEO4J_USER).")
]
DatabaseOption = Annotated[
    str,
    typer.Option("--database", envvar="NEO4J_DATABASE", help="Database (env NEO4J_DATABASE)."),
]


class ExportFormat(str, Enum):
    neo4j_admin = "neo4j-admin"


def _password() -> str:
    """``NEO4J_PASSWORD``, else a hidden prompt on a terminal."""
    value = os.environ.get("NEO4J_PASSWORD")
    if value is not None:
        return value
    if not sys.stdin.isatty():
        raise GraphStoreError("no Neo4j password: set NEO4J_PASSWORD (roon prompts only on a tty)")
    return str(typer.prompt("Neo4j password", hide_input=True))


def _connect(uri: str, user: str, database: str) -> Any:
    from roon.query.neo4j.connection import connect

    return connect(uri, user, _password(), database=database)


def init(
    uri: UriOption = DEFAULT_URI,
    user: UserOption = DEFAULT_USER,
    database: DatabaseOption = DEFAULT_DATABASE,
) -> None:
    """Create the graph's constraints and indexes (schema/neo4j.cypher); idempotent.

    Example: NEO4J_PASSWORD=... roon graph init --uri neo4j://localhost:7687
    """
    from roon.query.neo4j.connection import display_uri
    from roon.query.neo4j.schema import init_schema

    with _connect(uri, user, database) as store:
        statements = init_schema(store)
    console().print(
        plain(
            f"applied {len(statements)} schema statements → {display_uri(uri)} ",
            f"(database {database})",
        )
    )


def push(
    catalogue: CatalogueOption = DEFAULT_CATALOGUE,
    uri: UriOption = DEFAULT_URI,
    user: UserOption = DEFAULT_USER,
    database: DatabaseOption = DEFAULT_DATABASE,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Rows per UNWIND transaction.")
    ] = DEFAULT_BATCH_SIZE,
    min_weight: Annotated[
        float,
        typer.Option("--min-weight", min=0.0, help="Send only FEEDS with |weight| >= this."),
    ] = 0.0,
    as_json: JsonOption = False,
) -> None:
    """Write the catalogue to Neo4j; models already complete there are skipped.

    Re-running changes nothing, and an interrupted push resumes where it stopped.

    Example: NEO4J_PASSWORD=... roon graph push --catalogue cat --min-weight 0.05
    """
    from roon.query.neo4j.push import push_catalogue

    with _connect(uri, user, database) as store, ProgressBars() as bars:
        summary = push_catalogue(
            store,
            catalogue,
            batch_size=batch_size,
            min_weight=min_weight,
            progress=None if as_json else bars,
        )
    if as_json:
        print_json(summary.__dict__)
        return
    out = console()
    out.print(
        plain(
            f"pushed {len(summary.models_pushed)} models, skipped {len(summary.models_skipped)} "
            f"already complete, merged {summary.lineage_rows} lineage rows and "
            f"{summary.match_rows} circuit matches "
            f"→ {summary.uri} (database {summary.database})"
        )
    )
    out.print(
        f"{summary.rows_sent:,} rows in {summary.batches:,} batches: created "
        f"{summary.nodes_created:,} nodes, {summary.relationships_created:,} relationships "
        f"in {summary.seconds:.1f} s"
    )


def export(
    directory: Annotated[Path, typer.Argument(help="Output directory for the CSV files.")],
    export_format: Annotated[
        ExportFormat, typer.Option("--format", help="Export format.")
    ] = ExportFormat.neo4j_admin,
    catalogue: CatalogueOption = DEFAULT_CATALOGUE,
    min_weight: Annotated[
        float,
        typer.Option("--min-weight", min=0.0, help="Export only FEEDS with |weight| >= this."),
    ] = 0.0,
    database: DatabaseOption = DEFAULT_DATABASE,
    as_json: JsonOption = False,
) -> None:
    """Write neo4j-admin import CSV files, with the import command in DIR/README.md.

    The bulk road for catalogues too large for `roon graph push`.

    Example: roon graph export --format neo4j-admin neo4j-import --catalogue cat
    """
    from roon.query.neo4j.export import export_neo4j_admin

    summary = export_neo4j_admin(catalogue, directory, min_weight=min_weight, database=database)
    if as_json:
        print_json({**summary.__dict__, "directory": str(summary.directory)})
        return
    print_rows(["group", "rows"], sorted(summary.rows.items()))
    console().print(
        plain(f"wrote {summary.directory}; import command in {summary.directory}/README.md")
    )


def _cell(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return value


def cypher(
    query: Annotated[str, typer.Argument(help="A read-only Cypher query.")],
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", "-p", help="Query parameter name=value (JSON when it parses); repeatable."
        ),
    ] = None,
    uri: UriOption = DEFAULT_URI,
    user: UserOption = DEFAULT_USER,
    database: DatabaseOption = DEFAULT_DATABASE,
    as_json: JsonOption = False,
) -> None:
    """Run a read-only Cypher query on the layer graph; values go in as --param.

    Example: roon cypher "MATCH (m:Model) WHERE m.n_layers >= $n RETURN m.name" --param n=2
    """
    from roon.query.neo4j.read import run_read_query
    from roon.query.neo4j.statements import parse_params

    params = parse_params(param or [])
    # roon prints the server's warnings itself, one line each (below); the driver would
    # also log each as a multi-line record through logging's last-resort handler
    logging.getLogger("neo4j.notifications").addHandler(logging.NullHandler())
    with _connect(uri, user, database) as store:
        result = run_read_query(store, query, params)
    for warning in result.warnings:
        typer.echo(f"roon: warning: {warning}", err=True)
    if as_json:
        print_json([dict(zip(result.columns, row, strict=True)) for row in result.rows])
    else:
        print_rows(result.columns, [[_cell(v) for v in row] for row in result.rows])


def register(app: typer.Typer) -> None:
    """Add ``roon graph init|push|export`` and ``roon cypher`` to the app."""
    graph = typer.Typer(
        cls=RoonGroup,
        name="graph",
        help="The Neo4j layer graph: apply its schema, push the catalogue, export for bulk "
        "import.\n\nExample: roon graph export graph-export --catalogue roon-catalogue",
        no_args_is_help=True,
    )
    graph.command("init")(init)
    graph.command("push")(push)
    graph.command("export")(export)
    app.add_typer(graph, name="graph")
    app.command("cypher")(cypher)
