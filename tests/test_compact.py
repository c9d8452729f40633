"""`roon compact`: segments merged atomically, every row and weight kept, readers safe."""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures import (
    all_rows,
    and_or_net,
    edit_segment,
    graph_lineage_table,
    random_mlp,
    store_model,
)
from typer.testing import CliRunner

from roon.cli import app
from roon.query.scan import scan_catalogue
from roon.store import layout, load_catalogued_model, open_catalogue, read, write
from roon.store.compact import compact
from roon.store.manifest import current_manifest

pytestmark = pytest.mark.integration
runner = CliRunner()
MODELS = [random_mlp(seed=s) for s in range(6)] + [and_or_net()]


@pytest.fixture
def cat(tmp_path: Path) -> Path:
    root = open_catalogue(tmp_path / "cat", create=True)
    for mlp in MODELS:
        store_model(root, mlp)
    ids = {letter: m.id for letter, m in zip("ACD", MODELS, strict=False)}
    steps = graph_lineage_table(ids)
    write.write_rows(root, "lineage", steps.slice(0, 1))
    write.write_rows(root, "lineage", steps.slice(1))
    return root


def test_compaction_merges_segments_and_keeps_every_row_and_weight(cat: Path):
    before = all_rows(cat)
    assert len(current_manifest(cat).segments) == len(MODELS) + 2
    result = compact(cat)
    assert (result.segments_before, result.segments_after) == (len(MODELS) + 2, 2)
    assert result.models == len(MODELS)
    assert all_rows(cat) == before
    for mlp in MODELS:  # weights read back out of the merged weights file, hash-checked
        assert load_catalogued_model(cat, mlp.id).id == mlp.id
    [merged] = [s for s in current_manifest(cat).segments if s.models]
    assert list(merged.models) == sorted(m.id for m in MODELS)
    # the merged segments' folders are gone; one manifest generation is left
    assert sorted(p.name for p in layout.segments_dir(cat).iterdir()) == sorted(
        s.id for s in current_manifest(cat).segments
    )
    assert len(list(layout.manifests_dir(cat).iterdir())) == 1
    assert runner.invoke(app, ["check", "-c", str(cat)]).exit_code == 0
    # a second compaction has nothing to merge
    again = compact(cat)
    assert again.segments_before == again.segments_after == 2
    assert all_rows(cat) == before


def test_after_compaction_writes_removals_and_dedupe_still_work(cat: Path):
    compact(cat)
    before = all_rows(cat)
    assert store_model(cat, MODELS[0]) is False  # re-ingesting is a no-op
    steps = graph_lineage_table({letter: m.id for letter, m in zip("ACD", MODELS, strict=False)})
    assert write.write_rows(cat, "lineage", steps) == 0
    assert all_rows(cat) == before
    assert write.remove_model(cat, MODELS[2].id)
    assert read.list_models(cat) == sorted(m.id for m in MODELS if m is not MODELS[2])
    assert read.read_table(cat, "neurons").num_rows == sum(
        m.n_neurons for m in MODELS if m is not MODELS[2]
    )
    assert load_catalogued_model(cat, MODELS[3].id).id == MODELS[3].id


def test_a_reader_open_during_compaction_keeps_its_files(cat: Path):
    con = scan_catalogue(cat)
    count = con.execute("select count(*) from neurons").fetchone()
    compact(cat)
    write.remove_model(cat, MODELS[0].id)
    # the connection's snapshot is the old generation, and its files are still there
    assert con.execute("select count(*) from neurons").fetchone() == count
    con.close()
    del con
    fresh = scan_catalogue(cat).execute("select count(distinct model_id) from neurons")
    assert fresh.fetchone() == (len(MODELS) - 1,)


def test_segments_of_different_definition_versions_stay_apart(cat: Path):
    edit_segment(cat, MODELS[1].id, versions={"neurons": 7})
    compact(cat)
    segments = [s for s in current_manifest(cat).segments if s.models]
    assert sorted(len(s.models) for s in segments) == [1, len(MODELS) - 1]


def test_cli_compact_reports_and_is_documented(cat: Path):
    result = runner.invoke(app, ["compact", "-c", str(cat), "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["segments_after"] == 2 and body["models"] == len(MODELS)
    missing = runner.invoke(app, ["compact", "-c", str(cat.parent / "none")])
    assert missing.exit_code == 1 and "no roon catalogue" in missing.output


@pytest.mark.slow
def test_kill_9_mid_compaction_loses_nothing(tmp_path: Path):
    """SIGKILL at random points of a compaction: the catalogue reads the same, checks
    clean, and compacting again completes it."""
    template = open_catalogue(tmp_path / "template", create=True)
    for seed in range(40):
        store_model(template, random_mlp((16, 48, 48, 4), seed=seed))
    before = all_rows(template)
    timing = tmp_path / "timing"
    shutil.copytree(template, timing)
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "roon", "compact", "-c", str(timing)], check=True)
    took = time.monotonic() - start
    rng = random.Random(12)
    for trial in range(6):
        target = tmp_path / f"cat{trial}"
        shutil.copytree(template, target)
        cmd = [sys.executable, "-m", "roon", "compact", "-c", str(target)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 1.0) * took)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        assert all_rows(target) == before, trial
        assert runner.invoke(app, ["check", "-c", str(target)]).exit_code == 0, trial
        result = compact(target)
        assert result.segments_after == 1 and all_rows(target) == before, trial
        # nothing is left over: no staging debris, no folder no manifest names
        live = {s.id for s in current_manifest(target).segments}
        assert {p.name for p in layout.segments_dir(target).iterdir()} == live, trial
        assert not any(layout.staging_dir(target).iterdir()), trial
