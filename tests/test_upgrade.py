"""A catalogue in format version 1 (one folder per model) is read in place and upgraded
in place by the first write, then compacted, without a row or weight changing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures import all_rows, and_or_net, graph_lineage_table, random_mlp, write_v1_catalogue
from typer.testing import CliRunner

from roon.cli import app
from roon.ingest.derived import DERIVED_TABLES
from roon.ingest.pipeline import ingest_model
from roon.ingest.reindex import reindex_catalogue
from roon.store import layout, load_catalogued_model, open_catalogue, read, write
from roon.store.compact import compact
from roon.store.manifest import current_manifest

pytestmark = pytest.mark.integration
runner = CliRunner()
MODELS = [random_mlp(seed=1), random_mlp(seed=2, activation="tanh"), and_or_net()]


@pytest.fixture
def old(tmp_path: Path) -> Path:
    ids = {letter: m.id for letter, m in zip("ACD", MODELS, strict=True)}
    return write_v1_catalogue(tmp_path / "old", MODELS, lineage=graph_lineage_table(ids))


def test_a_version_1_catalogue_is_read_in_place(old: Path):
    root = open_catalogue(old)
    assert layout.format_version(root) == 1
    assert read.list_models(root) == sorted(m.id for m in MODELS)
    assert read.read_table(root, "neurons").num_rows == sum(m.n_neurons for m in MODELS)
    assert read.read_table(root, "lineage").num_rows == 3
    assert load_catalogued_model(root, MODELS[1].id).id == MODELS[1].id
    sql = runner.invoke(app, ["sql", "select count(*) AS n from edges", "-c", str(root), "--json"])
    assert json.loads(sql.stdout) == [{"n": sum(x.weight.size for m in MODELS for x in m.layers)}]
    assert runner.invoke(app, ["check", "-c", str(root)]).exit_code == 0
    assert layout.format_version(root) == 1  # reading changed nothing


def test_the_first_write_upgrades_in_place_and_compaction_moves_it_into_segments(old: Path):
    root = open_catalogue(old)
    before = all_rows(root)
    newcomer = random_mlp(seed=9)
    assert ingest_model(newcomer, root, backend="ref")
    assert layout.format_version(root) == layout.FORMAT_VERSION == 2
    # nothing was rewritten: the old model folders are segments of the new manifest
    assert all((root / "models" / m.id / "neurons.parquet").is_file() for m in MODELS)
    assert read.list_models(root) == sorted([newcomer.id, *(m.id for m in MODELS)])
    after = all_rows(root)
    for table, rows in before.items():
        assert [r for r in after[table] if r.get("model_id") != newcomer.id] == rows, table
    # lineage rows of the old layout still count for dedupe
    ids = {letter: m.id for letter, m in zip("ACD", MODELS, strict=True)}
    assert write.write_rows(root, "lineage", graph_lineage_table(ids)) == 0
    # compaction merges the old folders into one segment and removes them
    result = compact(root)
    assert result.segments_after == 2  # the models, and the lineage rows
    assert all_rows(root) == after
    assert not (root / "models").exists() or not any((root / "models").iterdir())
    assert not (root / "lineage").exists() or not any((root / "lineage").iterdir())
    for mlp in [*MODELS, newcomer]:
        assert load_catalogued_model(root, mlp.id).id == mlp.id
    assert runner.invoke(app, ["check", "-c", str(root)]).exit_code == 0


def test_reindex_of_a_version_1_catalogue_reads_its_recorded_versions(old: Path):
    root = open_catalogue(old)
    victim = MODELS[0].id
    (root / "models" / victim / "derived.json").write_text(json.dumps({"signatures": 0}))
    before = all_rows(root)
    results = {r.model_id: r for r in reindex_catalogue(root, backend="ref")}
    assert results[victim].status == "reindexed" and "signatures" in results[victim].tables
    assert {r.status for m, r in results.items() if m != victim} == {"current"}
    assert layout.format_version(root) == 2
    assert all_rows(root) == before  # the same definition: the same rows
    segment = current_manifest(root).by_model[victim]
    assert segment.tables["signatures"].version == DERIVED_TABLES["signatures"]


def test_a_crash_before_the_marker_is_replaced_leaves_version_1_and_upgrades_again(old: Path):
    from roon.store.upgrade import upgrade

    root = open_catalogue(old)
    before = all_rows(root)
    marker = layout.marker_path(root).read_bytes()
    with write.catalogue_lock(root):
        pass  # upgraded here
    # what a kill between the manifest and the marker leaves: a manifest, marker at 1
    layout.marker_path(root).write_bytes(marker)
    assert layout.format_version(root) == 1
    assert all_rows(root) == before
    with write.catalogue_lock(root):
        assert upgrade(root) is False  # the lock upgraded it again already
    assert layout.format_version(root) == 2 and all_rows(root) == before
