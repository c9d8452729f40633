"""Tiny deterministic models, and a script that builds a small catalogue to poke at.

.venv/bin/python tests/fixtures.py /tmp/demo-catalogue
.venv/bin/roon models --catalogue /tmp/demo-catalogue
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from roon import MLP, Layer


def and_or_net() -> MLP:
    """2 inputs → [AND, OR] → OR-minus-AND (= XOR on bits), hand-set weights."""
    return MLP(
        [
            Layer(np.array([[0.7, 0.7], [1.0, 1.0]]), np.array([-1.0, 0.0]), "relu"),
            Layer(np.array([[-2.0, 1.0]]), np.array([0.0]), "linear"),
        ],
        name="and_or",
    )


def abs_net() -> MLP:
    """|x| = relu(x) + relu(-x) (seed 003's absolute-value circuit)."""
    return MLP(
        [
            Layer(np.array([[1.0], [-1.0]]), np.zeros(2), "relu"),
            Layer(np.array([[1.0, 1.0]]), np.zeros(1), "linear"),
        ],
        name="abs",
    )


def random_mlp(
    widths: tuple[int, ...] = (4, 6, 5, 3),
    seed: int = 0,
    activation: str = "relu",
    dtype: type = np.float32,
    name: str | None = None,
) -> MLP:
    """A random MLP: hidden layers use ``activation``, the last layer is linear."""
    rng = np.random.default_rng(seed)
    layers = []
    for i, (fan_in, width) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        act = "linear" if i == len(widths) - 2 else activation
        w = rng.normal(0.0, 1.0 / np.sqrt(fan_in), size=(width, fan_in)).astype(dtype)
        b = rng.normal(0.0, 0.1, size=width).astype(dtype)
        layers.append(Layer(w, b, act))
    return MLP(layers, name=name or f"random{seed}")


def brute_binary(weights, bias) -> tuple[int, list[int], int, int]:
    """Oracle: exact ``(fire_count, chow per position, min |w·x+b|, Σ|w|+|b|)`` over {0,1}^n.

    Enumerates every input (n <= 14) on exact integers: every float is ``m·2^k``, so
    multiplying by the largest denominator (a power of two) makes all values integers.
    """
    from fractions import Fraction

    fr = [Fraction(float(x)) for x in [*weights, bias]]
    den = max(f.denominator for f in fr)  # powers of two: the max is the lcm
    ints = [int(f * den) for f in fr]
    n = len(weights)
    masks = np.arange(1 << n)
    pre = np.full(1 << n, ints[-1], dtype=object)
    for i in range(n):
        pre = pre + ((masks >> i) & 1).astype(object) * ints[i]
    exc = pre > 0
    chow = [int(np.count_nonzero(exc & ((masks >> i) & 1 == 1))) for i in range(n)]
    closest = min(abs(int(p)) for p in pre)
    return int(np.count_nonzero(exc)), chow, closest, sum(abs(v) for v in ints)


def one_line_error(exc_type: type, path: Path, *fragments: str, load=None) -> str:
    """Load ``path`` (with ``load_model``, or ``load``); assert it fails with exactly
    ``exc_type`` and a one-line message that starts with the file and contains every
    fragment. Returns the message."""
    import pytest

    from roon.ingest.loaders import load_model

    with pytest.raises(exc_type) as info:
        (load or load_model)(path)
    msg = str(info.value)
    assert type(info.value) is exc_type
    assert msg.startswith(f"{path}: ") and "\n" not in msg, msg
    for fragment in fragments:
        assert fragment in msg, msg
    return msg


def permuted(mlp: MLP, rng: int | np.random.Generator) -> MLP:
    """The same function with every hidden layer's neurons shuffled (seed or generator)."""
    rng = np.random.default_rng(rng)
    ws = [np.array(la.weight) for la in mlp.layers]
    bs = [np.array(la.bias) for la in mlp.layers]
    for i in range(len(ws) - 1):
        p = rng.permutation(ws[i].shape[0])
        ws[i], bs[i], ws[i + 1] = ws[i][p], bs[i][p], ws[i + 1][:, p]
    return mlp.replace(
        [Layer(w, b, la.activation) for w, b, la in zip(ws, bs, mlp.layers, strict=True)]
    )


def demo_models() -> list[MLP]:
    return [and_or_net(), abs_net(), random_mlp(seed=1), random_mlp(seed=2, activation="tanh")]


def build_catalogue(path: Path) -> Path:
    """Ingest :func:`demo_models` into ``path`` and return it."""
    from roon.ingest.catalogue import open_catalogue
    from roon.ingest.pipeline import ingest_model

    root = open_catalogue(path, create=True)
    for mlp in demo_models():
        ingest_model(mlp, root, backend="ref")
    return root


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "roon-demo-catalogue")
    print(build_catalogue(target))
