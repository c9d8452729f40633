"""How ingest and `roon where` scale with the number of zoo-sized models in a catalogue.

For each size N (default 10² and 10³; ``--sizes 100,1000,10000`` adds 10⁴), in a fresh
temporary directory:

1. **generate** N small ReLU MLPs as safetensors files (not timed): the zoo's shapes
   (2 inputs, hidden width 2, 4 or 8, one linear output), seeded N(0, 1) weights, and
   one model in :data:`PLANTED_EVERY` with the library's ``xor`` planted on its inputs
   (:func:`roon.zoo.plant.plant`), so ``where`` has something to find;
2. **ingest** them with ``roon.ingest_models`` (one atomic commit per model): seconds
   per model;
3. **where** ``xor`` over the catalogue, :data:`REPEATS` times (the best is kept): the
   latency of one query, and the embeddings found (must be every plant);
4. the catalogue's **size** on disk (allocated blocks) and its **file count**;
5. the **baseline**, in the same run on the same files: one plain DuckDB
   ``read_parquet`` over every model's ``signatures.parquet`` (the table ``where``'s
   filter reads), best of :data:`REPEATS`.

Printed per size, then the growth from each size to the next (per-model ingest, where
latency, bytes and files per model) and, last, ``where`` / baseline at each size. Rows
go to ``benchmarks/results_scale.csv`` with the date, commit and machine.
Run: ``python benchmarks/bench_scale.py [--sizes 100,1000,10000]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stamp import append_rows, commit, machine  # noqa: E402

HERE = Path(__file__).resolve().parent
CSV = HERE / "results_scale.csv"
FIELDS = ["date", "commit", "machine", "models", "ingest_s", "ingest_ms_per_model",
          "where_s", "found", "planted", "baseline_s", "bytes", "files", "load_start"]  # fmt: skip
# One model in ten carries a planted xor: where's matcher runs on real candidates, and
# its answer can be checked (every plant found, the automorphism image included).
PLANTED_EVERY = 10
WIDTHS = (2, 4, 8)
REPEATS = 3


def generate(directory: Path, n: int) -> int:
    """``n`` zoo-sized models as safetensors files in ``directory``; returns the plants."""
    from roon.ingest.loaders import save_safetensors
    from roon.ingest.loaders.circuit import load_circuit
    from roon.mlp import MLP, Layer
    from roon.zoo.plant import plant

    xor = load_circuit("xor").mlp
    planted = 0
    for i in range(n):
        rng = np.random.default_rng([2026, i])
        width = WIDTHS[i % len(WIDTHS)]
        if i % PLANTED_EVERY == 0:
            mlp, _ = plant(xor, offset=0, rng=rng, inputs=2, width=width, tail=False)
            planted += 1
        else:
            layers = (
                Layer(rng.normal(size=(width, 2)), rng.normal(size=width), "relu"),
                Layer(rng.normal(size=(1, width)), rng.normal(size=1), "linear"),
            )
            mlp = MLP(layers)
        mlp = mlp.replace(name=f"m{i:05d}", metadata={"input_domain": "binary"})
        save_safetensors(mlp, directory / f"m{i:05d}.safetensors")
    return planted


def disk_usage(root: Path) -> tuple[int, int]:
    """(allocated bytes, files) under ``root``."""
    size = files = 0
    for folder, _, names in os.walk(root):
        for name in names:
            size += os.stat(os.path.join(folder, name)).st_blocks * 512
            files += 1
    return size, files


def best(fn, repeats: int = REPEATS) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def measure(n: int) -> dict:
    import duckdb

    from roon import ingest_models
    from roon.query.match import where

    with tempfile.TemporaryDirectory(prefix=f"roon-scale-{n}-") as tmp:
        models, catalogue = Path(tmp) / "models", Path(tmp) / "catalogue"
        models.mkdir()
        planted = generate(models, n)
        start = time.perf_counter()
        results = ingest_models([models], catalogue)
        ingest = time.perf_counter() - start
        assert all(r.status == "ingested" for r in results), "every model is new"
        where_s, result = best(lambda: where("xor", catalogue))
        glob = str(catalogue / "models" / "*" / "signatures.parquet")
        query = f"SELECT count(*), count(DISTINCT hash) FROM read_parquet('{glob}')"
        baseline, _ = best(lambda: duckdb.sql(query).fetchall())
        size, files = disk_usage(catalogue)
    return {
        "models": n,
        "ingest_s": round(ingest, 3),
        "ingest_ms_per_model": round(1000 * ingest / n, 2),
        "where_s": round(where_s, 3),
        "found": result.models_found,
        "planted": planted,
        "baseline_s": round(baseline, 4),
        "bytes": size,
        "files": files,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000", help="comma-separated model counts")
    parser.add_argument("--no-csv", action="store_true", help="do not append to the CSV")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    stamp = {
        "date": dt.date.today().isoformat(),
        "commit": commit(),
        "machine": machine(),
        "load_start": f"{os.getloadavg()[0]:.2f}",
    }
    print(f"{stamp['machine']}; commit {stamp['commit']}; load {stamp['load_start']}")
    rows = []
    for n in sizes:
        row = measure(n)
        rows.append({**stamp, **row})
        print(
            f"{n:>6} models: ingest {row['ingest_s']:.1f} s ({row['ingest_ms_per_model']:.1f} "
            f"ms/model); where xor {row['where_s']:.2f} s, found in {row['found']}/"
            f"{row['planted']} plants; baseline read_parquet {1000 * row['baseline_s']:.0f} ms; "
            f"{row['bytes'] / 2**20:.1f} MiB in {row['files']} files",
            flush=True,
        )
    for a, b in zip(rows, rows[1:], strict=False):
        k = b["models"] / a["models"]
        print(
            f"{a['models']} → {b['models']} models (×{k:g}): ingest per model "
            f"×{b['ingest_ms_per_model'] / a['ingest_ms_per_model']:.2f}, where latency "
            f"×{b['where_s'] / a['where_s']:.1f}, baseline "
            f"×{b['baseline_s'] / a['baseline_s']:.1f}, files ×{b['files'] / a['files']:.1f}"
        )
    if not args.no_csv:
        append_rows(CSV, FIELDS, rows)
    for row in rows:
        ratio = row["where_s"] / row["baseline_s"]
        print(f"where / baseline read_parquet at {row['models']} models: {ratio:.0f}×")


if __name__ == "__main__":
    main()
