"""Options and output helpers shared by the command modules."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

CatalogueOption = Annotated[
    Path,
    typer.Option(
        "--catalogue",
        "-c",
        envvar="ROON_CATALOGUE",
        help="Catalogue directory (env ROON_CATALOGUE).",
        show_default=True,
    ),
]
DEFAULT_CATALOGUE = Path("roon-catalogue")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def console(stderr: bool = False) -> Any:
    """A rich console (imported lazily).

    Output that is not a terminal (a pipe, a file, a test) gets a 160-column canvas so
    tables are not folded at rich's 80-column default.
    """
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 160
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=width)


def compact_activations(activations: str) -> str:
    """``relu,relu,relu,linear`` → ``relu×3,linear`` for display."""
    runs: list[list[Any]] = []
    for name in activations.split(","):
        if runs and runs[-1][0] == name:
            runs[-1][1] += 1
        else:
            runs.append([name, 1])
    return ",".join(name if count == 1 else f"{name}×{count}" for name, count in runs)


def progress_bar() -> Any:
    """A transient rich progress bar on stderr (stdout stays clean for tables and JSON)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console(stderr=True),
        transient=True,
    )


def print_json(obj: Any) -> None:
    """Write ``obj`` as indented JSON to stdout."""
    sys.stdout.write(json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def print_rows(
    columns: list[str], rows: list[list[Any]] | list[tuple[Any, ...]], title: str | None = None
) -> None:
    """Print rows as a rich table."""
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for name in columns:
        table.add_column(str(name), overflow="fold")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console().print(table)
