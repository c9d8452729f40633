"""The ``roon equivalent`` command: do two models compute the same function on an input space?"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from roon.cli._common import (
    DEFAULT_CATALOGUE,
    ActivationOption,
    CatalogueOption,
    JsonOption,
    ProgressBars,
    console,
    parse_bounds,
    plain,
    print_json,
    print_rows,
)


class Outputs(str, Enum):
    boolean = "boolean"
    real = "real"


def equivalent(
    a: Annotated[str, typer.Argument(help="First model: a file, or a catalogue reference.")],
    b: Annotated[str, typer.Argument(help="Second model: a file, or a catalogue reference.")],
    space: Annotated[
        str,
        typer.Option(
            help="Points to compare on: auto (the box grid when the first model states its "
            "input box, else binary), binary, signed, box, box:K, or a .npy probe file."
        ),
    ] = "auto",
    input_bounds: Annotated[
        str | None,
        typer.Option(help="Input box LO,HI for every input (default: the first model's)."),
    ] = None,
    outputs: Annotated[
        Outputs,
        typer.Option(
            help="boolean: output neurons fire (pre-activation > 0) on the same points, "
            "exactly; real: output values within --tolerance."
        ),
    ] = Outputs.boolean,
    tolerance: Annotated[
        float,
        typer.Option(help="Real outputs agree when |a-b| <= tolerance*(1+max(|a|,|b|))."),
    ] = 1e-6,
    counterexample: Annotated[
        bool, typer.Option("--counterexample", help="Show the first input where they differ.")
    ] = False,
    catalogue: CatalogueOption = DEFAULT_CATALOGUE,
    activation: ActivationOption = None,
    as_json: JsonOption = False,
) -> None:
    """Whether two models compute the same function on every point of an input space.

    Exits 0 when they do, 2 when they do not (1 on errors).

    Example: roon equivalent xor_seed0.pt xor_seed1.pt --space binary --counterexample
    """
    from roon.query.equivalent import equivalent as compare

    with ProgressBars() as bars:
        found = compare(
            a,
            b,
            space=space,
            catalogue=catalogue,
            input_bounds=parse_bounds(input_bounds),
            outputs=outputs.value,
            tolerance=tolerance,
            activation=activation,
            progress=None if as_json else bars,
        )
    if as_json:
        print_json(found.to_dict(counterexample=counterexample))
    else:
        name_a, name_b = found.models
        verdict = "equivalent" if found.equivalent else "NOT equivalent"
        what = "output firing patterns" if found.outputs == "boolean" else "output values"
        lines = [f"note: {note}" for note in found.notes]
        lines.append(f"{name_a} and {name_b}: {verdict} on {found.description} ({what})")
        if not found.equivalent:
            lines.append(f"they differ on {found.differing:,} of {found.points:,} points")
        lines.append(f"largest output difference: {found.max_difference:.6g}")
        if counterexample and found.counterexample is not None:
            point = ", ".join(f"{v:.6g}" for v in found.counterexample)
            lines.append(f"first differing input: [{point}]")
        for line in lines:  # model names are user data: printed verbatim
            console().print(plain(line))
    if not found.equivalent:
        raise typer.Exit(2)


def recurring_input(
    catalogue: Path,
    min_models: int,
    include_derived: bool,
    include_constant: bool,
    limit: int,
    complements: bool,
    as_json: bool,
) -> None:
    """``roon recurring --space input``: input-space patterns found in several models."""
    from dataclasses import asdict

    from roon.query.input_space import recurring_input_space

    found = recurring_input_space(
        catalogue,
        min_models=min_models,
        complements=complements,
        include_constant=include_constant,
        include_derived=include_derived,
        limit=limit,
    )
    if as_json:
        print_json([asdict(r) for r in found])
        return
    rows = [
        (
            r.pattern if r.pattern is not None and len(r.pattern) <= 16 else r.hash[:12],
            r.space,
            f"{r.fire_count}/{r.points}",
            ",".join(str(k) for k in r.layers),
            r.models,
            r.neurons,
            len(r.complemented),
            ", ".join(f"{t} {a}/{b}" for t, (a, b) in r.tasks.items()),
        )
        for r in found
    ]
    columns = ["pattern", "space", "fires", "layers", "models", "neurons", "complemented", "tasks"]
    print_rows(columns, rows, title=f"recurring input-space patterns in ≥ {min_models} models")
    if not found:
        console().print(f"nothing recurs in {min_models} or more models")


def register(app: typer.Typer) -> None:
    """Add the ``equivalent`` command to the roon app."""
    app.command("equivalent")(equivalent)
