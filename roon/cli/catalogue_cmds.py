"""Catalogue commands: ingest, reindex, models, show, sql."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from roon.cli._common import (
    DEFAULT_CATALOGUE,
    ActivationOption,
    CatalogueOption,
    InputDomain,
    JsonOption,
    ProgressBars,
    compact_activations,
    console,
    parse_bounds,
    print_json,
    print_rows,
)


class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


def ingest(
    paths: Annotated[list[str], typer.Argument(help="Model files, folders or glob patterns.")],
    catalogue: CatalogueOption = DEFAULT_CATALOGUE,
    activation: ActivationOption = None,
    input_domain: Annotated[
        InputDomain | None,
        typer.Option(
            help="Signature domain of the model inputs (default: the file's own, else binary); "
            "box: every layer judged on the corners of its own input box (see --input-bounds)."
        ),
    ] = None,
    input_space: Annotated[
        str,
        typer.Option(
            help="Points for input-space signatures: auto, none, binary, signed, box, "
            "box:K (K per axis) or a .npy probe file."
        ),
    ] = "auto",
    input_bounds: Annotated[
        str | None,
        typer.Option(
            help="Input box LO,HI for every input (default: the model's metadata or .nnet "
            "header, else 0,1); recorded in the model's metadata."
        ),
    ] = None,
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
    force: Annotated[
        bool,
        typer.Option("--force", help="Rebuild models already stored (e.g. with other options)."),
    ] = False,
    name: Annotated[
        str | None,
        typer.Option(help="Name of the model (one source only; default: the file stem)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Ingest models into the catalogue; re-ingesting a model is a no-op unless --force.

    Example: roon ingest models/*.nnet --catalogue cat --input-domain box
    """
    from roon.ingest import ingest_models

    rules = [r.strip() for r in normalize.split(",") if r.strip()] if normalize else None
    with ProgressBars() as bars:
        results = ingest_models(
            paths,
            catalogue,
            activation=activation,
            input_domain=input_domain.value if input_domain else None,
            min_weight=min_weight,
            normalize=rules,
            backend=backend,
            progress=None if as_json else bars,
            force=force,
            name=name,
            input_space=input_space,
            input_bounds=parse_bounds(input_bounds),
        )
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
        where = str(Path(catalogue))
        if not Path(catalogue).expanduser().is_dir():
            where += " (nothing stored: no catalogue created)"
        console().print(
            f"ingested {counts['ingested']}, already present {counts['present']}, "
            f"failed {len(failed)} → {where}"
        )
    if failed:
        raise typer.Exit(1)


def reindex(
    catalogue: CatalogueOption = DEFAULT_CATALOGUE,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", help="Only this model (id, id prefix or name); repeatable."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Recompute every derived table, not only stale ones.")
    ] = False,
    backend: Annotated[
        str, typer.Option(envvar="ROON_BACKEND", help="Signature backend: auto|ref|cpu|triton.")
    ] = "auto",
    as_json: JsonOption = False,
) -> None:
    """Recompute derived tables (signatures, tokens) from the stored weights.

    Only tables that are missing or were computed by an older roon are redone, one model
    at a time and atomically, so an interrupted reindex resumes where it stopped.

    Example: roon reindex --catalogue cat
    """
    from roon.ingest.reindex import reindex_catalogue

    with ProgressBars() as bars:
        results = reindex_catalogue(
            catalogue,
            models=model,
            force=force,
            backend=backend,
            progress=None if as_json else bars,
        )
    if as_json:
        print_json([r.__dict__ for r in results])
    else:
        rows = [
            (r.model_id[:12], r.name, r.status, ", ".join(r.tables), r.reason or "")
            for r in results
        ]
        print_rows(["model", "name", "status", "tables", "reason"], rows)
        counts = {
            s: sum(r.status == s for r in results) for s in ("reindexed", "current", "failed")
        }
        console().print(
            f"reindexed {counts['reindexed']}, already current {counts['current']}, "
            f"failed {counts['failed']}"
        )
    if any(r.status == "failed" for r in results):
        raise typer.Exit(1)


def rm(
    model: Annotated[list[str], typer.Argument(help="Model ids, id prefixes or names.")],
    catalogue: CatalogueOption = DEFAULT_CATALOGUE,
    as_json: JsonOption = False,
) -> None:
    """Remove models from the catalogue (each atomically; lineage rows stay as history).

    Example: roon rm 3f2a9c --catalogue cat
    """
    from rich.markup import escape

    from roon.store import remove_models

    removed = remove_models(catalogue, model)
    if as_json:
        print_json([{"model_id": m, "name": n} for m, n in removed])
        return
    out = console()
    for model_id, name in removed:
        out.print(escape(f"removed {model_id[:12]} {name}".rstrip()))


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
    from rich.markup import escape

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
            where = "" if step["stored"] else " (not stored: an intermediate step or removed)"
            out.print(escape(f"{arrow} {step['rule']} {other[:12]}{where}"))
    for origin in info["origins"]:
        if not any(s["parent_id"] == origin["model_id"] for s in info["derived_from"]):
            name = f" {origin['name']}" if origin["name"] else ""
            rules = ",".join(origin["rules"])
            out.print(escape(f"derived from {origin['model_id'][:12]}{name} by {rules}"))
    if info["derived_from"] and not info["origins"]:
        out.print("derived from models not in this catalogue ('roon lineage' shows the steps)")


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
    app.command()(reindex)
    app.command()(models)
    app.command()(rm)
    app.command()(show)
    app.command()(sql)
