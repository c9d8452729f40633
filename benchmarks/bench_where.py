"""How fast is `roon where`? Two questions, each with its baseline in the same run.

1. **The matcher against networkx** on one 10⁵-edge target (a 784-128-10 ReLU MLP with
   ``xor`` planted): roon's layered matcher (the hash step's candidates, then the exact
   search with the exact checks) against networkx's ``DiGraphMatcher`` alone, asked the
   same structural question (layers, the same candidate sets as node labels, edge signs)
   — the property test (tests/test_match_layered.py) shows both find the same embeddings.
2. **`where` against catalogue size**: ``roon where xor`` over generated catalogues of
   10, 100 and 1000 small models (4-16-16-2, a third with ``xor`` planted), in process
   and end to end (a fresh ``roon`` process), with the growth from 100 to 1000.

Rows go to ``benchmarks/results_where.csv``; ratios are printed last.
Run: ``python benchmarks/bench_where.py [--sizes 10,100,1000] [--workdir DIR]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
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
from roon.ingest.loaders.circuit import load_circuit  # noqa: E402

HERE = Path(__file__).resolve().parent
CSV = HERE / "results_where.csv"
FIELDS = ["date", "commit", "machine", "benchmark", "case", "seconds", "detail"]


def planted(widths: tuple[int, ...], rng: np.random.Generator, plant: bool, name: str) -> MLP:
    """A random ReLU MLP (fillers fire everywhere on the cube), ``xor`` planted in layers 0-1."""
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        w = rng.uniform(-0.1, 0.1, size=(b, a))
        bias = rng.uniform(0.5, 1.0, size=b)
        act = "linear" if i == len(widths) - 2 else "relu"
        layers.append([w, bias, act])
    if plant:
        xor = load_circuit("xor").mlp
        x = rng.choice(widths[0], size=2, replace=False)
        h = rng.choice(widths[1], size=2, replace=False)
        o = rng.choice(widths[2], size=1, replace=False)
        for p, t in enumerate(h):
            layers[0][0][t] = 0.0
            layers[0][0][t, x] = xor.layers[0].weight[p]
            layers[0][1][t] = 0.0
        layers[1][0][o[0]] = 0.0
        layers[1][0][o[0], h] = xor.layers[1].weight[0]
        layers[1][1][o[0]] = 0.0
        layers[1][2] = "relu" if len(layers) > 2 else "linear"
    return MLP([Layer(np.array(w), np.array(b), a) for w, b, a in layers], name=name)


def bench_matcher(rows: list[dict]) -> float:
    import networkx as nx
    from networkx.algorithms.isomorphism import DiGraphMatcher

    from roon.query.compare import _connection, _index
    from roon.query.match.candidates import could_appear_in
    from roon.query.match.layered import Search, embeddings
    from roon.query.match.pattern import Pattern
    from roon.query.match.where import match_model

    rng = np.random.default_rng(0)
    target = planted((784, 128, 10), rng, True, "big")
    edges = sum(layer.weight.size for layer in target.layers)
    xor = load_circuit("xor")
    pattern = Pattern("xor", xor.computes, xor.mlp, "library:xor", "binary")
    t0 = time.perf_counter()
    index = _index(target, None)
    t_index = time.perf_counter() - t0
    t0 = time.perf_counter()
    filtered = could_appear_in(_connection(index), pattern)
    [placement] = [p for p in filtered.placements if p.offset == 0]
    t_filter = time.perf_counter() - t0
    t0 = time.perf_counter()
    found, _ = match_model(pattern, target, 0, placement.domains, placement.candidates)
    t_match = time.perf_counter() - t0
    verified = sum(dev <= 0.1 for _, dev in found)
    pw = [la.weight for la in xor.mlp.layers]
    tw = [target.layers[0].weight, target.layers[1].weight]
    t0 = time.perf_counter()
    structural = sum(1 for _ in embeddings(pw, tw, placement.candidates, search=Search()))
    t_struct = time.perf_counter() - t0

    # networkx: the same structural question on the whole 784-128-10 graph
    def graph(weights, candidates=None):
        g = nx.DiGraph()
        for i in range(weights[0].shape[1]):
            g.add_node(("in", i), layer=-1, index=i)
        for j, w in enumerate(weights):
            for p in range(w.shape[0]):
                g.add_node((j, p), layer=j, index=p)
            src, dst = np.nonzero(w.T)
            for s, d in zip(src.tolist(), dst.tolist(), strict=True):
                source = ("in", s) if j == 0 else (j - 1, s)
                g.add_edge(source, (j, d), sign=int(np.sign(w[d, s])))
        return g

    gt = graph([la.weight for la in target.layers])
    gp = graph(pw)
    for j, layer in enumerate(placement.candidates):
        for p, c in enumerate(layer):
            gp.nodes[(j, p)]["allowed"] = None if c is None else set(c)
    t0 = time.perf_counter()
    matcher = DiGraphMatcher(
        gt,
        gp,
        node_match=lambda a, b: (
            a["layer"] == b["layer"] and (b.get("allowed") is None or a["index"] in b["allowed"])
        ),
        edge_match=lambda a, b: a["sign"] == b["sign"],
    )
    count = sum(1 for _ in matcher.subgraph_monomorphisms_iter())
    t_nx = time.perf_counter() - t0
    assert count == structural, (count, structural)
    ours = t_filter + t_match
    detail = f"{edges:,} edges; {structural} structural, {len(found)} checked, {verified} verified"
    for case, sec in (
        ("roon index (signatures + restricted)", t_index),
        ("roon hash filter", t_filter),
        ("roon matcher + exact and functional checks", t_match),
        ("roon matcher, structural only", t_struct),
        ("networkx DiGraphMatcher, structural", t_nx),
    ):
        rows.append(
            {"benchmark": "matcher-10^5-edges", "case": case, "seconds": sec, "detail": detail}
        )
        print(f"  {case:48s} {sec * 1e3:10.1f} ms   ({detail})")
    print(f"  matcher with its exact and functional checks: {t_nx / t_match:.0f}×")
    print(f"  with the hash filter counted on roon's side: {t_nx / ours:.1f}×")
    # the like-for-like ratio (both structural only, same candidates) comes last
    return t_nx / t_struct


def bench_catalogues(
    rows: list[dict], sizes: list[int], workdir: Path
) -> dict[tuple[int, str], float]:
    from roon.ingest.pipeline import ingest_model
    from roon.query.match import where
    from roon.store import open_catalogue

    latency = {}
    for n in sizes:
        root = workdir / f"where-{n}"
        shutil.rmtree(root, ignore_errors=True)
        cat = open_catalogue(root, create=True)
        rng = np.random.default_rng(n)
        t0 = time.perf_counter()
        for i in range(n):
            ingest_model(planted((4, 16, 16, 2), rng, i % 3 == 0, f"m{i}"), cat)
        t_ingest = time.perf_counter() - t0
        # one ingest_model call per model leaves one segment per model (the worst case);
        # then the same catalogue after roon compact (one segment)
        for layout in ("segment per model", "compacted"):
            if layout == "compacted":
                from roon.store.compact import compact

                compact(root)
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                result = where("xor", cat)
                times.append(time.perf_counter() - t0)
            cli = []
            for _ in range(3):
                t0 = time.perf_counter()
                subprocess.run(
                    [str(Path(sys.executable).with_name("roon")), "where", "xor", "-c", str(root),
                     "--json"],
                    check=True,
                    capture_output=True,
                )  # fmt: skip
                cli.append(time.perf_counter() - t0)
            t_cli = statistics.median(cli)
            expect = len(range(0, n, 3))
            assert result.models_found == expect, (result.models_found, expect)
            latency[(n, layout)] = t_cli
            detail = (
                f"{n} models, {layout}, found in {result.models_found}; "
                f"ingest {t_ingest / n * 1e3:.1f} ms/model"
            )
            for case, sec in (("where, in process (median of 3)", statistics.median(times)),
                              ("roon where, whole process (median of 3)", t_cli)):  # fmt: skip
                rows.append(
                    {"benchmark": f"where-{n}-models", "case": case, "seconds": sec,
                     "detail": detail}
                )  # fmt: skip
                print(f"  {n:5d} models  {case:40s} {sec:8.3f} s   ({detail})")
    return latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/roon-bench-where"))
    parser.add_argument("--no-write", action="store_true", help="do not append to the CSV")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    print("matcher on a 10^5-edge target:")
    speedup = bench_matcher(rows)
    print("where against catalogue size:")
    latency = bench_catalogues(rows, [int(s) for s in args.sizes.split(",")], args.workdir)
    if not args.no_write:
        stamp = {"date": dt.date.today().isoformat(), "commit": commit(), "machine": machine()}
        append_rows(
            CSV, FIELDS, [{**stamp, **row, "seconds": f"{row['seconds']:.6f}"} for row in rows]
        )
    print(f"machine: {machine()}")
    for layout in ("segment per model", "compacted"):
        if (100, layout) in latency and (1000, layout) in latency:
            growth = latency[(1000, layout)] / latency[(100, layout)]
            print(f"roon where latency 100 → 1000 models ({layout}): ×{growth:.2f}")
    print(
        "layered matcher vs networkx DiGraphMatcher, both structural only, same candidates, "
        f"10^5-edge target: {speedup:.0f}× faster"
    )


if __name__ == "__main__":
    main()
