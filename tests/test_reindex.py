"""`roon reindex`: derived tables rebuilt from stored weights, equal to a fresh ingest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.compute as pc
import pytest
from fixtures import abs_net, and_or_net, edit_segment, random_mlp
from typer.testing import CliRunner

from roon.cli import app
from roon.ingest.derived import DERIVED_TABLES
from roon.ingest.pipeline import ingest_model
from roon.ingest.reindex import reindex_catalogue
from roon.store import layout, open_catalogue, read_table
from roon.store.migrate import derived_versions, stale_tables

pytestmark = pytest.mark.integration

MODELS = (abs_net(), and_or_net(), random_mlp(seed=4), random_mlp(seed=5, activation="tanh"))


def _build(path: Path) -> Path:
    root = open_catalogue(path, create=True)
    for i, m in enumerate(MODELS):
        ingest_model(m, root, input_domain="signed" if i == 1 else "binary", backend="ref")
    return root


def _rows(root: Path, table: str) -> list[dict]:
    t = read_table(root, table)
    keys = [c for c in ("neuron_id", "model_id", "kind", "position") if c in t.column_names]
    return t.sort_by([(k, "ascending") for k in keys]).to_pylist()


@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    return _build(tmp_path / "fresh")


def test_a_table_missing_from_an_older_catalogue_is_rebuilt_identically(tmp_path, fresh):
    old = _build(tmp_path / "old")
    victim = MODELS[1].id  # the signed-domain model: domains must come from the layers table
    edit_segment(old, victim, drop=("signatures",))  # an older roon computed no such table
    edit_segment(old, MODELS[2].id, drop=("tokens",))
    assert stale_tables(old, victim, DERIVED_TABLES) == ["signatures"]
    assert read_table(old, "signatures").num_rows < read_table(fresh, "signatures").num_rows

    results = {r.model_id: r for r in reindex_catalogue(old, backend="ref")}
    assert results[victim].status == "reindexed" and results[victim].tables == ("signatures",)
    assert results[MODELS[2].id].tables == ("tokens",)
    assert {r.status for m, r in results.items() if m not in (victim, MODELS[2].id)} == {"current"}
    for table in DERIVED_TABLES:
        assert _rows(old, table) == _rows(fresh, table), table
    rows = read_table(old, "signatures").filter(
        pc.equal(read_table(old, "signatures")["model_id"], victim)
    )
    # layer 0 sees the declared signed inputs, layer 1 the ReLU outputs of layer 0
    assert sorted(set(zip(rows["layer"].to_pylist(), rows["domain"].to_pylist(), strict=True))) == [
        (0, "signed"),
        (1, "binary"),
    ]
    # a second run has nothing to do
    assert {r.status for r in reindex_catalogue(old)} == {"current"}


def test_an_older_table_version_is_recomputed_and_recorded(tmp_path, fresh):
    model = MODELS[0].id
    edit_segment(fresh, model, versions={"signatures": 0})
    assert stale_tables(fresh, model, DERIVED_TABLES) == ["signatures"]
    [result] = [r for r in reindex_catalogue(fresh) if r.model_id == model]
    assert result.status == "reindexed" and result.tables == ("signatures",)
    assert {t: derived_versions(fresh, model)[t] for t in DERIVED_TABLES} == DERIVED_TABLES


def test_force_recomputes_everything_and_changes_nothing(fresh):
    before = {t: _rows(fresh, t) for t in DERIVED_TABLES}
    results = reindex_catalogue(fresh, force=True, models=[MODELS[3].name])
    assert [(r.model_id, r.tables) for r in results] == [
        (MODELS[3].id, tuple(sorted(DERIVED_TABLES)))
    ]
    assert {t: _rows(fresh, t) for t in DERIVED_TABLES} == before


def test_damaged_weights_fail_that_model_only(tmp_path, fresh):
    broken = MODELS[2].id
    edit_segment(fresh, broken, drop=("signatures",))
    edit_segment(fresh, MODELS[3].id, drop=("signatures",))
    layout.weights_path(fresh, broken).write_bytes(b"not safetensors")
    results = {r.model_id: r for r in reindex_catalogue(fresh)}
    assert results[broken].status == "failed" and "safetensors" in results[broken].reason
    assert results[MODELS[3].id].status == "reindexed"
    assert "signatures" not in derived_versions(fresh, broken)


def test_cli_reindex_reports_and_exits_1_on_failure(tmp_path, fresh):
    copy = tmp_path / "copy"
    shutil.copytree(fresh, copy)
    edit_segment(copy, MODELS[0].id, drop=("tokens",))
    runner = CliRunner()
    out = runner.invoke(app, ["reindex", "--catalogue", str(copy), "--json"])
    assert out.exit_code == 0, out.output
    rows = {r["model_id"]: r for r in json.loads(out.stdout)}
    assert rows[MODELS[0].id]["status"] == "reindexed" and rows[MODELS[0].id]["tables"] == [
        "tokens"
    ]
    edit_segment(copy, MODELS[1].id, drop=("tokens",))
    layout.weights_path(copy, MODELS[1].id).unlink()
    out = runner.invoke(app, ["reindex", "--catalogue", str(copy)])
    assert out.exit_code == 1 and "failed 1" in out.stdout
    missing = runner.invoke(app, ["reindex", "--catalogue", str(tmp_path / "none")])
    assert missing.exit_code == 1 and "no roon catalogue" in missing.output


def test_a_newer_catalogue_is_refused_with_the_fix(tmp_path, fresh):
    marker = layout.marker_path(fresh)
    marker.write_text(json.dumps({"format": "roon-catalogue", "version": 99}))
    with pytest.raises(Exception, match="version 99, newer than this roon reads"):
        reindex_catalogue(fresh)


def _old_format(table):
    """A signatures table as roon wrote it before typed counts (definition version 1):
    ``fire_count`` a decimal string, ``chow`` comma-separated decimals."""
    import pyarrow as pa

    fire = [None if v is None else str(v) for v in table.column("fire_count").to_pylist()]
    chow = [None if v is None else ",".join(map(str, v)) for v in table.column("chow").to_pylist()]
    table = table.set_column(
        table.schema.get_field_index("fire_count"), "fire_count", pa.array(fire, pa.string())
    )
    return table.set_column(
        table.schema.get_field_index("chow"), "chow", pa.array(chow, pa.string())
    )


def test_an_old_format_catalogue_reindexes_to_typed_counts(tmp_path, fresh):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from roon.query.scan import scan_catalogue

    old = _build(tmp_path / "old")
    want = _rows(fresh, "signatures")
    for model in MODELS:
        path = layout.table_path(old, model.id, "signatures")
        pq.write_table(_old_format(pq.read_table(path)), path)
        edit_segment(old, model.id, versions={"signatures": 1})  # written by definition 1
        assert stale_tables(old, model.id, DERIVED_TABLES) == ["signatures"]
    # what an old file holds: strings
    sample = pq.read_table(layout.table_path(old, MODELS[0].id, "signatures"))
    assert sample.schema.field("chow").type == pa.string()
    assert sample.schema.field("fire_count").type == pa.string()

    results = reindex_catalogue(old, backend="ref")
    assert {r.status for r in results} == {"reindexed"}
    assert {r.tables for r in results} == {("signatures",)}
    for model in MODELS:
        stored = pq.read_table(layout.table_path(old, model.id, "signatures"))
        assert stored.schema.field("fire_count").type == pa.decimal128(38, 0)
        assert stored.schema.field("chow").type.value_type == pa.decimal128(38, 0)
    assert _rows(old, "signatures") == want
    # SQL sees numbers: sums and list indexing work without casts
    con = scan_catalogue(old)
    total, first = con.execute(
        "select sum(fire_count), min(chow[1] - fire_count) from signatures where exact"
    ).fetchone()
    assert total == sum(r["fire_count"] for r in want if r["exact"]) and first == 0
    assert {r.status for r in reindex_catalogue(old)} == {"current"}
