"""The README documents every command, and every command has help text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from roon.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"


def _commands(group, prefix: str = "roon") -> list[tuple[str, object]]:
    found = []
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        found.append((path, command))
        if hasattr(command, "commands"):
            found.extend(_commands(command, path))
    return found


ROOT_COMMAND = typer.main.get_command(app)
COMMANDS = _commands(ROOT_COMMAND)


def test_the_command_tree_is_walked():
    assert len(COMMANDS) >= 4


@pytest.mark.parametrize("path, command", COMMANDS, ids=[path for path, _ in COMMANDS])
def test_command_is_in_the_readme(path, command):
    assert re.search(rf"`{re.escape(path)}\b", README.read_text()), f"README.md lacks `{path}`"


HELPED = [("roon", ROOT_COMMAND), *COMMANDS]


@pytest.mark.parametrize("path, command", HELPED, ids=[path for path, _ in HELPED])
def test_command_has_help_and_an_example(path, command):
    """Groups too (``roon zoo``, ``roon circuits``): a typer ``help=`` replaces the
    callback's docstring, so its Example line must be in the help string itself."""
    assert command.help and command.help.strip(), f"{path} has no help text"
    # the example runs the command itself, after environment settings such as NEO4J_PASSWORD
    example = rf"^Example: (\w+=\S* )*{re.escape(path)}\b"
    assert re.search(example, command.help, re.M), f"{path} help has no `Example: {path}` line"


def test_readme_states_the_two_commands_and_ci_runs_the_test_one():
    text = README.read_text()
    assert "make run" in text and "make test" in text
    ci = (README.parent / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M)


def test_no_comment_points_at_a_file_outside_the_repository():
    # DESIGN.md and the notes live outside the repository; readers have the README
    root = README.parent
    pattern = re.compile(r"\bDESIGN\b|notes §|notes/|algorithms\.md|\.\./shared")
    found = []
    for folder in ("roon", "schema", "benchmarks", "tests", "examples", "catalogue"):
        for path in (root / folder).rglob("*"):
            if path.suffix not in {".py", ".json", ".md", ".c", ".cypher"} or path == Path(
                __file__
            ):
                continue
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                if pattern.search(line):
                    found.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    assert found == []
