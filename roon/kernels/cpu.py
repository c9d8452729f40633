"""Compiled CPU face of the exhaustive op: a thin wrapper over the C extension ``_cpu``.

The extension (``roon/kernels/_cpu.c``) is optional; :func:`cpu_missing` says why it cannot
be used, and the dispatcher turns that into ``KernelUnavailableError`` or a quiet fallback.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

import numpy as np

from roon.kernels.exhaustive import DIGIT_VALUES, ExhaustiveCounts, table_words

__all__ = ["exhaustive_cpu", "cpu_missing", "cpu_isa"]

# Pieces of a batch per thread: a few, so threads that finish early pick up more; each
# piece has at least _MIN_PIECE neurons so the pool overhead (~20 µs a task) stays small.
_PIECES_PER_THREAD = 4
_MIN_PIECE = 64


@cache
def _module() -> Any:
    from importlib import import_module

    return import_module("roon.kernels._cpu")  # the compiled extension (no type stubs)


def cpu_missing() -> str | None:
    """None when the compiled extension imports; otherwise the reason it does not."""
    try:
        _module()
    except ImportError as exc:
        return (
            f"the compiled extension roon.kernels._cpu is not built ({exc}); "
            "reinstall roon with a C compiler (pip install --no-build-isolation -e .)"
        )
    return None


def cpu_isa() -> str:
    """Instruction set the compare-and-pack loop uses: ``avx512``, ``avx2`` or ``scalar``."""
    return str(_module().isa())


def exhaustive_cpu(
    weights: np.ndarray,
    bias: np.ndarray,
    tol: np.ndarray,
    domain: str = "binary",
    *,
    want_table: bool = False,
    threads: int | None = None,
) -> ExhaustiveCounts:
    """Enumerate every input of every neuron in C; same contract as ``exhaustive_ref``.

    Args:
        weights: ``[N, n]`` int64 over sorted positions.
        bias: ``[N]`` int64.
        tol: ``[N]`` int64.
        domain: ``binary`` or ``signed``.
        want_table: also return the packed truth tables.
        threads: worker threads (default: the CPUs this process may use).

    Returns:
        :class:`~roon.kernels.exhaustive.ExhaustiveCounts`.
    """
    mod = _module()
    w = np.ascontiguousarray(weights, dtype=np.int64)
    b = np.ascontiguousarray(bias, dtype=np.int64)
    t = np.ascontiguousarray(tol, dtype=np.int64)
    n_rows, n = w.shape
    radix = len(DIGIT_VALUES[domain])
    words = table_words(domain, n) if want_table else 0
    fire = np.empty(n_rows, dtype=np.int64)
    chow = np.empty((n_rows, n), dtype=np.int64)
    min_abs = np.empty(n_rows, dtype=np.int64)
    uncertain = np.empty(n_rows, dtype=np.int64)
    table = np.empty((n_rows, words), dtype=np.uint64)

    def run(a: int, z: int) -> None:
        outputs = (fire[a:z], chow[a:z], min_abs[a:z], uncertain[a:z], table[a:z])
        mod.count(w[a:z], b[a:z], t[a:z], n, radix, *outputs, words)

    if threads is None:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    threads = max(1, min(threads, n_rows // _MIN_PIECE))
    if threads == 1:
        run(0, n_rows)
    else:
        # the C loop releases the GIL, so threads over pieces of the batch use every core
        piece = max(_MIN_PIECE, -(-n_rows // (threads * _PIECES_PER_THREAD)))
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda a: run(a, min(a + piece, n_rows)), range(0, n_rows, piece)))
    return ExhaustiveCounts(fire, chow, min_abs, uncertain, table if want_table else None)
