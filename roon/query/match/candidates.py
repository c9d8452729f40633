"""The hash step: where a pattern *could* appear — a necessary-condition filter.

Nothing here decides a match; it only rules placements out (networkx's
``could_be_isomorphic`` beside ``is_isomorphic`` is the model). For a pattern of ``k``
layers, a placement is a model and an offset ``o`` with target layers ``o..o+k-1`` all
present (no index runs past the last layer), each wide enough, and, for every pattern
neuron, target neurons in its layer whose signature is one of the pattern neuron's keys
(the completions of its ties, in that target layer's input domain):

* a pattern neuron with as many inputs as the target layer: the target's own signature
  (``signatures`` table);
* with fewer, at most 3: a *restricted* signature of the target (``restricted`` table:
  its subsets of at most 3 of its 8 strongest inputs), which also says which inputs.
  For a target neuron with more than 8 inputs this is no longer a necessary condition
  (an embedding may use weaker inputs): the placement is counted in
  ``Filtered.partial_index`` and the result says it may be incomplete;
* with more than 3 but fewer than the target's: no index applies — every target neuron
  is a candidate and the matcher scans, with its node budget;
* target neurons whose signature is *fragile* (an input within the tolerance of the
  threshold) are candidates whatever their hash: the exact check treats those inputs
  as don't-cares, which an equality of hashes cannot.

With multiplicity: a placement survives only if each pattern layer's neurons can take
distinct candidates (a bipartite matching exists), so two pattern neurons never rely
on one target neuron.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from roon.kernels.restricted import MAX_SUBSET, TOP_INPUTS
from roon.query.match.layered import NeuronCandidates
from roon.query.match.pattern import NeuronKeys, Pattern, neuron_keys

__all__ = ["Placement", "Filtered", "could_appear_in"]


@dataclass
class Placement:
    """A model and offset that passed the filter, with each pattern neuron's candidates."""

    model_id: str
    offset: int
    domains: tuple[str, ...]
    candidates: list[list[NeuronCandidates]]


@dataclass
class Filtered:
    """What the filter kept, and why placements were dropped (for the user)."""

    placements: list[Placement] = field(default_factory=list)
    models: int = 0
    deep_enough: int = 0
    unjudged: int = 0
    partial_index: int = 0  # placements the restricted index saw only in part (docstring)
    notes: list[str] = field(default_factory=list)


def _layer_shapes(pattern: Pattern) -> list[tuple[int, int]]:
    return [(layer.width, layer.fan_in) for layer in pattern.mlp.layers]


def _has_matching(cands: Sequence[NeuronCandidates], width: int) -> bool:
    """Whether the pattern neurons can take distinct candidates (Hall's condition)."""
    n = len(cands)
    if all(c is None or len(c) >= n for c in cands):
        return width >= n  # every neuron has n choices: greedy assignment never runs out
    import networkx as nx

    g = nx.Graph()
    left = [("p", p) for p in range(len(cands))]
    g.add_nodes_from(left)
    for p, c in enumerate(cands):
        targets = range(width) if c is None else c
        g.add_edges_from((("p", p), ("t", t)) for t in targets)
    matching = nx.bipartite.hopcroft_karp_matching(g, top_nodes=left)
    return all(node in matching for node in left)


def could_appear_in(con: Any, pattern: Pattern, models: Sequence[str] | None = None) -> Filtered:
    """Placements of ``pattern`` over the catalogue behind ``con`` that pass the filter.

    Args:
        con: a DuckDB connection with the catalogue's views (``layers``, ``signatures``,
            ``restricted``).
        pattern: the pattern.
        models: restrict to these model ids (default: every model in ``layers``).
    """
    import pyarrow as pa

    shapes = _layer_shapes(pattern)
    depth = len(shapes)
    layers = con.sql(
        "SELECT model_id, layer, fan_in, width, input_domain FROM layers ORDER BY ALL"
    ).fetchall()
    by_model: dict[str, dict[int, tuple[int, int, str]]] = defaultdict(dict)
    for model_id, layer, fan_in, width, domain in layers:
        if models is None or model_id in models:
            by_model[model_id][layer] = (fan_in, width, domain)
    out = Filtered(models=len(by_model))
    # every offset whose target layers exist and are wide enough
    raw: list[tuple[str, int, tuple[str, ...]]] = []
    for model_id, info in sorted(by_model.items()):
        n_layers = len(info)
        fits = False
        for o in range(n_layers - depth + 1):
            target = [info[o + j] for j in range(depth)]
            if target[0][2] not in ("binary", "signed"):
                # a box-domain layer (ingest --input-domain box) judges a neuron on the
                # vertices of its own input box, which circuits do not describe
                out.unjudged += 1
                continue
            if target[0][0] < shapes[0][1]:
                continue  # fewer inputs than the pattern
            if any(t[1] < s[0] for t, s in zip(target, shapes, strict=True)):
                continue  # a layer narrower than the pattern's
            fits = True
            raw.append((model_id, o, tuple(t[2] for t in target)))
        out.deep_enough += fits
    if not raw:
        if out.unjudged:
            out.notes.append(
                f"{out.unjudged} placements in box-domain layers were not searched: a circuit "
                "is judged on the binary or signed cube"
            )
        return out
    # the keys each pattern neuron accepts, per (layer, domain) that occurs
    keys: dict[tuple[int, str], list[NeuronKeys]] = {}
    first = pattern.mlp.layers[0]
    for _, _, domains in raw:  # only the first layer's keys filter (see the module docstring)
        if (0, domains[0]) not in keys:
            keys[(0, domains[0])] = neuron_keys(first.weight, first.bias, domains[0])
    wanted = [
        (j, p, d, shapes[j][1], h)
        for (j, d), ks in keys.items()
        for p, nk in enumerate(ks)
        for h in sorted(nk.hashes or ())
    ]
    con.register(
        "_wanted",
        pa.table(
            {
                "j": [w[0] for w in wanted],
                "p": [w[1] for w in wanted],
                "domain": [w[2] for w in wanted],
                "k": [w[3] for w in wanted],
                "hash": [w[4] for w in wanted],
            },
            schema=pa.schema(
                [("j", pa.int32()), ("p", pa.int32()), ("domain", pa.string()),
                 ("k", pa.int32()), ("hash", pa.string())]
            ),
        ),
    )  # fmt: skip
    chosen = "" if models is None else "AND s.model_id IN (SELECT unnest($models))"
    params = {} if models is None else {"models": list(models)}
    full: dict[tuple[str, int, int, int], set[int]] = defaultdict(set)
    for model_id, layer, neuron, j, p in con.execute(
        f"""
        SELECT s.model_id, s.layer, s.neuron, w.j, w.p
        FROM signatures s JOIN _wanted w
          ON s.hash = w.hash AND s.domain = w.domain AND s.fan_in = w.k
        WHERE s.exact {chosen}
        UNION
        SELECT s.model_id, s.layer, s.neuron, w.j, w.p
        FROM signatures s JOIN (SELECT DISTINCT j, p, domain, k FROM _wanted) w
          ON s.domain = w.domain AND s.fan_in = w.k
        WHERE s.exact AND s.fragile {chosen}
        """,
        params,
    ).fetchall():
        full[(model_id, layer, j, p)].add(neuron)
    restricted: dict[tuple[str, int, int, int], dict[int, set[frozenset[int]]]] = defaultdict(
        lambda: defaultdict(set)
    )
    for model_id, layer, neuron, inputs, j, p in con.execute(
        f"""
        SELECT s.model_id, s.layer, s.neuron, s.inputs, w.j, w.p
        FROM restricted s JOIN _wanted w ON s.hash = w.hash AND s.domain = w.domain AND s.k = w.k
        WHERE w.j = 0 {chosen}
        UNION
        SELECT s.model_id, s.layer, s.neuron, s.inputs, w.j, w.p
        FROM restricted s JOIN (SELECT DISTINCT j, p, domain, k FROM _wanted WHERE j = 0) w
          ON s.domain = w.domain AND s.k = w.k
        WHERE s.fragile {chosen}
        """,
        params,
    ).fetchall():
        restricted[(model_id, layer, j, p)][neuron].add(frozenset(inputs))
    con.unregister("_wanted")
    dropped: dict[str, int] = defaultdict(int)
    for model_id, o, domains in raw:
        placement = Placement(model_id, o, domains, [])
        partial = False
        for j, (width, k) in enumerate(shapes):
            layer = o + j
            fan_in, t_width, _ = by_model[model_id][layer]
            row: list[NeuronCandidates] = []
            for p in range(width):
                if j > 0:
                    # a mapped hidden unit may be a positive multiple of its pattern neuron
                    # (a symmetry of ReLU networks), which changes the local signatures of
                    # the neurons it feeds: equal signatures are no necessary condition
                    # here, so deeper layers are left to the matcher's edge signs and
                    # exact check
                    row.append(None)
                    continue
                nk = keys[(0, domains[0])][p]
                if nk.hashes is None or (MAX_SUBSET < k < fan_in):
                    row.append(None)  # no index applies: scan
                elif k == fan_in:
                    hits = full.get((model_id, layer, j, p))
                    row.append(dict.fromkeys(sorted(hits)) if hits else {})
                else:
                    sets = restricted.get((model_id, layer, j, p), {})
                    partial |= fan_in > TOP_INPUTS
                    row.append({t: frozenset(s) for t, s in sorted(sets.items())})
            if len(row) < width or any(c is not None and not c for c in row):
                placement = None
                break
            if not _has_matching(row, t_width):
                placement = None
                dropped["too few distinct candidates for a layer (multiplicity)"] += 1
                break
            placement.candidates.append(row)
        if placement is not None:
            out.placements.append(placement)
        # dropped or kept, the index did not see every input subset of this placement
        out.partial_index += partial
    out.notes = [f"{n} placements skipped: {why}" for why, n in sorted(dropped.items())]
    if out.unjudged:
        out.notes.append(
            f"{out.unjudged} placements in box-domain layers were not searched: a circuit is "
            "judged on the binary or signed cube (ingest those models without --input-domain box)"
        )
    return out
