"""How fast is the catalogue at 10², 10³ and 10⁴ models? Baselines in the same run.

For each size N: N small models (4-16-16-2 ReLU MLPs, safetensors files) are ingested by
one ``roon ingest --jobs J`` process (wall seconds per model, whole process); then
``roon sql`` (a fresh process each time: what a user waits for) runs a count and the
recurring-signature GROUP BY, before and after ``roon compact``, against plain DuckDB
``read_parquet`` over the very same Parquet files (the manifest's list), also a fresh
process each time. Every figure is the median of ``--repeat`` runs.

Rows go to ``benchmarks/results_catalogue.csv``; the ratios (roon / plain DuckDB on the
compacted files) are printed last.
Run: ``python benchmarks/bench_catalogue.py [--sizes 100,1000,10000] [--jobs 2]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stamp import append_rows, commit, machine  # noqa: E402

from roon import MLP, Layer  # noqa: E402

HERE = Path(__file__).resolve().parent
CSV = HERE / "results_catalogue.csv"
FIELDS = ["date", "commit", "machine", "benchmark", "case", "seconds", "detail"]
ROON = str(Path(sys.executable).with_name("roon"))
COUNT = "SELECT count(*) AS n FROM neurons"
RECURRING = (
    "SELECT hash, count(DISTINCT model_id) AS models, count(*) AS neurons FROM signatures "
    "WHERE exact GROUP BY hash HAVING count(DISTINCT model_id) >= 2 "
    "ORDER BY models DESC, neurons DESC, hash LIMIT 20"
)
# plain DuckDB over the same files: a fresh process, as `roon sql` is
DUCKDB = """
import json, sys, duckdb
files = json.loads(sys.argv[1]); sql = sys.argv[2]
con = duckdb.connect()
for table, paths in files.items():
    con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet({paths!r})")
print(con.execute(sql).fetchall())
"""


def models(n: int, folder: Path) -> list[Path]:
    """N distinct 4-16-16-2 ReLU MLPs as safetensors files."""
    from roon.ingest.loaders import save_safetensors

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(n)
    files = []
    for i in range(n):
        widths = (4, 16, 16, 2)
        layers = [
            Layer(
                rng.normal(size=(b, a)).round(1),
                rng.normal(size=b).round(1),
                "linear" if j == 2 else "relu",
            )
            for j, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True))
        ]
        files.append(save_safetensors(MLP(layers, name=f"m{i}"), folder / f"m{i:05d}.safetensors"))
    return files


def timed(cmd: list[str], repeat: int) -> tuple[float, str]:
    times, out = [], ""
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def catalogue_files(root: Path) -> dict[str, list[str]]:
    from roon.store import layout

    found = {}
    for table in ("neurons", "signatures"):
        found[table] = [str(p) for p in layout.table_files(root, table)]
    return found


def in_process(
    root: Path, files: dict[str, list[str]], sql: str, repeat: int
) -> tuple[float, float]:
    """The query alone, imports done: roon's run_sql (snapshot, views, sandbox) and a
    DuckDB connection with read_parquet views over the same files."""
    import duckdb

    from roon.query.scan import run_sql

    ours, theirs = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run_sql(root, sql)
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        con = duckdb.connect()
        for table, paths in files.items():
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet({paths!r})")
        con.execute(sql).fetchall()
        con.close()
        theirs.append(time.perf_counter() - t0)
    return statistics.median(ours), statistics.median(theirs)


def queries(root: Path, repeat: int, label: str, rows: list[dict], n: int) -> dict[str, float]:
    """roon sql and plain DuckDB on the same files: count and GROUP BY."""
    files = catalogue_files(root)
    detail = f"{n} models, {len(files['neurons'])} files per table"
    out = {}
    for name, sql in (("count", COUNT), ("group by", RECURRING)):
        ours, answer = timed([ROON, "sql", sql, "-c", str(root), "--json"], repeat)
        theirs, plain = timed([sys.executable, "-c", DUCKDB, json.dumps(files), sql], repeat)
        if name == "count":  # the same answer from both
            assert json.loads(answer)[0]["n"] == int(plain.strip("[](),\n ")), (answer, plain)
        inside, inside_duck = in_process(root, files, sql, repeat)
        out[f"in {name}"], out[f"in duckdb {name}"] = inside, inside_duck
        for case, sec in (
            (f"roon sql {name}", ours),
            (f"duckdb read_parquet {name}", theirs),
            (f"run_sql {name}, in process", inside),
            (f"duckdb {name}, in process", inside_duck),
        ):
            rows.append({"benchmark": f"catalogue-{n}-{label}", "case": case, "seconds": sec,
                         "detail": detail})  # fmt: skip
            print(f"  {n:6d} models {label:10s} {case:32s} {sec:7.3f} s   ({detail})")
        out[name] = ours
        out[f"duckdb {name}"] = theirs
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/roon-bench-catalogue"))
    parser.add_argument("--no-write", action="store_true", help="do not append to the CSV")
    args = parser.parse_args()
    rows: list[dict] = []
    summary = {}
    empty = args.workdir / "empty"
    shutil.rmtree(empty, ignore_errors=True)
    subprocess.run([ROON, "compact", "-c", str(empty)], capture_output=True)  # no catalogue
    from roon.store import open_catalogue

    open_catalogue(empty, create=True)
    startup, _ = timed([ROON, "sql", "select 1", "-c", str(empty)], args.repeat)
    bare, _ = timed([sys.executable, "-c", "import duckdb; duckdb.sql('select 1').fetchall()"],
                    args.repeat)  # fmt: skip
    rows.append({"benchmark": "catalogue-startup", "case": "roon sql 'select 1', empty",
                 "seconds": startup, "detail": "whole process"})  # fmt: skip
    rows.append({"benchmark": "catalogue-startup", "case": "python -c 'import duckdb; select 1'",
                 "seconds": bare, "detail": "whole process"})  # fmt: skip
    print(f"  startup: roon sql 'select 1' {startup:.3f} s; python + duckdb {bare:.3f} s")
    for n in [int(s) for s in args.sizes.split(",")]:
        work = args.workdir / str(n)
        shutil.rmtree(work, ignore_errors=True)
        files = models(n, work / "nets")
        root = work / "cat"
        t0 = time.perf_counter()
        subprocess.run(
            [ROON, "ingest", str(work / "nets"), "-c", str(root), "--jobs", str(args.jobs),
             "--json"],
            check=True, capture_output=True,
        )  # fmt: skip
        ingest = (time.perf_counter() - t0) / len(files)
        detail = f"{n} models, --jobs {args.jobs}, whole process"
        rows.append({"benchmark": f"catalogue-{n}-ingest", "case": "roon ingest per model",
                     "seconds": ingest, "detail": detail})  # fmt: skip
        print(f"  {n:6d} models ingest {ingest * 1e3:7.1f} ms/model wall   ({detail})")
        before = queries(root, args.repeat, "segments", rows, n)
        t0 = time.perf_counter()
        subprocess.run([ROON, "compact", "-c", str(root)], check=True, capture_output=True)
        took = time.perf_counter() - t0
        rows.append({"benchmark": f"catalogue-{n}-compact", "case": "roon compact",
                     "seconds": took, "detail": f"{n} models"})  # fmt: skip
        print(f"  {n:6d} models compact {took:7.2f} s")
        after = queries(root, args.repeat, "compacted", rows, n)
        summary[n] = (ingest, before, after)
    if not args.no_write:
        stamp = {"date": dt.date.today().isoformat(), "commit": commit(), "machine": machine()}
        append_rows(
            CSV, FIELDS, [{**stamp, **row, "seconds": f"{row['seconds']:.6f}"} for row in rows]
        )
    print(f"machine: {machine()}; commit {commit()}")
    for n, (ingest, before, after) in summary.items():
        print(
            f"{n:6d} models: ingest {ingest * 1e3:.1f} ms/model; compacted: count "
            f"{after['count']:.3f} s ({after['count'] / after['duckdb count']:.2f}× DuckDB), "
            f"GROUP BY {after['group by']:.3f} s "
            f"({after['group by'] / after['duckdb group by']:.2f}× DuckDB); before compaction "
            f"{before['count'] / before['duckdb count']:.2f}× and "
            f"{before['group by'] / before['duckdb group by']:.2f}×; in process (compacted): "
            f"count {after['in count'] * 1e3:.0f} ms "
            f"({after['in count'] / after['in duckdb count']:.2f}× DuckDB), GROUP BY "
            f"{after['in group by'] * 1e3:.0f} ms "
            f"({after['in group by'] / after['in duckdb group by']:.2f}× DuckDB)"
        )
    print(f"startup: roon sql 'select 1' {startup:.3f} s vs python + duckdb {bare:.3f} s")


if __name__ == "__main__":
    main()
