"""Seconds per neuron of the beyond-exhaustive methods, against their targets, in one run.

Cases (issue 3, item 5, and the design targets for dp and the AND route):

* ``mitm`` n = 24, 32, 40: float64 neurons with every input relevant, through
  :func:`roon.kernels.beyond.count_beyond`. Targets: n = 32 <= 0.1 s, n = 40 <= 4 s. At
  n = 24 the baseline is exhaustive enumeration of the 2^24 inputs in NumPy (int64,
  blocked), timed in the same run.
* ``dp`` n = 784 int8: exact Chow parameters of a quantised MNIST-width neuron; the
  reference is the notes' 0.52 s for the same DP modulo 2^64 (a fingerprint, not exact).
* ``route`` ACAS Xu hidden neurons (n = 50, float64 from decimal text) and MNIST first
  layer neurons (n = 784): time per neuron to reach the result (sampled, every input
  relevant); target <= 10 ms. Real networks are read from the repository's ``examples/``
  (ACAS Xu 1_1 and 2_1, MNIST 10x10; see examples/README.md for their sources).
* ``equivalence``: the seed's question, a 784-input neuron that is AND(x_a, x_b)
  (notes: 9 ms in pure Python).
* ``mitm n=50``: exact fire count and Chow parameters of real ACAS Xu hidden neurons by
  the compiled meet-in-the-middle face on one thread (issue 12: <= 0.6 s per neuron per
  core, plan memory <= 600 MB); beside it the same face against the NumPy face at
  n = 24, 32, 40 (the baseline, same neurons, same run).
* ``ingest``: wall and CPU seconds of ``roon.ingest_models`` on every ``.nnet`` file of
  ``--acas DIR`` with the default ``exact="auto"`` (issue 12: the 45 ACAS Xu networks in
  <= 5 s wall on 2 cores) and, with ``--always``, ``exact="always"`` (every neuron
  exact; <= 60 min on 2 cores). ``--acas`` defaults to the two networks in
  ``examples/acasxu``; pass the folder of all 45 (the project never reads it itself).

Rows go to ``benchmarks/results_beyond.csv`` (date, commit, machine, benchmark, case, backend,
value, unit) and the figures to the "Beyond exhaustive" section of
``benchmarks/RESULTS.md``. Run: ``python benchmarks/bench_beyond.py [--quick]
[--acas DIR] [--always]``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stamp import commit, machine  # noqa: E402

from roon.kernels.beyond import count_beyond  # noqa: E402
from roon.kernels.equivalence import is_equivalent_to  # noqa: E402
from roon.kernels.exact import to_int64  # noqa: E402

HERE = Path(__file__).resolve().parent
CSV = HERE / "results_beyond.csv"
MARKDOWN = HERE / "RESULTS.md"
FIELDS = ["date", "commit", "machine", "benchmark", "case", "backend", "value", "unit"]
REAL = HERE.parent / "examples"
# targets: issue 3 item 5 (mitm, route), design targets for dp (numpy mod 2^64) and and
TARGETS = {"mitm n=32": 0.1, "mitm n=40": 4.0, "dp n=784 int8": 0.52,
           "route acas n=50": 0.010, "route mnist n=784": 0.010, "and n=784": 0.009,
           "mitm n=50 acas, C, 1 core": 0.6, "ingest acas auto": 5.0,
           "ingest acas always": 3600.0}  # fmt: skip


def per_neuron(
    neurons: list[tuple[np.ndarray, float]], repeats: int, **kw: object
) -> tuple[float, str]:
    """Median over neurons of the best of ``repeats`` runs, and the methods seen."""
    times, methods = [], set()
    for w, b in neurons:
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            res = count_beyond(w, b, "binary", **kw)
            best = min(best, time.perf_counter() - t0)
        times.append(best)
        methods.add(res.method)
    return float(np.median(times)), "/".join(sorted(methods))


def enumerate_baseline(w: np.ndarray, b: float) -> int:
    """Fire count by enumerating all 2^n inputs in int64 blocks (the exhaustive baseline)."""
    rows = to_int64(w[None, :], np.array([b]))
    iw, ib = rows.weights[0], int(rows.bias[0])
    n, low = len(iw), min(len(iw), 16)
    lo = np.zeros(1, dtype=np.int64)
    for v in iw[:low]:
        lo = np.concatenate([lo, lo + v])
    fire = 0
    for high in range(1 << (n - low)):
        s = ib + int(sum(int(iw[low + j]) for j in range(n - low) if high >> j & 1))
        fire += int(np.count_nonzero(lo + s > rows.tol[0]))
    return fire


def read_nnet(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """Dense layers of a .nnet file (weights [out, in], biases [out])."""
    lines = [ln for ln in path.read_text().splitlines() if not ln.startswith("//")]
    values = [[float(x) for x in ln.split(",") if x.strip()] for ln in lines]
    sizes = [int(x) for x in values[1]]
    at, layers = 7, []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        w = np.array(values[at : at + n_out])
        b = np.array([r[0] for r in values[at + n_out : at + 2 * n_out]])
        assert w.shape == (n_out, n_in)
        layers.append((w, b))
        at += 2 * n_out
    return layers


def route_neurons(kind: str, count: int) -> tuple[list[tuple[np.ndarray, float]], str]:
    rng = np.random.default_rng(1)
    if kind == "acas" and (REAL / "acasxu").is_dir():
        rows = [
            (np.sort(w), float(b))
            for path in sorted((REAL / "acasxu").glob("*.nnet"))[:3]
            for layer_w, layer_b in read_nnet(path)[1:-1]
            for w, b in zip(layer_w, layer_b, strict=True)
        ]
        return rows[:count], "ACAS Xu .nnet"
    if kind == "mnist" and (REAL / "mnist").is_dir():
        rows = [
            (np.sort(w), float(b))
            for path in sorted((REAL / "mnist").glob("*.nnet"))
            for w, b in zip(*read_nnet(path)[0], strict=True)
        ]
        return rows[:count], "MNIST .nnet"
    n = 50 if kind == "acas" else 784
    w = np.round(rng.normal(scale=0.3, size=(count, n)), 5)  # decimal text, like .nnet
    return [(np.sort(r), float(rng.normal(scale=0.1))) for r in w], "synthetic"


def acas_rows(folder: Path, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` hidden ACAS Xu neurons (fan-in 50) as int64 fixed-point rows, as roon
    loads them (``.nnet`` values are float32, so the rows are exact: ``tol = 0``)."""
    import roon
    from roon.kernels.exact import to_int64

    ws, bs = [], []
    for path in sorted(folder.glob("*.nnet")):
        mlp = roon.load_model(path)
        for layer in mlp.layers[1:]:
            ws.append(np.sort(layer.weight.astype(np.float64), axis=1))
            bs.append(layer.bias.astype(np.float64))
        if sum(len(b) for b in bs) >= count:
            break
    rows = to_int64(np.concatenate(ws)[:count], np.concatenate(bs)[:count])
    assert not rows.tol.any(), "ACAS Xu rows are exact in int64"
    return rows.weights, rows.bias


def mitm_cases(folder: Path, quick: bool) -> list[tuple[str, str, int, int, float, str]]:
    """The compiled MITM face at n = 50 (real neurons) and against NumPy at 24..40."""
    from roon.kernels.cpu import cpu_missing, mitm_cpu, mitm_plan
    from roon.kernels.mitm import mitm_ref

    if cpu_missing() or not folder.is_dir():
        return []
    out = []
    rng = np.random.default_rng(3)
    for n in (24, 32) if quick else (24, 32, 40):
        rows = to_int64(np.sort(rng.normal(size=(2, n)), axis=1), rng.normal(size=2))
        t0 = time.perf_counter()
        ref = mitm_ref(rows.weights, rows.bias, rows.tol)
        t_ref = (time.perf_counter() - t0) / 2
        t0 = time.perf_counter()
        got = mitm_cpu(rows.weights, rows.bias, rows.tol, threads=1)
        t_c = (time.perf_counter() - t0) / 2
        assert np.array_equal(ref.chow, got.chow) and np.array_equal(ref.fire, got.fire)
        out.append(("mitm", f"mitm n={n}, numpy face", n, 2, t_ref, "baseline"))
        out.append(("mitm", f"mitm n={n}, C, 1 core", n, 2, t_c, f"{t_ref / t_c:.0f}x numpy"))
    count = 2 if quick else 6
    w, b = acas_rows(folder, count)
    plan = mitm_plan(50)
    assert plan is not None
    t0 = time.perf_counter()
    got = mitm_cpu(w, b, np.zeros(len(b), np.int64), threads=1)
    seconds = (time.perf_counter() - t0) / len(b)
    ties = int(np.count_nonzero(got.min_abs() == 0))
    shape = f"plan {plan[0]}/{plan[1]}/{plan[2]}, {plan[3] / 1e6:.0f} MB"
    note = f"{shape}; {ties} of {len(b)} at margin 0"
    out.append(("mitm", "mitm n=50 acas, C, 1 core", 50, len(b), seconds, note))
    return out


def ingest_cases(
    folder: Path, policies: tuple[str, ...]
) -> list[tuple[str, str, int, int, float, str]]:
    """Wall seconds to ingest every .nnet file of ``folder`` under each exact policy."""
    import shutil
    import tempfile

    import roon

    files = sorted(folder.glob("*.nnet"))
    if not files:
        return []
    out = []
    for policy in policies:
        where = Path(tempfile.mkdtemp(prefix="roon-bench-"))
        try:
            t0, c0 = time.perf_counter(), time.process_time()
            results = roon.ingest_models(files, where / "cat", exact=policy)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        finally:
            shutil.rmtree(where, ignore_errors=True)
        neurons = sum(r.neurons for r in results)
        sampled = sum(r.sampled for r in results)
        note = f"{len(files)} networks, {neurons} neurons, {sampled} sampled, {cpu:.1f} s CPU"
        out.append(("ingest", f"ingest acas {policy}", 50, len(files), wall, note))
    return out


def write_markdown(lines: list[str]) -> None:
    section = "## Beyond exhaustive\n\n" + "\n".join(lines) + "\n"
    text = MARKDOWN.read_text() if MARKDOWN.exists() else "# Benchmark results\n"
    pattern = re.compile(r"^## Beyond exhaustive\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section
    MARKDOWN.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer neurons, no n=40")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--acas", type=Path, default=REAL / "acasxu", help="folder of ACAS Xu .nnet files"
    )
    parser.add_argument(
        "--always", action="store_true", help="also ingest with exact=always (long)"
    )
    parser.add_argument(
        "--always-only",
        action="store_true",
        help="only the exact=always ingest: print it and append it to the CSV (the long run)",
    )
    args = parser.parse_args()
    if args.always_only:
        (row,) = ingest_cases(args.acas, ("always",))
        when, rev, host = dt.datetime.now().isoformat(timespec="seconds"), commit(), machine()
        print(f"{host}, commit {rev}\n{row[1]}: {row[4]:.1f} s ({row[5]})")
        print(f"ratio (target / measured): {TARGETS[row[1]] / row[4]:.2f}x")
        if not args.no_write:
            with CSV.open("a", newline="") as f:
                csv.DictWriter(f, fieldnames=FIELDS).writerow({
                    "date": when, "commit": rev, "machine": host, "benchmark": "beyond-ingest",
                    "case": row[1], "backend": f"cpu ({row[5]})", "value": f"{row[4]:.6g}",
                    "unit": "s",
                })  # fmt: skip
        return
    rng = np.random.default_rng(0)
    # (benchmark, case, fan-in, neurons timed, seconds per neuron, method)
    results: list[tuple[str, str, int, int, float, str]] = []

    for n in (24, 32) if args.quick else (24, 32, 40):
        count = {24: 5, 32: 5, 40: 3}[n]
        neurons = [(np.sort(rng.normal(size=n)), float(rng.normal(scale=0.3))) for _ in "x" * count]
        seconds, method = per_neuron(neurons, repeats=1 if n == 40 else 3, exact="always")
        results.append(("mitm", f"mitm n={n}", n, count, seconds, method))
        if n == 24:
            w, b = neurons[0]
            t0 = time.perf_counter()
            assert enumerate_baseline(w, b) == count_beyond(w, b, "binary").fire_count
            elapsed = time.perf_counter() - t0
            results.append(("mitm", "enumerate n=24 fire count", n, 1, elapsed, "baseline"))

    int8 = [(np.sort(rng.integers(-127, 128, 784).astype(np.float64)), 0.5) for _ in range(3)]
    int8 = int8[: 1 if args.quick else 3]
    seconds, method = per_neuron(int8, repeats=1, exact="always")
    results.append(("dp", "dp n=784 int8", 784, len(int8), seconds, method))

    for kind in ("acas", "mnist"):
        neurons, source = route_neurons(kind, 200 if kind == "acas" else 40)
        for w, b in neurons[:2]:  # warm the sample cache, as in a layer-by-layer ingest
            count_beyond(w, b, "binary")
        t0 = time.perf_counter()
        methods = {count_beyond(w, b, "binary").method for w, b in neurons}
        seconds = (time.perf_counter() - t0) / len(neurons)
        n = len(neurons[0][0])
        method = f"{'/'.join(sorted(methods))}, {source}"
        results.append(("route", f"route {kind} n={n}", n, len(neurons), seconds, method))

    w = np.full(784, 1e-3)
    w[1::2] = -1e-3
    w[[100, 200]] = 1.0
    t0 = time.perf_counter()
    assert is_equivalent_to(w, -1.5, [1.0, 1.0], -1.0, others="free")
    results.append(("equivalence", "and n=784", 784, 1, time.perf_counter() - t0, "free"))

    results += mitm_cases(args.acas, args.quick)
    results += ingest_cases(args.acas, ("auto", "always") if args.always else ("auto",))

    when, rev, host = dt.datetime.now().isoformat(timespec="seconds"), commit(), machine()
    print(f"{host}, commit {rev}")
    lines = ["`python benchmarks/bench_beyond.py` times the beyond-exhaustive methods of",
             "`roon.kernels.beyond.count_beyond` per neuron (median over a few neurons) and",
             "`is_equivalent_to`, against the targets of issue 3 and the design targets.",
             "Routes run on the real ACAS Xu / MNIST .nnet files when present. The VM is",
             "shared; expect ±30 % noise.", "",
             f"Run of {when}, commit {rev}, {host}.", "",
             "Seconds are per neuron, except the `ingest` rows: the whole run.", "",
             "| case | method | seconds | target | target / measured |",
             "| --- | --- | ---: | ---: | ---: |"]  # fmt: skip
    for bench, case, _, _, value, method in results:
        target = TARGETS.get(case)
        ratio = f"{target / value:.1f}x" if target else ""
        lines.append(f"| {case} | {method} | {value:.4g} | {target or ''} | {ratio} |")
        print(f"{bench:12s} {case:34s} {value:10.4g} s  ({method})")
    print("ratios (target / measured; > 1 meets the target):")
    for _, case, _, _, value, _ in results:
        if case in TARGETS:
            print(f"  {case:34s} {TARGETS[case] / value:8.1f}x")
    if args.no_write:
        return
    write_markdown(lines)
    new = not CSV.exists()
    with CSV.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        if new:
            writer.writeheader()
        for bench, case, _n, _count, value, method in results:
            writer.writerow({
                "date": when, "commit": rev, "machine": host, "benchmark": f"beyond-{bench}",
                "case": case, "backend": f"numpy ({method})", "value": f"{value:.6g}",
                "unit": "s" if bench == "ingest" else "s/neuron",
            })  # fmt: skip


if __name__ == "__main__":
    main()
