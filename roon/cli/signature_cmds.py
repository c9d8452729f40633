"""Placeholder until its commands land (filled in before the first commit)."""

import typer


def register(app: typer.Typer) -> None:
    pass
