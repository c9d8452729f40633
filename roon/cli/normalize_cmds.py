"""Normalizer and token commands: normalize, lineage, compare-tokens.

MODEL arguments are a model file (loaded with ``roon.ingest.loaders.load_model``) or,
when no such file exists, a catalogue reference (id, id prefix or name).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from roon.cli._common import DEFAULT_CATALOGUE, CatalogueOption, JsonOption, console, print_json
from roon.errors import ModelFormatError, QueryError

RULE_HELP = (
    "Comma-separated rules, applied in order: zero-out, constant, exact-duplicates, "
    "rescale, canonical (exact); dead, duplicates, low-variance (approximate); "
    "preset 'exact' = constant,exact-duplicates,zero-out,rescale,canonical."
)
DEFAULT_TOKEN_STEP = 2.0**-6  # = roon.ingest.tokenize.DEFAULT_STEP (kept literal: no import)


def _load(ref: str, catalogue: Path) -> Any:
    """A model from a file path, else from the catalogue."""
    from roon.errors import CatalogueError

    path = Path(ref).expanduser()
    if path.is_file():
        from roon.ingest.loaders import load_model

        return load_model(path)
    from roon.ingest.catalogue import load_catalogued_model, open_catalogue, resolve_model

    try:
        root = open_catalogue(catalogue)
    except CatalogueError:
        raise CatalogueError(
            f"{ref!r} is not a file, and there is no catalogue at {catalogue} to look it up in"
        ) from None
    return load_catalogued_model(root, resolve_model(root, ref))


def _bounds(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        lo, hi = (float(part) for part in text.split(","))
    except ValueError:
        raise QueryError(f"--input-bounds {text!r}; give LO,HI such as 0,1") from None
    return lo, hi


def _stage(path: Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path`` (fsynced); the caller renames it.

    Staging the report before the model is written means a report path that cannot be
    written fails before anything is.
    """
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; a report is not a secret
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise ModelFormatError(f"{path}: cannot write ({exc.strerror or exc})") from None
    return Path(tmp)


def normalize(
    model: Annotated[str, typer.Argument(help="Model file, or a catalogue model reference.")],
    rules: Annotated[str, typer.Option("--rules", "-r", help=RULE_HELP)] = "exact",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the result (safetensors).")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="JSON report path (default: OUT with suffix .json).")
    ] = None,
    store: Annotated[
        bool, typer.Option("--store", help="Store both models and the lineage in the catalogue.")
    ] = False,
    catalogue: CatalogueOption = DEFAULT_CATALOGUE,
    input_bounds: Annotated[
        str | None,
        typer.Option(help="Input box LO,HI for every input (default: model metadata, else 0,1)."),
    ] = None,
    dead_threshold: Annotated[float | None, typer.Option(help="dead: threshold (0.05).")] = None,
    duplicate_threshold: Annotated[
        float | None, typer.Option(help="duplicates: L2 distance below which rows merge (0.1).")
    ] = None,
    duplicate_eps: Annotated[
        float | None, typer.Option(help="duplicates: rows this small never merge (0.001).")
    ] = None,
    sample: Annotated[
        Path | None, typer.Option(help="low-variance: input sample [N, inputs], .npy or .pt.")
    ] = None,
    variance_threshold: Annotated[
        float | None, typer.Option(help="low-variance: variance threshold (1e-6).")
    ] = None,
    domain: Annotated[
        str | None, typer.Option(help="canonical: signature domain of the inputs (binary).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Normalize a model with a pipeline of rules; write the result and a JSON report.

    Example: roon normalize net.pt --rules dead,duplicates,rescale,canonical -o net.norm.safetensors
    """
    from roon.ingest.normalize import normalization_report
    from roon.ingest.normalize import normalize as run_rules

    bounds = _bounds(input_bounds)
    if output is not None:
        report = report or output.with_suffix(".json")
        if report.resolve() == output.resolve():
            raise QueryError(
                f"{output}: the report would overwrite the model; name OUT *.safetensors "
                "or give --report another path"
            )
    for path in (output, report):
        if path is not None and path.is_dir():
            raise QueryError(f"{path}: is a directory; give a file name")
    given = {
        "input_bounds": bounds,
        "dead_threshold": dead_threshold,
        "duplicate_threshold": duplicate_threshold,
        "duplicate_eps": duplicate_eps,
        "sample": sample,
        "variance_threshold": variance_threshold,
        "domain": domain,
    }
    params = {k: v for k, v in given.items() if v is not None}
    parent = _load(model, catalogue)
    child, steps = run_rules(parent, rules, **params)
    summary = normalization_report(parent, child, steps, input_bounds=bounds)
    written = []
    staged = _stage(report, json.dumps(summary, indent=2) + "\n") if report else None
    try:
        if output is not None:
            from roon.ingest.loaders import save_safetensors

            save_safetensors(child, output)
            written.append(str(output))
        if report is not None and staged is not None:
            os.replace(staged, report)
            written.append(str(report))
    finally:
        if staged is not None:
            staged.unlink(missing_ok=True)  # still there only when something failed
    if store:
        from roon.ingest.catalogue import open_catalogue, write_lineage
        from roon.ingest.normalize import lineage_table
        from roon.ingest.pipeline import ingest_model

        root = open_catalogue(catalogue, create=True)
        for m in (parent, child):
            ingest_model(m, root)
        summary["lineage_rows_added"] = write_lineage(root, lineage_table(steps))
        written.append(str(root))
    if as_json:
        print_json(summary)
        return
    _print_steps(summary, written)


def _print_steps(summary: dict[str, Any], written: list[str]) -> None:
    from rich.table import Table

    table = Table(title=f"normalize {summary['name'] or summary['parent_id'][:12]}")
    for name in ("rule", "removed", "merged", "max output change", "model"):
        table.add_column(name)
    for step in summary["steps"]:
        table.add_row(
            step["rule"],
            str(step["changes"].get("removed", 0)),
            str(step["changes"].get("merged", 0)),
            f"{step['max_output_change']:.3g}",
            step["child_id"][:12] + ("" if step["child_id"] != step["parent_id"] else " (same)"),
        )
    out = console()
    out.print(table)
    before = "-".join(map(str, summary["widths_before"]))
    after = "-".join(map(str, summary["widths_after"]))
    out.print(
        f"{summary['parent_id'][:12]} {before} → {summary['child_id'][:12]} {after}; "
        f"max output change {summary['max_output_change']:.3g}"
    )
    for path in written:
        out.print(f"wrote {path}")


def _edge_label(edge: dict[str, Any]) -> str:
    from rich.markup import escape

    params = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(edge["params"].items()))
    if len(params) > 60:
        params = params[:57] + "..."
    changes = edge["changes"] if isinstance(edge["changes"], dict) else {}
    facts = [f"-{changes['removed']} removed"] if changes.get("removed") else []
    if changes.get("merged"):
        facts.append(f"{changes['merged']} merged")
    facts.append(f"max Δ {edge['max_output_change']:.3g}")
    return f"[cyan]{escape(edge['rule'])}[/]({escape(params)}) {escape(', '.join(facts))} →"


def _node_label(node: dict[str, Any]) -> str:
    from rich.markup import escape

    text = f"[bold]{node['model_id'][:12]}[/]"
    text += f" {escape(node['name'])}" if node.get("name") else " [dim](not stored)[/]"
    if node.get("focus"):
        text += " [yellow]◀[/]"
    if node.get("repeat"):
        text += " [dim](see above)[/]"
    return text


def lineage(
    model: Annotated[str, typer.Argument(help="Model id, id prefix or name.")],
    catalogue: CatalogueOption = DEFAULT_CATALOGUE,
    as_json: JsonOption = False,
) -> None:
    """Print the tree of models derived from (and leading to) a model.

    Example: roon lineage 3f2a9c --catalogue cat
    """
    from rich.tree import Tree

    from roon.ingest.catalogue import open_catalogue, read_table
    from roon.ingest.normalize import lineage_tree, resolve_lineage_ref

    root = open_catalogue(catalogue)
    focus = resolve_lineage_ref(root, model)
    models = read_table(root, "models").select(["model_id", "name"]).to_pylist()
    names = {r["model_id"]: r["name"] for r in models}
    trees = lineage_tree(read_table(root, "lineage").to_pylist(), focus, names)
    if as_json:
        print_json(trees)
        return

    def grow(branch: Any, node: dict[str, Any]) -> None:
        for edge in node["children"]:
            child = edge["model"]
            grow(branch.add(f"{_edge_label(edge)} {_node_label(child)}"), child)

    out = console()
    for tree in trees:
        top = Tree(_node_label(tree))
        grow(top, tree)
        out.print(top)
    if not any(t["children"] for t in trees):
        out.print(f"no models derived from or leading to {focus[:12]}")


def compare_tokens(
    a: Annotated[str, typer.Argument(help="First model: file or catalogue reference.")],
    b: Annotated[str, typer.Argument(help="Second model: file or catalogue reference.")],
    catalogue: CatalogueOption = DEFAULT_CATALOGUE,
    step: Annotated[
        float, typer.Option(help="Quantization step of neuron tokens.")
    ] = DEFAULT_TOKEN_STEP,
    method: Annotated[
        str, typer.Option(help="difflib (seed's ratio, exact and fast) or lcs.")
    ] = "difflib",
    rules: Annotated[
        str | None, typer.Option("--rules", "-r", help="Normalize both first, e.g. canonical.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Similarity of two models' token sequences (1.0 for equal networks).

    Example: roon compare-tokens a.pt b.pt --rules rescale,canonical
    """
    from roon.ingest.tokenize import token_similarity, tokenize

    models = [_load(ref, catalogue) for ref in (a, b)]
    if rules:
        from roon.ingest.normalize import normalize as run_rules

        models = [run_rules(m, rules)[0] for m in models]
    tokens = [tokenize(m, step=step) for m in models]
    ratio = token_similarity(tokens[0], tokens[1], method=method)
    result = {
        "a": models[0].id,
        "b": models[1].id,
        "similarity": ratio,
        "method": method,
        "step": step,
        "tokens": [len(t) for t in tokens],
    }
    if as_json:
        print_json(result)
        return
    console().print(
        f"similarity {ratio:.4f} ({method}; {len(tokens[0])} vs {len(tokens[1])} tokens, "
        f"step {step:g})"
    )


def register(app: typer.Typer) -> None:
    app.command()(normalize)
    app.command()(lineage)
    app.command("compare-tokens")(compare_tokens)
