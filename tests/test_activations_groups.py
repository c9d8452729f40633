"""Co-activation groups: known planted groups, the chaining that tells the two methods
apart, components against a breadth-first search, and the pairwise guarantee of
complete linkage."""

from __future__ import annotations

import numpy as np
import pytest

import roon
from roon import MLP, Layer
from roon.errors import InvalidArgumentError
from roon.query.activations.groups import group_indices


def _identity_capture(x: np.ndarray):
    """A linear identity layer, so the captured neurons are the columns of ``x``."""
    p = x.shape[1]
    return roon.capture(MLP([Layer(np.eye(p), np.zeros(p), "linear")]), x)


def _planted(seed: int = 0, n: int = 4000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 3))
    copies = np.repeat(latent, 3, axis=1) * rng.uniform(0.5, 2, size=9)  # scaled copies
    noisy = copies + 0.05 * rng.normal(size=copies.shape)
    return np.column_stack([noisy, rng.normal(size=n)])  # neuron 9: on its own


@pytest.mark.parametrize("method", ["complete", "components"])
def test_planted_groups_are_found(method):
    cap = _identity_capture(_planted())
    groups = cap.groups("layer0", threshold=0.9, method=method)
    assert sorted(groups.groups) == [(0, 1, 2), (3, 4, 5), (6, 7, 8)]
    assert groups.singletons == (9,) and groups.dead == () and groups.constant == ()


def test_components_chain_and_complete_linkage_does_not():
    # r(a, c) = 0.7 and b = a + c: r(a, b) = r(b, c) = sqrt(0.85) ≈ 0.92
    rng = np.random.default_rng(1)
    a, e = rng.normal(size=(2, 20000))
    c = 0.7 * a + np.sqrt(1 - 0.49) * e
    cap = _identity_capture(np.column_stack([a, a + c, c]))
    r = cap.correlation("layer0")
    assert r[0, 1] > 0.9 and r[1, 2] > 0.9 and r[0, 2] < 0.75
    chained = cap.groups("layer0", threshold=0.9, method="components")
    assert chained.groups == ((0, 1, 2),)
    strict = cap.groups("layer0", threshold=0.9, method="complete")
    assert len(strict.groups) == 1 and len(strict.groups[0]) == 2 and 1 in strict.groups[0]
    assert len(strict.singletons) == 1


def _bfs_components(linked: np.ndarray) -> list[set[int]]:
    seen, parts = set(), []
    for start in range(len(linked)):
        if start in seen:
            continue
        part, todo = set(), [start]
        while todo:
            i = todo.pop()
            if i in part:
                continue
            part.add(i)
            todo.extend(j for j in range(len(linked)) if linked[i, j] and j != i)
        seen |= part
        parts.append(part)
    return parts


@pytest.mark.parametrize("seed", range(5))
def test_components_equal_a_breadth_first_search_and_complete_groups_are_cliques(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, 4)) @ rng.normal(size=(4, 14)) + 0.5 * rng.normal(size=(300, 14))
    r = np.corrcoef(x, rowvar=False)
    labels = group_indices(r, 0.6, "components")
    found = [set(np.flatnonzero(labels == k).tolist()) for k in np.unique(labels)]
    assert sorted(map(sorted, found)) == sorted(map(sorted, _bfs_components(r >= 0.6)))
    labels = group_indices(r, 0.6, "complete")
    for k in np.unique(labels):
        members = np.flatnonzero(labels == k)
        assert np.all(r[np.ix_(members, members)] >= 0.6)


def test_groups_leave_out_dead_and_constant_neurons():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(500, 1))
    x = np.column_stack([z, 2 * z + 1, np.zeros(500), np.full(500, -3.0), rng.normal(size=500)])
    groups = _identity_capture(x).groups("layer0", threshold=0.95)
    assert groups.groups == ((0, 1),)
    assert groups.singletons == (4,) and groups.dead == (2,) and groups.constant == (3,)
    assert groups.constant_values == (-3.0,)


def test_bad_grouping_parameters():
    cap = _identity_capture(_planted(n=100))
    with pytest.raises(InvalidArgumentError, match="method 'single'"):
        cap.groups("layer0", method="single")
    with pytest.raises(InvalidArgumentError, match="threshold 1.5"):
        cap.groups("layer0", threshold=1.5)
    with pytest.raises(InvalidArgumentError, match="was not captured"):
        cap.groups("layer3")
