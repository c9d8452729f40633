"""Regular-language tokens of a model, and a similarity of token sequences.

Three token kinds, whose grammar (one regular expression each) lives in
``schema/tokens.json``:

* layer ``l<index>c<width>``, e.g. ``l0c16``;
* neuron ``nb<bias>c<fan-in>w<weight>...``, weights sorted ascending and every value
  quantized to an integer multiple of ``step``, e.g. ``nb-3c3w-64w0w32``. It embeds no
  neuron or model id, so equal neurons in different models give equal tokens;
* connection ``L<index>:<source>-><target>;...``, the connections of one layer that a
  user predicate keeps (the seed's general tokenizer).

A model's token sequence is, per layer, its layer token and then its neuron tokens in
neuron order; apply the ``canonical`` normalizer first to make it independent of the
order of hidden neurons.

Example:
    >>> import numpy as np
    >>> from roon import MLP, Layer
    >>> m = MLP([Layer(np.array([[1.0, -0.5]]), np.array([0.25]))])
    >>> tokenize(m, step=0.25)
    ['l0c1', 'nb1c2w-2w4']
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from typing import Any

import numpy as np

from roon.errors import InvalidArgumentError
from roon.mlp import MLP, require_mlp

__all__ = [
    "DEFAULT_STEP",
    "SEPARATOR",
    "token_grammar",
    "token_kind",
    "quantize",
    "layer_token",
    "neuron_token",
    "connection_token",
    "tokenize",
    "tokens_table",
    "tokens_batches",
    "lcs_length",
    "matching_characters",
    "token_similarity",
]

# 2^-6: a power of two, so value / step is exact and float32 and float64 copies of a
# model quantize alike; after `rescale` (max |w| in [1, 2)) it keeps 6-7 bits per weight.
DEFAULT_STEP = 2.0**-6
SEPARATOR = " "

Keep = Callable[..., Any]


@cache
def token_grammar() -> dict[str, str]:
    """Token kind → anchored regular expression, from ``schema/tokens.json``."""
    from roon.schema import read_text

    spec = json.loads(read_text("tokens.json"))
    return {kind: entry["pattern"] for kind, entry in spec["kinds"].items()}


@cache
def _compiled() -> dict[str, re.Pattern[str]]:
    return {kind: re.compile(p) for kind, p in token_grammar().items()}


def token_kind(token: str) -> str | None:
    """The kind whose grammar ``token`` matches, or None."""
    for kind, pattern in _compiled().items():
        if pattern.fullmatch(token):
            return kind
    return None


def _check_step(step: float) -> float:
    if isinstance(step, bool) or not isinstance(step, int | float | np.floating):
        raise InvalidArgumentError(f"quantization step {step!r} is not a number")
    if not (math.isfinite(step) and step > 0):
        raise InvalidArgumentError(
            f"quantization step {step!r}; give a finite number > 0 (e.g. 0.015625)"
        )
    return float(step)


def quantize(values: Any, step: float = DEFAULT_STEP) -> np.ndarray:
    """``round_half_even(values / step)`` as integers (int64, or Python ints if huge)."""
    step = _check_step(step)
    with np.errstate(over="ignore"):
        q = np.rint(np.asarray(values, dtype=np.float64) / step)
    if not np.all(np.isfinite(q)):
        raise InvalidArgumentError(f"quantization step {step} is too small for these weights")
    if q.size == 0 or np.max(np.abs(q)) < 2.0**62:
        return q.astype(np.int64)
    return np.array([int(v) for v in q.ravel()], dtype=object).reshape(q.shape)


def layer_token(index: int, width: int) -> str:
    """``l<index>c<width>``."""
    return f"l{int(index)}c{int(width)}"


# Weights quantized per block of neuron tokens (1 MiB of them): the Python ints of a
# whole wide layer would take ~36 bytes per weight at once.
_TOKEN_BLOCK = 1 << 20


def _neuron_tokens(weight: np.ndarray, bias: np.ndarray, step: float) -> list[str]:
    return [t for block in _neuron_token_blocks(weight, bias, step) for t in block]


def _neuron_token_blocks(weight: np.ndarray, bias: np.ndarray, step: float) -> Iterator[list[str]]:
    """The neuron tokens of a layer, a block of rows at a time."""
    n = weight.shape[1]
    rows = max(1, _TOKEN_BLOCK // n)
    for start in range(0, weight.shape[0], rows):
        part = weight[start : start + rows].astype(np.float64)
        qw = quantize(np.sort(part, axis=1), step)  # [rows, n] ascending
        qb = quantize(bias[start : start + rows], step)
        yield [
            f"nb{b}c{n}" + "".join(f"w{v}" for v in row)
            for b, row in zip(qb.tolist(), qw.tolist(), strict=True)
        ]


def neuron_token(weights: Any, bias: float, step: float = DEFAULT_STEP) -> str:
    """``nb<bias>c<fan-in>`` then ``w<weight>`` per input, sorted and quantized."""
    w = np.asarray(weights, dtype=np.float64).reshape(1, -1)
    return _neuron_tokens(w, np.asarray([bias], dtype=np.float64), step)[0]


def connection_token(index: int, weight: np.ndarray, bias: np.ndarray, keep: Keep) -> str:
    """``L<index>:`` then ``<source>-><target>;`` for each connection ``keep`` accepts.

    ``keep(bias=..., fan_in=..., weight=...)`` is called once per connection with the
    target neuron's bias, the layer's fan-in and the connection weight (Python floats);
    items run over targets, then sources, in order.
    """
    fan_in = int(weight.shape[1])
    items = [
        f"{s}->{t};"
        for t, (row, b) in enumerate(zip(weight.tolist(), bias.tolist(), strict=True))
        for s, w in enumerate(row)
        if keep(bias=b, fan_in=fan_in, weight=w)
    ]
    return f"L{int(index)}:" + "".join(items)


Record = tuple[str, int, int, int | None, str]


def _records(mlp: MLP, step: float, keep: Keep | None) -> list[Record]:
    """``(kind, position, layer, neuron, token)`` rows: the model sequence, then (with
    ``keep``) one connection token per layer, numbered on their own."""
    rows: list[Record] = []
    for i, layer in enumerate(mlp.layers):
        rows.append(("layer", len(rows), i, None, layer_token(i, layer.width)))
        for j, token in enumerate(_neuron_tokens(layer.weight, layer.bias, step)):
            rows.append(("neuron", len(rows), i, j, token))
    if keep is not None:
        for i, layer in enumerate(mlp.layers):
            token = connection_token(i, layer.weight, layer.bias, keep)
            rows.append(("connection", i, i, None, token))
    return rows


def tokenize(
    mlp: MLP, *, step: float = DEFAULT_STEP, kind: str = "model", keep: Keep | None = None
) -> list[str]:
    """Tokens of a model.

    Args:
        mlp: the model.
        step: quantization step of neuron tokens.
        kind: ``model`` (layer and neuron tokens) or ``connection`` (needs ``keep``).
        keep: predicate ``keep(bias=, fan_in=, weight=) -> bool`` for connections.

    Raises:
        InvalidArgumentError: an unknown kind, a bad step, or ``connection`` without ``keep``.
    """
    mlp = require_mlp(mlp)
    step = _check_step(step)
    if kind == "model":
        return [r[4] for r in _records(mlp, step, None)]
    if kind == "connection":
        if keep is None:
            raise InvalidArgumentError(
                "connection tokens need a keep(bias=, fan_in=, weight=) predicate"
            )
        return [connection_token(i, la.weight, la.bias, keep) for i, la in enumerate(mlp.layers)]
    raise InvalidArgumentError(f"unknown token kind {kind!r}; use 'model' or 'connection'")


def tokens_table(mlp: MLP, *, step: float = DEFAULT_STEP, keep: Keep | None = None) -> Any:
    """The catalogue ``tokens`` rows of a model (``pyarrow.Table``)."""
    import pyarrow as pa

    from roon.schema import table_schema

    batches = list(tokens_batches(mlp, step=step, keep=keep))
    return pa.Table.from_batches(batches, schema=table_schema("tokens"))


def tokens_batches(
    mlp: MLP, *, step: float = DEFAULT_STEP, keep: Keep | None = None
) -> Iterator[Any]:
    """The rows of :func:`tokens_table` as record batches, a block of neurons each, so
    that a wide model's tokens (a few bytes per weight) are never all in memory."""
    step = _check_step(step)

    def batch(rows: list[Record]) -> Any:
        import pyarrow as pa

        from roon.schema import table_schema

        columns = {
            "model_id": [mlp.id] * len(rows),
            "kind": [r[0] for r in rows],
            "position": [r[1] for r in rows],
            "layer": [r[2] for r in rows],
            "neuron": [r[3] for r in rows],
            "token": [r[4] for r in rows],
            "step": [float(step)] * len(rows),
        }
        return pa.RecordBatch.from_pydict(columns, schema=table_schema("tokens"))

    position = 0
    for i, layer in enumerate(mlp.layers):
        rows: list[Record] = [("layer", position, i, None, layer_token(i, layer.width))]
        position += 1
        neuron = 0
        for block in _neuron_token_blocks(layer.weight, layer.bias, step):
            for token in block:
                rows.append(("neuron", position, i, neuron, token))
                position, neuron = position + 1, neuron + 1
            yield batch(rows)
            rows = []
    if keep is not None:
        yield batch(
            [
                ("connection", i, i, None, connection_token(i, la.weight, la.bias, keep))
                for i, la in enumerate(mlp.layers)
            ]
        )


def _longest_match(a: str, alo: int, ahi: int, b: str, blo: int, bhi: int) -> tuple[int, int, int]:
    """difflib's ``find_longest_match`` without junk, in linear time.

    The longest common substring of ``a[alo:ahi]`` and ``b[blo:bhi]`` as ``(i, j, k)``;
    of the longest, the one starting first in ``a``, then first in ``b`` (difflib's
    tie-break). A suffix automaton of the ``b`` range is scanned with ``a``; every
    automaton state keeps the end of its first occurrence in ``b``.
    """
    nxt: list[dict[str, int]] = [{}]
    link, length, first = [-1], [0], [-1]
    last = 0
    for pos in range(blo, bhi):
        c = b[pos]
        cur = len(length)
        nxt.append({})
        length.append(length[last] + 1)
        link.append(0)
        first.append(pos)
        p = last
        while p != -1 and c not in nxt[p]:
            nxt[p][c] = cur
            p = link[p]
        if p != -1:
            q = nxt[p][c]
            if length[p] + 1 == length[q]:
                link[cur] = q
            else:
                clone = len(length)
                nxt.append(dict(nxt[q]))
                length.append(length[p] + 1)
                link.append(link[q])
                first.append(first[q])
                while p != -1 and nxt[p].get(c) == q:
                    nxt[p][c] = clone
                    p = link[p]
                link[q] = clone
                link[cur] = clone
        last = cur
    state = run = 0
    besti, bestj, bestk = alo, blo, 0
    for end in range(alo, ahi):
        c = a[end]
        while state and c not in nxt[state]:
            state = link[state]
            run = length[state]
        target = nxt[state].get(c)
        if target is None:
            state = run = 0
            continue
        state, run = target, run + 1
        if run > bestk:  # strictly longer: the first end in a wins ties
            besti, bestj, bestk = end - run + 1, first[state] - run + 1, run
    return besti, bestj, bestk


def matching_characters(a: str, b: str) -> int:
    """Characters matched by ``difflib.SequenceMatcher(None, a, b, autojunk=False)``.

    The same recursive longest-block matching (Ratcliff/Obershelp) and the same
    tie-breaks, so ``2 · matching_characters / (|a| + |b|)`` equals its ``ratio()``
    exactly, but each block is found in linear time instead of difflib's quadratic scan.
    """
    total = 0
    queue = [(0, len(a), 0, len(b))]
    while queue:
        alo, ahi, blo, bhi = queue.pop()
        i, j, k = _longest_match(a, alo, ahi, b, blo, bhi)
        if k:
            total += k
            if alo < i and blo < j:
                queue.append((alo, i, blo, j))
            if i + k < ahi and j + k < bhi:
                queue.append((i + k, ahi, j + k, bhi))
    return total


def lcs_length(a: str, b: str) -> int:
    """Length of a longest common subsequence of ``a`` and ``b`` (exact).

    Bit-parallel (Allison & Dix 1986; Hyyrö 2004): one Python big-integer update per
    character of the shorter string over a bit vector as long as the longer one.
    """
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    end = 0
    while end < min(len(a), len(b)) - start and a[-1 - end] == b[-1 - end]:
        end += 1
    core_a, core_b = a[start : len(a) - end], b[start : len(b) - end]
    if len(core_a) < len(core_b):
        core_a, core_b = core_b, core_a
    m = len(core_a)
    if not core_b:
        return start + end
    codes = np.frombuffer(core_a.encode("utf-32-le"), dtype=np.uint32)
    masks = {
        chr(c): int.from_bytes(np.packbits(codes == c, bitorder="little").tobytes(), "little")
        for c in np.unique(codes)
    }
    full = (1 << m) - 1
    v = full
    for ch in core_b:
        u = v & masks.get(ch, 0)
        v = ((v + u) | (v - u)) & full
    return start + end + m - v.bit_count()


def _joined(x: MLP | Sequence[str] | str, step: float) -> str:
    if isinstance(x, MLP):
        return SEPARATOR.join(tokenize(x, step=step))
    if isinstance(x, str):
        return x
    if isinstance(x, Sequence) and all(isinstance(t, str) for t in x):
        return SEPARATOR.join(x)
    raise InvalidArgumentError(
        f"cannot compare a {type(x).__name__}; give a roon.MLP, a list of tokens or a string"
    )


def token_similarity(
    a: MLP | Sequence[str] | str,
    b: MLP | Sequence[str] | str,
    *,
    step: float = DEFAULT_STEP,
    method: str = "difflib",
) -> float:
    """Share of matching characters of two joined token strings: ``2·M / (|A| + |B|)``.

    Args:
        a, b: models (tokenized with ``step``), token lists, or joined strings.
        step: quantization step for models.
        method: ``difflib`` (default): ``M`` as the seed's difflib measure counts it,
            ``SequenceMatcher(None, A, B, autojunk=False).ratio()`` exactly (its autojunk
            heuristic would ignore frequent characters in strings over 200 long, i.e.
            all digits), computed fast by :func:`matching_characters`; ``lcs``: ``M`` is
            the longest common subsequence, the most characters that can match in order
            (never below ``difflib``, and high even for unrelated models because token
            strings use few distinct characters).

    Returns:
        1.0 for equal sequences (and for two empty ones), down to 0.0.
    """
    if not isinstance(method, str):
        raise InvalidArgumentError(f"method is a {type(method).__name__}; use 'difflib' or 'lcs'")
    sa, sb = _joined(a, step), _joined(b, step)
    if not sa and not sb:
        return 1.0
    if method == "difflib":
        return 2.0 * matching_characters(sa, sb) / (len(sa) + len(sb))
    if method == "lcs":
        return 2.0 * lcs_length(sa, sb) / (len(sa) + len(sb))
    raise InvalidArgumentError(f"unknown similarity method {method!r}; use 'difflib' or 'lcs'")
