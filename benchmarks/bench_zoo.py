"""The default zoo's training time per task, and what the zoo's init buys, in one run.

Trains the default zoo (every task, seeds 0-4, default widths, controls) twice into
fresh temporary directories:

* ``roon``: :func:`roon.zoo.train_zoo` as shipped (He-normal weights, hidden biases
  centred on the input box);
* ``torch-default``: the same loop with PyTorch's default ``nn.Linear`` init
  (weights and biases U(±1/√fan_in)), the baseline.

Torch's one-time warm-up (its first optimizer imports ``torch._dynamo``) is spent before
either run and printed apart. Per task: models, converged models, seconds. The ratios
(converged models, wall time) are printed last; rows are appended to
``benchmarks/results_zoo.csv`` with the date, commit and machine.
Run: ``python benchmarks/bench_zoo.py``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _stamp import append_rows, commit, machine  # noqa: E402

import roon.zoo.train as zoo_train  # noqa: E402
from roon.zoo import train_model, train_zoo  # noqa: E402

HERE = Path(__file__).resolve().parent
CSV = HERE / "results_zoo.csv"
FIELDS = ["date", "commit", "machine", "benchmark", "variant", "task", "models", "converged"]
FIELDS += ["seconds"]


def torch_default_init(torch, task, widths, seed):
    """PyTorch's ``nn.Linear`` default: weights and biases U(±1/√fan_in), same generator."""
    generator = torch.Generator().manual_seed(seed)
    params, fan_in = [], task.inputs
    for width in [*widths, task.outputs]:
        bound = 1.0 / math.sqrt(fan_in)
        params.append(torch.empty(width, fan_in).uniform_(-bound, bound, generator=generator))
        params.append(torch.empty(width).uniform_(-bound, bound, generator=generator))
        fan_in = width
    return [p.requires_grad_(True) for p in params]


def run(variant: str, seeds: int) -> tuple[float, list]:
    with tempfile.TemporaryDirectory(prefix=f"roon-zoo-{variant}-") as directory:
        start = time.perf_counter()
        result = train_zoo(directory, seeds=seeds)
        seconds = time.perf_counter() - start
    return seconds, result.by_task()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--no-csv", action="store_true", help="do not append to the CSV")
    args = parser.parse_args()

    start = time.perf_counter()
    train_model("and", 2, 0)  # torch's first optimizer step imports torch._dynamo
    warm = time.perf_counter() - start
    print(f"torch warm-up (imports): {warm:.2f} s")

    results = {"roon": run("roon", args.seeds)}
    with mock.patch.object(zoo_train, "_init_params", torch_default_init):
        results["torch-default"] = run("torch-default", args.seeds)

    rows = []
    for variant, (wall, summaries) in results.items():
        print(f"\n{variant}: {wall:.1f} s wall")
        print(f"  {'task':18s} {'models':>6s} {'converged':>9s} {'seconds':>8s}")
        for s in summaries:
            print(f"  {s.task:18s} {s.models:6d} {s.converged:9d} {s.seconds:8.2f}")
            rows.append(
                {
                    "variant": variant,
                    "task": s.task,
                    "models": s.models,
                    "converged": s.converged,
                    "seconds": f"{s.seconds:.4g}",
                }
            )
        models = sum(s.models for s in summaries)
        converged = sum(s.converged for s in summaries)
        rows.append(
            {
                "variant": variant,
                "task": "(all)",
                "models": models,
                "converged": converged,
                "seconds": f"{wall:.4g}",
            }
        )

    if not args.no_csv:
        stamp = {
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "commit": commit(),
            "machine": machine(),
            "benchmark": "zoo",
        }
        append_rows(CSV, FIELDS, [{**stamp, **row} for row in rows])
        print(f"\nappended {len(rows)} rows to {CSV.relative_to(HERE.parent)}")

    (roon_wall, roon_tasks), (base_wall, base_tasks) = results["roon"], results["torch-default"]
    real = [s for s in roon_tasks if not s.task.startswith("shuffled-")]
    base_real = [s for s in base_tasks if not s.task.startswith("shuffled-")]
    ok, base_ok = sum(s.converged for s in real), sum(s.converged for s in base_real)
    total = sum(s.models for s in real)
    print("\nroon init vs torch's default init (same run):")
    print(f"  real-task models converged: {ok}/{total} vs {base_ok}/{total}")
    print(f"  wall time: {roon_wall:.1f} s vs {base_wall:.1f} s ({base_wall / roon_wall:.2f}x)")


if __name__ == "__main__":
    main()
