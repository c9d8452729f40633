"""Streaming statistics of activations: a large sample is summarised, never held.

:class:`Moments` takes the activations of one or more models batch by batch and keeps,
per layer ("block"), only sums whose size depends on the layer widths, not on the sample:

* ``n``, and per neuron the running minimum and maximum (exact, so a constant neuron is
  known to be constant, not merely to have a small variance);
* ``Σ x̃`` and the within-layer cross-products ``Σ x̃ x̃ᵀ``;
* between the layers of *different* models, the cross-products ``Σ x̃ ỹᵀ``;
* for debiased CKA, per sample ``q = |x̃|²`` per layer, ``Σ q_a q_b`` and ``Σ x̃ q_b``.

``x̃ = x - c`` is shifted by ``c``, the mean of the first batch: every formula below is
exact algebra for any shift, and a shift near the mean keeps ``Σ x̃²`` from cancelling
catastrophically in ``Σ x̃² - (Σ x̃)²/n`` (the shifted-data algorithm). Everything is
float64.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Block", "Moments"]


@dataclass(frozen=True)
class Block:
    """One captured layer: ``width`` features at ``offset`` in its model's feature row."""

    model: int
    layer: str
    width: int
    offset: int

    @property
    def cols(self) -> slice:
        return slice(self.offset, self.offset + self.width)


class Moments:
    """Shifted sums over a stream of per-model activation rows (see the module docstring).

    Args:
        widths: per model, the width of each captured layer, in order.
        names: per model, the layer names (same shape as ``widths``).
    """

    def __init__(self, names: Sequence[Sequence[str]], widths: Sequence[Sequence[int]]) -> None:
        self.blocks: list[Block] = []
        self.features: list[int] = []
        for m, (layer_names, layer_widths) in enumerate(zip(names, widths, strict=True)):
            offset = 0
            for name, width in zip(layer_names, layer_widths, strict=True):
                self.blocks.append(Block(m, name, int(width), offset))
                offset += int(width)
            self.features.append(offset)
        n_models, n_blocks = len(self.features), len(self.blocks)
        self.n = 0
        self.shift = [np.zeros(f) for f in self.features]
        self.s1 = [np.zeros(f) for f in self.features]
        self.lo = [np.full(f, np.inf) for f in self.features]
        self.hi = [np.full(f, -np.inf) for f in self.features]
        self.within = [np.zeros((b.width, b.width)) for b in self.blocks]  # Σ x̃ x̃ᵀ
        self.across = {  # (i, j), i < j: Σ x̃_i x̃_jᵀ over all features of models i and j
            (i, j): np.zeros((self.features[i], self.features[j]))
            for i in range(n_models)
            for j in range(i + 1, n_models)
        }
        self.qq = np.zeros((n_blocks, n_blocks))  # Σ q_a q_b
        self.xq = [np.zeros((f, n_blocks)) for f in self.features]  # Σ x̃ q_bᵀ

    def update(self, rows: Sequence[np.ndarray]) -> None:
        """Add one batch: ``rows[m]`` is model ``m``'s ``[batch, features]`` float64 array."""
        batch = rows[0].shape[0]
        if batch == 0:
            return
        if self.n == 0:
            self.shift = [r.mean(axis=0) for r in rows]
        shifted = [r - c for r, c in zip(rows, self.shift, strict=True)]
        q = np.empty((batch, len(self.blocks)))  # [batch, blocks]: |x̃|² per layer
        for k, block in enumerate(self.blocks):
            x = shifted[block.model][:, block.cols]
            self.within[k] += x.T @ x
            q[:, k] = np.einsum("ij,ij->i", x, x)
        self.qq += q.T @ q
        for m, (raw, x) in enumerate(zip(rows, shifted, strict=True)):
            self.s1[m] += x.sum(axis=0)
            np.minimum(self.lo[m], raw.min(axis=0), out=self.lo[m])
            np.maximum(self.hi[m], raw.max(axis=0), out=self.hi[m])
            self.xq[m] += x.T @ q
        for (i, j), acc in self.across.items():
            acc += shifted[i].T @ shifted[j]
        self.n += batch

    # -- derived quantities ----------------------------------------------------------
    def block(self, model: int, layer: str) -> int:
        """Index of the block of ``layer`` in ``model`` (KeyError if not captured)."""
        for k, b in enumerate(self.blocks):
            if b.model == model and b.layer == layer:
                return k
        raise KeyError((model, layer))

    def _m(self, k: int) -> np.ndarray:
        b = self.blocks[k]
        return self.s1[b.model][b.cols] / self.n  # mean of x̃

    def mean(self, k: int) -> np.ndarray:
        b = self.blocks[k]
        return self.shift[b.model][b.cols] + self._m(k)

    def minimum(self, k: int) -> np.ndarray:
        b = self.blocks[k]
        return self.lo[b.model][b.cols]

    def maximum(self, k: int) -> np.ndarray:
        b = self.blocks[k]
        return self.hi[b.model][b.cols]

    def _raw_cross(self, a: int, b: int) -> np.ndarray:
        ba, bb = self.blocks[a], self.blocks[b]
        if a == b:
            return self.within[a]
        if ba.model == bb.model:
            raise KeyError(f"cross-products of two layers of one model are not kept ({a}, {b})")
        if ba.model < bb.model:
            return self.across[(ba.model, bb.model)][ba.cols, bb.cols]
        return self.across[(bb.model, ba.model)][bb.cols, ba.cols].T

    def comoment(self, a: int, b: int) -> np.ndarray:
        """``Σ (x - μ)(y - ν)ᵀ`` between blocks ``a`` and ``b`` (``[w_a, w_b]``)."""
        s1a, s1b = self._m(a) * self.n, self._m(b) * self.n
        return self._raw_cross(a, b) - np.outer(s1a, s1b) / self.n

    def variance_sums(self, k: int) -> np.ndarray:
        """``Σ (x - μ)²`` per neuron of block ``k``, clipped at 0 against rounding."""
        m = self._m(k)
        return np.maximum(np.diag(self.within[k]) - self.n * m * m, 0.0)

    def centred_norm_products(self, a: int, b: int) -> float:
        """``Σ_i |x_i - μ|² |y_i - ν|²`` (for debiased CKA), expanded in the kept sums."""
        ba, bb = self.blocks[a], self.blocks[b]
        ma, mb = self._m(a), self._m(b)
        na2, nb2 = float(ma @ ma), float(mb @ mb)
        sum_qa, sum_qb = float(np.trace(self.within[a])), float(np.trace(self.within[b]))
        xq_a = self.xq[ba.model][ba.cols, b]  # Σ x̃_a q_b
        xq_b = self.xq[bb.model][bb.cols, a]  # Σ x̃_b q_a
        return float(
            self.qq[a, b]
            - 2.0 * mb @ xq_b
            - 2.0 * ma @ xq_a
            + 4.0 * ma @ self._raw_cross(a, b) @ mb
            + nb2 * sum_qa
            + na2 * sum_qb
            - 3.0 * self.n * na2 * nb2
        )
