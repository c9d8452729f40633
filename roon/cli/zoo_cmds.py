"""Zoo commands: ``roon zoo train``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from roon.cli._common import (
    JsonOption,
    ProgressBars,
    RoonGroup,
    console,
    parse_int_list,
    print_json,
    print_rows,
)
from roon.errors import InvalidArgumentError

zoo_app = typer.Typer(
    cls=RoonGroup,
    name="zoo",
    help="An offline zoo of small ReLU MLPs trained on tasks whose circuits are known."
    "\n\nExample: roon zoo train zoo --tasks and,xor,abs --seeds 2",
    no_args_is_help=True,
)


def _fmt(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}g}"


@zoo_app.command("train")
def train(
    directory: Annotated[Path, typer.Argument(help="Zoo directory (created if missing).")],
    tasks: Annotated[
        str | None,
        typer.Option(
            "--tasks",
            help="Comma-separated tasks (and, or, xor, maj3, parity3, abs, min, max, sub, "
            "absdiff, greater, digits, shuffled-<task>); default all.",
        ),
    ] = None,
    seeds: Annotated[int, typer.Option("--seeds", help="Seeds per task and width: 0..N-1.")] = 5,
    widths: Annotated[
        str | None,
        typer.Option(
            "--widths", help="Hidden widths for every task, e.g. 2,4,8 (default: per task)."
        ),
    ] = None,
    controls: Annotated[
        bool,
        typer.Option(
            "--controls/--no-controls",
            help="Also train shuffled-label controls (widest width, every seed).",
        ),
    ] = True,
    force: Annotated[
        bool, typer.Option("--force", help="Retrain models already there with an identical card.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Train small ReLU MLPs on gates, arithmetic and digits, with a card beside each.

    Deterministic (the same seed gives the same bytes); models already there with an
    identical card are skipped.

    Example: roon zoo train zoo --tasks and,xor,abs --seeds 3 --widths 2,4
    """
    from roon.zoo import train_zoo

    names = [t.strip() for t in tasks.split(",") if t.strip()] if tasks is not None else None
    if names is not None and not names:
        raise InvalidArgumentError("--tasks is empty; give task names, e.g. and,xor,abs")
    options = {
        "seeds": seeds,
        "widths": parse_int_list(widths, "--widths"),
        "controls": controls,
        "force": force,
    }
    if as_json:
        result = train_zoo(directory, names, **options)
    else:
        with ProgressBars() as bars:
            result = train_zoo(directory, names, progress=bars, **options)
    summaries = result.by_task()
    if as_json:
        print_json(
            {
                "directory": str(result.directory),
                "seconds": result.seconds,
                "tasks": [s.__dict__ for s in summaries],
                "models": [{**m.__dict__, "path": str(m.path)} for m in result.models],
            }
        )
        return
    rows = [
        (
            s.task,
            s.models,
            s.trained,
            f"{s.converged}/{s.models}",
            _fmt(s.mean_loss),
            _fmt(s.mean_accuracy, 3),
            _fmt(s.mean_max_error, 3),
            f"{s.seconds:.2f}",
        )
        for s in summaries
    ]
    columns = ["task", "models", "trained", "converged", "mean loss", "mean accuracy"]
    print_rows([*columns, "mean max error", "seconds"], rows)
    trained = sum(s.trained for s in summaries)
    present = len(result.models) - trained
    console().print(
        f"trained {trained} models, {present} already present with an identical card "
        f"→ {result.directory} in {result.seconds:.1f} s"
    )


def register(app: typer.Typer) -> None:
    """Add ``roon zoo ...`` to the app."""
    app.add_typer(zoo_app, name="zoo")
