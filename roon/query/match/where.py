"""``roon where``: every embedding of a circuit in a catalogue, confirmed and checked.

Three steps, each narrower than the one before:

1. :func:`~roon.query.match.candidates.could_appear_in` — hash joins over the
   ``signatures`` and ``restricted`` tables: placements (model, layer offset) where the
   pattern could appear, with each pattern neuron's candidate target neurons;
2. :func:`~roon.query.match.layered.embeddings` — the exact layered matcher over the full
   stored weights (never the possibly pruned ``edges`` table):
   injective maps, edge signs, and the exact positional check of every neuron
   (:class:`~roon.query.match.verify.SubnetworkCheck`), ``--strict`` on top;
3. :func:`~roon.query.match.verify.embedding_deviation` — the functional check of every
   embedding; ``verified`` when within the tolerance.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from roon.errors import CatalogueError, InvalidArgumentError, QueryError, one_line
from roon.mlp import MLP
from roon.progress import ProgressCallback, emit
from roon.query.match.layered import DEFAULT_NODE_BUDGET, Embedding, Search, embeddings
from roon.query.match.pattern import Pattern, load_pattern
from roon.query.match.verify import (
    DEFAULT_TOLERANCE,
    MAX_CUBE_POINTS,
    SubnetworkCheck,
    embedding_deviation,
    silent_outputs,
)

__all__ = [
    "STRICT_TOLERANCE",
    "Match",
    "WhereResult",
    "where",
    "match_model",
    "matches_table",
]

# --strict: every unmapped input of a mapped target neuron has |w| at most this fraction
# of the neuron's largest mapped |w| (so the circuit is an isolated sub-network).
STRICT_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Match:
    """One embedding of a circuit in a model (the records ``roon where --json`` prints).

    Attributes:
        circuit: the circuit's name.
        model: the target model's name.
        model_id: its id.
        layer_offset: the target layer of the circuit's first layer.
        maps: per circuit layer, ``[[circuit neuron, target neuron], ...]``.
        input_map: ``[[circuit input, target input], ...]``, target inputs of layer
            ``layer_offset`` (model inputs when it is 0, else neurons of the layer below).
        verified: the functional check passed (``deviation <= tolerance``).
        deviation: the functional check's relative deviation (``inf``: nothing to compare).
        exact: the positional check was exact — every point of the circuit's input
            domain, integer arithmetic. False when it was judged on seeded sample points
            (more circuit inputs than :data:`~roon.query.match.verify.MAX_CUBE_POINTS`
            allows) or in float64 (an activation other than relu and linear).
    """

    circuit: str
    model: str
    model_id: str
    layer_offset: int
    maps: list[list[list[int]]]
    input_map: list[list[int]]
    verified: bool
    deviation: float
    exact: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class WhereResult:
    """Everything ``roon where`` found.

    Attributes:
        circuit: the circuit's name; ``circuit_id`` its network's hash.
        matches: every embedding, verified or not, ordered by model name and offset.
        models: models searched.
        models_found: models with at least one verified embedding.
        complete: False when some embedding may be missing: a search stopped at its node
            budget or ``limit``, or the restricted index could not see every input.
        notes: why placements were skipped, where the search was partial.
        saved: rows ``save`` added to the ``matches`` table (rows already there are kept).
    """

    circuit: str
    circuit_id: str
    description: str
    matches: list[Match] = field(default_factory=list)
    models: int = 0
    models_found: int = 0
    placements: int = 0
    complete: bool = True
    notes: list[str] = field(default_factory=list)
    saved: int = 0

    @property
    def verified(self) -> list[Match]:
        return [m for m in self.matches if m.verified]


def _pattern_layers(pattern: Pattern) -> list[tuple[np.ndarray, np.ndarray, str]]:
    return [(la.weight, la.bias, la.activation) for la in pattern.mlp.layers]


def match_model(
    pattern: Pattern,
    target: MLP,
    offset: int,
    domains: Sequence[str],
    candidates: Sequence[Sequence[Any]],
    *,
    strict: bool = False,
    strict_tolerance: float = STRICT_TOLERANCE,
    limit: int | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    node_budget: int = DEFAULT_NODE_BUDGET,
) -> tuple[list[tuple[Embedding, float]], Search]:
    """Embeddings of ``pattern`` in ``target`` at ``offset``, each with its deviation.

    ``search.exact`` says whether the positional check was exact (see :class:`Match`).

    Args:
        pattern: the pattern.
        target: the target model (full weights).
        offset: target layer of the pattern's first layer.
        domains: the input domain of each target layer the pattern occupies.
        candidates: per pattern layer and neuron (see :mod:`roon.query.match.layered`).
        strict: also require unmapped inputs of mapped neurons to be ~0.
        strict_tolerance: see :data:`STRICT_TOLERANCE`.
        limit: stop after this many embeddings within ``tolerance`` (verified ones).
        tolerance: the functional check's tolerance (what ``limit`` counts).
        node_budget: the matcher's node budget.
    """
    depth = len(pattern.mlp.layers)
    target_layers = [
        (
            np.asarray(target.layers[offset + j].weight, np.float64),
            np.asarray(target.layers[offset + j].bias, np.float64),
            target.layers[offset + j].activation,
        )
        for j in range(depth)
    ]
    tw = [w for w, _, _ in target_layers]
    tb = [b for _, b, _ in target_layers]
    exact = SubnetworkCheck(_pattern_layers(pattern), target_layers, domains[0])
    search = Search(budget=node_budget)
    search.exact = exact.exact and not exact.sampled
    cache: dict[tuple[Any, ...], bool] = {}

    def check(j: int, p: int, t: int, prefix: tuple[tuple[int, ...], ...]) -> bool:
        key = (j, p, t, prefix)
        if key not in cache:
            ok = exact(j, p, t, prefix)
            if ok and strict:
                row, cols = tw[j][t], list(prefix[-1])
                others = np.delete(row, cols)
                biggest = float(np.abs(row[cols]).max()) if cols else 0.0
                ok = not others.size or float(np.abs(others).max()) <= strict_tolerance * biggest
            cache[key] = ok
        return cache[key]

    found: list[tuple[Embedding, float]] = []
    verified = 0
    pattern_layers = _pattern_layers(pattern)
    for emb in embeddings(
        [la.weight for la in pattern.mlp.layers], tw, candidates, check=check, search=search
    ):
        sub = []
        rows_prev = list(emb.input_map)
        for j in range(depth):
            rows = list(emb.maps[j])
            layer = target.layers[offset + j]
            sub.append((tw[j][np.ix_(rows, rows_prev)], tb[j][rows], layer.activation))
            rows_prev = rows
        deviation = embedding_deviation(pattern_layers, sub, domains[0])
        found.append((emb, deviation))
        verified += deviation <= tolerance
        if limit is not None and verified >= limit:
            search.complete = False
            break
    return found, search


def _original_models(con: Any) -> set[str]:
    from roon.query.originals import ORIGINAL_MODELS_SQL

    return {r[0] for r in con.sql(ORIGINAL_MODELS_SQL).fetchall()}


def _stale(root: Path, ids: Sequence[str]) -> list[str]:
    from roon.ingest.derived import DERIVED_TABLES
    from roon.store.migrate import stale_models

    # one call for all models: each segment file's footer is read once, not once a model
    wanted = {"restricted": DERIVED_TABLES["restricted"]}
    stale = stale_models(root, ids, wanted)
    return [m for m in ids if stale.get(m)]


def normalized_copies(root: Path, con: Any, ids: Sequence[str], rules: str) -> dict[str, str]:
    """Original model id → the id of its copy normalized by ``rules``, where stored.

    Follows the lineage rows rule by rule; a rule that changed nothing left no row, so a
    missing step is a no-op. A model reached without any step is normalized in memory to
    tell "already in normal form" from "never normalized" (normalization is exact and
    deterministic, so the ids decide).
    """
    from roon.ingest.normalize import normalize as run_rules
    from roon.ingest.normalize import resolve_rules
    from roon.store import load_catalogued_model

    names = [getattr(r, "name", None) for r in resolve_rules(rules)]
    steps: dict[tuple[str, str], str] = {
        (parent, rule): child
        for parent, rule, child in con.sql(
            "SELECT parent_id, rule, child_id FROM lineage"
        ).fetchall()
    }
    stored = {r[0] for r in con.sql("SELECT model_id FROM models").fetchall()}
    out = {}
    for model_id in ids:
        current = model_id
        for rule in names:
            current = steps.get((current, rule or ""), current)
        if current == model_id:  # no step recorded: normal form already, or never normalized
            current = run_rules(load_catalogued_model(root, model_id), rules)[0].id
        if current in stored:
            out[model_id] = current
    return out


def where(
    circuit: str | os.PathLike[str] | Pattern,
    catalogue: str | os.PathLike[str],
    *,
    normalize: str | None = None,
    strict: bool = False,
    strict_tolerance: float = STRICT_TOLERANCE,
    limit: int | None = None,
    models: Sequence[str] | None = None,
    include_derived: bool = False,
    tolerance: float = DEFAULT_TOLERANCE,
    node_budget: int = DEFAULT_NODE_BUDGET,
    save: bool = False,
    progress: ProgressCallback | None = None,
    activation: str | None = None,
) -> WhereResult:
    """Where does ``circuit`` appear in the catalogue? Every embedding, confirmed and checked.

    Args:
        circuit: a library circuit name, a circuit JSON, a model file, a catalogued model
            (id, id prefix or name), or a :class:`~roon.query.match.pattern.Pattern`.
        catalogue: the catalogue directory.
        strict: also require every unmapped input of a mapped target neuron to carry
            ``|w| <= strict_tolerance ·`` its largest mapped ``|w|``.
        strict_tolerance: see :data:`STRICT_TOLERANCE`.
        limit: stop after this many verified embeddings (the result says it is incomplete).
        models: search only these models (references: id, id prefix or name; one string is
            one reference).
        include_derived: also search models derived by normalization (by default only
            models as ingested, so a normalized copy does not count twice).
        tolerance: the functional check's tolerance (:data:`DEFAULT_TOLERANCE`).
        normalize: compare after the same normalization: the pattern is normalized by
            these rules (e.g. ``exact``), and each model is searched in its copy
            normalized by the same rules, as ``roon ingest --normalize`` stores it (a
            model without one is skipped, and the result says how many).
        node_budget: the matcher's node budget per placement.
        save: write the embeddings to the catalogue's ``matches`` table (idempotent).
        progress: ``models`` events.
        activation: hidden activation of a model file (as ``circuit``) that stores none.

    Raises:
        InvalidArgumentError: an unknown circuit (the message lists the library), a bad
            parameter, or a circuit deeper or wider than every model.
        CatalogueError: no catalogue, an unknown model, or models written before the
            restricted-signature index existed (the message says to run ``roon reindex``).
    """
    import duckdb

    from roon.ingest.loaders import load_notes
    from roon.kernels.restricted import TOP_INPUTS
    from roon.query.match.candidates import could_appear_in
    from roon.query.scan import scan_catalogue
    from roon.store import list_models, load_catalogued_model, open_catalogue
    from roon.store.check import damage_error

    if limit is not None and limit < 1:
        raise InvalidArgumentError(f"limit {limit}: give a positive number of embeddings")
    if not 0 < tolerance < float("inf") or not 0 <= strict_tolerance < 1:
        raise InvalidArgumentError(
            f"tolerance {tolerance}, strict tolerance {strict_tolerance}: "
            "give a tolerance > 0 and a strict tolerance in [0, 1)"
        )
    if not isinstance(circuit, str | os.PathLike | Pattern):
        raise InvalidArgumentError(
            f"circuit {circuit!r}: give a library circuit name, a file, a model reference "
            "or a Pattern"
        )
    if isinstance(models, str):
        models = [models]
    root = open_catalogue(catalogue)
    if isinstance(circuit, Pattern):
        pattern = circuit
    else:
        pattern = load_pattern(circuit, root, activation=activation)
    con = scan_catalogue(root)
    ids = _resolve_models(root, models) if models else list_models(root)
    if not (models or include_derived or normalize):
        originals = _original_models(con)
        ids = [m for m in ids if m in originals]
    notes: list[str] = [f"{pattern.source}: {n}" for n in load_notes(pattern.mlp)]
    if normalize:
        from roon.ingest.normalize import normalize as run_rules

        copies = normalized_copies(root, con, ids, normalize)
        if len(copies) < len(ids):
            notes.append(
                f"{len(ids) - len(copies)} models have no copy normalized by {normalize!r} "
                f"and were skipped; 'roon ingest --normalize {normalize}' stores one"
            )
        ids = sorted(set(copies.values()))
        child, _ = run_rules(pattern.mlp, normalize)
        pattern = Pattern(pattern.name, pattern.description, child, pattern.source,
                          pattern.input_domain)  # fmt: skip
    stale = _stale(root, ids)
    if stale:
        raise CatalogueError(
            f"{len(stale)} models in {root} have no restricted-signature index (written by an "
            f"older roon); run 'roon reindex --catalogue {root}' first"
        )
    result = WhereResult(pattern.name, pattern.id, pattern.description, models=len(ids))
    try:
        filtered = could_appear_in(con, pattern, ids)
        names = dict(con.sql("SELECT model_id, name FROM models").fetchall())
    except duckdb.Error as exc:
        raise damage_error(root, one_line(exc)) or QueryError(one_line(exc)) from None
    result.notes.extend([*notes, *filtered.notes])
    if ids and not filtered.deep_enough:
        widths = "-".join(str(w) for w in pattern.mlp.widths)
        raise InvalidArgumentError(
            f"circuit {pattern.name!r} ({len(pattern.mlp.layers)} layers, widths {widths}) "
            f"is deeper or wider than every model searched in {root}"
        )
    if filtered.partial_index:
        result.complete = False
        result.notes.append(
            f"{filtered.partial_index} placements are in layers of more than {TOP_INPUTS} "
            f"inputs, where the restricted index holds subsets of each neuron's {TOP_INPUTS} "
            "strongest inputs only: embeddings through weaker inputs were not searched"
        )
    by_model: dict[str, list[Any]] = {}
    silent: dict[str, list[int]] = {}
    skipped: dict[str, int] = {}
    for placement in filtered.placements:
        domain = placement.domains[0]
        if domain not in silent:
            silent[domain] = silent_outputs(_pattern_layers(pattern), domain)
        if silent[domain]:
            skipped[domain] = skipped.get(domain, 0) + 1
            continue
        by_model.setdefault(placement.model_id, []).append(placement)
    for domain, n in sorted(skipped.items()):
        outputs = ", ".join(str(o) for o in silent[domain])
        result.notes.append(
            f"{n} placements in {domain}-domain layers were not judged: the circuit's "
            f"output {outputs} is 0 on every {domain} input, so nothing can verify it there"
        )
    result.placements = len(filtered.placements)
    found_in: set[str] = set()
    inexact = 0
    remaining = limit
    order = sorted(by_model, key=lambda m: (names.get(m, ""), m))
    for number, model_id in enumerate(order):
        emit(progress, "models", number, len(order), names.get(model_id, model_id[:12]))
        target = load_catalogued_model(root, model_id)
        for placement in by_model[model_id]:
            found, search = match_model(
                pattern,
                target,
                placement.offset,
                placement.domains,
                placement.candidates,
                strict=strict,
                strict_tolerance=strict_tolerance,
                limit=remaining,
                tolerance=tolerance,
                node_budget=node_budget,
            )
            if not search.exact:
                inexact += 1
            if not search.complete:
                result.complete = False
                result.notes.extend(
                    f"{names.get(model_id, model_id[:12])} offset {placement.offset}: {n}"
                    for n in search.notes
                )
            for emb, deviation in found:
                ok = deviation <= tolerance
                result.matches.append(
                    Match(
                        circuit=pattern.name,
                        model=names.get(model_id, model_id[:12]),
                        model_id=model_id,
                        layer_offset=placement.offset,
                        maps=[[[p, t] for p, t in enumerate(layer)] for layer in emb.maps],
                        input_map=[[i, x] for i, x in enumerate(emb.input_map)],
                        verified=ok,
                        deviation=deviation,
                        exact=search.exact,
                    )
                )
                if ok:
                    found_in.add(model_id)
                    if remaining is not None:
                        remaining -= 1
            if remaining is not None and remaining <= 0:
                break
        if remaining is not None and remaining <= 0:
            result.notes.append(f"stopped after {limit} verified embeddings (--limit)")
            break
    if inexact:
        result.notes.append(
            f"the positional check was not exact at {inexact} placements: judged on "
            f"{MAX_CUBE_POINTS} seeded points of the input cube (a circuit of many inputs) "
            "or in float64 (an activation other than relu and linear); their rows say "
            "exact = false"
        )
    emit(progress, "models", len(order), len(order))
    result.models_found = len(found_in)
    if save and result.matches:
        from roon.store import write_rows

        result.saved = write_rows(root, "matches", matches_table(result, strict=strict))
    return result


def _resolve_models(root: Path, refs: Sequence[str]) -> list[str]:
    """Sorted ids of the models named by ``refs``: full ids by one set lookup, only the
    rest (prefixes, names) through :func:`roon.store.resolve_model`, which lists the
    catalogue per call (a thousand full ids would otherwise list it a thousand times)."""
    from roon.store import list_models, resolve_model

    stored = set(list_models(root))
    return sorted({r if r in stored else resolve_model(root, r) for r in refs})


def matches_table(result: WhereResult, *, strict: bool = False) -> Any:
    """The ``matches`` rows of a result (``pyarrow.Table``, schema/tables/matches.json)."""
    from datetime import datetime, timezone

    import pyarrow as pa

    from roon.schema import table_schema

    now = datetime.now(timezone.utc)
    rows = [
        {
            "circuit": m.circuit,
            "circuit_id": result.circuit_id,
            "description": result.description,
            "model_id": m.model_id,
            "layer_offset": m.layer_offset,
            "maps": json.dumps(m.maps),
            "input_map": json.dumps(m.input_map),
            "strict": strict,
            "verified": m.verified,
            "exact": m.exact,
            "deviation": m.deviation if np.isfinite(m.deviation) else float("inf"),
            "found_at": now,
        }
        for m in result.matches
    ]
    return pa.Table.from_pylist(rows, schema=table_schema("matches"))
