"""`roon sql` output: bounded tables, streamed formats, files, and refused combinations."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from fixtures import random_mlp, store_model
from typer.testing import CliRunner

from roon.cli import app
from roon.store import layout, open_catalogue

pytestmark = pytest.mark.integration
runner = CliRunner()


def roon(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def cat(tmp_path: Path) -> Path:
    root = open_catalogue(tmp_path / "cat", create=True)
    store_model(root, random_mlp(seed=3))  # widths 4-6-5-3: 69 edges
    return root


def test_a_table_shows_50_rows_and_counts_the_rest(cat: Path):
    result = roon("sql", "select * from range(120) t(i) order by i", "-c", cat)
    assert result.exit_code == 0, result.output
    shown = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert len(shown) == 50
    assert "│ 49 " in result.stdout and "│ 50 " not in result.stdout
    assert "70 more rows (use --limit or --format csv)" in result.stdout


def test_limit_caps_every_format(cat: Path):
    table = roon("sql", "select * from range(120) t(i)", "-c", cat, "--limit", "3")
    assert len([ln for ln in table.stdout.splitlines() if ln.startswith("│")]) == 3
    assert "117 more rows" in table.stdout
    everything = roon("sql", "select * from range(120) t(i)", "-c", cat, "--limit", "0")
    assert "more rows" not in everything.stdout
    assert len([ln for ln in everything.stdout.splitlines() if ln.startswith("│")]) == 120
    rows = roon("sql", "select * from edges", "-c", cat, "-f", "ndjson", "-n", "5")
    assert len(rows.stdout.splitlines()) == 5
    # without --limit, csv streams every row
    full = roon("sql", "select * from edges", "-c", cat, "-f", "csv")
    assert len(list(csv.DictReader(io.StringIO(full.stdout)))) == 69


def test_formats_agree(cat: Path, tmp_path: Path):
    query = "select source_id, target_id, weight from edges order by target_id, source"
    as_json = json.loads(roon("sql", query, "-c", cat, "--json").stdout)
    as_ndjson = [
        json.loads(line)
        for line in roon("sql", query, "-c", cat, "-f", "ndjson").stdout.splitlines()
    ]
    as_csv = list(csv.DictReader(io.StringIO(roon("sql", query, "-c", cat, "-f", "csv").stdout)))
    out = tmp_path / "edges.parquet"
    written = roon("sql", query, "-c", cat, "-f", "parquet", "-o", out)
    assert written.exit_code == 0, written.output
    as_parquet = pq.read_table(out).to_pylist()
    assert len(as_json) == 69
    assert as_json == as_ndjson == as_parquet
    assert [float(r["weight"]) for r in as_csv] == [r["weight"] for r in as_json]


def test_output_file_is_written_whole_and_never_inside_the_catalogue(cat: Path, tmp_path: Path):
    out = tmp_path / "n.csv"
    assert roon("sql", "select 1 as a", "-c", cat, "-f", "csv", "-o", out).exit_code == 0
    assert out.read_text().splitlines() == ['"a"', "1"]
    target = layout.table_files(cat, "neurons")[0]
    before = target.read_bytes()
    refused = roon("sql", "select 1", "-c", cat, "-f", "parquet", "-o", target)
    assert refused.exit_code == 1
    assert "inside the catalogue" in refused.output
    assert target.read_bytes() == before
    # a query that fails leaves no file behind
    bad = tmp_path / "bad.csv"
    failed = roon("sql", "select error('boom')", "-c", cat, "-f", "csv", "-o", bad)
    assert failed.exit_code == 1 and not bad.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_output_into_a_missing_folder_creates_it(cat: Path, tmp_path: Path):
    out = tmp_path / "nodir" / "deeper" / "x.parquet"
    result = roon("sql", "select 7 as a", "-c", cat, "-f", "parquet", "-o", out)
    assert result.exit_code == 0, result.output
    assert pq.read_table(out).to_pylist() == [{"a": 7}]
    (tmp_path / "file").write_text("")
    refused = roon("sql", "select 7 as a", "-c", cat, "-f", "csv", "-o", tmp_path / "file" / "x")
    assert refused.exit_code == 1 and refused.stderr.count("\n") == 1
    assert f"--output {tmp_path / 'file' / 'x'}: cannot write in" in refused.stderr
    assert ".tmp" not in refused.stderr


def test_csv_writes_lists_and_structs_as_json(cat: Path):
    result = roon(
        "sql",
        "select string_split('1,2,3', ',') as parts, {'a': 1, 'b': 'x'} as s, [1, NULL] as l",
        "-c",
        cat,
        "-f",
        "csv",
    )
    assert result.exit_code == 0, result.output
    row = next(csv.DictReader(io.StringIO(result.stdout)))
    assert json.loads(row["parts"]) == ["1", "2", "3"]
    assert json.loads(row["s"]) == {"a": 1, "b": "x"}
    assert json.loads(row["l"]) == [1, None]


def test_two_statements_are_one_line_error(cat: Path):
    result = roon("sql", "select 1; select 2", "-c", cat)
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert "one statement" in result.output and "given 2" in result.output


def test_format_and_json_conflict_is_refused(cat: Path):
    result = roon("sql", "select 1", "-c", cat, "--format", "csv", "--json")
    assert result.exit_code == 1
    assert "--json and --format csv" in result.output
    assert roon("sql", "select 1 as a", "-c", cat, "--format", "json", "--json").exit_code == 0


def test_null_and_empty_string_look_different(cat: Path):
    result = roon("sql", "select NULL::VARCHAR as a, '' as b, 'x' as c", "-c", cat)
    assert result.exit_code == 0, result.output
    row = next(ln for ln in result.stdout.splitlines() if "x" in ln and ln.startswith("│"))
    cells = [c.strip() for c in row.strip("│").split("│")]
    assert cells == ["NULL", "", "x"]
    as_json = json.loads(roon("sql", "select NULL as a, '' as b", "-c", cat, "--json").stdout)
    assert as_json == [{"a": None, "b": ""}]
