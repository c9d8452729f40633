"""The graph layer under review, without a server.

Each test failed before its fix: passwords holding ``/`` or ``@`` (or a URI without a
scheme) were echoed in errors, a push skipped models whose FEEDS an earlier push with a
higher ``--min-weight`` had left out, and the import command broke on a directory with
a space (or silently on one with a comma).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
from test_graph_fixture import EXPECTED_COUNTS, FakeDriver, build_graph_catalogue
from typer.testing import CliRunner

from roon.cli import app
from roon.errors import CatalogueError
from roon.query import cypher
from roon.query.graph_store import GraphStore, display_uri, push_catalogue
from roon.query.neo4j_export import csv_groups, export_neo4j_admin, import_command

SECRET = "S3cret-never-print"


def _invoke(*args: str) -> Any:
    env = {"NEO4J_PASSWORD": "x", "NEO4J_URI": None, "NEO4J_USER": None}
    return CliRunner().invoke(app, list(args), env=env)


@pytest.mark.parametrize(
    "uri",
    [
        f"bolt://neo4j:pa/{SECRET}@127.0.0.1:1",  # '/' in the password
        f"bolt://neo4j:p@{SECRET}@127.0.0.1:1",  # '@' in the password
        f"neo4j://neo4j:p#{SECRET}@127.0.0.1:1",
        f"neo4j:{SECRET}@localhost:7687",  # no scheme
        f"http://neo4j:{SECRET}@localhost:7474",  # a scheme roon refuses
    ],
)
def test_no_part_of_a_password_in_the_uri_is_ever_printed(uri: str) -> None:
    for args in (("graph", "init"), ("cypher", "RETURN 1"), ("graph", "push", "-c", "nowhere")):
        result = _invoke(*args, "--uri", uri)
        assert result.exit_code == 1
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert "invalid Neo4j URI" in result.output
        assert SECRET not in result.output and SECRET[:6] not in result.output


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("bolt://u:p@host:7687", "bolt://host:7687"),
        ("bolt://u:a/b@host:7687", "bolt://host:7687"),
        ("bolt://u:a@b@host:7687?x=1", "bolt://host:7687?x=1"),
        ("u:p@host:7687", "host:7687"),
        ("neo4j://host:7687", "neo4j://host:7687"),
        ("localhost:7687", "localhost:7687"),
    ],
)
def test_display_uri(uri: str, shown: str) -> None:
    assert display_uri(uri) == shown


def test_a_lower_min_weight_push_sends_what_a_higher_one_left_out(tmp_path: Path) -> None:
    path = tmp_path / "cat"
    ids = build_graph_catalogue(path)
    finished: set[str] = set()
    weights: dict[str, float] = {}

    def push(min_weight: float) -> tuple[Any, FakeDriver]:
        driver = FakeDriver(finished=finished, min_weights=weights)
        store = GraphStore(driver, "bolt://graph.example:7687", "neo4j")
        return push_catalogue(store, path, min_weight=min_weight), driver

    def feeds(driver: FakeDriver) -> list[dict]:
        return [r for s, p in driver.calls if s == cypher.MERGE_FEEDS for r in p["rows"]]

    first, driver = push(0.1)
    assert len(feeds(driver)) == EXPECTED_COUNTS["FEEDS"] - 1
    # all models are complete at 0.1; a push of everything must not skip them
    second, driver = push(0.0)
    assert second.models_skipped == [] and sorted(second.models_pushed) == sorted(ids.values())
    assert len(feeds(driver)) == EXPECTED_COUNTS["FEEDS"]
    assert set(weights.values()) == {0.0}
    # the graph now holds every edge: a higher threshold has nothing to add
    third, driver = push(0.5)
    assert third.models_pushed == [] and len(third.models_skipped) == len(ids)
    assert feeds(driver) == []
    # what the fake plays, the statement says
    assert "$min_weight" in cypher.PUSHED_MODELS and "feeds_min_weight" in cypher.PUSHED_MODELS


def test_import_command_survives_a_directory_with_spaces(tmp_path: Path) -> None:
    where = tmp_path / "neo4j import (v1)"
    args = shlex.split(import_command(where).replace("\\\n", " "))
    assert args[:6] == [
        "neo4j-admin",
        "database",
        "import",
        "full",
        "neo4j",
        "--overwrite-destination=true",
    ]
    files = [a.split("=", 1) for a in args[6:]]
    assert [(kind, g.kind) for (kind, _), g in zip(files, csv_groups(), strict=True)] == [
        (f"--{g.kind}", g.kind) for g in csv_groups()
    ]
    for (_, listed), group in zip(files, csv_groups(), strict=True):
        assert listed.split(",") == [
            str(where / f"{group.name}.header.csv"),
            str(where / f"{group.name}.csv"),
        ]


def test_export_readme_quotes_the_mount_and_refuses_commas(tmp_path: Path) -> None:
    build_graph_catalogue(tmp_path / "cat")
    out = tmp_path / "my export"
    summary = export_neo4j_admin(tmp_path / "cat", out)
    readme = (out / "README.md").read_text()
    assert summary.command in readme
    assert f"-v '{out}:/import/roon:ro'" in readme
    with pytest.raises(CatalogueError, match="comma"):
        export_neo4j_admin(tmp_path / "cat", tmp_path / "a,b")
    assert not (tmp_path / "a,b").exists()
