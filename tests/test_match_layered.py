"""The layered matcher against networkx's VF2 on random small cases: the same embeddings.

Structural mode (no functional predicate): injective layered maps, candidate sets,
edge signs. networkx's ``DiGraphMatcher.subgraph_monomorphisms_iter`` is the oracle.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from networkx.algorithms.isomorphism import DiGraphMatcher

from roon.query.match.layered import Search, embeddings


def _graph(weights: list[np.ndarray]) -> nx.DiGraph:
    g = nx.DiGraph()
    for i in range(weights[0].shape[1]):
        g.add_node(("in", i), layer=-1, index=i)
    for j, w in enumerate(weights):
        for p in range(w.shape[0]):
            g.add_node((j, p), layer=j, index=p)
            for q in np.flatnonzero(w[p]).tolist():
                source = ("in", q) if j == 0 else (j - 1, q)
                g.add_edge(source, (j, p), sign=int(np.sign(w[p, q])))
    return g


def vf2_count(pattern, target, candidates) -> int:
    gp, gt = _graph(pattern), _graph(target)
    for j, layer in enumerate(candidates):
        for p, c in enumerate(layer):
            gp.nodes[(j, p)]["allowed"] = None if c is None else set(c)

    def node_match(t_attrs, p_attrs):
        if t_attrs["layer"] != p_attrs["layer"]:
            return False
        allowed = p_attrs.get("allowed")
        return allowed is None or t_attrs["index"] in allowed

    def edge_match(t_attrs, p_attrs):
        return t_attrs["sign"] == p_attrs["sign"]

    matcher = DiGraphMatcher(gt, gp, node_match=node_match, edge_match=edge_match)
    return sum(1 for _ in matcher.subgraph_monomorphisms_iter())


@st.composite
def cases(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    depth = draw(st.integers(1, 2))
    p_sizes = [draw(st.integers(1, 3)) for _ in range(depth + 1)]
    t_sizes = [s + draw(st.integers(0, 2)) for s in p_sizes]
    density = draw(st.sampled_from([0.5, 0.8, 1.0]))

    def layers(sizes):
        out = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            w = rng.choice([-1.0, 1.0], size=(b, a)) * (rng.random((b, a)) < density)
            out.append(w)
        return out

    pattern, target = layers(p_sizes), layers(t_sizes)
    candidates = []
    for j, w in enumerate(pattern):
        row = []
        for _ in range(w.shape[0]):
            if rng.random() < 0.4:
                row.append(None)
            else:
                chosen = rng.random(t_sizes[j + 1]) < 0.7
                row.append(dict.fromkeys(np.flatnonzero(chosen).tolist()))
        candidates.append(row)
    return pattern, target, candidates


@settings(max_examples=150, deadline=None)
@given(cases())
def test_same_number_of_embeddings_as_vf2(case):
    pattern, target, candidates = case
    search = Search()
    ours = list(embeddings(pattern, target, candidates, search=search))
    assert search.complete
    assert len(ours) == len(set(ours))  # each embedding once
    assert len(ours) == vf2_count(pattern, target, candidates)


def test_every_embedding_is_injective_and_keeps_edge_signs():
    rng = np.random.default_rng(5)
    pattern = [rng.choice([-1.0, 0.0, 1.0], size=(2, 3)), rng.choice([-1.0, 1.0], size=(1, 2))]
    target = [rng.choice([-1.0, 0.0, 1.0], size=(5, 6)), rng.choice([-1.0, 1.0], size=(3, 5))]
    found = list(embeddings(pattern, target, [[None, None], [None]]))
    assert found
    for emb in found:
        assert len(set(emb.input_map)) == len(emb.input_map)
        assert all(len(set(layer)) == len(layer) for layer in emb.maps)
        prev = emb.input_map
        for j, layer in enumerate(emb.maps):
            for p, t in enumerate(layer):
                for q in np.flatnonzero(pattern[j][p]).tolist():
                    assert np.sign(target[j][t, prev[q]]) == np.sign(pattern[j][p, q])
            prev = layer


def test_the_node_budget_stops_a_search_and_says_so():
    pattern = [np.ones((1, 3))]
    target = [np.ones((40, 40))]
    search = Search(budget=100)
    found = list(embeddings(pattern, target, [[None]], search=search))
    assert not search.complete and search.notes and len(found) < 40 * 40 * 39 * 38


def test_input_sets_restrict_the_input_map():
    pattern = [np.ones((1, 2))]
    target = [np.ones((2, 4))]
    allowed = {0: frozenset({frozenset({1, 3})}), 1: None}
    found = {(e.maps[0][0], e.input_map) for e in embeddings(pattern, target, [[allowed]])}
    expected = {(0, (1, 3)), (0, (3, 1))} | {
        (1, (a, b)) for a in range(4) for b in range(4) if a != b
    }
    assert found == expected
