"""The catalogue on disk: atomic, idempotent, safe under concurrency."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pytest
from fixtures import abs_net, and_or_net, random_mlp
from roon.schema import table_schema

from roon import CatalogueError
from roon.ingest import catalogue as cat

pytestmark = pytest.mark.integration


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return cat.open_catalogue(tmp_path / "cat", create=True)


def test_write_is_idempotent(root: Path):
    m = random_mlp(seed=1)
    assert cat.write_model(root, m) is True
    assert cat.write_model(root, m) is False
    assert cat.list_models(root) == [m.id]
    neurons = cat.read_table(root, "neurons")
    assert neurons.num_rows == m.n_neurons
    assert cat.read_table(root, "edges").num_rows == sum(x.weight.size for x in m.layers)
    assert sorted(p.name for p in cat.model_dir(root, m.id).iterdir()) == [
        "edges.parquet",
        "layers.parquet",
        "model.safetensors",
        "models.parquet",
        "neurons.parquet",
        "provenance.parquet",
    ]


def test_stored_weights_round_trip(root: Path):
    m = random_mlp(seed=2, activation="tanh")
    cat.write_model(root, m)
    back = cat.load_catalogued_model(root, m.id)
    assert back.id == m.id and back.activations == m.activations
    for a, b in zip(back.layers, m.layers, strict=True):
        assert a.weight.tobytes() == b.weight.tobytes()


def test_min_weight_keeps_only_large_edges(root: Path):
    m = and_or_net()  # weights 0.7, 0.7, 1, 1, -2, 1
    cat.write_model(root, m, min_weight=1.0)
    weights = sorted(cat.read_table(root, "edges").column("weight").to_pylist())
    assert weights == [-2.0, 1.0, 1.0, 1.0]
    assert cat.read_table(root, "provenance").column("min_weight").to_pylist() == [1.0]


def test_failure_between_files_leaves_catalogue_as_before(root: Path, monkeypatch):
    first = abs_net()
    cat.write_model(root, first)
    before = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    calls = {"n": 0}
    real = cat._write_parquet

    def flaky(table: pa.Table, path: Path) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full (simulated)")
        real(table, path)

    monkeypatch.setattr(cat, "_write_parquet", flaky)
    with pytest.raises(OSError, match="simulated"):
        cat.write_model(root, random_mlp(seed=7))
    after = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    assert after == before
    assert cat.list_models(root) == [first.id]


def test_crash_debris_is_invisible_and_cleaned(root: Path):
    dead = root / ".staging" / "999999999-deadbeef"
    dead.mkdir(parents=True)
    (dead / "models.parquet").write_bytes(b"half a file")
    assert cat.list_models(root) == []
    assert cat.read_table(root, "models").num_rows == 0
    cat.write_model(root, abs_net())
    assert not dead.exists()


def test_concurrent_writers_lose_nothing(root: Path):
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from fixtures import random_mlp
        from roon.ingest.catalogue import open_catalogue, write_model
        root = open_catalogue({str(root)!r})
        for seed in map(int, sys.argv[1:]):
            write_model(root, random_mlp(seed=seed))
        """
    )
    seeds = [["10", "11", "12", "13"], ["12", "13", "14", "15"]]
    procs = [subprocess.Popen([sys.executable, "-c", script, *s]) for s in seeds]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    expected = sorted(random_mlp(seed=s).id for s in range(10, 16))
    assert cat.list_models(root) == expected
    assert cat.read_table(root, "models").num_rows == 6
    assert list((root / ".staging").iterdir()) == []


def test_lineage_is_idempotent(root: Path):
    now = datetime.now(timezone.utc)
    row = {
        "parent_id": "a" * 32,
        "child_id": "b" * 32,
        "rule": "rescale",
        "params": "{}",
        "changes": "{}",
        "max_output_change": 0.0,
        "created_at": now,
    }
    table = pa.Table.from_pylist([row], schema=table_schema("lineage"))
    assert cat.write_lineage(root, table) == 1
    assert cat.write_lineage(root, table) == 0
    assert cat.read_table(root, "lineage").num_rows == 1


def test_resolve_model(root: Path):
    a, b = abs_net(), and_or_net()
    cat.write_model(root, a)
    cat.write_model(root, b)
    assert cat.resolve_model(root, a.id) == a.id
    assert cat.resolve_model(root, a.id[:6]) == a.id
    assert cat.resolve_model(root, "and_or") == b.id
    with pytest.raises(CatalogueError, match="no model 'nope'"):
        cat.resolve_model(root, "nope")


def test_resolve_model_ambiguous(root: Path):
    m1 = random_mlp(seed=20, name="twin")
    m2 = random_mlp(seed=21, name="twin")
    cat.write_model(root, m1)
    cat.write_model(root, m2)
    with pytest.raises(CatalogueError, match="ambiguous"):
        cat.resolve_model(root, "twin")


def test_open_catalogue_errors(tmp_path: Path):
    with pytest.raises(CatalogueError, match="no roon catalogue"):
        cat.open_catalogue(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(CatalogueError, match="is a file"):
        cat.open_catalogue(tmp_path / "file", create=True)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(CatalogueError, match="not a roon catalogue"):
        cat.open_catalogue(other, create=True)
    (other / cat.MARKER).write_text(json.dumps({"format": "roon-catalogue", "version": 99}))
    with pytest.raises(CatalogueError, match="unsupported format"):
        cat.open_catalogue(other)


def test_extra_table_must_match_schema(root: Path):
    bad = pa.table({"model_id": ["x"]})
    with pytest.raises(CatalogueError, match="columns"):
        cat.write_model(root, abs_net(), extra_tables={"tokens": bad})
    assert cat.list_models(root) == []
    assert not any((root / ".staging").iterdir())


def test_lock_file_is_used(root: Path):
    cat.write_model(root, abs_net())
    assert (root / ".lock").exists()
    assert os.stat(root / ".lock").st_size == 0
