"""Peak memory of `roon ingest` on a large generated model, against the model file's size.

Question: does ingest memory stay within 3x the model file plus a constant (issue 13: a
214 MB safetensors file peaked at 8.9 GB, 41x, because every edge row was built in memory
at once, ~165 bytes each)?

One run, each ingest in a fresh process that reports its own peak RSS (``VmHWM``; the
``ru_maxrss`` of ``wait4`` would count the parent's memory at the fork), each into a
fresh catalogue:

* ``tiny``: a 2-4-1 model, the constant (interpreter, numpy, pyarrow, torch imports);
* ``roon``: the large model, ingested as shipped (edges streamed in batches);
* ``whole-edges``: the same model with the edges table built whole before it is written
  (``model_tables(stream=False)``), the baseline: what ingest did before.

The large model is generated (float32, widths ``--widths``): its weights are small and
its biases large, so every neuron is constant and signatures cost next to nothing; the
memory measured is the storing of rows, which is what grew. Printed last: (peak − tiny)
/ file size for both, and the reduction. Rows are appended to
``benchmarks/results_memory.csv`` with date, commit and machine.
Run: ``python benchmarks/bench_memory.py`` (about 4 minutes on 2 cores at the default
size, 144 MiB; the baseline needs ~7 GB of memory there).
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stamp import append_rows, commit, machine  # noqa: E402

HERE = Path(__file__).resolve().parent
CSV = HERE / "results_memory.csv"
FIELDS = ["date", "commit", "machine", "benchmark", "variant", "widths", "file_mb"]
FIELDS += ["edges", "peak_mb", "seconds"]
DEFAULT_WIDTHS = "1024,4096,4096,4096,10"  # 37.8 M parameters, 144 MiB as float32


def generate(path: Path, widths: list[int], seed: int = 0) -> int:
    """Write a float32 model whose neurons are all constant; returns its edge count."""
    import numpy as np

    from roon import MLP, Layer
    from roon.ingest.loaders import save_safetensors

    rng = np.random.default_rng(seed)
    layers = []
    for i, (fan_in, width) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        w = rng.normal(0.0, 1e-4, size=(width, fan_in)).astype(np.float32)
        b = np.full(width, -64.0, dtype=np.float32)  # < -sum |w|: never fires
        layers.append(Layer(w, b, "linear" if i == len(widths) - 2 else "relu"))
        del w
    save_safetensors(MLP(layers, name="big"), path)
    return sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=True))


def child(variant: str, model: str, catalogue: str) -> None:
    """Runs in the measured process: one ingest, as the CLI does it."""
    from roon.ingest import ingest_models

    if variant == "whole-edges":
        import roon.ingest.rows as rows

        streamed = rows.model_tables
        rows.model_tables = lambda mlp, **kw: streamed(mlp, **{**kw, "stream": False})
    (result,) = ingest_models([model], catalogue, backend="cpu")
    if result.status != "ingested":
        raise SystemExit(f"{variant}: {result.status} {result.reason}")
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    print(f"VmHWM {int(status['VmHWM'].split()[0])}")  # kB, this process's peak


def measure(variant: str, model: Path) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of one ingest in a fresh process."""
    with tempfile.TemporaryDirectory(prefix="roon-mem-") as directory:
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, __file__, "--child", variant, str(model), f"{directory}/cat"],
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{variant} failed: {proc.stderr.strip()}")
    peak_kb = int(proc.stdout.split("VmHWM", 1)[1].split()[0])
    return peak_kb / 1024, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default=DEFAULT_WIDTHS, help="layer widths, input first")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    widths = [int(w) for w in args.widths.split(",")]
    stamp = {"date": dt.date.today().isoformat(), "commit": commit(), "machine": machine()}
    rows = []
    with tempfile.TemporaryDirectory(prefix="roon-mem-model-") as directory:
        tiny, big = Path(directory) / "tiny.safetensors", Path(directory) / "big.safetensors"
        generate(tiny, [2, 4, 1])
        edges = generate(big, widths)
        file_mb = big.stat().st_size / 2**20
        print(f"model {args.widths}: {file_mb:.0f} MB, {edges:,} edges")
        for variant, path in (("tiny", tiny), ("roon", big), ("whole-edges", big)):
            peak, seconds = measure(variant, path)
            print(f"{variant:12s} peak {peak:8.0f} MB  {seconds:6.1f} s")
            size = path.stat().st_size / 2**20
            rows.append(
                {
                    **stamp,
                    "benchmark": "ingest-peak-rss",
                    "variant": variant,
                    "widths": "2,4,1" if variant == "tiny" else args.widths,
                    "file_mb": f"{size:.1f}",
                    "edges": 12 if variant == "tiny" else edges,
                    "peak_mb": f"{peak:.0f}",
                    "seconds": f"{seconds:.1f}",
                }
            )
    append_rows(CSV, FIELDS, rows)
    constant = float(rows[0]["peak_mb"])
    streamed, whole = (float(r["peak_mb"]) - constant for r in rows[1:])
    print(
        f"(peak - {constant:.0f} MB constant) / file: roon {streamed / file_mb:.2f}x, "
        f"whole edges table {whole / file_mb:.2f}x; {whole / streamed:.1f}x less memory"
    )


if __name__ == "__main__":
    main()
