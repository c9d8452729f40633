"""Restricted signatures: a neuron judged on a few of its inputs, every other input at 0.

A small circuit inside a wide layer uses a few inputs of each neuron it occupies: the
target neuron *restricted* to those inputs must compute the pattern neuron's function.
To find such neurons with a hash join, roon indexes, for every neuron, the signatures of
its restrictions to every subset of at most :data:`MAX_SUBSET` inputs among its
:data:`TOP_INPUTS` strongest (largest ``|w|``, ties by input index):

* all inputs of a neuron with at most 8 of them;
* 8 + 28 + 56 = 92 restrictions per neuron of fan-in 8 or more (all subsets of a
  784-input neuron would be 10^8 of size ≤ 3; 92 keep the index at ~92 rows per
  neuron).

What it cannot find: a restriction to inputs outside a neuron's 8 strongest, and
restrictions to more than 3 inputs (the matcher scans those without the index).
Each row's signature is exact (the same key as :func:`roon.kernels.signatures`, read
off the exact table by :mod:`roon.kernels.tables`), with its margin's ``fragile`` flag.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from roon.kernels.result import FRAGILE_MARGIN
from roon.kernels.tables import preactivation_signs, unique_table_hashes

__all__ = ["TOP_INPUTS", "MAX_SUBSET", "RestrictedRows", "strongest_inputs", "restricted_rows"]

# 8 strongest inputs and subsets of up to 3: 92 rows per wide neuron (module docstring).
TOP_INPUTS = 8
MAX_SUBSET = 3


@dataclass(frozen=True)
class RestrictedRows:
    """One row per (neuron, input subset), as columns.

    Attributes:
        neuron: ``[R]`` int32 row index of the neuron in the layer.
        inputs: ``[R, MAX_SUBSET]`` int32 input indices, ascending, padded with -1.
        k: ``[R]`` int32 subset size.
        hash: signature hash of each restriction.
        fragile: ``[R]`` bool, margin below :data:`~roon.kernels.result.FRAGILE_MARGIN`.
    """

    neuron: np.ndarray
    inputs: np.ndarray
    k: np.ndarray
    hash: list[str]
    fragile: np.ndarray

    def input_lists(self) -> list[list[int]]:
        """The subsets as lists of input indices (padding dropped)."""
        return [[int(i) for i in row if i >= 0] for row in self.inputs.tolist()]


def strongest_inputs(weight: np.ndarray, top: int = TOP_INPUTS) -> np.ndarray:
    """``[N, min(top, n)]`` the indices of each row's largest ``|w|``, ties by index."""
    w = np.asarray(weight, dtype=np.float64)
    return np.argsort(-np.abs(w), axis=1, kind="stable")[:, : min(top, w.shape[1])]


def restricted_rows(
    weight: np.ndarray,
    bias: np.ndarray,
    domain: str,
    *,
    top: int = TOP_INPUTS,
    max_subset: int = MAX_SUBSET,
) -> RestrictedRows:
    """Restricted signatures of every neuron of a layer (see the module docstring).

    Args:
        weight: ``[N, n]`` the layer's weights.
        bias: ``[N]``.
        domain: the layer's input domain (``binary`` or ``signed``).
        top: how many strongest inputs per neuron are indexed.
        max_subset: largest subset size.
    """
    w = np.asarray(weight, dtype=np.float64)
    b = np.asarray(bias, dtype=np.float64)
    n_rows, n = w.shape
    best = np.sort(strongest_inputs(w, top), axis=1)  # [N, m] ascending input index
    m = best.shape[1]
    parts = []
    for k in range(1, min(max_subset, m) + 1):
        subsets = np.array(list(combinations(range(m), k)), dtype=np.int64)  # [C, k]
        idx = best[:, subsets]  # [N, C, k] input indices
        rows = np.repeat(np.arange(n_rows), len(subsets))
        sub_w = np.take_along_axis(w[:, None, :], idx, axis=2).reshape(-1, k)
        signs, margin = preactivation_signs(sub_w, b[rows], domain)
        hashes = unique_table_hashes(domain, k, signs > 0)
        inputs = np.full((len(rows), max_subset), -1, dtype=np.int32)
        inputs[:, :k] = idx.reshape(-1, k)
        parts.append((rows, inputs, np.full(len(rows), k), hashes, margin < FRAGILE_MARGIN))
    if not parts:
        return RestrictedRows(
            np.zeros(0, np.int32), np.zeros((0, max_subset), np.int32), np.zeros(0, np.int32),
            [], np.zeros(0, bool),
        )  # fmt: skip
    return RestrictedRows(
        neuron=np.concatenate([p[0] for p in parts]).astype(np.int32),
        inputs=np.concatenate([p[1] for p in parts]),
        k=np.concatenate([p[2] for p in parts]).astype(np.int32),
        hash=[h for p in parts for h in p[3]],
        fragile=np.concatenate([p[4] for p in parts]),
    )
