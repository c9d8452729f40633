"""``roon demo``: the zoo trained, catalogued and searched for every library circuit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from roon.cli._common import (
    DEFAULT_CATALOGUE,
    CatalogueOption,
    JsonOption,
    ProgressBars,
    console,
    parse_int_list,
    print_json,
    print_rows,
)
from roon.errors import InvalidArgumentError

# Rows of each recurring table printed (report.json keeps more).
SHOWN_RECURRING = 5
# Tasks listed per circuit in "where each circuit appears", most found first.
SHOWN_TASKS = 6


def demo(
    zoo: Annotated[
        Path, typer.Option("--zoo", help="Zoo directory: trained into, or reused.")
    ] = Path("zoo"),
    catalogue: CatalogueOption = DEFAULT_CATALOGUE,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for report.json and summary.png.")
    ] = Path("demo"),
    tasks: Annotated[
        str | None,
        typer.Option(
            "--tasks",
            help="Comma-separated zoo tasks, or all (default: every task but digits).",
        ),
    ] = None,
    seeds: Annotated[
        int | None,
        typer.Option(
            "--seeds", min=1, help="Seeds per task and width (default 2; 5: the full zoo)."
        ),
    ] = None,
    widths: Annotated[
        str | None,
        typer.Option("--widths", help="Hidden widths for every task (default: per task)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Train the zoo, catalogue it, find every library circuit in it, report with a figure.

    Trains (or reuses) the zoo, ingests it with --normalize exact, runs `where` for every
    library circuit over every model and `recurring`, checks a planted-circuit control
    and the shuffled-label controls, and writes OUT/report.json and OUT/summary.png.

    Example: roon demo --zoo zoo --catalogue roon-catalogue --out demo
    """
    from roon.zoo.demo import run_demo

    options: dict[str, Any] = {"widths": parse_int_list(widths, "--widths")}
    if tasks is not None:
        names = [t.strip() for t in tasks.split(",") if t.strip()]
        if not names:
            raise InvalidArgumentError("--tasks is empty; give task names, e.g. and,xor,abs")
        options["tasks"] = None if names == ["all"] else names
    if seeds is not None:
        options["seeds"] = seeds
    if as_json:
        print_json(run_demo(zoo, catalogue, out, **options))
        return
    with ProgressBars() as bars:
        report = run_demo(zoo, catalogue, out, progress=bars, **options)
    _print_report(report)


def _fraction(cell: dict[str, Any], found: str = "found", total: str = "total") -> str:
    return f"{cell[found]}/{cell[total]}" if cell.get(total) else "-"


def _print_report(report: dict[str, Any]) -> None:
    out = console()
    zoo, cat = report["zoo"], report["catalogue"]
    real_tasks = sum(not t["control"] for t in report["tasks"])
    out.print(
        f"{zoo['models']} zoo models ({zoo['real']} on {real_tasks} tasks, {zoo['controls']} "
        f"shuffled-label controls) in {zoo['directory']}: {zoo['trained']} trained, "
        f"{zoo['present']} reused; catalogue "
        f"{cat['directory']}: {cat['models']} models as ingested, "
        f"{cat['normalized_copies']} normalized copies (--normalize {cat['normalize']})"
    )
    rows: list[tuple[Any, ...]] = []
    for e in report["expected"]:
        rows.append(
            (
                e["circuit"],
                e["task"],
                _fraction(e),
                f"{e['converged_found']}/{e['converged']}",
                " ".join(f"{k}/{n}" for k, n in e["by_width"].values()),
                e["structure_only"],
                _fraction(e["shuffled"], "task_found", "task_total"),
                _fraction(e["planted"]),
                {True: "yes", False: "no", None: "-"}[e["met"]],
            )
        )
    first: dict[str, Any] = next(iter(report["expected"]), {})
    widths = "/".join(first.get("by_width", {}))
    print_rows(
        ["circuit", "task", "found", "converged", f"by width {widths}", "structure only",
         "shuffled", "planted", "met"],
        rows,
        title="expected circuits: models of the task with a verified embedding",
    )  # fmt: skip
    rows = []
    for c in report["circuits"]:
        cells = report["matrix"][c["name"]]
        hits = sorted(
            ((t, v) for t, v in cells.items() if v["found"]),
            key=lambda tv: (-tv[1]["found"] / tv[1]["total"], tv[0]),
        )
        shown = ", ".join(f"{t} {_fraction(v)}" for t, v in hits[:SHOWN_TASKS])
        more = len(hits) - SHOWN_TASKS
        planted = report["planted_control"].get(c["name"], {})
        rows.append(
            (
                c["name"],
                c["widths"],
                c["input_domain"],
                shown + (f" (+{more} tasks)" if more > 0 else "") or "nowhere",
                _fraction(planted),
            )
        )
    print_rows(
        ["circuit", "layers", "domain", "found in (task: models found/total)", "planted"],
        rows,
        title="where each library circuit appears",
    )
    out.print("findings:")
    for line in report["findings"]:
        out.print(f"  {line}", markup=False, highlight=False)
    _print_recurring(report)
    stages = " · ".join(f"{k} {v['seconds']:.1f} s" for k, v in report["stages"].items())
    out.print(f"stages: {stages} — total {report['seconds']:.1f} s", highlight=False)
    out.print(f"report: {report['files']['report']}", highlight=False)
    out.print(f"figure: {report['files']['figure']}", highlight=False)


def _tasks(row: dict[str, Any]) -> str:
    parts = [f"{t} {n}" for t, n in row["tasks"].items()]
    return ", ".join(parts[:4]) + (" …" if len(parts) > 4 else "")


def _print_recurring(report: dict[str, Any]) -> None:
    neurons = report["recurring"]["neurons"][:SHOWN_RECURRING]
    print_rows(
        ["signature", "circuit", "domain", "fan_in", "truth table", "models", "from tasks"],
        [
            (r["signature"][:12], ", ".join(r["circuits"]), r["domain"], r["fan_in"],
             r["truth_table"] or "", r["models"], _tasks(r))
            for r in neurons
        ],
        title="most recurrent exact functions (roon recurring)",
    )  # fmt: skip
    motifs = report["recurring"]["motifs"][:SHOWN_RECURRING]
    if not motifs:
        console().print(
            "no two-layer motif recurs in 2 or more models (roon recurring --kind motif)"
        )
        return
    print_rows(
        ["motif", "neuron", "circuit", "models", "from tasks"],
        [
            (r["motif"][:12], r["signature"][:12], ", ".join(r["circuits"]), r["models"],
             _tasks(r))
            for r in motifs
        ],
        title="most recurrent two-layer motifs (roon recurring --kind motif)",
    )  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add ``roon demo`` to the app."""
    app.command()(demo)
