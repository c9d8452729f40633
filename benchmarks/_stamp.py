"""Machine and commit stamps shared by the benchmark scripts' CSV rows."""

from __future__ import annotations

import csv
import os
import platform
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent


def machine() -> str:
    """E.g. ``AMD EPYC 9R14, 2 cores, avx512, no GPU``."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    from roon.kernels.dispatch import gpu_missing

    gpu = "no GPU" if gpu_missing() else "GPU"
    try:
        from roon.kernels.cpu import cpu_isa

        isa = cpu_isa()
    except ImportError:
        isa = "no C extension"
    return f"{cpu}, {cores} cores, {isa}, {gpu}"


def commit() -> str:
    """Short commit hash, ``+dirty`` when tracked files have uncommitted changes."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=HERE,
            text=True,
            capture_output=True,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=HERE,
            text=True,
            capture_output=True,
        ).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def append_rows(path: Path, fields: list[str], rows: list[dict]) -> None:
    """Append ``rows`` to the CSV at ``path`` (the header first when the file is new)."""
    new = not path.exists()
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        if new:
            writer.writeheader()
        writer.writerows(rows)
