"""Points × neurons per second of input-space signatures, against a plain torch forward
pass of the same points in the same run.

Cases (issue 10, item 5):

* ``cube n=20``: a random float32 20 → 32 → 32 → 1 ReLU model on ``{0,1}^20``
  (1,048,576 points, 65 neurons);
* ``acas box grid``: every ACAS Xu network in FOLDER (the 45 ``.nnet`` files; 5 → 6×50 →
  5, 305 neurons) on its default box grid (9 points per axis, 59,049 points), the box
  from its .nnet header.

Per case: ``roon evaluate`` (:func:`roon.kernels.input_space.evaluate_space`: float64
pass with the rounding bound, exact re-decisions), ``roon signatures``
(:func:`~roon.kernels.input_space.input_space_signatures`: the same plus the bit packing
and the three hashes per neuron), and the baselines: a torch forward pass of the same
points (a prepared ``[points, n]`` tensor, ``torch.no_grad``) in float64 and float32,
pre-activations of every layer kept. Best of ``--repeats`` runs each. Rows go to
``benchmarks/results_input_space.csv``; the ratio roon/torch-float64 is printed last.

Run: ``python benchmarks/bench_input_space.py [ACASXU_FOLDER] [--repeats 3]``
(without a folder, only the cube case runs).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stamp import append_rows, commit, machine  # noqa: E402

import roon  # noqa: E402
from roon import MLP, Layer  # noqa: E402
from roon.ingest.normalize.bounds import resolve_input_bounds  # noqa: E402
from roon.kernels.input_space import evaluate_space, input_space_signatures  # noqa: E402
from roon.kernels.spaces import InputSpace, binary_space, box_space  # noqa: E402

HERE = Path(__file__).resolve().parent
CSV = HERE / "results_input_space.csv"
FIELDS = ["date", "commit", "machine", "case", "what", "seconds", "cpu_seconds", "points",
          "neurons", "pn_per_s", "pn_per_cpu_s"]  # fmt: skip


def cube_model() -> MLP:
    rng = np.random.default_rng(0)
    layers, widths = [], (20, 32, 32, 1)
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        w = rng.normal(0.0, 1.0 / np.sqrt(a), size=(b, a)).astype(np.float32)
        bias = rng.normal(0.0, 0.1, size=b).astype(np.float32)
        layers.append(Layer(w, bias, "linear" if i == len(widths) - 2 else "relu"))
    return MLP(layers, name="cube20")


def best(fn, repeats: int) -> tuple[float, float]:
    """Best wall seconds and best CPU seconds (all threads) over ``repeats`` runs: the
    machine may be shared, and CPU time is what other processes do not inflate."""
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus)


def torch_forward(models: list[MLP], spaces: list[InputSpace], dtype) -> callable:
    import torch

    prepared = []
    for mlp, space in zip(models, spaces, strict=True):
        x = torch.from_numpy(space.points(0, space.size)).to(dtype)
        layers = [
            (torch.from_numpy(la.weight.astype(np.float64)).to(dtype),
             torch.from_numpy(la.bias.astype(np.float64)).to(dtype), la.activation)
            for la in mlp.layers
        ]  # fmt: skip
        prepared.append((x, layers))

    def run() -> None:
        with torch.no_grad():
            for x, layers in prepared:
                h = x
                for w, b, act in layers:
                    z = torch.addmm(b, h, w.T)
                    h = torch.relu(z) if act == "relu" else z

    return run


def case(name: str, models: list[MLP], spaces: list[InputSpace], repeats: int) -> list[dict]:
    import torch

    points = sum(s.size for s in spaces)
    neurons = sum(m.n_neurons for m in models)
    pn = sum(s.size * m.n_neurons for m, s in zip(models, spaces, strict=True))

    def evaluate() -> None:
        for m, s in zip(models, spaces, strict=True):
            for _ in evaluate_space(m, s):
                pass

    def signatures() -> None:
        for m, s in zip(models, spaces, strict=True):
            input_space_signatures(m, s)

    runs = {
        "roon evaluate": evaluate,
        "roon signatures": signatures,
        "torch float64": torch_forward(models, spaces, torch.float64),
        "torch float32": torch_forward(models, spaces, torch.float32),
    }
    rows = []
    for what, fn in runs.items():
        seconds, cpu = best(fn, repeats)
        rows.append(
            {"case": name, "what": what, "seconds": f"{seconds:.4f}", "cpu_seconds": f"{cpu:.4f}",
             "points": points, "neurons": neurons, "pn_per_s": f"{pn / seconds:.4g}",
             "pn_per_cpu_s": f"{pn / cpu:.4g}"}
        )  # fmt: skip
        print(
            f"{name:16} {what:16} {seconds:8.3f} s wall {cpu:8.3f} s CPU  "
            f"{pn / seconds:10.3g} points×neurons/s ({pn / cpu:.3g} per CPU second)"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("acasxu", nargs="?", type=Path, help="folder of ACAS Xu .nnet files")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = case("cube n=20", [cube_model()], [binary_space(20)], args.repeats)
    if args.acasxu:
        files = sorted(args.acasxu.glob("*.nnet"))
        models = [roon.load_model(p) for p in files]
        spaces = [box_space(*resolve_input_bounds(m)) for m in models]
        rows += case(f"acas box ×{len(files)}", models, spaces, args.repeats)
    stamp = {"date": dt.datetime.now().isoformat(timespec="seconds"), "commit": commit(),
             "machine": machine()}  # fmt: skip
    append_rows(CSV, FIELDS, [{**stamp, **row} for row in rows])
    print(f"machine: {stamp['machine']}, commit {stamp['commit']}")
    by = {(r["case"], r["what"]): (float(r["seconds"]), float(r["cpu_seconds"])) for r in rows}
    for name in dict.fromkeys(r["case"] for r in rows):
        (rw, rc), (tw, tc) = by[(name, "roon signatures")], by[(name, "torch float64")]
        print(f"{name}: roon signatures / torch float64 forward = {rw / tw:.2f}× wall, "
              f"{rc / tc:.2f}× CPU")  # fmt: skip


if __name__ == "__main__":
    main()
