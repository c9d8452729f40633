"""Triton face of the exhaustive op: ``_exhaustive_*_kernel`` and ``exhaustive_triton``.

Same contract as :func:`roon.kernels.exhaustive.exhaustive_ref`, bit for bit. Each program
takes a block of neurons and a strided share of their inputs (tiles of ``32·A`` inputs),
and reduces on the device to the excited count, the Chow parameters, ``min |s|`` and the
uncertain count; packed table words are written only when asked. Partial results per
split are summed on the host (no atomics, so results are deterministic).

Exactness: sums are int64, or float64 when every row has ``Σ|w| + |b| < 2^53`` and
``tol = 0`` — then every integer and every partial sum is exactly representable, so the
float64 compare is exact too, and it runs on the faster FP64 pipe.

Only the ``triton`` backend imports this module (it imports torch and triton). For the CPU
interpreter, ``TRITON_INTERPRET=1`` must be set before this module is first imported:
Triton reads it when the kernels are decorated.
"""

from __future__ import annotations

import numpy as np
import torch
import triton
import triton.language as tl

from roon.errors import KernelUnavailableError
from roon.kernels.exhaustive import DIGIT_VALUES, ExhaustiveCounts, table_words

__all__ = ["exhaustive_triton", "is_interpreted", "MAX_FAN_IN"]

# Input indices are int32 in the kernels: 2^30 and 3^19 stay below 2^31.
MAX_FAN_IN = {"binary": 30, "signed": 19}

# GPU blocks: 4 neurons x 32 words x 32 inputs = 4096 sums per tile, 16 per thread with
# 8 warps, so the int64 tile and its 3-D reductions stay in registers.
_GPU_BLOCK_N, _GPU_BLOCK_A, _GPU_WARPS = 4, 32, 8
# Programs wanted in flight: about 4 per SM of an H100 (132 SMs).
_GPU_PROGRAMS = 528
# Interpreter blocks: each program costs milliseconds of Python, so few and large ones.
_INTERP_BLOCK_N, _INTERP_BLOCK_A = 8, 32
# Packed table bytes one launch may hold on the device (neuron batches are cut to fit).
_TABLE_BYTES_PER_LAUNCH = 1 << 28
_F64_EXACT = 1 << 53
_POISON = -(1 << 40)


# Reductions go through tl.reduce with the combine functions of tl.sum and tl.min. Those
# two are @jit functions of Triton's standard library, decorated when triton is first
# imported, so they fail under an interpreter switched on after that; the interpreter
# recognises these combine functions and reduces with NumPy, and on a GPU this is exactly
# what tl.sum and tl.min compile to.
_ADD = tl.standard._sum_combine
_MINIMUM = tl.standard._elementwise_min


@triton.jit
def _sum(x, axis: tl.constexpr):
    return tl.reduce(x, axis, _ADD)


@triton.jit
def _min(x, axis: tl.constexpr):
    return tl.reduce(x, axis, _MINIMUM)


@triton.jit
def _exhaustive_binary_kernel(
    W, B, TOL, FIRE, CHOW, MINABS, UNC, TABLE,
    N, n, n_inputs, n_tiles, table_cols, SPLIT,
    NPOW: tl.constexpr, BLOCK_N: tl.constexpr, A: tl.constexpr, LOG_A: tl.constexpr,
    HAS_TOL: tl.constexpr, WRITE_TABLE: tl.constexpr,
):  # fmt: skip
    """Binary domain: input m = tile·32A + 32a + c; sums = base(tile) + S_a[a] + S_c[c]."""
    pid_n = tl.program_id(0)
    pid_s = tl.program_id(1)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    nmask = offs_n < N
    offs_a = tl.arange(0, A)
    offs_c = tl.arange(0, 32)
    cols = tl.arange(0, NPOW)
    b = tl.load(B + offs_n, mask=nmask, other=0)
    tol = tl.load(TOL + offs_n, mask=nmask, other=0)
    # sums over the 5 bits of c and the LOG_A bits of a, shared by every tile
    s_c = tl.full([BLOCK_N, 32], 0, b.dtype)
    for i in tl.static_range(5):
        w_i = tl.load(W + offs_n * n + i, mask=nmask & (i < n), other=0)
        s_c += tl.where(((offs_c >> i) & 1)[None, :] == 1, w_i[:, None], 0)
    s_a = tl.full([BLOCK_N, A], 0, b.dtype)
    for k in tl.static_range(LOG_A):
        w_k = tl.load(W + offs_n * n + 5 + k, mask=nmask & (5 + k < n), other=0)
        s_a += tl.where(((offs_a >> k) & 1)[None, :] == 1, w_k[:, None], 0)
    low = s_a[:, :, None] + s_c[:, None, :]  # [BLOCK_N, A, 32]
    # 0/1 matrices [32, NPOW] and [A, NPOW] that turn per-c and per-a counts into the Chow
    # columns of bits 0..4 and 5..4+LOG_A
    c_shift = tl.where(cols < 5, cols, 0)
    c_bits = tl.where((cols < 5)[None, :], (offs_c[:, None] >> c_shift[None, :]) & 1, 0)
    a_shift = tl.where(cols >= 5, cols - 5, 0)
    a_in = (cols >= 5) & (cols < 5 + LOG_A)
    a_bits = tl.where(a_in[None, :], (offs_a[:, None] >> a_shift[None, :]) & 1, 0)
    h_shift = tl.where(cols >= 5 + LOG_A, cols, 0)

    fire = tl.full([BLOCK_N], 0, tl.int64)
    chow = tl.full([BLOCK_N, NPOW], 0, tl.int64)
    unc = tl.full([BLOCK_N], 0, tl.int64)
    best = tl.full([BLOCK_N], 0, b.dtype) + (1 << 62)
    for t in range(pid_s, n_tiles, SPLIT):
        m0 = t * (32 * A)
        base = b
        for j in range(5 + LOG_A, n):  # high bits: fixed within a tile
            w_j = tl.load(W + offs_n * n + j, mask=nmask, other=0)
            base += tl.where(((m0 >> j) & 1) == 1, w_j, 0)
        s = base[:, None, None] + low
        m = m0 + offs_a[:, None] * 32 + offs_c[None, :]  # [A, 32]
        valid = nmask[:, None, None] & (m < n_inputs)[None, :, :]
        exc = (s > tol[:, None, None]) & valid
        e32 = exc.to(tl.int32)
        per_a = _sum(e32, 2)  # [BLOCK_N, A]
        per_c = _sum(e32, 1)  # [BLOCK_N, 32]
        tile_fire = _sum(per_a, 1).to(tl.int64)
        fire += tile_fire
        chow += _sum(per_c[:, :, None] * c_bits[None, :, :], 1).to(tl.int64)
        chow += _sum(per_a[:, :, None] * a_bits[None, :, :], 1).to(tl.int64)
        h_bits = tl.where(cols >= 5 + LOG_A, (m0 >> h_shift) & 1, 0)
        chow += tile_fire[:, None] * h_bits[None, :].to(tl.int64)
        mag = tl.where(valid, tl.abs(s), 1 << 62)
        best = tl.minimum(best, _min(_min(mag, 2), 1))
        if HAS_TOL:
            near = (mag <= tol[:, None, None]) & valid & (tol > 0)[:, None, None]
            unc += _sum(_sum(near.to(tl.int32), 2), 1).to(tl.int64)
        if WRITE_TABLE:
            words = _sum(exc.to(tl.int64) << offs_c.to(tl.int64)[None, None, :], 2)
            w_col = t * A + offs_a
            ptr = TABLE + offs_n[:, None] * table_cols + w_col[None, :]
            tl.store(ptr, words, mask=nmask[:, None] & (w_col < table_cols)[None, :])
    out = pid_s * N + offs_n
    tl.store(FIRE + out, fire, mask=nmask)
    tl.store(UNC + out, unc, mask=nmask)
    tl.store(MINABS + out, best, mask=nmask)
    chow_mask = nmask[:, None] & (cols < n)[None, :]
    tl.store(CHOW + out[:, None] * n + cols[None, :], chow, mask=chow_mask)


@triton.jit
def _exhaustive_signed_kernel(
    W, B, TOL, FIRE, CHOW, MINABS, UNC, TABLE,
    N, n, n_inputs, n_tiles, table_cols, SPLIT,
    NPOW: tl.constexpr, BLOCK_N: tl.constexpr, A: tl.constexpr,
    HAS_TOL: tl.constexpr, WRITE_TABLE: tl.constexpr,
):  # fmt: skip
    """Signed domain: base-3 digits of m, digit d meaning x = d - 1, decoded per input."""
    pid_n = tl.program_id(0)
    pid_s = tl.program_id(1)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    nmask = offs_n < N
    offs_m = tl.arange(0, 32 * A)
    cols = tl.arange(0, NPOW)
    b = tl.load(B + offs_n, mask=nmask, other=0)
    tol = tl.load(TOL + offs_n, mask=nmask, other=0)

    fire = tl.full([BLOCK_N], 0, tl.int64)
    chow = tl.full([BLOCK_N, NPOW], 0, tl.int64)
    unc = tl.full([BLOCK_N], 0, tl.int64)
    best = tl.full([BLOCK_N], 0, b.dtype) + (1 << 62)
    for t in range(pid_s, n_tiles, SPLIT):
        m = t * (32 * A) + offs_m
        valid = nmask[:, None] & (m < n_inputs)[None, :]
        s = tl.full([BLOCK_N, 32 * A], 0, b.dtype) + b[:, None]
        rest = m
        for i in range(n):
            w_i = tl.load(W + offs_n * n + i, mask=nmask, other=0)
            d = rest % 3
            rest = rest // 3
            minus = tl.where((d == 0)[None, :], -w_i[:, None], 0)
            s += tl.where((d == 2)[None, :], w_i[:, None], minus)
        exc = (s > tol[:, None]) & valid
        e32 = exc.to(tl.int32)
        fire += _sum(e32, 1).to(tl.int64)
        rest = m
        for i in range(n):
            x = rest % 3 - 1
            rest = rest // 3
            part = _sum(e32 * x[None, :], 1).to(tl.int64)
            chow += tl.where((cols == i)[None, :], part[:, None], 0)
        mag = tl.where(valid, tl.abs(s), 1 << 62)
        best = tl.minimum(best, _min(mag, 1))
        if HAS_TOL:
            near = (mag <= tol[:, None]) & valid & (tol > 0)[:, None]
            unc += _sum(near.to(tl.int32), 1).to(tl.int64)
        if WRITE_TABLE:
            bits = tl.reshape(exc.to(tl.int64), [BLOCK_N, A, 32])
            words = _sum(bits << tl.arange(0, 32).to(tl.int64)[None, None, :], 2)
            w_col = t * A + tl.arange(0, A)
            ptr = TABLE + offs_n[:, None] * table_cols + w_col[None, :]
            tl.store(ptr, words, mask=nmask[:, None] & (w_col < table_cols)[None, :])
    out = pid_s * N + offs_n
    tl.store(FIRE + out, fire, mask=nmask)
    tl.store(UNC + out, unc, mask=nmask)
    tl.store(MINABS + out, best, mask=nmask)
    chow_mask = nmask[:, None] & (cols < n)[None, :]
    tl.store(CHOW + out[:, None] * n + cols[None, :], chow, mask=chow_mask)


def is_interpreted() -> bool:
    """True when the kernels were decorated under ``TRITON_INTERPRET=1``."""
    return type(_exhaustive_binary_kernel).__name__ == "InterpretedFunction"


def exhaustive_triton(
    weights: np.ndarray,
    bias: np.ndarray,
    tol: np.ndarray,
    domain: str = "binary",
    *,
    want_table: bool = False,
    block_n: int | None = None,
    block_a: int | None = None,
    split: int | None = None,
) -> ExhaustiveCounts:
    """Enumerate every input of every neuron with Triton; same contract as ``exhaustive_ref``.

    Args:
        weights: ``[N, n]`` int64 over sorted positions.
        bias: ``[N]`` int64.
        tol: ``[N]`` int64.
        domain: ``binary`` or ``signed``.
        want_table: also return the packed truth tables.
        block_n, block_a, split: launch shape (neurons per program, 32-input words per
            tile, programs per neuron block); tests set them, callers leave them.

    Returns:
        :class:`~roon.kernels.exhaustive.ExhaustiveCounts` (NumPy arrays on the host).

    Raises:
        KernelUnavailableError: the fan-in exceeds :data:`MAX_FAN_IN`.
    """
    w = np.ascontiguousarray(weights, dtype=np.int64)
    b = np.ascontiguousarray(bias, dtype=np.int64)
    t = np.ascontiguousarray(tol, dtype=np.int64)
    n_rows, n = w.shape
    if n > MAX_FAN_IN[domain]:
        raise KernelUnavailableError(
            f"the Triton kernel enumerates {domain} fan-in up to {MAX_FAN_IN[domain]}, got {n}; "
            "lower exhaustive_limit or use backend='cpu'"
        )
    interp = is_interpreted()
    device = "cpu" if interp else "cuda"
    bn = block_n or (_INTERP_BLOCK_N if interp else _GPU_BLOCK_N)
    ba = block_a or (_INTERP_BLOCK_A if interp else _GPU_BLOCK_A)
    words32 = -(-(len(DIGIT_VALUES[domain]) ** n) // 32)
    fire = np.zeros(n_rows, dtype=np.int64)
    chow = np.zeros((n_rows, n), dtype=np.int64)
    min_abs = np.zeros(n_rows, dtype=np.int64)
    uncertain = np.zeros(n_rows, dtype=np.int64)
    table = np.zeros((n_rows, table_words(domain, n)), dtype=np.uint64) if want_table else None
    step = max(1, _TABLE_BYTES_PER_LAUNCH // (8 * words32)) if want_table else max(1, n_rows)
    for a in range(0, n_rows, step):
        z = min(a + step, n_rows)
        res = _launch(w[a:z], b[a:z], t[a:z], domain, want_table, device, bn, ba, split, interp)
        fire[a:z], chow[a:z], min_abs[a:z], uncertain[a:z], words = res
        if table is not None and words is not None:
            raw = (words & 0xFFFFFFFF).astype("<u4").view(np.uint8)  # [rows, 4 * words32]
            padded = np.zeros((z - a, table.shape[1] * 8), dtype=np.uint8)
            padded[:, : raw.shape[1]] = raw
            table[a:z] = padded.view("<u8")
    return ExhaustiveCounts(fire, chow, min_abs, uncertain, table)


def _launch(
    w: np.ndarray,
    b: np.ndarray,
    t: np.ndarray,
    domain: str,
    want_table: bool,
    device: str,
    bn: int,
    ba: int,
    split: int | None,
    interp: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    n_rows, n = w.shape
    if n_rows == 0:
        empty = np.zeros(0, np.int64)
        table0 = np.zeros((0, 0), np.int64) if want_table else None
        return empty, np.zeros((0, n), np.int64), empty, empty, table0
    scale = np.abs(w).sum(axis=1) + np.abs(b)
    use_f64 = bool(np.all(scale < _F64_EXACT) and np.all(t == 0))
    dtype = torch.float64 if use_f64 else torch.int64
    conv = (lambda x: x.astype(np.float64)) if use_f64 else (lambda x: x)
    wt = torch.from_numpy(conv(w).reshape(-1).copy()).to(device=device, dtype=dtype)
    bt = torch.from_numpy(conv(b).copy()).to(device=device, dtype=dtype)
    tt = torch.from_numpy(conv(t).copy()).to(device=device, dtype=dtype)
    n_inputs = len(DIGIT_VALUES[domain]) ** n
    n_tiles = -(-n_inputs // (32 * ba))
    n_blocks = -(-n_rows // bn)
    if split is None:
        split = 2 if interp else -(-_GPU_PROGRAMS // n_blocks)
    split = max(1, min(split, n_tiles))
    words32 = -(-n_inputs // 32)
    # partial outputs start as poison: every element must be written by exactly one program
    # (masked stores), and a forgotten one shows up as a negative count or minimum
    fire = torch.full((split, n_rows), _POISON, dtype=torch.int64, device=device)
    unc = torch.full((split, n_rows), _POISON, dtype=torch.int64, device=device)
    mins = torch.full((split, n_rows), _POISON, dtype=dtype, device=device)
    chow = torch.full((split, n_rows, max(n, 1)), _POISON, dtype=torch.int64, device=device)
    table_cols = words32 if want_table else 1
    table_rows = n_rows if want_table else 1
    table = torch.full((table_rows, table_cols), -1, dtype=torch.int64, device=device)
    npow = max(16, triton.next_power_of_2(max(n, 1)))
    grid = (n_blocks, split)
    outs = (fire, chow, mins, unc, table)
    args = (wt, bt, tt, *outs, n_rows, n, n_inputs, n_tiles, table_cols, split)
    opts = {"NPOW": npow, "BLOCK_N": bn, "A": ba, "HAS_TOL": bool(np.any(t > 0))}
    opts["WRITE_TABLE"] = want_table
    if not interp:
        opts["num_warps"] = _GPU_WARPS
    if domain == "binary":
        _exhaustive_binary_kernel[grid](*args, LOG_A=int(ba).bit_length() - 1, **opts)
    else:
        _exhaustive_signed_kernel[grid](*args, **opts)
    fire_h = fire.sum(dim=0).cpu().numpy()
    unc_h = unc.sum(dim=0).cpu().numpy()
    mins_h = mins.min(dim=0).values.cpu().numpy().astype(np.int64)
    chow_h = chow.sum(dim=0).cpu().numpy()[:, :n]
    words = table.cpu().numpy() if want_table else None
    return fire_h, chow_h, mins_h, unc_h, words
