"""The ``roon compare-activations`` command: two models on the same inputs."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from roon.cli._common import (
    DEFAULT_CATALOGUE,
    ActivationOption,
    CatalogueOption,
    Domain,
    JsonOption,
    ProgressBars,
    console,
    plain,
    print_json,
    print_rows,
)


class GroupMethod(str, Enum):
    complete = "complete"
    components = "components"


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [p.strip() for p in text.split(",") if p.strip()]


def _signature_cell(pair: Any) -> str:
    if pair.signatures_equal is None:
        return "n/a"
    word = "equal" if pair.signatures_equal else "differ"
    return word if pair.signatures_exact else f"{word} (approx)"


def _print(result: Any, top: int) -> None:
    out = console()
    kind = "debiased CKA" if result.debiased else "linear CKA"
    out.print(
        f"{result.model_a} vs {result.model_b}: {result.n_samples} samples from {result.inputs}"
    )
    print_rows(
        ["A \\ B", *result.layers_b],
        [
            [la, *(f"{v:.3f}" for v in row)]
            for la, row in zip(result.layers_a, result.cka, strict=True)
        ],
        title=f"{kind} between all layer pairs",
    )
    groups_a = {g.layer: g for g in result.groups_a}
    groups_b = {g.layer: g for g in result.groups_b}
    summary = []
    for layer in result.layers:
        agree = layer.signature_agreement
        summary.append(
            [
                layer.layer_a,
                layer.layer_b,
                f"{layer.cka:.3f}",
                len(layer.pairs),
                f"{layer.mean_correlation:.3f}",
                sum(p.correlation >= 0.9 for p in layer.pairs),
                "n/a" if agree is None else f"{agree}/{len(layer.pairs)}",
                f"{len(layer.constant_a)}/{len(layer.constant_b)}",
                f"{len(groups_a[layer.layer_a].groups)}/{len(groups_b[layer.layer_b].groups)}",
            ]
        )
    print_rows(
        [
            "A",
            "B",
            "CKA",
            "matched",
            "mean r",
            "r≥0.9",
            "signatures equal",
            "constant A/B",
            "groups A/B",
        ],
        summary,
        title="matched layers",
    )
    rows: list[list[Any]] = []
    hidden = 0
    for layer in result.layers:
        ranked = sorted(layer.pairs, key=lambda p: (-p.correlation, p.a))
        shown = ranked if top <= 0 else ranked[:top]
        hidden += len(ranked) - len(shown)
        rows.extend(
            [layer.layer_a, p.a, p.b, f"{p.correlation:.4f}", _signature_cell(p)] for p in shown
        )
    title = "matched neurons" + ("" if top <= 0 else f" (best {top} per layer)")
    print_rows(["layer", "A neuron", "B neuron", "r", "signatures"], rows, title=title)
    if hidden:
        out.print(f"{hidden} more pairs not shown (--top 0 shows all, --json gives everything)")


def compare_activations(
    a: Annotated[str, typer.Argument(help="Model A: a model file or a catalogued model.")],
    b: Annotated[str, typer.Argument(help="Model B: a model file or a catalogued model.")],
    inputs: Annotated[
        Path, typer.Option("--inputs", "-i", help="Inputs both models run on: .npy or .pt.")
    ],
    layers: Annotated[
        str | None,
        typer.Option(help="Layers to compare, comma-separated (default every layer{i})."),
    ] = None,
    layers_b: Annotated[
        str | None, typer.Option(help="B's layers if named differently (paired in order).")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Samples per forward pass.")] = 256,
    debiased: Annotated[
        bool, typer.Option("--debiased", help="Debiased CKA (unbiased HSIC).")
    ] = False,
    threshold: Annotated[
        float, typer.Option(help="Correlation at which neurons co-activate (groups).")
    ] = 0.9,
    groups: Annotated[
        GroupMethod, typer.Option(help="Grouping: complete linkage or connected components.")
    ] = GroupMethod.complete,
    input_domain: Annotated[
        Domain, typer.Option(help="Signature domain of layer 0's inputs.")
    ] = Domain.binary,
    backend: Annotated[
        str, typer.Option(envvar="ROON_BACKEND", help="Signature backend: auto|ref|cpu|triton.")
    ] = "auto",
    top: Annotated[int, typer.Option(min=0, help="Matched pairs shown per layer (0: all).")] = 10,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write the figure here (PNG, SVG, PDF).")
    ] = None,
    save: Annotated[
        bool,
        typer.Option(
            "--save", help="Store the matching in the catalogue (both models catalogued)."
        ),
    ] = False,
    catalogue: CatalogueOption = DEFAULT_CATALOGUE,
    activation: ActivationOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compare two models by their activations: matched neurons, CKA, weight signatures.

    Runs both models on the same inputs, matches their neurons one to one by Pearson
    correlation, says whether each matched pair has equal exact weight signatures, and
    prints the CKA of every pair of layers.

    Example: roon compare-activations a.safetensors b.safetensors --inputs x.npy --plot cmp.png
    """
    from roon.errors import InvalidArgumentError
    from roon.query.activations import compare_activations as compare
    from roon.query.activations import plot_comparison
    from roon.query.activations.store import require_catalogued, save_matching
    from roon.store import load_model_ref

    if plot is not None and plot.expanduser().parent.is_file():  # refused before the work
        raise InvalidArgumentError(f"--plot {plot}: {plot.parent} is a file, not a folder")
    models = [load_model_ref(ref, catalogue, activation=activation) for ref in (a, b)]
    if not as_json:
        from roon.ingest.loaders import load_notes

        for ref, model in zip((a, b), models, strict=True):
            for note in load_notes(model):
                console().print(plain(f"note: {ref}: {note}"))
    if save:
        require_catalogued(catalogue, models)  # refuse before the work, not after it
    with ProgressBars() as bars:
        result = compare(
            models[0],
            models[1],
            inputs,
            layers=_names(layers),
            layers_b=_names(layers_b),
            batch_size=batch_size,
            debiased=debiased,
            threshold=threshold,
            group_method=groups.value,
            input_domain=input_domain.value,
            backend=backend,
            progress=bars,
        )
    if plot is not None:
        plot_comparison(result, plot)
    added = save_matching(result, catalogue) if save else None
    if as_json:
        print_json(result.to_dict())
    else:
        _print(result, top)
    if plot is not None:
        console(stderr=True).print(plain(f"figure written to {plot}"))
    if added is not None:
        console(stderr=True).print(
            f"stored {added} new matched pairs in {catalogue} (table activation_matches)"
        )


def register(app: typer.Typer) -> None:
    """Add the ``compare-activations`` command to the roon app."""
    app.command("compare-activations")(compare_activations)
