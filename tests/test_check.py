"""Damaged catalogues: `roon check` finds the damage, queries name it, `--repair` mends it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from fixtures import and_or_net, graph_lineage_table, random_mlp
from typer.testing import CliRunner

from roon.cli import app
from roon.ingest.pipeline import ingest_model
from roon.store import layout, open_catalogue, read, write

pytestmark = pytest.mark.integration
runner = CliRunner()
ACAS = Path(__file__).parent / "data" / "ACASXU_experimental_v2a_1_1.nnet"


def roon(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def cat(tmp_path: Path) -> Path:
    """ACAS Xu through the CLI, as in the issue; two small models through the library."""
    assert roon("ingest", ACAS, "-c", tmp_path / "cat", "--backend", "ref").exit_code == 0
    root = open_catalogue(tmp_path / "cat")
    for mlp in (and_or_net(), random_mlp(seed=4)):
        ingest_model(mlp, root, backend="ref")
    return root


def _acas(root: Path) -> str:
    return read.resolve_model(root, "ACASXU_experimental_v2a_1_1")


def test_a_sound_catalogue_checks_clean(cat: Path):
    result = roon("check", "-c", cat)
    assert result.exit_code == 0, result.output
    assert "checked 3 models" in result.stdout and "no damage found" in result.stdout


def test_a_truncated_table_is_named_by_every_reader_and_moved_aside(cat: Path):
    acas = _acas(cat)
    os.truncate(layout.table_path(cat, acas, "neurons"), 100)  # the reproduction
    result = roon("sql", "select count(*) from neurons", "-c", cat)
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1, result.output
    assert "No magic bytes found" not in result.output and "Traceback" not in result.output
    assert acas[:12] in result.output and "roon check --repair" in result.output
    # a query that does not read the damaged file is not disturbed by it
    assert roon("models", "-c", cat).exit_code == 0

    found = roon("check", "-c", cat)
    assert found.exit_code == 1
    assert acas[:12] in found.stdout and "neurons.parquet" in found.stdout
    assert "1 damaged" in found.stdout

    mended = roon("check", "-c", cat, "--repair", "--json")
    assert mended.exit_code == 0, mended.output
    report = json.loads(mended.stdout)
    (finding,) = report["findings"]
    assert finding["model_id"] == acas and finding["repaired"]
    assert finding["action"].startswith("moved to ") and str(ACAS.resolve()) in finding["action"]
    assert (layout.damaged_dir(cat) / acas / "neurons.parquet").is_file()

    # readers work again, without the model; re-ingesting its file brings it back
    models = json.loads(roon("models", "-c", cat, "--json").stdout)
    assert acas not in [m["model_id"] for m in models] and len(models) == 2
    again = roon("ingest", ACAS, "-c", cat, "--backend", "ref")
    assert "ingested 1" in again.stdout
    assert roon("check", "-c", cat).exit_code == 0
    n = json.loads(roon("sql", "select count(*) AS n from neurons", "-c", cat, "--json").stdout)
    assert n == [{"n": 305 + 3 + 14}]


def test_a_damaged_derived_table_is_recomputed_from_the_weights(cat: Path):
    acas = _acas(cat)
    path = layout.table_path(cat, acas, "signatures")
    before = pq.read_table(path).sort_by("neuron_id")
    path.write_bytes(b"not parquet at all")
    result = roon("sql", "select count(*) from signatures", "-c", cat)
    assert result.exit_code == 1 and acas[:12] in result.output
    found = json.loads(roon("check", "-c", cat, "--json").stdout)
    assert [f["action"] for f in found["findings"]] == ["would reindex signatures"]
    assert roon("check", "-c", cat, "--repair").exit_code == 0
    again = layout.table_path(cat, acas, "signatures")  # the repair wrote a new file
    assert again != path and pq.read_table(again).sort_by("neuron_id").equals(before)
    assert roon("check", "-c", cat).exit_code == 0


def test_a_truncated_input_space_table_is_repaired_on_the_models_own_space(cat: Path):
    acas = _acas(cat)
    path = layout.table_path(cat, acas, "input_space")
    before = pq.read_table(path).sort_by("neuron_id")
    assert set(before["space"].to_pylist()) == {"box"}  # the .nnet header's box grid
    os.truncate(path, 100)
    found = json.loads(roon("check", "-c", cat, "--json").stdout)
    assert [f["action"] for f in found["findings"]] == ["would reindex input_space"]
    mended = roon("check", "-c", cat, "--repair", "--json")
    assert mended.exit_code == 0, mended.output
    assert [f["repaired"] for f in json.loads(mended.stdout)["findings"]] == [True]
    again = layout.table_path(cat, acas, "input_space")  # the repair wrote a new file
    assert pq.read_table(again).sort_by("neuron_id").equals(before)
    assert roon("check", "-c", cat).exit_code == 0


def test_reindex_of_one_model_rebuilds_a_damaged_derived_table(cat: Path):
    acas = _acas(cat)
    os.truncate(layout.table_path(cat, acas, "tokens"), 10)
    result = roon("reindex", "-c", cat, "--model", acas[:8], "--backend", "ref", "--json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["status"] == "reindexed" and row["tables"] == ["tokens"]
    assert roon("check", "-c", cat).exit_code == 0


def test_changed_weights_are_caught_by_their_hash(cat: Path):
    mlp = and_or_net()
    weights = layout.weights_path(cat, mlp.id)
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # one exponent bit of the last bias: still finite
    weights.write_bytes(bytes(data))
    report = json.loads(roon("check", "-c", cat, "--json").stdout)
    (finding,) = report["findings"]
    assert finding["model_id"] == mlp.id and "hashes to" in finding["problem"]
    assert finding["action"].startswith("would move aside")
    assert roon("check", "-c", cat, "--repair").exit_code == 0
    assert not layout.model_dir(cat, mlp.id).exists()


def test_row_counts_that_disagree_with_the_models_row_are_damage(cat: Path):
    mlp = random_mlp(seed=4)
    path = layout.table_path(cat, mlp.id, "neurons")
    pq.write_table(pq.read_table(path).slice(0, 3), path)  # readable, but rows lost
    report = json.loads(roon("check", "-c", cat, "--json").stdout)
    (finding,) = report["findings"]
    assert f"holds 3 rows; the models row says == {mlp.n_neurons}" in finding["problem"]


def test_a_damaged_lineage_row_is_moved_aside(cat: Path):
    ids = {letter: letter.lower() * 32 for letter in "ACD"}
    steps = graph_lineage_table(ids)
    assert write.write_rows(cat, "lineage", steps.slice(0, 1)) == 1
    (row_file,) = layout.table_files(cat, "lineage")
    assert write.write_rows(cat, "lineage", steps.slice(1)) == 2  # a second row file
    os.truncate(row_file, 20)
    bad = roon("sql", "select * from lineage", "-c", cat)
    assert bad.exit_code == 1 and "lineage" in bad.output and "roon check --repair" in bad.output
    assert roon("check", "-c", cat, "--repair").exit_code == 0
    assert len(layout.table_files(cat, "lineage")) == 1
    rows = json.loads(roon("sql", "select rule from lineage", "-c", cat, "--json").stdout)
    assert sorted(r["rule"] for r in rows) == ["scale", "sort"]
    assert row_file.name in " ".join(p.name for p in layout.damaged_dir(cat).iterdir())
    assert roon("sql", "select * from lineage", "-c", cat).exit_code == 0


def test_a_model_folder_missing_a_structural_table_is_damage(cat: Path):
    mlp = and_or_net()
    layout.table_path(cat, mlp.id, "edges").unlink()
    report = json.loads(roon("check", "-c", cat, "--json").stdout)
    assert [f["problem"] for f in report["findings"]] == ["edges.parquet is missing"]


def test_moving_aside_twice_keeps_both_copies(cat: Path):
    from roon.store.check import move_aside

    mlp = and_or_net()
    first = move_aside(cat, mlp.id)
    assert ingest_model(mlp, cat, backend="ref")  # stored again, then damaged again
    second = move_aside(cat, mlp.id)
    assert first != second and first.is_dir() and second.is_dir()
    assert read.list_models(cat) == sorted([_acas(cat), random_mlp(seed=4).id])


def test_readers_of_python_name_the_damaged_model(cat: Path):
    from roon import CatalogueError

    acas = _acas(cat)
    os.truncate(layout.table_path(cat, acas, "layers"), 50)
    with pytest.raises(CatalogueError, match=f"model {acas[:12]} is damaged .*roon check"):
        read.read_table(cat, "layers")
    with pytest.raises(CatalogueError, match="layers.parquet"):
        read.read_model_table(cat, acas, "layers")
    assert read.read_table(cat, "models").num_rows == 3
