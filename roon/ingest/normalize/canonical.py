"""The ``canonical`` rule: an order of hidden neurons that ignores their current order.

Two passes over the hidden layers:

1. **Forward (input side first).** Layer ``i``'s neurons are sorted by the key
   ``(signature hash, incoming weights in the canonical order of layer i-1, bias)``.
   Neurons of layer ``i-1`` that tie on their whole key form a *tie group*; within a
   group the order is not yet decided, so layer ``i``'s key sorts its weights from one
   group among themselves, which makes the key independent of the group's order.
2. **Backward (output side first).** Each tie group of layer ``i`` is ordered by its
   outgoing columns read in the final order of layer ``i+1`` (the output layer's order
   is fixed).

Every key is a function of the network up to hidden-unit permutation, so any two
permutations of one network get identical weights. Neurons still tied after both passes
have identical incoming keys and identical outgoing weights; for generic networks (and
after ``exact-duplicates``, which merges identical neurons) no such ties exist. The
signature is the catalogue's excited-state hash (``roon.kernels.signatures``, the same
on every backend); it is invariant under permutations of the neuron's inputs, so it
groups neurons by the function they compute before the weights break ties.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from roon.errors import InvalidArgumentError
from roon.ingest.normalize.surgery import Surgery
from roon.mlp import MLP, NONNEGATIVE_ACTIVATIONS

__all__ = ["canonical", "signature_keys"]


def signature_keys(
    weight: np.ndarray, bias: np.ndarray, domain: str, backend: str = "auto"
) -> list[np.ndarray]:
    """Primary sort key of a layer's neurons: the rank of their signature hashes."""
    from roon.kernels import signatures

    hashes = [str(h) for h in signatures(weight, bias, domain=domain, backend=backend).hash]
    _, rank = np.unique(np.array(hashes), return_inverse=True)
    return [rank.astype(np.float64)]


def _tie_groups(table: np.ndarray) -> list[tuple[int, int]]:
    """``(start, end)`` runs of identical consecutive rows (length >= 2) of a sorted table."""
    if table.shape[0] < 2:
        return []
    same = np.all(table[1:] == table[:-1], axis=1)
    groups, start = [], 0
    for k, tie in enumerate(same, start=1):
        if not tie:
            if k - start > 1:
                groups.append((start, k))
            start = k
    if table.shape[0] - start > 1:
        groups.append((start, table.shape[0]))
    return groups


def canonical(
    mlp: MLP, *, domain: str = "binary", signature: bool = True, backend: str = "auto"
) -> tuple[MLP, dict[str, Any]]:
    """Permute hidden neurons into canonical order (bit-exact: only positions change).

    Args:
        mlp: the model.
        domain: signature domain of the model inputs (``binary`` or ``signed``); later
            layers use ``binary`` after a non-negative activation, else ``signed``.
        signature: sort by the signature hash first (False: by the weights alone).
        backend: signature backend (every backend gives the same hashes).
    """
    if domain not in ("binary", "signed"):
        raise InvalidArgumentError(f"signature domain {domain!r}; expected 'binary' or 'signed'")
    s = Surgery(mlp)
    hidden = list(s.hidden_layers)
    first: list[np.ndarray] = []
    groups: list[list[tuple[int, int]]] = []
    prev_order: np.ndarray | None = None
    prev_groups: list[tuple[int, int]] = []
    layer_domain = domain
    for i in hidden:
        w = s.weights[i].astype(np.float64)
        b = s.biases[i].astype(np.float64)
        if prev_order is not None:
            w = w[:, prev_order]
            for start, end in prev_groups:
                w[:, start:end] = np.sort(w[:, start:end], axis=1)
        primary = (
            signature_keys(s.weights[i], s.biases[i], layer_domain, backend) if signature else []
        )
        columns = [*primary, *w.T, b]  # most significant first
        order = np.lexsort(columns[::-1]) if columns else np.arange(w.shape[0])
        table = np.column_stack(columns)[order]
        first.append(order)
        groups.append(_tie_groups(table))
        prev_order, prev_groups = order, groups[-1]
        layer_domain = "binary" if s.activations[i] in NONNEGATIVE_ACTIVATIONS else "signed"

    final: dict[int, np.ndarray] = {}
    next_rows = np.arange(s.weights[-1].shape[0])  # output order is fixed
    for i in reversed(hidden):
        order = first[i].copy()
        out = s.weights[i + 1].astype(np.float64)[next_rows]  # rows in final order
        for start, end in groups[i]:
            members = order[start:end]
            order[start:end] = members[np.lexsort(out[:, members][::-1])]
        final[i] = order
        next_rows = order
    for i in hidden:
        s.permute(i, final[i])
    moved = {
        str(i): int(np.count_nonzero(final[i] != np.arange(final[i].size)))
        for i in hidden
        if np.any(final[i] != np.arange(final[i].size))
    }
    return s.to_mlp(), s.changes(moved=moved)
