"""Compiled CPU faces of the exhaustive and meet-in-the-middle ops: thin wrappers over ``_cpu``.

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
from roon.kernels.mitm import MitmRows

__all__ = [
    "exhaustive_cpu",
    "mitm_cpu",
    "mitm_window_cpu",
    "mitm_plan",
    "cpu_missing",
    "cpu_isa",
    "MITM_MEMORY",
]

# Pieces of a batch per thread: a few, so threads that finish early pick up more; each
# piece has at least _MIN_PIECE neurons so the pool overhead (~20 µs a task) stays small.
_PIECES_PER_THREAD = 4
_MIN_PIECE = 64
# Memory of the meet-in-the-middle buffers, all threads together, and the most one thread
# takes: at n = 50 one neuron's plan is 470 MB (2^24 sorted sums of one half with masks
# and counts, 2^23 of the other; _mitm.c), so two threads run two such neurons at once.
# Smaller fan-ins need far less (n = 40: 21 MB) and use every core.
MITM_MEMORY = 1 << 30
MITM_THREAD_MEMORY = 512 << 20
# Plans above this size are not split into many pieces per thread: each call allocates its
# buffers afresh, and touching 470 MB of new pages costs ~0.3 s (measured at n = 50).
_BIG_PLAN = 64 << 20


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


def _threads(threads: int | None) -> int:
    if threads is None:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    return max(1, threads)


def _in_pieces(
    run: Any, n_rows: int, threads: int, min_piece: int, per_thread: int = _PIECES_PER_THREAD
) -> None:
    """``run(a, z)`` over row ranges, on ``threads`` threads (the C loops release the GIL)."""
    threads = max(1, min(threads, n_rows // min_piece))
    if threads == 1:
        run(0, n_rows)
        return
    piece = max(min_piece, -(-n_rows // (threads * per_thread)))
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda a: run(a, min(a + piece, n_rows)), range(0, n_rows, piece)))


def mitm_plan(n: int, memory: int = MITM_THREAD_MEMORY) -> tuple[int, int, int, int] | None:
    """``(nb, a, h, bytes)`` of the compiled MITM plan for fan-in ``n`` within ``memory``.

    ``nb`` inputs are held as sorted sums, ``a`` more as a second sorted list, and the
    remaining ``h`` enumerated one combination at a time; ``bytes`` is the peak of one
    thread's buffers. None when no plan fits.
    """
    plan = _module().mitm_plan(int(n), int(memory))
    return None if plan is None else tuple(plan)


def mitm_cpu(
    weights: np.ndarray,
    bias: np.ndarray,
    tol: np.ndarray,
    *,
    threads: int | None = None,
    memory: int = MITM_MEMORY,
) -> MitmRows:
    """Meet-in-the-middle counts in C; same contract as :func:`roon.kernels.mitm.mitm_ref`.

    Args:
        weights: ``[N, n]`` int64 rows, ``n <= MITM_MAX``.
        bias: ``[N]`` int64.
        tol: ``[N]`` int64.
        threads: worker threads (default: the CPUs this process may use); fewer run when
            ``memory`` does not hold one plan per thread.
        memory: bytes of buffers for all threads together; one thread takes at most
            :data:`MITM_THREAD_MEMORY`.

    Raises:
        InvalidArgumentError: no plan fits (fan-in above ``MITM_MAX``).
    """
    from roon.errors import InvalidArgumentError

    mod = _module()
    w = np.ascontiguousarray(weights, dtype=np.int64)
    b = np.ascontiguousarray(bias, dtype=np.int64)
    t = np.ascontiguousarray(tol, dtype=np.int64)
    n_rows, n = w.shape
    threads = _threads(threads)
    per_thread = min(MITM_THREAD_MEMORY, max(1, memory // threads))
    plan = mitm_plan(n, per_thread)
    if plan is None:
        plan = mitm_plan(n, min(memory, MITM_THREAD_MEMORY))
        if plan is None:
            raise InvalidArgumentError(
                f"no meet-in-the-middle plan for fan-in {n} within {memory} bytes"
            )
    threads = max(1, min(threads, memory // plan[3]))
    fire = np.empty(n_rows, dtype=np.int64)
    chow = np.empty((n_rows, n), dtype=np.int64)
    high = np.empty(n_rows, dtype=np.int64)
    low = np.empty(n_rows, dtype=np.int64)
    uncertain = np.empty(n_rows, dtype=np.int64)

    def run(a: int, z: int) -> None:
        outputs = (fire[a:z], chow[a:z], high[a:z], low[a:z], uncertain[a:z])
        mod.mitm(w[a:z], b[a:z], t[a:z], n, *outputs, plan[3])

    if plan[3] > _BIG_PLAN:  # its first touch costs ~0.3 s at 470 MB: one call per thread
        _in_pieces(run, n_rows, threads, 1, per_thread=1)
    else:
        _in_pieces(run, n_rows, threads, _MIN_PIECE)
    return MitmRows(fire, chow, high, low, uncertain)


def mitm_window_cpu(weights: np.ndarray, bias: int, lo: int, hi: int, masks: np.ndarray) -> int:
    """The inputs ``x`` of one int64 row with ``lo <= w·x + bias <= hi``, in C.

    Args:
        weights: ``[n]`` int64, ``n <= MITM_MAX``.
        bias: the bias on the same scale.
        lo: lower end of the window.
        hi: upper end of the window.
        masks: ``[cap]`` uint64, receives the first ``cap`` inputs as bit masks.

    Returns:
        How many inputs lie in the window (more than ``cap`` when ``masks`` overflowed).
    """
    w = np.ascontiguousarray(weights, dtype=np.int64)
    return int(_module().mitm_window(w, bias, lo, hi, len(w), masks, MITM_THREAD_MEMORY))


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

    _in_pieces(run, n_rows, _threads(threads), _MIN_PIECE)
    return ExhaustiveCounts(fire, chow, min_abs, uncertain, table if want_table else None)
