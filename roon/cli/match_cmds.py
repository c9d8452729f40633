"""The query layer's commands: where, recurring, compare."""

from __future__ import annotations

import math
from enum import Enum
from typing import Annotated, Any

import typer

from roon.cli._common import (
    DEFAULT_CATALOGUE,
    ActivationOption,
    CatalogueOption,
    JsonOption,
    ProgressBars,
    console,
    plain,
    print_json,
    print_rows,
)
from roon.query.match.verify import DEFAULT_TOLERANCE


class Kind(str, Enum):
    neuron = "neuron"
    motif = "motif"


class Space(str, Enum):
    local = "local"
    input = "input"


def _pairs(pairs: list[list[int]]) -> str:
    return " ".join(f"{a}→{b}" for a, b in pairs)


def _deviation(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.3g}"


def where(
    circuit: Annotated[
        str,
        typer.Argument(help="Library circuit (roon circuits), circuit JSON, model file or model."),
    ],
    catalogue: CatalogueOption = DEFAULT_CATALOGUE,
    strict: Annotated[
        bool,
        typer.Option(help="Also require unmapped inputs of mapped neurons to carry ~0 weight."),
    ] = False,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many verified embeddings.")
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model", "-m", help="Search only this model (id, prefix or name); repeatable."
        ),
    ] = None,
    include_derived: Annotated[
        bool, typer.Option(help="Also search models derived by normalization.")
    ] = False,
    normalize: Annotated[
        str | None,
        typer.Option(help="Compare after these normalizer rules (e.g. exact), both sides."),
    ] = None,
    tolerance: Annotated[
        float, typer.Option(help="Functional check: largest relative deviation accepted.")
    ] = DEFAULT_TOLERANCE,
    show_all: Annotated[
        bool, typer.Option("--all", help="Also list embeddings that fail the functional check.")
    ] = False,
    save: Annotated[
        bool, typer.Option(help="Save the embeddings to the catalogue's matches table.")
    ] = False,
    activation: ActivationOption = None,
    as_json: JsonOption = False,
) -> None:
    """Where does a circuit appear? Every embedding, confirmed and functionally checked.

    Example: roon where xor --catalogue zoo-catalogue
    """
    from roon.query.match import where as find

    with ProgressBars() as bars:
        result = find(
            circuit,
            catalogue,
            strict=strict,
            limit=limit,
            models=model,
            include_derived=include_derived,
            normalize=normalize,
            tolerance=tolerance,
            save=save,
            progress=None if as_json else bars,
            activation=activation,
        )
    if as_json:
        print_json(
            [
                {
                    "circuit": m.circuit,
                    "model": m.model,
                    "model_id": m.model_id,
                    "layer_offset": m.layer_offset,
                    "maps": m.maps,
                    "input_map": m.input_map,
                    "verified": m.verified,
                    "deviation": m.deviation if math.isfinite(m.deviation) else None,
                    "exact": m.exact,
                }
                for m in result.matches
            ]
        )
        return
    shown = result.matches if show_all else result.verified
    rows = [
        (
            m.model,
            m.model_id[:12],
            m.layer_offset,
            " | ".join(_pairs(layer) for layer in m.maps),
            _pairs(m.input_map),
            "yes" if m.verified else "no",
            _deviation(m.deviation),
        )
        for m in shown
    ]
    columns = ["model", "id", "offset", "neuron maps", "input map", "verified", "deviation"]
    if rows:
        print_rows(columns, rows, title=f"where {result.circuit}")
    out = console()
    failed = len(result.matches) - len(result.verified)
    out.print(
        f"found in {result.models_found} of {result.models} models "
        f"({len(result.verified)} verified embeddings"
        + (f"; {failed} more fail the functional check" if failed else "")
        + ")"
        + ("" if result.complete else " — search incomplete, see notes")
    )
    if failed and not show_all:
        out.print("(--all lists the embeddings that fail the functional check)")
    for note in result.notes:
        out.print(plain(f"note: {note}"))
    if save:
        kept = len(result.matches) - result.saved
        out.print(
            f"saved {result.saved} embeddings to the matches table"
            + (f" ({kept} were there already)" if kept else "")
        )


def recurring(
    catalogue: CatalogueOption = DEFAULT_CATALOGUE,
    min_models: Annotated[
        int, typer.Option(min=1, help="Appears in at least this many models.")
    ] = 2,
    kind: Annotated[
        Kind,
        typer.Option(help="neuron: exact signatures; motif: a neuron and its strongest inputs."),
    ] = Kind.neuron,
    include_derived: Annotated[
        bool, typer.Option(help="Count models derived by normalization too.")
    ] = False,
    include_constant: Annotated[
        bool, typer.Option(help="Count neurons that never (or always) fire too.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many.")] = 20,
    space: Annotated[
        Space,
        typer.Option(
            help="local: exact signatures (data-free); input: input-space firing patterns "
            "on the models' own inputs (neurons at any depth)."
        ),
    ] = Space.local,
    complements: Annotated[
        bool,
        typer.Option(
            "--complements",
            help="With --space input: a neuron firing exactly where "
            "another does not counts as the same feature.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Which circuits recur across models? Exact functions or motifs, most frequent first.

    Example: roon recurring --min-models 3 --kind motif
    """
    from roon.query.recurring import recurring as find

    if space is Space.input or complements:
        from roon.cli.input_space_cmds import recurring_input
        from roon.errors import InvalidArgumentError

        if kind is not Kind.neuron or space is not Space.input:
            raise InvalidArgumentError(
                "--space input counts neurons (--kind neuron); --complements needs --space input"
            )
        recurring_input(catalogue, min_models, include_derived, include_constant, limit,
                        complements, as_json)  # fmt: skip
        return

    rows = find(
        catalogue,
        min_models=min_models,
        kind=kind.value,
        include_derived=include_derived,
        include_constant=include_constant,
        limit=limit,
    )
    if as_json:
        print_json(rows)
        return
    if kind is Kind.neuron:
        table = [
            (
                r["signature"][:12],
                ", ".join(r["circuits"]) or "",
                r["domain"],
                r["fan_in"],
                _chow(r["chow"]),
                r["models"],
                r["neurons"],
                ", ".join(r["found_in"][:6]) + (" …" if len(r["found_in"]) > 6 else ""),
            )
            for r in rows
        ]
        columns = [
            "signature",
            "circuit",
            "domain",
            "fan_in",
            "chow",
            "models",
            "neurons",
            "found_in",
        ]
    else:
        table = [
            (
                r["motif"][:12],
                r["signature"][:12],
                ", ".join(r["circuits"]) or "",
                " ".join(p[:8] + p[-1] for p in r["inputs"].split(",")),
                r["models"],
                r["neurons"],
                ", ".join(r["found_in"][:6]) + (" …" if len(r["found_in"]) > 6 else ""),
            )
            for r in rows
        ]
        columns = ["motif", "neuron", "circuit", "inputs (sign)", "models", "neurons", "found_in"]
    print_rows(columns, table, title=f"recurring {kind.value}s in ≥ {min_models} models")
    if not rows:
        console().print(f"nothing recurs in {min_models} or more models")


def _chow(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return ",".join(str(v) for v in value)


def compare(
    a: Annotated[str, typer.Argument(help="First model: file or catalogue reference.")],
    b: Annotated[str, typer.Argument(help="Second model: file or catalogue reference.")],
    catalogue: CatalogueOption = DEFAULT_CATALOGUE,
    activation: ActivationOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compare two models: shared signatures, layer containment both ways, embeddings.

    Example: roon compare xor-w4-s0 xor-w4-s1 --catalogue zoo-catalogue
    """
    from roon.query.compare import compare as run

    result = run(a, b, catalogue, activation=activation)
    if as_json:
        print_json(result)
        return
    out = console()
    for note in result["notes"]:
        out.print(plain(f"note: {note}"))
    na, nb = result["a"]["name"], result["b"]["name"]
    shared = result["shared_neurons"]
    out.print(
        plain(f"{shared} neuron{'' if shared == 1 else 's'} of {na} share an exact signature ")
        + plain(f"with {nb}")
    )
    for direction, first, second in (("a_in_b", na, nb), ("b_in_a", nb, na)):
        part = result[direction]
        rows = [
            (c["layer"], c["in_layer"], "yes" if c["embeds"] else "no") for c in part["contained"]
        ]
        if rows:
            print_rows(
                [f"{first} layer", f"contained in {second} layer", "embeds"],
                rows,
                title=f"{first} in {second}",
            )
        else:
            out.print(plain(f"no layer of {first} is contained in a layer of {second}"))
        at = part["whole_model_at"]
        out.print(
            plain(f"{first} embeds in {second} at layer offset {', '.join(map(str, at))}")
            if at
            else plain(f"{first} does not embed in {second}")
        )


def register(app: typer.Typer) -> None:
    """Add ``roon where``, ``roon recurring`` and ``roon compare`` to the app."""
    app.command()(where)
    app.command()(recurring)
    app.command()(compare)
