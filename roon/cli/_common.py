"""What the command modules share: the error-handling group, options, output, progress.

Untrusted text (model names from file headers, paths, query results, error messages)
reaches the terminal only through :func:`plain`: the console reads no markup and no
emoji codes at all (``[/]`` in a name would raise, ``[link=...]`` would become a link,
``:x:`` an emoji), and control characters (``ESC`` sequences that would drive the
terminal, bidirectional overrides) are shown as escapes instead of being obeyed.
"""

from __future__ import annotations

import json
import re
import sys
import traceback
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from roon.errors import RoonError, one_line
from roon.progress import Progress

# Set by the root callback (``roon --debug``).
STATE = {"debug": False}


def _click_exceptions() -> Any:
    """The click exception classes typer raises (typer >= 0.20 vendors click)."""
    try:
        from typer._click import exceptions
    except ImportError:  # older typer: click itself
        from click import exceptions  # type: ignore[no-redef]
    return exceptions


def _fail(message: str) -> None:
    typer.echo(f"roon: error: {printable(message)}", err=True)
    sys.exit(1)


# Commands that write the catalogue (or files); an interrupt leaves what they committed,
# whole (every commit is one rename), and nothing partial.
WRITING_COMMANDS = frozenset(
    {"ingest", "reindex", "check", "normalize", "zoo", "rm", "where", "demo"}
)
INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


class RoonGroup(TyperGroup):
    """Command group in which every error ends as one line on stderr and exit code 1.

    Library errors (:class:`~roon.errors.RoonError`, ``OSError``) say what is wrong and
    the fix; usage errors (an unknown option, a missing argument, a bad value) keep
    click's message and point at ``--help`` instead of drawing a box and exiting with 2;
    anything else is a bug in roon, reported as such. ``roon --debug`` shows tracebacks.
    Ctrl-C ends in one line and exit code 130.
    """

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        errors = _click_exceptions()
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except errors.ClickException as exc:
            ctx = getattr(exc, "ctx", None)
            if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
                typer.echo(ctx.get_help())  # `roon` alone asks for help: not an error
                sys.exit(0)
            hint = ""
            if isinstance(exc, errors.UsageError) and ctx is not None:
                hint = f" (see '{ctx.command_path} --help')"
            _fail(f"{one_line(exc.format_message())}{hint}")
        except (typer.Abort, getattr(errors, "Abort", typer.Abort)):
            _fail("aborted")
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: typer.Context) -> Any:
        passing = (typer.Exit, typer.Abort, _click_exceptions().ClickException)
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            if ctx.invoked_subcommand in WRITING_COMMANDS:
                said = (
                    "interrupted; what was committed before it is kept whole and nothing "
                    "partial was written; run the command again to finish"
                )
            else:
                said = "interrupted; the catalogue is unchanged"
            typer.echo(f"roon: {said}", err=True)
            raise typer.Exit(INTERRUPTED) from None
        except (RoonError, OSError) as exc:
            if STATE["debug"]:
                traceback.print_exc()
            _fail(one_line(exc) or type(exc).__name__)
        except passing:
            raise
        except Exception as exc:  # a bug: say so in one line, the traceback on --debug
            if STATE["debug"]:
                traceback.print_exc()
            _fail(
                f"internal error, a bug in roon ({type(exc).__name__}: {one_line(exc)[:200]}); "
                "run with 'roon --debug ...' for the traceback and please report it"
            )


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

ActivationOption = Annotated[
    str | None,
    typer.Option(
        help="Hidden activation for model files that store none (state_dicts, plain "
        "safetensors); default relu, reported as assumed."
    ),
]


class Domain(str, Enum):
    """Signature domain of a layer's inputs."""

    binary = "binary"
    signed = "signed"


class InputDomain(str, Enum):
    """Signature domain of a model's inputs at ingest (``box``: every layer on its box)."""

    binary = "binary"
    signed = "signed"
    box = "box"


def parse_bounds(text: str | None, option: str = "--input-bounds") -> tuple[float, float] | None:
    """``"LO,HI"`` → ``(lo, hi)`` (None stays None)."""
    from roon.errors import InvalidArgumentError

    if text is None:
        return None
    try:
        lo, hi = (float(part) for part in text.split(","))
    except ValueError:
        raise InvalidArgumentError(f"{option} {text!r}; give LO,HI such as 0,1") from None
    return lo, hi


def parse_int_list(text: str | None, option: str) -> list[int] | None:
    """``"2,4,8"`` → ``[2, 4, 8]`` (None stays None); empty parts are skipped.

    Raises:
        InvalidArgumentError: no number, a part that is not an integer, or one below 1;
            the message names ``option``.
    """
    from roon.errors import InvalidArgumentError

    if text is None:
        return None
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise InvalidArgumentError(
            f"{option} {text!r}: give comma-separated positive integers, e.g. 2,4,8"
        )
    return values


class Exact(str, Enum):
    """Exact policy of neurons beyond the exhaustive limit (roon.kernels.plan)."""

    auto = "auto"
    always = "always"
    never = "never"


ExactOption = Annotated[
    Exact,
    typer.Option(
        help="Wide neurons: auto (exact within --exact-budget, the rest sampled), "
        "always (exact wherever an exact method reaches) or never (sampled)."
    ),
]
ExactBudgetOption = Annotated[
    float | None,
    typer.Option(
        help="Estimated seconds of exact work per model under --exact auto (default 0.25).",
        min=0.0,
    ),
]


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def console(stderr: bool = False) -> Any:
    """A rich console (imported lazily) that prints strings as they are: no markup, no
    emoji codes, no highlighting. Styles come only from :func:`plain` parts.

    Output that is not a terminal (a pipe, a file, a test) gets a 160-column canvas so
    tables are not folded at rich's 80-column default.
    """
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 160
    return Console(
        stderr=stderr,
        markup=False,
        emoji=False,
        highlight=False,
        soft_wrap=False,
        width=width,
    )


# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional overrides
# and isolates (which reorder what follows them on screen).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with control characters written as escapes (``\\x1b``) instead of obeyed."""
    return _CONTROL.sub(lambda m: ascii(m.group(0))[1:-1], text)


def plain(*parts: Any) -> Any:
    """Untrusted values as one rich ``Text``: shown verbatim, never read as markup.

    Each part is a value (any object; ``None`` shows as nothing) or a ``(value, style)``
    pair for roon's own emphasis, e.g. ``plain(("xor", "bold"), "  id ", model_id)``.
    The one way untrusted text reaches rich in the CLI.
    """
    from rich.text import Text

    text = Text()
    for part in parts:
        value, style = part if isinstance(part, tuple) else (part, None)
        if isinstance(value, Text):
            text.append_text(value)
        else:
            text.append(printable("" if value is None else str(value)), style=style)
    return text


def compact_activations(activations: str) -> str:
    """``relu,relu,relu,linear`` → ``relu×3,linear`` for display."""
    runs: list[list[Any]] = []
    for name in activations.split(","):
        if runs and runs[-1][0] == name:
            runs[-1][1] += 1
        else:
            runs.append([name, 1])
    return ",".join(name if count == 1 else f"{name}×{count}" for name, count in runs)


class ProgressBars:
    """The one adapter from :class:`roon.progress.Progress` events to what the user sees.

    On a terminal: one rich bar per event ``task`` (models, neurons, ...), created on its
    first event, with counts, elapsed time and an estimate of the time left, drawn on
    stderr so that stdout stays clean for tables and JSON; transient (gone when done).
    Elsewhere (a CI log, a pipe): bars would show nothing until the end, so a plain line
    per task is written at most every ``interval`` seconds, e.g.
    ``roon: models 3/45 (7%) elapsed 0:00:12, about 0:02:28 left (ACASXU_1_3.nnet)``.

    Example:
        >>> with ProgressBars() as bars:  # doctest: +SKIP
        ...     roon.ingest_models(paths, "cat", progress=bars)
    """

    # seconds between two plain lines of one task: often enough to show life in a CI log
    INTERVAL = 5.0

    def __init__(
        self,
        stream: Any = None,
        *,
        interval: float = INTERVAL,
        clock: Any = None,
    ) -> None:
        import time

        self._stream = sys.stderr if stream is None else stream
        self._interval = interval
        self._clock = clock or time.monotonic
        self._tasks: dict[str, Any] = {}
        self._plain: dict[str, dict[str, float]] = {}  # task -> start, last printed, done
        self._bar: Any = None
        if _is_terminal(self._stream):
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(file=self._stream, highlight=False, markup=False, emoji=False),
                transient=True,
            )

    def __enter__(self) -> ProgressBars:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __call__(self, event: Progress) -> None:
        if self._bar is None:
            self._line(event)
            return
        task = self._tasks.get(event.task)
        if task is None:
            task = self._tasks[event.task] = self._bar.add_task(event.task, total=None)
        label = f"{event.task} {printable(event.detail[:40])}" if event.detail else event.task
        self._bar.update(task, completed=event.done, total=event.total, description=label)

    def _line(self, event: Progress) -> None:
        now = self._clock()
        state = self._plain.get(event.task)
        if state is None or event.done < state["done"]:  # new task, or a count restarted
            state = self._plain[event.task] = {"start": now, "printed": now, "done": 0}
        state["done"] = event.done
        if now - state["printed"] < self._interval:
            return
        state["printed"] = now
        elapsed = now - state["start"]
        text = f"roon: {event.task} {event.done}"
        if event.total:
            text += f"/{event.total} ({100 * event.done // event.total}%)"
        text += f" elapsed {_clock_time(elapsed)}"
        if event.total and 0 < event.done < event.total:
            left = elapsed / event.done * (event.total - event.done)
            text += f", about {_clock_time(left)} left"
        if event.detail:
            text += f" ({printable(event.detail[:60])})"
        self._stream.write(text + "\n")
        self._stream.flush()


def _is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _clock_time(seconds: float) -> str:
    """``h:mm:ss``, as rich's time columns show it."""
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def print_json(obj: Any) -> None:
    """Write ``obj`` as indented JSON to stdout."""
    sys.stdout.write(json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "tolist"):
        return value.tolist()
    if _is_integral_decimal(value):  # typed counts (DECIMAL(38,0)) are JSON integers
        return int(value)
    return str(value)


def _is_integral_decimal(value: Any) -> bool:
    from decimal import Decimal

    return isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value()


def cell(value: Any) -> str:
    """One value as a table cell: integers from DECIMAL(38,0) without a Decimal(...)
    wrapper, lists as ``[a, b, c]``, NULL as an empty cell."""
    if value is None:
        return ""
    if isinstance(value, list):
        return "[" + ", ".join(cell(v) for v in value) + "]"
    if _is_integral_decimal(value):
        return str(int(value))
    return str(value)


def print_rows(
    columns: list[str],
    rows: list[list[Any]] | list[tuple[Any, ...]],
    title: str | None = None,
    *,
    one_line: tuple[str, ...] = (),
) -> None:
    """Print rows as a rich table, every header and cell verbatim (:func:`plain`).

    ``None`` prints as an empty cell; pass a ``rich.text.Text`` (from :func:`plain`) to
    style a cell. Cells of the ``one_line`` columns are cut with an ellipsis at the width
    the table has (failure reasons: ``--json`` has them whole); others fold.
    """
    from rich.table import Table

    out = console()
    table = Table(title=None if title is None else plain(title), show_lines=False)
    # counts (DECIMAL(38,0), lists of them) as integers; styled Text cells as they are
    cells = [[plain(v if hasattr(v, "cell_len") else cell(v)) for v in row] for row in rows]
    natural = [
        max([len(plain(name))] + [r[j].cell_len for r in cells if j < len(r)])
        for j, name in enumerate(columns)
    ]
    cut = [name in one_line for name in columns]
    # what the one-line columns may take: the console's width less the other columns'
    # natural widths, the padding (2 per column) and the borders (one more than columns)
    room = out.width - sum(w for w, c in zip(natural, cut, strict=True) if not c)
    room -= 3 * len(columns) + 1
    for name, one in zip(columns, cut, strict=True):
        if one:
            table.add_column(
                plain(name),
                no_wrap=True,
                overflow="ellipsis",
                max_width=max(12, room // sum(cut)),
            )
        else:
            table.add_column(plain(name), overflow="fold")
    for row in cells:
        table.add_row(*row)
    out.print(table)
