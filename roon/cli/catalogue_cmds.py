"""Catalogue commands: ingest, models, show, sql."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from roon.cli._common import (
    DEFAULT_CATALOGUE,
    CatalogueOption,
    JsonOption,
    compact_activations,
    console,
    print_json,
    print_rows,
    progress_bar,
)


class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


class Domain(str, Enum):
    binary = "binary"
    signed = "signed"


class _BarProgress:
    """Draws a bar over models and one over neurons (stderr, so stdout stays clean)."""

    def __init__(self, total_models: int) -> None:
        self.bar = progress_bar()
        self.models = self.bar.add_task("models ", total=total_models)
        self.neurons = self.bar.add_task("neurons", total=0)

    def __enter__(self) -> _BarProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def model_started(self, source: str, neurons: int) -> None:
        self.bar.reset(self.neurons, total=max(neurons, 1))
        self.bar.update(self.neurons, description=f"neurons of {Path(source).name[:28]}")

    def neurons_done(self, count: int) -> None:
        self.bar.advance(self.neurons, count)

    def model_finished(self, result: Any) -> None:
        self.bar.advance(self.models, 1)


def ingest(
    paths: Annotated[list[str], typer.Argument(help="Model files, folders or glob patterns.")],
    catalogue: CatalogueOption = DEFAULT_CATALOGUE,
    activation: Annotated[
        str | None,
        typer.Option(help="Hidden activation for files that store none (default relu)."),
    ] = None,
    input_domain: Annotated[
        Domain, typer.Option(help="Signature domain of the model inputs.")
    ] = Domain.binary,
    min_weight: Annotated[
        float, typer.Option(help="Store only edges with |weight| >= this (0 keeps all).")
    ] = 0.0,
    normalize: Annotated[
        str | None,
        typer.Option(help="Normalizer rules to apply, comma-separated (e.g. dead,canonical)."),
    ] = None,
    backend: Annotated[
        str, typer.Option(envvar="ROON_BACKEND", help="Signature backend: auto|ref|cpu|triton.")
    ] = "auto",
    as_json: JsonOption = False,
) -> None:
    """Ingest models into the catalogue; re-ingesting a model is a no-op.

    Example: roon ingest models/*.nnet --catalogue cat
    """
    from roon.ingest import expand_sources, ingest_models

    files = expand_sources(paths)
    rules = [r.strip() for r in normalize.split(",") if r.strip()] if normalize else None
    options = {
        "activation": activation,
        "input_domain": input_domain.value,
        "min_weight": min_weight,
        "normalize": rules,
        "backend": backend,
    }
    if as_json:
        results = ingest_models(files, catalogue, **options)
    else:
        with _BarProgress(len(files)) as progress:
            results = ingest_models(files, catalogue, progress=progress, **options)
    failed = [r for r in results if r.status == "failed"]
    if as_json:
        print_json([r.__dict__ for r in results])
    else:
        rows = [
            (
                Path(r.source).name if not r.source.startswith("<") else r.source,
                r.status,
                (r.model_id or "")[:12],
                r.neurons or "",
                r.reason or "; ".join(r.notes),
            )
            for r in results
        ]
        print_rows(["source", "status", "model", "neurons", "notes"], rows)
        counts = {s: sum(r.status == s for r in results) for s in ("ingested", "present")}
        console().print(
            f"ingested {counts['ingested']}, already present {counts['present']}, "
            f"failed {len(failed)} → {Path(catalogue)}"
        )
    if failed:
        raise typer.Exit(1)


def models(catalogue: CatalogueOption = DEFAULT_CATALOGUE, as_json: JsonOption = False) -> None:
    """List the models in the catalogue.

    Example: roon models --json
    """
    from roon.query.scan import run_sql

    table = run_sql(
        catalogue,
        "SELECT m.model_id, m.name, m.widths, m.activations, m.n_neurons, p.format, p.source "
        "FROM models m LEFT JOIN provenance p USING (model_id) ORDER BY m.name, m.model_id",
    )
    if as_json:
        print_json(table.to_pylist())
        return
    rows = [
        (
            r["model_id"][:12],
            r["name"],
            r["widths"],
            compact_activations(r["activations"]),
            r["n_neurons"],
            r["format"],
        )
        for r in table.to_pylist()
    ]
    print_rows(["id", "name", "widths", "activations", "neurons", "format"], rows)


def show(
    model: Annotated[str, typer.Argument(help="Model id, id prefix or name.")],
    catalogue: CatalogueOption = DEFAULT_CATALOGUE,
    as_json: JsonOption = False,
) -> None:
    """Show one model: layers, shapes, activations, signatures, where it came from.

    Example: roon show ACASXU_experimental_v2a_1_1
    """
    from roon.query.inspect import describe_model

    info = describe_model(catalogue, model)
    if as_json:
        print_json(info)
        return
    out = console()
    m, p = info["model"], info["provenance"]
    out.print(f"[bold]{m['name']}[/bold]  id {m['model_id']}")
    out.print(f"widths {m['widths']}  params {m['n_params']}  dtype {m['dtype']}")
    out.print(f"source {p['source']} ({p['format']}), sha256 {p['file_sha256'] or '-'}")
    if p["activation_assumed"]:
        out.print("activations were assumed: the file stores none")
    print_rows(
        ["layer", "fan-in", "width", "activation", "input domain", "signatures"],
        [
            (
                r["layer"],
                r["fan_in"],
                r["width"],
                r["activation"],
                r["input_domain"],
                r["signature_summary"],
            )
            for r in info["layers"]
        ],
    )
    for direction in ("derived_from", "derived_into"):
        for step in info[direction]:
            arrow = "←" if direction == "derived_from" else "→"
            other = step["parent_id"] if direction == "derived_from" else step["child_id"]
            out.print(f"{arrow} {step['rule']} {other[:12]}")


def sql(
    query: Annotated[str, typer.Argument(help="A SELECT statement over the catalogue views.")],
    catalogue: CatalogueOption = DEFAULT_CATALOGUE,
    output: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="Output format.")
    ] = OutputFormat.table,
    as_json: JsonOption = False,
) -> None:
    """Run a read-only SQL query (DuckDB) over the catalogue tables.

    Tables: models, layers, neurons, edges, provenance, signatures, tokens, lineage.
    Example: roon sql "select method, count(*) from signatures group by 1"
    """
    import sys

    from roon.query.scan import run_sql

    table = run_sql(catalogue, query)
    fmt = OutputFormat.json if as_json else output
    if fmt is OutputFormat.json:
        print_json(table.to_pylist())
    elif fmt is OutputFormat.csv:
        import pyarrow.csv as pacsv

        sink = sys.stdout.buffer
        pacsv.write_csv(table, sink)
        sink.flush()
    else:
        print_rows(table.column_names, [tuple(r.values()) for r in table.to_pylist()])


def register(app: typer.Typer) -> None:
    app.command()(ingest)
    app.command()(models)
    app.command()(show)
    app.command()(sql)
