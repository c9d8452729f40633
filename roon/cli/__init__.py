"""The ``roon`` command line: thin typer commands over the library.

Every command parses its options and calls one library function. Each command module
exposes ``register(app)``; :class:`~roon.cli._common.RoonGroup` is the one place where a
:class:`~roon.errors.RoonError` becomes a one-line message on stderr and exit code 1
(``--debug`` shows the traceback instead). Nothing heavy (torch, duckdb, pyarrow, neo4j)
is imported here; commands import what they need when they run.
"""

from __future__ import annotations

from typing import Annotated

import typer

from roon.cli._common import STATE, RoonGroup

app = typer.Typer(
    cls=RoonGroup,
    name="roon",
    help="Catalogue circuits in trained MLPs: ingest models, compute exact neuron "
    "signatures, query them with SQL (DuckDB) or Cypher (Neo4j).\n\n"
    "Example: roon ingest model.safetensors && roon where xor",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from roon import __version__

        typer.echo(f"roon {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")
    ] = False,
) -> None:
    STATE["debug"] = debug


def _register() -> None:
    from roon.cli import (
        activation_cmds,
        catalogue_cmds,
        circuit_cmds,
        demo_cmds,
        graph_cmds,
        input_space_cmds,
        match_cmds,
        normalize_cmds,
        signature_cmds,
        zoo_cmds,
    )

    for module in (
        catalogue_cmds,
        signature_cmds,
        normalize_cmds,
        activation_cmds,
        graph_cmds,
        circuit_cmds,
        match_cmds,
        zoo_cmds,
        input_space_cmds,
        demo_cmds,
    ):
        module.register(app)


_register()


def main() -> None:
    """Console-script entry point."""
    app()
