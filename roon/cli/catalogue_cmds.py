"""Catalogue commands: ingest, reindex, check, compact, models, show, sql."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from roon.cli._common import (
    DEFAULT_CATALOGUE,
    ActivationOption,
    CatalogueOption,
    Exact,
    ExactBudgetOption,
    ExactOption,
    InputDomain,
    JsonOption,
    ProgressBars,
    compact_activations,
    console,
    parse_bounds,
    plain,
    print_json,
    print_rows,
)
from roon.errors import InvalidArgumentError

# Rows `roon sql` shows in a table unless --limit says otherwise: a screenful; the rest is
# counted, not printed (a 700k-row table would take minutes to draw).
DEFAULT_TABLE_ROWS = 50


class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"
    ndjson = "ndjson"
    parquet = "parquet"


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


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
            "header, else none: the box domain and box grids then need this); recorded in "
            "the model's metadata."
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
    layers: Annotated[
        str | None,
        typer.Option(
            help="Layer names of .pt/.safetensors files in forward order, comma-separated "
            "(e.g. fc1,fc2,out), where their names do not make a plain chain."
        ),
    ] = None,
    exact: ExactOption = Exact.auto,
    exact_budget: ExactBudgetOption = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            help="Worker processes computing rows (default: one per core, for 16 files or "
            "more); the catalogue is the same whatever N.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Ingest models into the catalogue; re-ingesting a model is a no-op unless --force.

    Neurons above the exhaustive fan-in (20 binary, 12 signed) get exact signatures within
    a per-model time budget and sampled ones beyond it; the summary says how many fell
    back, and --exact always makes every reachable neuron exact. Models are committed in
    batches (one segment each); --jobs N computes them in N processes.

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
            exact=exact.value,
            exact_budget=exact_budget,
            progress=None if as_json else bars,
            force=force,
            name=name,
            input_space=input_space,
            input_bounds=parse_bounds(input_bounds),
            layers=[k.strip() for k in layers.split(",")] if layers else None,
            jobs=jobs,
        )
    failed = [r for r in results if r.status in ("failed", "skipped")]
    if as_json:
        print_json([r.__dict__ for r in results])
    else:
        rows = [
            (
                Path(r.source).name if not r.source.startswith("<") else r.source,
                r.status,
                (r.model_id or "")[:12],
                r.neurons or "",
                # the source column names the file; its reason need not repeat the path
                _one_line((r.reason or "").removeprefix(f"{r.source}: ") or "; ".join(r.notes)),
            )
            for r in results
        ]
        print_rows(
            ["source", "status", "model", "neurons", "notes"], rows, one_line=("source", "notes")
        )
        counts = {
            s: sum(r.status == s for r in results)
            for s in ("ingested", "present", "failed", "skipped")
        }
        where = str(Path(catalogue))
        if not Path(catalogue).expanduser().is_dir():
            where += " (nothing stored: no catalogue created)"
        skipped = f", skipped {counts['skipped']}" if counts["skipped"] else ""
        full = "; --json shows the full reasons" if failed else ""
        console().print(
            plain(
                f"ingested {counts['ingested']}, already present {counts['present']}, "
                f"failed {counts['failed']}{skipped} → {where}{full}"
            )
        )
        sampled = sum(r.sampled for r in results)
        fallbacks = sum(r.fallbacks for r in results)
        if sampled:
            why = (
                f"; {fallbacks} of them over the exact budget (--exact always makes them exact)"
                if fallbacks
                else ""
            )
            console().print(f"{sampled} neurons got sampled (approximate) signatures{why}")
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
    exact: ExactOption = Exact.auto,
    exact_budget: ExactBudgetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Recompute derived tables (signatures, tokens) from the stored weights.

    Only tables that are missing or were computed by an older roon are redone, the models
    of a segment together and atomically, so an interrupted reindex resumes where it
    stopped.

    Example: roon reindex --catalogue cat
    """
    from roon.ingest.reindex import reindex_catalogue

    with ProgressBars() as bars:
        results = reindex_catalogue(
            catalogue,
            models=model,
            force=force,
            backend=backend,
            exact=exact.value,
            exact_budget=exact_budget,
            progress=None if as_json else bars,
        )
    if as_json:
        print_json([r.__dict__ for r in results])
    else:
        rows = [
            (r.model_id[:12], r.name, r.status, ", ".join(r.tables), _one_line(r.reason))
            for r in results
        ]
        print_rows(["model", "name", "status", "tables", "reason"], rows, one_line=("reason",))
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
    from roon.store import remove_models

    removed = remove_models(catalogue, model)
    if as_json:
        print_json([{"model_id": m, "name": n} for m, n in removed])
        return
    out = console()
    for model_id, name in removed:
        out.print(plain(f"removed {model_id[:12]} {name}".rstrip()))


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
    out.print(plain((m["name"], "bold"), f"  id {m['model_id']}"))
    out.print(plain(f"widths {m['widths']}  params {m['n_params']}  dtype {m['dtype']}"))
    out.print(plain(f"source {p['source']} ({p['format']}), sha256 {p['file_sha256'] or '-'}"))
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
            out.print(plain(f"{arrow} {step['rule']} {other[:12]}{where}"))
    for origin in info["origins"]:
        if not any(s["parent_id"] == origin["model_id"] for s in info["derived_from"]):
            name = f" {origin['name']}" if origin["name"] else ""
            rules = ",".join(origin["rules"])
            out.print(plain(f"derived from {origin['model_id'][:12]}{name} by {rules}"))
    if info["derived_from"] and not info["origins"]:
        out.print("derived from models not in this catalogue ('roon lineage' shows the steps)")


def sql(
    query: Annotated[str, typer.Argument(help="One SELECT statement over the catalogue views.")],
    catalogue: CatalogueOption = DEFAULT_CATALOGUE,
    output_format: Annotated[
        OutputFormat | None,
        typer.Option("--format", "-f", help="table (default), csv, json, ndjson or parquet."),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            "-n",
            min=0,
            help=f"At most this many rows (table default {DEFAULT_TABLE_ROWS}; 0: all).",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file instead of stdout."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Run one read-only SQL query (DuckDB) over the catalogue tables.

    Tables: models, layers, neurons, edges, provenance, signatures, tokens, lineage. A
    table shows the first 50 rows and counts the rest; csv, json, ndjson and parquet
    stream every row (parquet needs --output or a redirect). NULL shows as a dim NULL.
    Example: roon sql "select method, count(*) from signatures group by 1"
    """
    from roon.query.scan import stream_sql

    if as_json and output_format not in (None, OutputFormat.json):
        raise InvalidArgumentError(
            f"--json and --format {output_format.value} ask for two formats; give one"
        )
    fmt = OutputFormat.json if as_json else (output_format or OutputFormat.table)
    if fmt is OutputFormat.table and output is not None:
        raise InvalidArgumentError(
            "--output writes csv, json, ndjson or parquet; add --format (a table is for screens)"
        )
    if limit == 0:
        limit = None
    elif limit is None and fmt is OutputFormat.table:
        limit = DEFAULT_TABLE_ROWS
    with stream_sql(catalogue, query) as reader:
        if fmt is OutputFormat.table:
            _print_head(reader, limit)
        else:
            _write_rows(fmt.value, reader, limit, output, Path(catalogue))


def _print_head(reader: object, limit: int | None) -> None:
    from rich.text import Text

    from roon.query.output import head, json_value

    def cell(value: object) -> object:
        if value is None:
            return Text("NULL", style="dim")  # an empty string prints as an empty cell
        if isinstance(value, dict | list):
            return json.dumps(value, default=json_value, ensure_ascii=False)
        return value

    shown = head(reader, limit)
    print_rows(shown.columns, [[cell(v) for v in row] for row in shown.rows])
    if shown.more:
        console().print(f"{shown.more:,} more rows (use --limit or --format csv)")


def _write_rows(
    fmt: str, reader: object, limit: int | None, output: Path | None, catalogue: Path
) -> None:
    import os
    import sys
    import tempfile

    from roon.query.output import check_output_path, limited, write_format
    from roon.store import open_catalogue

    batches = limited(reader, limit)
    schema = reader.schema  # type: ignore[attr-defined]
    if output is None:
        if fmt == "parquet" and sys.stdout.isatty():
            raise InvalidArgumentError(
                "parquet is binary; give --output FILE or redirect stdout to a file"
            )
        sink = sys.stdout.buffer
        write_format(fmt, batches, sink, schema)
        sink.flush()
        return
    target = check_output_path(output, open_catalogue(catalogue))
    try:  # a missing folder is created; the rows go to a temporary file beside the target
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise InvalidArgumentError(
            f"--output {output}: cannot write in {target.parent} ({exc.strerror or exc})"
        ) from None
    try:
        with os.fdopen(fd, "wb") as sink:
            rows = write_format(fmt, batches, sink, schema)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)  # whole or not at all
    finally:
        Path(tmp).unlink(missing_ok=True)
    console(stderr=True).print(plain(f"wrote {rows:,} rows to {target}"))


def check(
    catalogue: CatalogueOption = DEFAULT_CATALOGUE,
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Recompute damaged derived tables; move models with damaged weights or "
            "structural tables to DIR/damaged/ (re-ingest their files to restore them).",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Verify every model: files readable, row counts consistent, weights hash to the id.

    Lists damaged models and exits 1 if there are any; --repair mends what it can.
    Example: roon check --catalogue cat --repair
    """
    from roon.ingest.repair import check_catalogue

    with ProgressBars() as bars:
        report = check_catalogue(catalogue, repair=repair, progress=None if as_json else bars)
    if as_json:
        print_json(report.as_dict())
    else:
        rows = [
            (f.model_id[:12] if f.model_id else f.table, f.name, f.action, _one_line(f.problem))
            for f in report.findings
        ]
        if rows:
            print_rows(["model", "name", "action", "problem"], rows, one_line=("problem",))
        console().print(plain(report.summary()))
    if report.findings and not report.repaired:
        raise typer.Exit(1)


def compact(catalogue: CatalogueOption = DEFAULT_CATALOGUE, as_json: JsonOption = False) -> None:
    """Merge the catalogue's segments (one per ingest batch) into few, atomically.

    Readers see the old segments or the merged ones, never a mix; a crash loses nothing.
    Example: roon compact --catalogue cat
    """
    from roon.store.compact import compact as run

    with ProgressBars() as bars:
        result = run(catalogue, progress=None if as_json else bars)
    if as_json:
        print_json(result.__dict__)
        return
    console().print(
        plain(
            f"{result.models} models: {result.segments_before} segments → "
            f"{result.segments_after} in {result.catalogue}"
        )
    )


def register(app: typer.Typer) -> None:
    app.command()(ingest)
    app.command()(reindex)
    app.command()(check)
    app.command()(compact)
    app.command()(models)
    app.command()(rm)
    app.command()(show)
    app.command()(sql)
