"""kill -9 at random points: the catalogue stays consistent and re-running completes it.

Each trial starts a real `roon` process (ingest or reindex), kills it with SIGKILL after a
random delay (seeded, so a failure can be replayed), then checks the catalogue: `roon
check` finds no damage, every query answers, no committed model is partial; and running
the command again completes the work. Concurrent first ingests on a new catalogue (four
processes, ten trials) must all succeed.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures import random_mlp
from typer.testing import CliRunner

from roon.cli import app
from roon.store import layout, read

pytestmark = [pytest.mark.integration, pytest.mark.slow]
runner = CliRunner()
ROON = [sys.executable, "-m", "roon"]


def roon(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def _nets(folder: Path, count: int, widths=(16, 48, 48, 4)) -> list[Path]:
    """Distinct safetensors files (no torch import: each process starts in ~1 s); fan-in
    48 makes each ingest take a moment."""
    from roon.ingest.loaders import save_safetensors

    folder.mkdir(exist_ok=True)
    return [
        save_safetensors(random_mlp(widths, seed=seed), folder / f"net{seed:02d}.safetensors")
        for seed in range(count)
    ]


def _kill_after(args: list[str], delay: float, *, first_commit: Path | None = None) -> int:
    """Run ``args``; SIGKILL it ``delay`` seconds after it starts, or after the first model
    appears under ``first_commit`` (so that some kills land between commits, whatever the
    machine's load)."""
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if first_commit is not None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if first_commit.is_dir() and any(first_commit.iterdir()):
                break
            time.sleep(0.02)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    return proc.wait(timeout=60)


def _consistent(catalogue: Path) -> int:
    """Assert the catalogue is sound and every table answers; returns its model count."""
    if not layout.marker_path(catalogue).is_file():
        return 0  # killed before the catalogue existed: nothing to check
    check = roon("check", "-c", catalogue, "--json")
    assert check.exit_code == 0, check.output
    assert json.loads(check.stdout)["findings"] == []
    models = read.list_models(catalogue)
    tables = ("models", "neurons", "edges", "signatures", "tokens", "restricted", "input_space")
    for table in tables:
        counted = roon("sql", f"select count(distinct model_id) AS n from {table}", "-c",
                       catalogue, "--json")  # fmt: skip
        assert counted.exit_code == 0, counted.output
        assert json.loads(counted.stdout) == [{"n": len(models)}], table
    return len(models)


def test_kill_9_during_ingest_leaves_a_consistent_catalogue(tmp_path: Path):
    files = _nets(tmp_path / "nets", 6)
    rng = random.Random(13)
    partial = 0
    for trial in range(6):
        catalogue = tmp_path / f"cat{trial}"
        cmd = [*ROON, "ingest", "-c", str(catalogue), "--backend", "ref", *map(str, files)]
        after = layout.segments_dir(catalogue) if trial % 2 else None
        _kill_after(
            cmd, rng.uniform(0.0, 0.6) if after else rng.uniform(0.3, 3.0), first_commit=after
        )
        stored = _consistent(catalogue)
        partial += 0 < stored < len(files)
        again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, again.stderr
        assert _consistent(catalogue) == len(files)
        staging = layout.staging_dir(catalogue)
        assert not staging.exists() or not any(staging.iterdir())
    assert partial >= 1, "no trial killed an ingest halfway; widen the delays"


def test_kill_9_during_reindex_leaves_a_consistent_catalogue(tmp_path: Path):
    files = _nets(tmp_path / "nets", 5)
    catalogue = tmp_path / "cat"
    assert roon("ingest", *files, "-c", catalogue, "--backend", "ref").exit_code == 0
    rng = random.Random(29)
    for _ in range(5):
        cmd = [*ROON, "reindex", "-c", str(catalogue), "--force", "--backend", "ref"]
        _kill_after(cmd, rng.uniform(0.8, 4.0))
        assert _consistent(catalogue) == len(files)
    done = roon("reindex", "-c", catalogue, "--backend", "ref", "--json")
    assert done.exit_code == 0
    assert _consistent(catalogue) == len(files)


def test_four_concurrent_first_ingests_all_succeed(tmp_path: Path):
    """The issue's reproduction: four `roon ingest` started at once on a new catalogue,
    each with its own models; ten trials. All succeed and no model is missing."""
    files = _nets(tmp_path / "nets", 8, widths=(3, 4, 2))
    parts = [files[i::4] for i in range(4)]
    for trial in range(10):
        catalogue = tmp_path / f"cat{trial}"
        procs = [
            subprocess.Popen(
                [*ROON, "ingest", "-c", str(catalogue), "--backend", "ref", *map(str, part)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for part in parts
        ]
        errors = [p.communicate(timeout=300)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0, 0], (trial, errors)
        assert len(read.list_models(catalogue)) == len(files), trial


def test_kill_9_during_catalogue_creation_is_completed_later(tmp_path: Path):
    """A creation killed at any point leaves a folder a later ingest completes."""
    files = _nets(tmp_path / "nets", 1, widths=(3, 4, 2))
    rng = random.Random(7)
    for trial in range(4):
        catalogue = tmp_path / f"cat{trial}"
        cmd = [*ROON, "ingest", "-c", str(catalogue), "--backend", "ref", str(files[0])]
        _kill_after(cmd, rng.uniform(0.2, 1.5))
        again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        assert _consistent(catalogue) == 1
