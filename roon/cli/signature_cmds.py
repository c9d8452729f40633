"""The ``roon signature`` command: the exact signature of one neuron given on the command line."""

from __future__ import annotations

from typing import Annotated

import typer

from roon.cli._common import Domain, JsonOption, print_json, print_rows


def _numbers(text: str, option: str) -> list[float]:
    from roon.errors import InvalidArgumentError

    parts = [p.strip() for p in text.split(",")] if text.strip() else []
    try:
        return [float(p) for p in parts]
    except ValueError:
        raise InvalidArgumentError(
            f"{option} {text!r} is not a comma-separated list of numbers; e.g. {option} 0.7,0.7"
        ) from None


def signature(
    weights: Annotated[
        str,
        typer.Option(
            "--weights", "-w", help="The neuron's weights, comma-separated (empty: fan-in 0)."
        ),
    ],
    bias: Annotated[float, typer.Option("--bias", "-b", help="The neuron's bias.")] = 0.0,
    domain: Annotated[
        Domain, typer.Option(help="Input domain: binary {0,1} or signed {-1,0,1}.")
    ] = Domain.binary,
    backend: Annotated[
        str, typer.Option(envvar="ROON_BACKEND", help="Backend: auto|ref|cpu|triton.")
    ] = "auto",
    as_json: JsonOption = False,
) -> None:
    """Print the exact excited-state signature of one neuron.

    The truth table is over sorted positions (ascending weight): bit m is the input whose
    bit i (binary) or base-3 digit i (signed: 0,1,2 = -1,0,+1) is sorted position i.

    Example: roon signature --weights 0.7,0.7 --bias -1   (AND: truth table 8, chow 1,1,1)
    """
    from roon.kernels import signatures

    values = _numbers(weights, "--weights")
    batch = signatures([values], [bias], domain=domain.value, backend=backend)
    row = batch.to_dicts()[0]
    if as_json:
        print_json(row)
        return
    shown = dict(row)
    shown["chow"] = "" if row["chow"] is None else ",".join(str(c) for c in row["chow"])
    print_rows(["field", "value"], [[k, v] for k, v in shown.items()], title="signature")


def register(app: typer.Typer) -> None:
    """Add the ``signature`` command to the roon app."""
    app.command("signature")(signature)
