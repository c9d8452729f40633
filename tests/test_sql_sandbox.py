"""The escape corpus: 58 attempts to write (or read files) through the read-only `roon sql`.

Each attempt must be refused with one line, and nothing anywhere may change: every file
of the catalogue, a canary file and a folder outside it, the working directory and
DuckDB's home (extensions, secrets) are checksummed before and after. A second test runs
every attempt on the sandboxed connection *without* the statement check, statement by
statement: the catalogue must stay unwritable by construction (DuckDB there can open no
file), not only because the check refuses.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from pathlib import Path

import pytest
from fixtures import abs_net, and_or_net, store_model

from roon import CatalogueError, QueryError
from roon.query.scan import run_sql, scan_catalogue
from roon.store import layout, open_catalogue

pytestmark = pytest.mark.integration

# {neurons}: a committed model's neurons.parquet; {marker}: catalogue.json; {cat}: the
# catalogue; {canary}: a file outside it; {out}: a folder outside it.
ESCAPES = [
    # COPY, straight and wrapped
    "COPY (SELECT 1) TO 'out.csv'",
    "COPY (SELECT * FROM neurons WHERE false) TO '{neurons}' (FORMAT parquet)",
    "COPY (SELECT 'x') TO '{marker}' (FORMAT csv)",
    "COPY (SELECT 'x') TO '{canary}'",
    "COPY models TO '{out}/models.parquet' (FORMAT parquet)",
    "COPY models FROM '{canary}'",
    "EXPLAIN ANALYZE COPY (SELECT * FROM neurons WHERE false) TO '{neurons}' (FORMAT parquet)",
    "EXPLAIN ANALYZE COPY (SELECT 'x') TO '{marker}' (FORMAT csv)",
    "explain analyse copy (select 1) to '{canary}'",
    "EXPLAIN (ANALYZE) COPY (SELECT 1) TO '{neurons}' (FORMAT parquet)",
    "EXPLAIN (ANALYZE, FORMAT json) COPY (SELECT 1) TO '{canary}'",
    "EXPLAIN /* a comment */ ANALYZE -- and another\n COPY (SELECT 1) TO '{canary}'",
    "EXPLAIN COPY (SELECT 1) TO '{canary}'",
    "EXPLAIN ANALYZE SET enable_external_access = true",
    "EXPLAIN ANALYZE CREATE TABLE t AS SELECT 1",
    "EXPLAIN ANALYZE INSERT INTO models SELECT * FROM models",
    # whole-database export and import
    "EXPORT DATABASE '{out}/export'",
    "EXPORT DATABASE '{cat}/models' (FORMAT parquet)",
    "IMPORT DATABASE '{out}'",
    # other databases
    "ATTACH '{out}/new.duckdb' AS other",
    "ATTACH '{marker}' AS other",
    "ATTACH ':memory:' AS mem",
    "DETACH memory",
    "USE memory",
    # extensions
    "INSTALL httpfs",
    "FORCE INSTALL parquet",
    "LOAD httpfs",
    "LOAD '{out}/evil.duckdb_extension'",
    # configuration
    "SET enable_external_access = true",
    "SET allowed_directories = ['/']",
    "SET lock_configuration = false",
    "RESET enable_external_access",
    "SET temp_directory = '{cat}'",
    "SET profiling_output = '{marker}'",
    "PRAGMA enable_profiling",
    "PRAGMA profiling_output = '{canary}'",
    "CALL pragma_version()",
    "CHECKPOINT",
    "VACUUM",
    # changing the views or the database
    "CREATE TABLE t AS SELECT 1",
    "CREATE OR REPLACE VIEW neurons AS SELECT 1 AS x",
    "DROP VIEW models",
    "INSERT INTO models SELECT * FROM models",
    "UPDATE models SET name = 'x'",
    "DELETE FROM models",
    "CREATE SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')",
    "CREATE MACRO m(x) AS x",
    "PREPARE p AS SELECT 1",
    "BEGIN TRANSACTION",
    "PIVOT models ON name",
    # more than one statement: a harmless first one does not carry a second
    "SELECT 1; COPY (SELECT 1) TO '{canary}'",
    "SELECT 1; SET enable_external_access = true; SELECT * FROM read_text('{canary}')",
    # SELECTs that would open files: the check lets them through, the sandbox does not
    "SELECT * FROM read_text('{canary}')",
    "SELECT * FROM read_blob('/etc/passwd')",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_parquet('{cat}/models/*/neurons.parquet')",
    "SELECT * FROM glob('{cat}/**')",
    "EXPLAIN ANALYZE SELECT * FROM '{canary}'",
]


NEURONS = abs_net().n_neurons + and_or_net().n_neurons


def _tree(*roots: Path) -> dict[str, str]:
    """Path → SHA-256 (or 'dir') of everything under ``roots``."""
    found = {}
    for root in roots:
        found[str(root)] = "dir" if root.is_dir() else "missing"
        for path in sorted(root.rglob("*")):
            key = str(path)
            found[key] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.fixture
def world(tmp_path: Path, monkeypatch) -> dict[str, Path]:
    """A catalogue of two models, a canary outside it, and a private HOME and cwd."""
    home, cwd, out = tmp_path / "home", tmp_path / "cwd", tmp_path / "outside"
    for d in (home, cwd, out):
        d.mkdir()
    monkeypatch.setenv("HOME", str(home))  # DuckDB's extension and secret folders
    monkeypatch.chdir(cwd)
    canary = out / "canary.txt"
    canary.write_text("canary: must never change\n")
    root = open_catalogue(tmp_path / "cat", create=True)
    model = abs_net()
    store_model(root, model)
    store_model(root, and_or_net())
    return {
        "cat": root,
        "neurons": layout.table_path(root, model.id, "neurons"),
        "model_id": Path(model.id),
        "marker": layout.marker_path(root),
        "canary": canary,
        "out": out,
        "home": home,
        "cwd": cwd,
    }


def _fill(template: str, world: dict[str, Path]) -> str:
    return template.format(**{k: str(v) for k, v in world.items()})


def _watched(world: dict[str, Path]) -> list[Path]:
    return [world["cat"], world["out"], world["home"], world["cwd"]]


def test_the_corpus_has_58_attempts():
    assert len(ESCAPES) == 58 and len(set(ESCAPES)) == 58


@pytest.mark.parametrize("template", ESCAPES)
def test_every_escape_is_refused_and_changes_nothing(world, template: str):
    before = _tree(*_watched(world))
    with pytest.raises(QueryError) as refused:
        run_sql(world["cat"], _fill(template, world))
    message = str(refused.value)
    assert "\n" not in message
    # refused by the check, or failing in the sandbox (no file access, no such table)
    assert re.search("read-only|one statement|disabled|does not exist", message), message
    assert _tree(*_watched(world)) == before
    # the catalogue still answers, whole
    count = run_sql(world["cat"], "select count(*) AS n from neurons")
    assert count.to_pylist() == [{"n": NEURONS}]


@pytest.mark.parametrize("template", ESCAPES)
def test_the_sandbox_alone_keeps_every_file_unchanged(world, template: str):
    """Without the statement check: DuckDB may run anything, and still writes nothing."""
    import duckdb

    before = _tree(*_watched(world))
    con = scan_catalogue(world["cat"], sandbox=True)
    for statement in con.extract_statements(_fill(template, world)):
        with contextlib.suppress(duckdb.Error):
            con.execute(statement)
    con.close()
    assert _tree(*_watched(world)) == before


def test_the_sandbox_reads_no_file_but_the_views_read_the_catalogue(world):
    con = scan_catalogue(world["cat"], sandbox=True)
    assert con.execute("select count(*) from models").fetchone() == (2,)
    import duckdb

    for path in (world["canary"], world["neurons"], world["marker"]):
        with pytest.raises(duckdb.Error, match="(?i)disabled"):
            con.execute(f"select * from read_blob('{path}')")


def test_reads_that_look_like_writes_are_allowed(world):
    root = world["cat"]
    assert run_sql(root, "EXPLAIN SELECT * FROM neurons").num_rows >= 1
    assert run_sql(root, "EXPLAIN ANALYZE SELECT count(*) FROM neurons").num_rows >= 1
    assert run_sql(root, "explain (analyze, format json) select 1").num_rows >= 1
    assert run_sql(root, "DESCRIBE neurons").num_rows == 8
    assert run_sql(root, "SUMMARIZE SELECT bias FROM neurons").num_rows == 1
    assert run_sql(root, "FROM models SELECT name ORDER BY name").column(0).to_pylist() == [
        "abs",
        "and_or",
    ]
    # a string that holds the words of a write is still a SELECT
    assert run_sql(root, "SELECT 'COPY x TO y; DROP VIEW models' AS s").num_rows == 1


def test_a_query_sees_one_snapshot_while_writers_commit(world):
    """Two reads of one table in one query agree, though a model is committed between."""
    from fixtures import random_mlp

    root = world["cat"]
    con = scan_catalogue(root)
    first = con.execute("select count(distinct model_id) from neurons").fetchone()[0]
    store_model(root, random_mlp(seed=5))  # committed after the connection opened
    both = con.execute(
        "select (select count(distinct model_id) from neurons), "
        "(select count(*) from models), (select count(distinct model_id) from edges)"
    ).fetchone()
    assert both == (first, first, first) == (2, 2, 2)
    assert scan_catalogue(root).execute("select count(*) from models").fetchone() == (3,)


def test_a_damaged_file_fails_the_query_with_one_line_naming_the_model(world):
    root = world["cat"]
    os.truncate(world["neurons"], 100)
    model_id = world["model_id"].name
    with pytest.raises(CatalogueError) as damaged:
        run_sql(root, "select count(*) from neurons")
    message = str(damaged.value)
    assert "\n" not in message
    assert model_id[:12] in message and "neurons.parquet" in message
    assert "roon check --repair" in message
    # tables that do not touch the damaged file still answer
    assert run_sql(root, "select count(*) AS n from models").to_pylist() == [{"n": 2}]
