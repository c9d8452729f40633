"""``.nnet`` text files (Reluplex / Marabou / NNV): a ReLU MLP with a linear output.

Layout after the ``//`` comment lines, every line comma-separated:

1. number of layers L, input size, output size, largest layer size;
2. the L+1 layer sizes, input first;
3. a legacy flag;
4. input minimums; 5. input maximums;
6. input means, then the output mean; 7. input ranges, then the output range;

then per layer its weight matrix, one line per output neuron, and its biases, one
per line. Weights and biases are stored as float32 when every one of them is written
with at most 6 significant digits (``FLT_DIG``: the nearest float32 then reproduces each
number of the file exactly) and lies in float32's normal range — true of the ACAS Xu
files, whose ONNX twins hold exactly these float32 values, so both load as one model.
Otherwise they are float64. The normalization header is kept in the
model's metadata as ``nnet.mins``, ``nnet.maxes``, ``nnet.means`` and ``nnet.ranges``
(lists of floats exactly as in the file, the output's mean and range last): the
network expects inputs clipped to [min, max], then mapped to ``(x - mean) / range``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from roon.errors import ModelFormatError
from roon.ingest.loaders._common import Loaded, check_chain, make_layer

__all__ = ["read_nnet"]

# Decimal digits that always survive a round trip through float32 (C's FLT_DIG).
FLOAT32_DIGITS = 6


def read_nnet(path: Path) -> Loaded:
    """Read an ``.nnet`` file: hidden layers ReLU, the last layer linear.

    Raises:
        ModelFormatError: not a text file, a malformed or truncated line (messages
            name the line: ``line 12: expected 5 numbers, found 3``), NaN or inf values.
        UnsupportedArchitectureError: layer sizes that do not chain.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark is not data
    except UnicodeDecodeError as exc:
        raise ModelFormatError(
            f"not an .nnet text file (bytes that are not UTF-8: {exc.reason})"
        ) from exc
    lines = _data_lines(text)

    header = _next(lines, "the header")
    n_layers, n_in, n_out, _largest = _ints(header, 4)
    if n_layers < 1:
        raise ModelFormatError(
            f"line {header[0]}: the number of layers must be positive, not {n_layers}"
        )
    sizes_line = _next(lines, "the layer sizes")
    sizes = _ints(sizes_line, n_layers + 1)
    lineno = sizes_line[0]
    if n_layers < 1 or any(s < 1 for s in sizes):
        raise ModelFormatError(f"line {lineno}: layer sizes must be positive, found {sizes}")
    if sizes[0] != n_in or sizes[-1] != n_out:
        raise ModelFormatError(
            f"line {lineno}: layer sizes run {sizes[0]}→{sizes[-1]} but the header says "
            f"{n_in} inputs and {n_out} outputs"
        )
    _next(lines, "the legacy flag")
    metadata = {
        "nnet.mins": _floats(_next(lines, "the input minimums"), n_in),
        "nnet.maxes": _floats(_next(lines, "the input maximums"), n_in),
        "nnet.means": _floats(_next(lines, "the means"), n_in + 1),
        "nnet.ranges": _floats(_next(lines, "the ranges"), n_in + 1),
    }

    rows: list[tuple[np.ndarray, np.ndarray]] = []
    digits = 0
    for k in range(n_layers):
        fan_in, width = sizes[k], sizes[k + 1]
        # rows are parsed one by one (not preallocated) so that a garbage header with
        # huge sizes fails at the end of the file instead of allocating gigabytes
        weight_lines = [
            _next(lines, f"row {r + 1} of {width} of layer {k}'s weights") for r in range(width)
        ]
        bias_lines = [_next(lines, f"bias {r + 1} of {width} of layer {k}") for r in range(width)]
        weight = [_floats(line, fan_in) for line in weight_lines]
        bias = [_floats(line, 1)[0] for line in bias_lines]
        digits = max(digits, *(_max_digits(line) for line in weight_lines + bias_lines))
        rows.append((np.array(weight, dtype=np.float64).reshape(width, fan_in), np.array(bias)))
    values = np.concatenate([np.abs(np.concatenate([w.ravel(), b])) for w, b in rows])
    tiny = np.finfo(np.float32).tiny
    in_range = np.all((values == 0) | ((values >= tiny) & (values <= np.finfo(np.float32).max)))
    dtype = np.float32 if digits <= FLOAT32_DIGITS and in_range else np.float64
    layers = [
        make_layer(
            str(k), w.astype(dtype), b.astype(dtype), "linear" if k == n_layers - 1 else "relu"
        )
        for k, (w, b) in enumerate(rows)
    ]
    extra = next(lines, None)
    if extra is not None:
        raise ModelFormatError(f"line {extra[0]}: unexpected data after the last layer")
    check_chain([str(k) for k in range(n_layers)], layers)
    return Loaded(layers, activation_assumed=False, metadata=metadata)


def _max_digits(line: tuple[int, list[str]]) -> int:
    """Most significant decimal digits among a line's numbers (``5.40062e-02`` → 6)."""
    most = 0
    for tok in line[1]:
        mantissa = tok.lower().lstrip("+-").split("e", 1)[0].replace(".", "")
        most = max(most, len(mantissa.strip("0")))
    return most


def _data_lines(text: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) for each line that is not blank and not a ``//`` comment."""
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("//"):
            continue
        # a trailing comma is the format's habit, so empty fields are dropped
        yield lineno, [tok.strip() for tok in line.split(",") if tok.strip()]


def _next(lines: Iterator[tuple[int, list[str]]], what: str) -> tuple[int, list[str]]:
    item = next(lines, None)
    if item is None:
        raise ModelFormatError(f"file ends early: expected {what}")
    return item


def _count(line: tuple[int, list[str]], expected: int) -> None:
    lineno, fields = line
    if len(fields) != expected:
        raise ModelFormatError(f"line {lineno}: expected {expected} numbers, found {len(fields)}")


def _shown(tok: str, limit: int = 40) -> str:
    """A field for an error message, cut short: a garbage file can hold huge fields."""
    return repr(tok if len(tok) <= limit else tok[: limit - 1] + "…")


def _ints(line: tuple[int, list[str]], expected: int) -> list[int]:
    _count(line, expected)
    lineno, fields = line
    out = []
    for tok in fields:
        try:
            out.append(int(tok))
        except ValueError:
            raise ModelFormatError(f"line {lineno}: {_shown(tok)} is not an integer") from None
    return out


def _floats(line: tuple[int, list[str]], expected: int) -> list[float]:
    _count(line, expected)
    lineno, fields = line
    out = []
    for tok in fields:
        try:
            value = float(tok)
        except ValueError:
            raise ModelFormatError(f"line {lineno}: {_shown(tok)} is not a number") from None
        if not math.isfinite(value):
            raise ModelFormatError(f"line {lineno}: {_shown(tok)} is not a finite number")
        out.append(value)
    return out
