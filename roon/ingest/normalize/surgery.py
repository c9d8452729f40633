"""A mutable working copy of an MLP that rules edit neuron by neuron.

Every rule copies the model into a :class:`Surgery`, removes, merges, rescales or
permutes hidden neurons, and turns the result back into an immutable :class:`MLP`. The
working copy remembers which neurons of the *parent* model each current neuron came
from, so the step record can name removed and merged neurons by their parent indices
whatever order the edits happened in.

Hidden neurons are the outputs of every layer but the last; the model's inputs and
outputs are never touched. Arrays keep the model's dtype; values that need arithmetic
(folded biases, merged columns) are computed in float64 and rounded once.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from roon.mlp import MLP, Layer, activate

__all__ = ["Surgery", "exact_row_sums"]


def exact_row_sums(start: np.ndarray, terms: np.ndarray) -> np.ndarray:
    """``start[r] + Σ_k terms[r, k]`` correctly rounded per row (order-independent)."""
    return np.array(
        [math.fsum([s, *row]) for s, row in zip(start.tolist(), terms.tolist(), strict=True)],
        dtype=np.float64,
    )


class Surgery:
    """Editable weights of one model plus the parent index of every hidden neuron.

    Attributes:
        weights: per layer ``[out, in]`` writable arrays.
        biases: per layer ``[out]`` writable arrays.
        activations: per layer activation names.
        origin: per hidden layer, for each current neuron, the sorted parent indices it
            stands for (one index, or several after a merge).
    """

    def __init__(self, mlp: MLP) -> None:
        self.parent = mlp
        self.weights = [np.array(layer.weight) for layer in mlp.layers]
        self.biases = [np.array(layer.bias) for layer in mlp.layers]
        self.activations = list(mlp.activations)
        self.origin = [[[j] for j in range(layer.width)] for layer in mlp.layers[:-1]]
        self.removed: list[list[int]] = [[] for _ in mlp.layers[:-1]]
        self.placeholder = [False for _ in mlp.layers[:-1]]
        self.order: list[list[int] | None] = [None for _ in mlp.layers[:-1]]

    @property
    def hidden_layers(self) -> range:
        """Indices of the layers whose neurons rules may change."""
        return range(len(self.weights) - 1)

    def width(self, i: int) -> int:
        return int(self.weights[i].shape[0])

    def rows(self, i: int) -> np.ndarray:
        """``[width, fan_in + 1]`` float64 incoming weights with the bias last."""
        return np.concatenate(
            [self.weights[i].astype(np.float64), self.biases[i].astype(np.float64)[:, None]],
            axis=1,
        )

    def out_columns(self, i: int) -> np.ndarray:
        """``[next_width, width]`` float64 outgoing weights of layer ``i``'s neurons."""
        return self.weights[i + 1].astype(np.float64)

    def fold(self, i: int, idx: np.ndarray, values: np.ndarray) -> None:
        """Add ``values[k] · outgoing column idx[k]`` into the next layer's bias.

        Each bias is the correctly rounded sum (``math.fsum``) of its old value and the
        float64 products, so the result does not depend on the order of the neurons,
        which keeps ``canonical`` forms of permuted networks bit-identical.
        """
        values = np.asarray(values, dtype=np.float64)
        keep = values != 0.0  # a zero contribution must not perturb the bias by rounding
        if not np.any(keep):
            return
        cols = self.weights[i + 1][:, np.asarray(idx)[keep]].astype(np.float64)
        terms = cols * values[keep][None, :]  # [next, k]
        nxt = self.biases[i + 1]
        self.biases[i + 1] = exact_row_sums(nxt.astype(np.float64), terms).astype(nxt.dtype)

    def remove(self, i: int, idx: Any, values: Any = None) -> None:
        """Drop hidden neurons ``idx`` of layer ``i``, folding ``values`` (their constant
        outputs) into the next layer's bias first.

        A layer never becomes empty: when every neuron goes, the first one stays as a
        placeholder with zero incoming weights, bias and outgoing weights, which adds
        nothing to the next layer (its output is multiplied by zeros).
        """
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        if idx.size == 0:
            return
        order = np.argsort(idx, kind="stable")
        idx = idx[order]
        if values is not None:
            self.fold(i, idx, np.asarray(values, dtype=np.float64).reshape(-1)[order])
        for j in idx:
            self.removed[i].extend(self.origin[i][j])
        if idx.size == self.width(i):
            self.weights[i] = np.zeros_like(self.weights[i][:1])
            self.biases[i] = np.zeros_like(self.biases[i][:1])
            self.weights[i + 1] = np.zeros_like(self.weights[i + 1][:, :1])
            self.origin[i] = [[]]
            self.placeholder[i] = True
            return
        keep = np.setdiff1d(np.arange(self.width(i)), idx)
        self.weights[i] = self.weights[i][keep]
        self.biases[i] = self.biases[i][keep]
        self.weights[i + 1] = self.weights[i + 1][:, keep]
        self.origin[i] = [self.origin[i][j] for j in keep]

    def is_placeholder_only(self, i: int) -> bool:
        """True when layer ``i`` is one all-zero neuron with zero outgoing weights."""
        return (
            self.width(i) == 1
            and not np.any(self.weights[i])
            and not np.any(self.biases[i])
            and not np.any(self.weights[i + 1])
        )

    def merge(self, i: int, keep: int, other: int, row: np.ndarray, column: np.ndarray) -> None:
        """Replace neuron ``keep`` by ``(row[:-1], row[-1])`` with outgoing ``column`` and
        drop neuron ``other`` (whose contribution the caller has moved into ``column``)."""
        self.merge_groups(i, {keep: [other]}, {keep: column}, {keep: row})

    def merge_groups(
        self,
        i: int,
        groups: dict[int, list[int]],
        columns: dict[int, np.ndarray],
        rows: dict[int, np.ndarray] | None = None,
    ) -> None:
        """Merge neurons of layer ``i``: each key of ``groups`` absorbs the listed neurons.

        Args:
            i: hidden layer.
            groups: kept neuron -> neurons it absorbs (current indices).
            columns: kept neuron -> its new outgoing column (float64, next-layer width).
            rows: kept neuron -> its new ``[w, b]`` row, when it changes.
        """
        dtype = self.weights[i].dtype
        for keep, others in groups.items():
            self.weights[i + 1][:, keep] = np.asarray(columns[keep], np.float64).astype(dtype)
            if rows is not None and keep in rows:
                row = np.asarray(rows[keep], dtype=np.float64)
                self.weights[i][keep] = row[:-1].astype(dtype)
                self.biases[i][keep] = row[-1].astype(dtype)
            absorbed = [x for o in others for x in self.origin[i][o]]
            self.origin[i][keep] = sorted(self.origin[i][keep] + absorbed)
        gone = sorted(o for others in groups.values() for o in others)
        keep_idx = np.setdiff1d(np.arange(self.width(i)), gone)
        self.weights[i] = self.weights[i][keep_idx]
        self.biases[i] = self.biases[i][keep_idx]
        self.weights[i + 1] = self.weights[i + 1][:, keep_idx]
        self.origin[i] = [self.origin[i][j] for j in keep_idx]

    def permute(self, i: int, perm: np.ndarray) -> None:
        """Reorder the hidden neurons of layer ``i``: new position ``k`` holds old ``perm[k]``."""
        perm = np.asarray(perm, dtype=np.int64)
        self.weights[i] = self.weights[i][perm]
        self.biases[i] = self.biases[i][perm]
        self.weights[i + 1] = self.weights[i + 1][:, perm]
        self.origin[i] = [self.origin[i][j] for j in perm]
        if not np.array_equal(perm, np.arange(perm.size)):
            self.order[i] = [self.origin[i][k][0] for k in range(perm.size)]

    def hidden_outputs(self, x: np.ndarray, i: int) -> np.ndarray:
        """``[batch, width_i]`` float64 outputs of layer ``i`` of the current model."""
        h = np.asarray(x, dtype=np.float64)
        for k in range(i + 1):
            z = h @ self.weights[k].astype(np.float64).T + self.biases[k].astype(np.float64)
            h = activate(self.activations[k], z)
        return h

    def to_mlp(self) -> MLP:
        """The edited model (name, metadata and provenance of the parent)."""
        layers = [
            Layer(w + w.dtype.type(0), b + b.dtype.type(0), a)  # fold -0.0 into +0.0
            for w, b, a in zip(self.weights, self.biases, self.activations, strict=True)
        ]
        return self.parent.replace(layers)

    def changes(self, **extra: Any) -> dict[str, Any]:
        """Neurons removed, merged and reordered per layer, by parent index.

        Returns:
            ``{"removed": total, "merged": total, "layers": {"<i>": {...}}, **extra}``;
            a layer entry lists ``removed`` indices, ``merged`` groups (each kept as one
            neuron), ``order`` (parent index at each new position) and ``placeholder``
            when it was emptied, whichever apply.
        """
        layers: dict[str, dict[str, Any]] = {}
        n_removed = n_merged = 0
        for i in self.hidden_layers:
            entry: dict[str, Any] = {}
            if self.removed[i]:
                entry["removed"] = sorted(self.removed[i])
                n_removed += len(self.removed[i])
            groups = [g for g in self.origin[i] if len(g) > 1]
            if groups:
                entry["merged"] = groups
                n_merged += sum(len(g) - 1 for g in groups)
            if self.order[i] is not None:
                entry["order"] = self.order[i]
            if self.placeholder[i]:
                entry["placeholder"] = True
            if entry:
                layers[str(i)] = entry
        return {"removed": n_removed, "merged": n_merged, "layers": layers, **extra}
