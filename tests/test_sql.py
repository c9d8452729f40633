"""DuckDB views over the catalogue and the read-only `roon sql`."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures import abs_net, and_or_net, random_mlp, store_model
from roon.schema import TABLES, table_schema

from roon import QueryError
from roon.query.scan import run_sql, scan_catalogue
from roon.store import open_catalogue

pytestmark = pytest.mark.integration


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = open_catalogue(tmp_path / "cat", create=True)
    for m in (abs_net(), and_or_net(), random_mlp(seed=3)):
        store_model(root, m)
    return root


def test_views_count_rows(root: Path):
    con = scan_catalogue(root)
    assert con.execute("select count(*) from models").fetchall()[0] == (3,)
    assert con.execute("select count(*) from neurons").fetchall()[0] == (3 + 3 + (6 + 5 + 3),)
    # 2+2 (abs) + 4+2 (and_or) + 24+30+15 (random)
    assert con.execute("select count(*) from edges").fetchall()[0] == (4 + 6 + 69,)


def test_views_have_the_schema_columns_even_when_empty(tmp_path: Path):
    root = open_catalogue(tmp_path / "empty", create=True)
    con = scan_catalogue(root)
    for name in TABLES:
        cols = [r[0] for r in con.sql(f'describe "{name}"').fetchall()]
        assert cols == table_schema(name).names, name
        assert con.execute(f'select count(*) from "{name}"').fetchall()[0] == (0,)


def test_view_types_match_schema(root: Path):
    con = scan_catalogue(root)
    got = {r[0]: r[1] for r in con.sql("describe neurons").fetchall()}
    assert got["layer"] == "INTEGER" and got["bias"] == "DOUBLE" and got["neuron_id"] == "VARCHAR"


def test_edges_join_neurons(root: Path):
    m = and_or_net()
    rows = run_sql(
        root,
        f"select n.neuron, e.source, e.weight from edges e join neurons n "
        f"on e.target_id = n.neuron_id where n.model_id = '{m.id}' and n.layer = 1 "
        f"order by e.source",
    ).to_pylist()
    assert [(r["source"], r["weight"]) for r in rows] == [(0, -2.0), (1, 1.0)]


@pytest.mark.parametrize(
    "statement",
    [
        "create table x(a int)",
        "insert into models select * from models",
        "copy (select 1) to 'out.csv'",
        "attach 'other.db'",
        "install httpfs",
        "set threads = 1",
        "select 1; drop view models",
        "pragma version",
    ],
)
def test_writes_are_refused(root: Path, statement: str):
    with pytest.raises(QueryError, match="read-only|one statement"):
        run_sql(root, statement)
    assert not (Path.cwd() / "out.csv").exists()


def test_sandbox_blocks_files_outside_the_catalogue(root: Path):
    with pytest.raises(QueryError, match="(?i)permission|disabled"):
        run_sql(root, "select * from read_csv('/etc/passwd')")


def test_bad_sql_is_one_clear_error(root: Path):
    with pytest.raises(QueryError, match="does not parse"):
        run_sql(root, "selec 1")
    with pytest.raises(QueryError, match="nope"):
        run_sql(root, "select * from nope")
    with pytest.raises(QueryError, match="empty"):
        run_sql(root, "  ")
