"""Rows per second of ``roon graph push`` into a real Neo4j, against the bulk import.

The catalogue is the 45 ACAS Xu networks (``ACASXU_*.nnet``, 5 inputs, six hidden layers
of 50 ReLU, 5 outputs: 13,000 FEEDS each) from a folder given on the command line; the
project ships only two of them (``examples/acasxu``). They are ingested into a temporary
catalogue first (not timed). The server is a fresh Neo4j test server
(``docker/neo4j-test-server/server.sh start``), so nothing else shares it.

Cases, each into an emptied database with the schema applied (``roon graph init``):

* ``push --batch-size B`` for B = 1000 (the default), 100 and 10000: the wall time that
  ``roon graph push --json`` reports (``seconds``) and the rows it sent (the ``UNWIND``
  maps, each writing a node, a relationship or both);
* ``export + import`` (the baseline road for large catalogues): ``roon graph export
  --format neo4j-admin`` plus the ``neo4j-admin database import full`` command of the
  export's README, into a fresh home; wall clock of both, JVM start included.

Every case writes the same graph (nodes + relationships are counted on the server), so
nodes + relationships per second compare them; each case's ratio to the default push is
printed last. Rows go to
``benchmarks/results_graph_push.csv`` and the figures to the "Graph push" section of
``benchmarks/RESULTS.md``. Run:
``python benchmarks/bench_graph_push.py /path/to/acasxu`` (needs Java 17+ and Maven).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stamp import commit, machine  # noqa: E402

HERE = Path(__file__).resolve().parent
SERVER = HERE.parent / "docker" / "neo4j-test-server" / "server.sh"
CSV = HERE / "results_graph_push.csv"
MARKDOWN = HERE / "RESULTS.md"
FIELDS = ["date", "commit", "machine", "benchmark", "case", "batch_size", "rows_sent",
          "graph_elements", "seconds", "rows_per_second", "elements_per_second",
          "neo4j"]  # fmt: skip
DEFAULT_BATCH = 1000  # roon graph push's default (--batch-size)
BATCHES = (DEFAULT_BATCH, 100, 10000)
MODELS = 45  # the ACAS Xu family: 5 x 9 networks


def roon(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "roon", *args], capture_output=True, text=True, env=env
    )
    if done.returncode != 0:
        sys.exit(f"roon {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def wipe(env: dict[str, str]) -> None:
    """Empty the database in transactions of 10k deletions (one would need a big heap)."""
    from neo4j import GraphDatabase

    auth = ("neo4j", env["NEO4J_PASSWORD"])
    with (
        GraphDatabase.driver(env["NEO4J_URI"], auth=auth) as driver,
        driver.session(database="neo4j") as session,
    ):
        session.run(
            "MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"
        ).consume()


def graph_size(env: dict[str, str]) -> int:
    """Nodes plus relationships in the database."""
    from neo4j import GraphDatabase

    with GraphDatabase.driver(env["NEO4J_URI"], auth=("neo4j", env["NEO4J_PASSWORD"])) as d:
        nodes = d.execute_query("MATCH (n) RETURN count(n) AS c").records[0]["c"]
        rels = d.execute_query("MATCH ()-[r]->() RETURN count(r) AS c").records[0]["c"]
    return int(nodes + rels)


def start_server(state: Path, *extra: str) -> dict[str, str]:
    done = subprocess.run([str(SERVER), "start", str(state), *extra], text=True)
    if done.returncode != 0:
        sys.exit("could not start the Neo4j test server (see above)")
    settings = dict(line.split("=", 1) for line in (state / "env").read_text().splitlines())
    return {**os.environ, **settings}


def neo4j_version() -> str:
    pom = (SERVER.parent / "pom.xml").read_text()
    return re.search(r"<neo4j.version>(.+?)</neo4j.version>", pom)[1]


def write_markdown(lines: list[str]) -> None:
    section = "## Graph push\n\n" + "\n".join(lines) + "\n"
    text = MARKDOWN.read_text() if MARKDOWN.exists() else "# Benchmark results\n"
    pattern = re.compile(r"^## Graph push\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section
    MARKDOWN.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="folder holding the 45 ACASXU_*.nnet files")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    nets = sorted(args.folder.glob("ACASXU_*.nnet"))
    if len(nets) != MODELS:
        sys.exit(f"{args.folder}: expected {MODELS} ACASXU_*.nnet files, found {len(nets)}")

    # stamped first: a broken stamp fails before minutes of pushing, not after
    when, rev, host, version = (dt.datetime.now().isoformat(timespec="seconds"), commit(),
                                machine(), neo4j_version())  # fmt: skip
    load = os.getloadavg()[0]  # other jobs on the VM: say how busy it was
    work = Path(tempfile.mkdtemp(prefix="roon-bench-graph-"))
    state = work / "server"
    try:
        models = work / "models"
        models.mkdir()
        for path in nets:  # the .nnet files only (the folder may hold .onnx twins)
            (models / path.name).symlink_to(path.resolve())
        catalogue = work / "catalogue"
        print(f"ingesting {len(nets)} networks ...", flush=True)
        roon("ingest", str(models), "--catalogue", str(catalogue), env=dict(os.environ))
        env = start_server(state)
        # (case, batch size, rows sent, nodes + relationships, seconds)
        results: list[tuple[str, int | None, int | None, int, float]] = []
        for batch in BATCHES:
            wipe(env)
            roon("graph", "init", env=env)
            out = json.loads(roon("graph", "push", "--catalogue", str(catalogue),
                                  "--batch-size", str(batch), "--json", env=env))  # fmt: skip
            assert len(out["models_pushed"]) == MODELS, out["models_pushed"]
            size = graph_size(env)
            results.append((f"push --batch-size {batch}", batch, out["rows_sent"], size,
                            out["seconds"]))  # fmt: skip
            print(f"push, batch {batch:>5}: {out['rows_sent']:,} rows in {out['seconds']:.1f} s "
                  f"({out['batches']:,} batches)", flush=True)  # fmt: skip
        size = results[0][3]
        assert {r[3] for r in results} == {size}, results

        export, home = work / "export", work / "home"
        t0 = time.perf_counter()
        summary = json.loads(roon("graph", "export", "--format", "neo4j-admin", str(export),
                                  "--catalogue", str(catalogue), "--json", env=env))  # fmt: skip
        exported = time.perf_counter() - t0
        # the command the export wrote into its README, `neo4j-admin` being the tool
        script = f'neo4j-admin() {{ "{SERVER}" admin "{home}" "$@"; }}\n{summary["command"]}'
        t0 = time.perf_counter()
        done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=work)
        imported = time.perf_counter() - t0
        if done.returncode != 0:
            sys.exit(f"neo4j-admin import failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
        assert sum(summary["rows"].values()) == size, (summary["rows"], size)
        results.append(("export + import", None, None, size, exported + imported))
        print(f"export {exported:.1f} s + neo4j-admin import {imported:.1f} s", flush=True)
    finally:
        subprocess.run([str(SERVER), "stop", str(state)])
        shutil.rmtree(work, ignore_errors=True)

    print(f"{host}, commit {rev}, Neo4j Community {version}, load average {load:.1f} at start")
    lines = ["`python benchmarks/bench_graph_push.py FOLDER` pushes a catalogue of the 45 ACAS",
             "Xu networks (45 models, 13,000 FEEDS each) into a fresh Neo4j test server",
             "(embedded, default settings but a 128 MB page cache and a 1 GB heap) with",
             "`roon graph push` at three batch sizes, each into an emptied database after",
             "`roon graph init`. The baseline is the bulk road: `roon graph export` plus",
             "`neo4j-admin database import full` (wall clock, JVM start included). Rows are",
             "the `UNWIND` maps a push sends (one writes a node, or a relationship, or both);",
             "nodes + relationships are counted on the server after each case. Server and",
             "client share the 2-core VM, which other jobs also use; expect ±30 % noise.", "",
             f"Run of {when}, commit {rev}, {host}, Neo4j Community {version}; load average "
             f"{load:.1f} at the start.", "",
             "| case | batch size (rows per transaction) | rows sent | rows per second "
             "| nodes + relationships | seconds | nodes + rels per second | vs the default push |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    base = results[0][3] / results[0][4]
    for case, batch, sent, n, seconds in results:
        sent_s, per_s = (f"{sent:,}", f"{sent / seconds:,.0f}") if sent else ("", "")
        lines.append(f"| {case} | {batch or ''} | {sent_s} | {per_s} | {n:,} | {seconds:.1f} "
                     f"| {n / seconds:,.0f} | {n / seconds / base:.2f}x |")  # fmt: skip
    print("nodes + relationships per second against the default push (batch 1000):")
    for case, _, _, n, seconds in results:
        print(f"  {case:28s} {n / seconds:10,.0f} /s  {n / seconds / base:6.2f}x")
    if args.no_write:
        return
    write_markdown(lines)
    new = not CSV.exists()
    with CSV.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        for case, batch, sent, n, seconds in results:
            writer.writerow({
                "date": when, "commit": rev, "machine": host, "benchmark": "graph-push",
                "case": case, "batch_size": batch or "", "rows_sent": sent or "",
                "graph_elements": n, "seconds": f"{seconds:.3f}",
                "rows_per_second": f"{sent / seconds:.0f}" if sent else "",
                "elements_per_second": f"{n / seconds:.0f}", "neo4j": f"community {version}",
            })  # fmt: skip


if __name__ == "__main__":
    main()
