"""Normalizer and token commands: normalize, lineage, compare-tokens.

MODEL arguments are a model file or, when no such file exists, a catalogue reference
(id, id prefix or name), resolved by :func:`roon.store.load_model_ref`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from roon.cli._common import (
    DEFAULT_CATALOGUE,
    ActivationOption,
    CatalogueOption,
    JsonOption,
    console,
    parse_bounds,
    plain,
    print_json,
    print_rows,
)
from roon.ingest.tokenize import DEFAULT_STEP as DEFAULT_TOKEN_STEP

RULE_HELP = (
    "Comma-separated rules, applied in order: zero-out, constant, exact-duplicates, "
    "rescale, canonical (exact); dead, duplicates, low-variance (approximate); "
    "preset 'exact' = constant,exact-duplicates,zero-out,rescale,canonical."
)


def normalize(
    model: Annotated[str, typer.Argument(help="Model file, or a catalogue model reference.")],
    rules: Annotated[str, typer.Option("--rules", "-r", help=RULE_HELP)] = "exact",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write the result (safetensors); missing folders are made."
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(help="JSON report path (default: OUT with its suffix replaced by .json)."),
    ] = None,
    store: Annotated[
        bool, typer.Option("--store", help="Store both models and the lineage in the catalogue.")
    ] = False,
    catalogue: CatalogueOption = DEFAULT_CATALOGUE,
    activation: ActivationOption = None,
    input_bounds: Annotated[
        str | None,
        typer.Option(
            help="Input box LO,HI for every input, e.g. 0,1 or -inf,inf (default: the model "
            "metadata or .nnet header, else every real input)."
        ),
    ] = None,
    dead_threshold: Annotated[float | None, typer.Option(help="dead: threshold (0.05).")] = None,
    dead_rescore: Annotated[
        bool,
        typer.Option(
            "--dead-rescore",
            help="dead: score each layer on the network as already edited, not on the "
            "original weights (seed 004's rule, the default).",
        ),
    ] = False,
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
    backend: Annotated[
        str, typer.Option(envvar="ROON_BACKEND", help="Signature backend: auto|ref|cpu|triton.")
    ] = "auto",
    as_json: JsonOption = False,
) -> None:
    """Normalize a model with a pipeline of rules; write the result and a JSON report.

    Example: roon normalize net.pt --rules dead,duplicates,rescale,canonical -o net.norm.safetensors
    """
    from roon.ingest.normalize_job import normalize_model

    given = {
        "input_bounds": parse_bounds(input_bounds),
        "dead_threshold": dead_threshold,
        "dead_rescore": dead_rescore or None,
        "duplicate_threshold": duplicate_threshold,
        "duplicate_eps": duplicate_eps,
        "sample": sample,
        "variance_threshold": variance_threshold,
        "domain": domain,
    }
    summary = normalize_model(
        model,
        rules,
        catalogue=catalogue,
        output=output,
        report=report,
        store=store,
        activation=activation,
        backend=backend,
        **{k: v for k, v in given.items() if v is not None},
    )
    if as_json:
        print_json(summary)
        return
    _print_steps(summary, summary["written"])


def _print_steps(summary: dict[str, Any], written: list[str]) -> None:
    rows = [
        (
            step["rule"],
            step["changes"].get("removed", 0),
            step["changes"].get("merged", 0),
            f"{step['max_output_change']:.3g}",
            step["child_id"][:12] + ("" if step["child_id"] != step["parent_id"] else " (same)"),
        )
        for step in summary["steps"]
    ]
    print_rows(
        ["rule", "removed", "merged", "max output change", "model"],
        rows,
        title=f"normalize {summary['name'] or summary['parent_id'][:12]}",
    )
    out = console()
    before = "-".join(map(str, summary["widths_before"]))
    after = "-".join(map(str, summary["widths_after"]))
    out.print(
        f"{summary['parent_id'][:12]} {before} → {summary['child_id'][:12]} {after}; "
        f"max output change {summary['max_output_change']:.3g}"
    )
    for note in summary["notes"]:
        out.print(plain("note: ", note))
    for path in written:
        out.print(plain("wrote ", path))


def _edge_label(edge: dict[str, Any]) -> Any:
    params = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(edge["params"].items()))
    if len(params) > 60:
        params = params[:57] + "..."
    changes = edge["changes"] if isinstance(edge["changes"], dict) else {}
    facts = [f"{changes['removed']} removed"] if changes.get("removed") else []
    if changes.get("merged"):
        facts.append(f"{changes['merged']} merged")
    facts.append(f"max Δ {edge['max_output_change']:.3g}")
    return plain((edge["rule"], "cyan"), f"({params}) {', '.join(facts)} →")


def _node_label(node: dict[str, Any]) -> Any:
    name = (" " + node["name"], None) if node.get("name") else (" (not stored)", "dim")
    return plain(
        (node["model_id"][:12], "bold"),
        name,
        (" ◀", "yellow") if node.get("focus") else "",
        (" (see above)", "dim") if node.get("repeat") else "",
    )


def lineage(
    model: Annotated[str, typer.Argument(help="Model id, id prefix or name.")],
    catalogue: CatalogueOption = DEFAULT_CATALOGUE,
    as_json: JsonOption = False,
) -> None:
    """Print the tree of models derived from (and leading to) a model.

    Example: roon lineage 3f2a9c --catalogue cat
    """
    from rich.tree import Tree

    from roon.query.lineage import lineage_of

    focus, trees = lineage_of(catalogue, model)
    if as_json:
        print_json(trees)
        return

    def grow(branch: Any, node: dict[str, Any]) -> None:
        for edge in node["children"]:
            child = edge["model"]
            grow(branch.add(plain(_edge_label(edge), " ", _node_label(child))), child)

    out = console()
    for tree in trees:
        top = Tree(_node_label(tree))
        grow(top, tree)
        out.print(top)
    if not any(t["children"] for t in trees):
        out.print(plain("no models derived from or leading to ", focus[:12]))


def compare_tokens(
    a: Annotated[str, typer.Argument(help="First model: file or catalogue reference.")],
    b: Annotated[str, typer.Argument(help="Second model: file or catalogue reference.")],
    catalogue: CatalogueOption = DEFAULT_CATALOGUE,
    activation: ActivationOption = None,
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
    from roon.ingest.loaders import load_notes
    from roon.ingest.tokenize import token_similarity, tokenize
    from roon.store import load_model_ref

    models = [load_model_ref(ref, catalogue, activation=activation) for ref in (a, b)]
    notes = [
        f"{ref}: {note}" for ref, m in zip((a, b), models, strict=True) for note in load_notes(m)
    ]
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
        "notes": notes,
    }
    if as_json:
        print_json(result)
        return
    out = console()
    for note in notes:
        out.print(plain("note: ", note))
    out.print(
        f"similarity {ratio:.4f} ({method}; {len(tokens[0])} vs {len(tokens[1])} tokens, "
        f"step {step:g})"
    )


def register(app: typer.Typer) -> None:
    app.command()(normalize)
    app.command()(lineage)
    app.command("compare-tokens")(compare_tokens)
