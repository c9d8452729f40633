"""The ``roon circuits`` commands: list the reference-circuit library, show one circuit.

Names, descriptions and citations may come from a user's JSON file; they are printed
verbatim (``print_rows`` renders no markup: ``[red]`` in a description prints as
``[red]``, it does not colour anything).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from roon.cli._common import JsonOption, RoonGroup, print_json, print_rows

circuits_app = typer.Typer(
    cls=RoonGroup,
    name="circuits",
    help="The library of reference circuits (Boolean gates, Osier's mathematical circuits)."
    "\n\nExample: roon circuits show xor",
)


@circuits_app.callback(invoke_without_command=True)
def circuits(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the reference circuits: name, layer widths, input domain, formula, source.

    Example: roon circuits --json
    """
    if ctx.invoked_subcommand is not None:
        return
    from roon.ingest.loaders.circuit import list_circuits

    library = list_circuits()
    if as_json:
        print_json([_summary(c) for c in library])
        return
    rows = [[c.name, _widths(c), c.input_domain, c.computes, c.source] for c in library]
    print_rows(
        ["name", "layers", "domain", "computes", "source"],
        rows,
        title=f"{len(library)} reference circuits",
    )


@circuits_app.command("show")
def show(
    circuit: Annotated[
        str,
        typer.Argument(
            metavar="NAME_OR_FILE", help="A library circuit's name, or a circuit .json file."
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the circuit in the circuit file format.")
    ] = False,
) -> None:
    """Print one circuit: formula, description, source and every layer's weights.

    NAME_OR_FILE is a library circuit (case-insensitive) or a circuit .json file. One row
    per neuron: its weights and bias. --json prints the circuit file format, a starting
    point for a circuit of your own.

    Example: roon circuits show min
    """
    from roon.ingest.loaders.circuit import load_circuit

    found = load_circuit(circuit)
    if as_json:
        print_json(found.as_dict())
        return
    facts = [
        ("name", found.name),
        ("file", found.path),
        ("layers", _widths(found)),
        ("activations", ",".join(found.mlp.activations)),
        ("input domain", found.input_domain),
    ]
    if found.input_bounds is not None:
        facts.append(
            (
                "input bounds",
                f"[{_number(found.input_bounds[0])}, {_number(found.input_bounds[1])}]",
            )
        )
    facts += [
        ("computes", found.computes),
        ("description", found.description),
        ("source", found.source),
        ("model id", found.mlp.id),
    ]
    print_rows(["field", "value"], [[k, v] for k, v in facts], title="circuit")
    for i, layer in enumerate(found.mlp.layers):
        rows = [
            [j, ", ".join(_number(w) for w in layer.weight[j]), _number(layer.bias[j])]
            for j in range(layer.width)
        ]
        title = f"layer {i}: {layer.fan_in} → {layer.width}, {layer.activation}"
        print_rows(["neuron", "weights", "bias"], rows, title=title)


def _summary(circuit: Any) -> dict[str, Any]:
    return {
        "name": circuit.name,
        "layers": _widths(circuit),
        "widths": list(circuit.mlp.widths),
        "input_domain": circuit.input_domain,
        "computes": circuit.computes,
        "description": circuit.description,
        "source": circuit.source,
    }


def _widths(circuit: Any) -> str:
    return "-".join(str(w) for w in circuit.mlp.widths)


def _number(value: float) -> str:
    """Integer-valued weights without a trailing .0, others at full precision."""
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def register(app: typer.Typer) -> None:
    """Add the ``circuits`` command group to the roon app."""
    app.add_typer(circuits_app, name="circuits")
