"""Signatures per second against fan-in: every roon backend vs the seed, in one run.

For each fan-in it times, on the same random float32 neurons:

* ``seed``: the seed's enumeration (``benchmarks/seed_baseline.py``), on a few neurons;
* ``ref`` / ``cpu`` / ``triton``: :func:`roon.signatures` end to end (sorting, exact
  conversion, counting, keys and hashes; no per-neuron objects) on every core the
  process may use. Up to the table limit (10) that enumerates every input; above it,
  binary neurons are counted by meet-in-the-middle (method ``mitm``);
* ``cpu-kernel-1core``: the compiled exhaustive face alone on one thread;
* ``mitm-kernel-1core`` beside ``exhaustive-kernel-1core`` at n = 16 and 20: the two
  compiled counts of the same neurons without a table, one thread each;
* beyond the exhaustive limit (24, 32 inputs): ``signatures()`` through the beyond
  methods (``roon.kernels.beyond``).

Ratios against the seed (and of MITM over enumeration) are printed last; rows are
appended to ``benchmarks/results.csv`` with the date, commit and machine. Run:
``python benchmarks/bench_signatures.py``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stamp import append_rows, commit, machine  # noqa: E402
from seed_baseline import seed_excited_states  # noqa: E402

from roon.kernels import signatures  # noqa: E402
from roon.kernels.dispatch import gpu_missing, triton_missing  # noqa: E402

HERE = Path(__file__).resolve().parent
CSV = HERE / "results.csv"
FIELDS = [
    "date",
    "commit",
    "machine",
    "benchmark",
    "backend",
    "fan_in",
    "neurons",
    "seconds",
    "us_per_neuron",
    "neurons_per_s",
    "x_seed",
]
# Neurons per measurement: enough for ~0.5-2 s of work per backend on a 2-core VM.
SEED_NEURONS = {5: 4000, 8: 400, 12: 20, 16: 2, 20: 1}
API_NEURONS = {5: 40000, 8: 40000, 12: 8000, 16: 3000, 20: 300, 24: 8, 32: 2}
REF_NEURONS = {5: 20000, 8: 20000, 12: 1500, 16: 200, 20: 6}


def best_of(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def neurons(n: int, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed + n)
    w = (rng.normal(size=(count, n)) / np.sqrt(max(n, 1))).astype(np.float32)
    return w, rng.normal(scale=0.5, size=count).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fan-in", type=int, nargs="*", default=[5, 8, 12, 16, 20])
    parser.add_argument("--beyond", type=int, nargs="*", default=[24, 32])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-csv", action="store_true", help="do not append to results.csv")
    args = parser.parse_args()

    import pyarrow  # noqa: F401  # imported before timing: to_arrow is not timed, imports neither

    backends = ["ref", "cpu"] + ([] if triton_missing() or gpu_missing() else ["triton"])
    rows: list[dict[str, object]] = []
    seed_us: dict[int, float] = {}
    versus: list[tuple[int, float, float]] = []  # (n, exhaustive µs, mitm µs), one core

    def record(backend: str, n: int, count: int, seconds: float) -> None:
        us = seconds / count * 1e6
        ratio = seed_us[n] / us if n in seed_us and backend != "seed" else None
        rows.append(
            {
                "backend": backend,
                "fan_in": n,
                "neurons": count,
                "seconds": seconds,
                "us_per_neuron": us,
                "neurons_per_s": count / seconds,
                "x_seed": ratio,
            }
        )
        extra = f"  {ratio:10.0f}x seed" if ratio else ""
        print(f"n={n:2d} {backend:18s} {us:14.2f} µs/neuron {count / seconds:14.0f} /s{extra}")

    for n in args.fan_in:
        w, b = neurons(n, SEED_NEURONS.get(n, 1))
        seed_run = lambda w=w, b=b: [  # noqa: E731
            seed_excited_states(r, c) for r, c in zip(w, b, strict=True)
        ]
        t = best_of(seed_run, 1 if n >= 16 else args.repeats)  # n >= 16: seconds per neuron
        seed_us[n] = t / len(w) * 1e6
        record("seed", n, len(w), t)
        for backend in backends:
            count = (REF_NEURONS if backend == "ref" else API_NEURONS).get(n, 10)
            w, b = neurons(n, count)
            signatures(w[:2], b[:2], backend=backend)  # warm-up (imports, compilation)
            t = best_of(lambda w=w, b=b, k=backend: signatures(w, b, backend=k), args.repeats)
            record(backend, n, count, t)
        if "cpu" in backends:
            from roon.kernels.cpu import exhaustive_cpu
            from roon.kernels.exact import to_int64

            count = API_NEURONS.get(n, 10)
            w, b = neurons(n, count)
            r = to_int64(np.sort(w, axis=1), b)
            t = best_of(
                lambda r=r: exhaustive_cpu(r.weights, r.bias, r.tol, threads=1), args.repeats
            )
            record("cpu-kernel-1core", n, count, t)
            if n in (16, 20):  # the same neurons, no table: enumeration vs meet in the middle
                from roon.kernels.cpu import mitm_cpu

                t_mitm = best_of(
                    lambda r=r: mitm_cpu(r.weights, r.bias, r.tol, threads=1), args.repeats
                )
                record("mitm-kernel-1core", n, count, t_mitm)
                versus.append((n, t / count * 1e6, t_mitm / count * 1e6))

    for n in args.beyond:
        count = API_NEURONS.get(n, 2)
        w, b = neurons(n, count)
        try:
            signatures(w, b, backend="cpu")  # warm-up (imports the beyond methods)
            t = best_of(lambda w=w, b=b: signatures(w, b, backend="cpu"), args.repeats)
        except Exception as exc:  # the beyond-exhaustive methods may not be installed
            print(f"n={n:2d} beyond: skipped ({exc})")
            continue
        methods = sorted(set(signatures(w, b).method))
        record(f"beyond ({'/'.join(methods)})", n, count, t)

    for n, enum_us, mitm_us in versus:
        print(f"n={n:2d} one core, no table: enumeration {enum_us:.2f} µs, MITM {mitm_us:.2f} µs")
    print("\nspeed-up over the seed (per neuron, same run):")
    for row in rows:
        if row["x_seed"]:
            print(f"  n={row['fan_in']:2d} {row['backend']:18s} {row['x_seed']:12.0f}x")
    for n, enum_us, mitm_us in versus:
        print(f"  n={n:2d} MITM over enumeration (C, one core) {enum_us / mitm_us:10.1f}x")

    if not args.no_csv:
        stamp = {
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "commit": commit(),
            "machine": machine(),
            "benchmark": "signatures",
        }
        append_rows(CSV, FIELDS, [{**stamp, **{k: _fmt(v) for k, v in r.items()}} for r in rows])
        print(f"\nappended {len(rows)} rows to {CSV.relative_to(HERE.parent)}")


def _fmt(value: object) -> object:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else value


if __name__ == "__main__":
    main()
