"""The catalogue on disk: atomic, idempotent, safe under concurrency."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pytest
from fixtures import abs_net, and_or_net, random_mlp, store_model
from roon.schema import table_schema

from roon import CatalogueError
from roon.store import layout, read, write

pytestmark = pytest.mark.integration


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return layout.open_catalogue(tmp_path / "cat", create=True)


def test_write_is_idempotent(root: Path):
    m = random_mlp(seed=1)
    assert store_model(root, m) is True
    assert store_model(root, m) is False
    assert read.list_models(root) == [m.id]
    neurons = read.read_table(root, "neurons")
    assert neurons.num_rows == m.n_neurons
    assert read.read_table(root, "edges").num_rows == sum(x.weight.size for x in m.layers)
    # one segment: a file per table, the weights file, and one manifest generation more
    assert sorted(p.name for p in layout.model_dir(root, m.id).iterdir()) == [
        "edges.parquet",
        "layers.parquet",
        "models.parquet",
        "neurons.parquet",
        "provenance.parquet",
        "weights.pack",
    ]
    assert [p.name for p in layout.manifests_dir(root).iterdir()] == ["000000000002.json"]


def test_stored_weights_round_trip(root: Path):
    m = random_mlp(seed=2, activation="tanh")
    store_model(root, m)
    back = read.load_catalogued_model(root, m.id)
    assert back.id == m.id and back.activations == m.activations
    for a, b in zip(back.layers, m.layers, strict=True):
        assert a.weight.tobytes() == b.weight.tobytes()


def test_min_weight_keeps_only_large_edges(root: Path):
    m = and_or_net()  # weights 0.7, 0.7, 1, 1, -2, 1
    store_model(root, m, min_weight=1.0)
    weights = sorted(read.read_table(root, "edges").column("weight").to_pylist())
    assert weights == [-2.0, 1.0, 1.0, 1.0]
    assert read.read_table(root, "provenance").column("min_weight").to_pylist() == [1.0]


def test_failure_between_files_leaves_catalogue_as_before(root: Path, monkeypatch):
    first = abs_net()
    store_model(root, first)
    before = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    calls = {"n": 0}
    real = write.write_parquet

    def flaky(name: str, rows: pa.Table, path: Path) -> int:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full (simulated)")
        return real(name, rows, path)

    monkeypatch.setattr(write, "write_parquet", flaky)
    with pytest.raises(OSError, match="simulated"):
        store_model(root, random_mlp(seed=7))
    after = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    assert after == before
    assert read.list_models(root) == [first.id]


def test_crash_debris_is_invisible_and_cleaned(root: Path):
    dead = root / ".staging" / "999999999-deadbeef"
    dead.mkdir(parents=True)
    (dead / "models.parquet").write_bytes(b"half a file")
    assert read.list_models(root) == []
    assert read.read_table(root, "models").num_rows == 0
    store_model(root, abs_net())
    assert not dead.exists()


@pytest.mark.slow
def test_concurrent_writers_lose_nothing(root: Path):
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from fixtures import random_mlp
        from fixtures import store_model
        from roon.store import open_catalogue
        root = open_catalogue({str(root)!r})
        for seed in map(int, sys.argv[1:]):
            store_model(root, random_mlp(seed=seed))
        """
    )
    seeds = [["10", "11", "12", "13"], ["12", "13", "14", "15"]]
    procs = [subprocess.Popen([sys.executable, "-c", script, *s]) for s in seeds]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    expected = sorted(random_mlp(seed=s).id for s in range(10, 16))
    assert read.list_models(root) == expected
    assert read.read_table(root, "models").num_rows == 6
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
    assert write.write_rows(root, "lineage", table) == 1
    assert write.write_rows(root, "lineage", table) == 0
    assert read.read_table(root, "lineage").num_rows == 1


def test_resolve_model(root: Path):
    a, b = abs_net(), and_or_net()
    store_model(root, a)
    store_model(root, b)
    assert read.resolve_model(root, a.id) == a.id
    assert read.resolve_model(root, a.id[:6]) == a.id
    assert read.resolve_model(root, "and_or") == b.id
    with pytest.raises(CatalogueError, match="no model 'nope'"):
        read.resolve_model(root, "nope")
    # a prefix too short to tell models apart says the minimum, not just "no model"
    with pytest.raises(CatalogueError, match="an id prefix needs at least 4 characters"):
        read.resolve_model(root, a.id[:3])


def test_resolve_model_ambiguous(root: Path):
    m1 = random_mlp(seed=20, name="twin")
    m2 = random_mlp(seed=21, name="twin")
    store_model(root, m1)
    store_model(root, m2)
    with pytest.raises(CatalogueError, match="ambiguous"):
        read.resolve_model(root, "twin")


def test_open_catalogue_errors(tmp_path: Path):
    with pytest.raises(CatalogueError, match="no roon catalogue"):
        layout.open_catalogue(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(CatalogueError, match="is a file"):
        layout.open_catalogue(tmp_path / "file", create=True)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(CatalogueError, match="not a roon catalogue"):
        layout.open_catalogue(other, create=True)
    (other / layout.MARKER).write_text(json.dumps({"format": "roon-catalogue", "version": 99}))
    with pytest.raises(CatalogueError, match="newer than this roon"):
        layout.open_catalogue(other)


def test_extra_table_must_match_schema(root: Path):
    bad = pa.table({"model_id": ["x"]})
    with pytest.raises(CatalogueError, match="columns"):
        store_model(root, abs_net(), extra={"tokens": bad})
    assert read.list_models(root) == []
    staging = root / ".staging"
    assert not staging.exists() or not any(staging.iterdir())


def test_lock_file_is_used(root: Path):
    store_model(root, abs_net())
    assert (root / ".lock").exists()
    assert os.stat(root / ".lock").st_size == 0


@pytest.mark.slow
def test_concurrent_creation_of_one_catalogue_is_race_free(tmp_path: Path):
    # four processes open (and create) the same new catalogue at once, ten times over
    script = textwrap.dedent(
        """
        import sys
        from roon.store import open_catalogue
        open_catalogue(sys.argv[1], create=True)
        """
    )
    for trial in range(10):
        target = tmp_path / f"cat{trial}"
        procs = [subprocess.Popen([sys.executable, "-c", script, str(target)]) for _ in range(4)]
        assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0], trial
        assert layout.open_catalogue(target) == target


def test_a_creation_killed_before_its_marker_is_completed(tmp_path: Path):
    half = tmp_path / "half"
    (half / "manifests").mkdir(parents=True)  # what a kill between mkdir and marker leaves
    (half / ".lock").touch()
    with pytest.raises(CatalogueError, match="no roon catalogue"):
        layout.open_catalogue(half)
    assert layout.open_catalogue(half, create=True) == half
    assert (half / layout.MARKER).is_file() and layout.manifests_dir(half).is_dir()
    assert read.list_models(half) == []


def test_a_live_writer_whose_pid_is_not_visible_keeps_its_staging(root: Path):
    """A writer in another PID namespace (a container sharing the volume): its process id
    means nothing here, its lock does. Its staging folder must survive our cleanup."""
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        os.getpid = lambda: 999_999_999  # a pid that is not alive in this namespace
        from fixtures import random_mlp, store_model
        from roon.store import open_catalogue, write
        real = write.write_parquet
        def paused(*args):
            print("writing", flush=True)
            sys.stdin.readline()  # wait until the other process has cleaned staging
            return real(*args)
        write.write_parquet = paused
        store_model(open_catalogue({str(root)!r}), random_mlp(seed=41))
        """
    )
    other = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout.readline().strip() == "writing"
        (staging,) = list((root / ".staging").iterdir())
        store_model(root, random_mlp(seed=42))  # cleans crash debris first
        assert staging.is_dir(), "a live writer's staging folder was removed"
        other.stdin.write("\n" * 10)
        other.stdin.flush()
        assert other.wait(timeout=60) == 0
    finally:
        other.kill()
    assert read.list_models(root) == sorted(random_mlp(seed=s).id for s in (41, 42))
    assert list((root / ".staging").iterdir()) == []


def test_debris_of_a_killed_writer_is_cleaned_by_its_free_lock(root: Path):
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from fixtures import random_mlp, store_model
        from roon.store import open_catalogue, write
        def die(*args):
            os._exit(9)  # dies holding its staging folder, as kill -9 would leave it
        write.write_parquet = die
        store_model(open_catalogue({str(root)!r}), random_mlp(seed=43))
        """
    )
    assert subprocess.run([sys.executable, "-c", script], timeout=60).returncode == 9
    (debris,) = list((root / ".staging").iterdir())
    assert read.list_models(root) == []  # invisible to readers
    store_model(root, random_mlp(seed=44))
    assert not debris.exists()
    assert read.list_models(root) == [random_mlp(seed=44).id]


def test_a_full_disk_names_the_file_and_leaves_the_catalogue_consistent(root: Path, monkeypatch):
    import errno

    import pyarrow.parquet as pq

    first = abs_net()
    store_model(root, first)
    real = pq.ParquetWriter.write_table

    def full(self, table, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", full)
    with pytest.raises(CatalogueError) as info:
        store_model(root, random_mlp(seed=7))
    message = str(info.value)
    assert re.search(r"cannot write /\S+/\.staging/\w+/layers\.parquet: the disk", message)
    assert "disk holding the catalogue is full" in message and "\n" not in message
    assert write.is_disk_full(info.value)
    monkeypatch.setattr(pq.ParquetWriter, "write_table", real)
    assert read.list_models(root) == [first.id]
    assert list((root / ".staging").iterdir()) == []


def test_a_staging_folder_taken_by_a_cleaner_before_it_is_locked_is_replaced(
    root: Path, monkeypatch
):
    """The window between mkdir and flock: another process's cleanup may remove the new
    folder there (its lock is still free); the writer takes another one."""
    real_open = os.open
    removed = []

    def racing_open(path, flags, *args, **kwargs):
        if not removed and Path(path).parent == layout.staging_dir(root):
            removed.append(path)
            write._clean_staging(root)  # what a concurrent writer's cleanup does now
            assert not Path(path).exists()
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(write.os, "open", racing_open)
    assert store_model(root, random_mlp(seed=45))
    assert removed and not Path(removed[0]).exists()
    assert read.list_models(root) == [random_mlp(seed=45).id]
