"""Push the catalogue into Neo4j: idempotent, resumable, batched ``UNWIND $rows`` MERGEs.

Example:
    >>> from roon.query.neo4j.connection import connect
    >>> from roon.query.neo4j.push import push_catalogue
    >>> with connect(password="secret") as store:  # doctest: +SKIP
    ...     summary = push_catalogue(store, "roon-catalogue")
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from roon.errors import InvalidArgumentError
from roon.progress import ProgressCallback, emit
from roon.query.neo4j import DEFAULT_BATCH_SIZE, statements
from roon.query.neo4j.connection import GraphStore, display_uri, execute

__all__ = ["PushSummary", "model_payload", "push_catalogue", "push_matches"]

_MATCH_KEYS = (
    "circuit",
    "circuit_id",
    "description",
    "model_id",
    "layer_offset",
    "maps",
    "verified",
)


@dataclass
class PushSummary:
    """What a push did. Counters come from the server, so a re-push shows zeros."""

    uri: str
    database: str
    models_pushed: list[str] = field(default_factory=list)
    models_skipped: list[str] = field(default_factory=list)
    lineage_rows: int = 0
    match_rows: int = 0
    rows_sent: int = 0
    batches: int = 0
    nodes_created: int = 0
    relationships_created: int = 0
    seconds: float = 0.0


def _rows(table: Any, props: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """Arrow rows as maps keyed by graph property (``props``: see roon.query.neo4j.model)."""
    from roon.query.neo4j import model as gm

    columns = [source.split(".", 1)[1] for _, source in props]
    rows = table.select(columns).rename_columns([name for name, _ in props]).to_pylist()
    text = [(name, source) for name, source in props if gm.as_text(source)]
    for row in rows:  # wide integers go to the graph as text (see graph_value)
        for name, source in text:
            row[name] = gm.graph_value(source, row[name])
    return rows


def model_payload(root: Any, model_id: str, min_weight: float = 0.0) -> dict[str, Any]:
    """The ``$rows`` of every statement that writes one model (FEEDS as an Arrow table).

    Keys: ``models``, ``input_layers``, ``layers``, ``next``, ``input_neurons``,
    ``neurons``, ``signatures`` (lists of maps) and ``feeds`` (a ``pyarrow.Table`` of
    source_id, target_id, weight with ``|weight| >= min_weight``), in the order they are
    sent.

    Raises:
        CatalogueError: the model folder has no ``models`` row.
    """
    import pyarrow.compute as pc

    from roon.errors import CatalogueError
    from roon.query.neo4j import model as gm
    from roon.store import read_model_table

    models = read_model_table(root, model_id, "models")
    if models.num_rows != 1:
        raise CatalogueError(f"model {model_id} in {root} has {models.num_rows} models rows")
    provenance = read_model_table(root, model_id, "provenance").slice(0, 1)
    model: dict[str, Any] = {name: None for name, _ in gm.MODEL_PROPERTIES}
    model.update(_rows(models, [p for p in gm.MODEL_PROPERTIES if p[1].startswith("models.")])[0])
    if provenance.num_rows:
        model.update(
            _rows(provenance, [p for p in gm.MODEL_PROPERTIES if p[1].startswith("provenance.")])[0]
        )
    width = int(model["input_width"])
    input_layer = gm.input_layer_id(model_id)
    layers = sorted(
        _rows(read_model_table(root, model_id, "layers"), gm.LAYER_PROPERTIES),
        key=lambda r: r["index"],
    )
    chain = [input_layer] + [r["id"] for r in layers]
    signatures = read_model_table(root, model_id, "signatures")
    edges = read_model_table(root, model_id, "edges")
    if min_weight > 0:
        edges = edges.filter(pc.greater_equal(pc.abs(edges["weight"]), min_weight))
    return {
        "models": [model],
        "input_layers": [{"id": input_layer, "model_id": model_id, "index": -1, "width": width}],
        "layers": layers,
        "next": [{"source": a, "target": b} for a, b in zip(chain[:-1], chain[1:], strict=True)],
        "input_neurons": [
            {
                "layer_id": input_layer,
                "props": {
                    "id": gm.input_neuron_id(model_id, i),
                    "model_id": model_id,
                    "layer": -1,
                    "index": i,
                },
            }
            for i in range(width)
        ],
        "neurons": [
            {"layer_id": f"{model_id}:{props['layer']}", "props": props}
            for props in _rows(read_model_table(root, model_id, "neurons"), gm.NEURON_PROPERTIES)
        ],
        "signatures": [
            {"neuron_id": n, "signature": s, "computes": c}
            for n, s, c in zip(
                signatures["neuron_id"].to_pylist(),
                _rows(signatures, gm.SIGNATURE_PROPERTIES),
                _rows(signatures, gm.COMPUTES_PROPERTIES),
                strict=True,
            )
        ],
        "feeds": edges.select(["source_id", "target_id", "weight"]),
    }


# (payload key, statement), in the order a model is written: each statement MATCHes
# what the earlier ones MERGEd.
_MODEL_STEPS = (
    ("models", statements.MERGE_MODELS),
    ("input_layers", statements.MERGE_INPUT_LAYERS),
    ("layers", statements.MERGE_LAYERS),
    ("next", statements.MERGE_NEXT),
    ("input_neurons", statements.MERGE_INPUT_NEURONS),
    ("neurons", statements.MERGE_NEURONS),
    ("signatures", statements.MERGE_SIGNATURES),
    ("feeds", statements.MERGE_FEEDS),
)


class _Batcher:
    """Sends rows in batches of ``size`` and keeps the summary's counters."""

    def __init__(self, store: GraphStore, size: int, summary: PushSummary) -> None:
        self.store, self.size, self.summary = store, size, summary

    def send(self, statement: str, rows: Any, after_batch: Callable[[], None]) -> None:
        """Send ``rows`` (a list of maps, or an Arrow table sliced lazily) in batches."""
        total = len(rows) if isinstance(rows, list) else rows.num_rows
        for start in range(0, total, self.size):
            if isinstance(rows, list):
                batch = rows[start : start + self.size]
            else:
                batch = rows.slice(start, self.size).to_pylist()
            counters = execute(self.store, statement, {"rows": batch}).summary.counters
            self.summary.batches += 1
            self.summary.rows_sent += len(batch)
            self.summary.nodes_created += counters.nodes_created
            self.summary.relationships_created += counters.relationships_created
            after_batch()


def push_catalogue(
    store: GraphStore,
    catalogue: str | os.PathLike[str],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    min_weight: float = 0.0,
    progress: ProgressCallback | None = None,
) -> PushSummary:
    """Write the catalogue to Neo4j: every model not yet complete there, then lineage.

    Re-pushing changes nothing (every write is a MERGE) and costs one query when all
    models are present: a model is skipped once it carries ``pushed = true``, which is
    set after its last batch, so a push that was interrupted resumes with the model it
    was writing. A model pushed with a higher ``min_weight`` is sent again, so that it
    gets the FEEDS the earlier push left out. Run :func:`init_schema` first: the MERGEs
    rely on its constraints for speed.

    Args:
        store: an open connection.
        catalogue: the catalogue directory.
        batch_size: rows per ``UNWIND $rows`` transaction.
        min_weight: send only FEEDS with ``|weight| >= min_weight`` (0 sends all the
            catalogue holds); recorded on each model as ``feeds_min_weight``.
        progress: ``models`` events after every batch (detail: the model and rows sent).

    Raises:
        CatalogueError: no catalogue at ``catalogue``.
        GraphStoreError: the server is unreachable or refuses a write.
        InvalidArgumentError: ``batch_size`` < 1 or ``min_weight`` negative or not finite.
    """
    import math
    import time

    from roon.store import list_models, open_catalogue, read_table

    if batch_size < 1:
        raise InvalidArgumentError(f"batch size {batch_size}: give a positive number of rows")
    if not (min_weight >= 0 and math.isfinite(min_weight)):
        raise InvalidArgumentError(f"min weight {min_weight}: give a finite number >= 0")
    started = time.perf_counter()
    root = open_catalogue(catalogue)
    ids = list_models(root)
    pushed = execute(store, statements.PUSHED_MODELS, {"ids": ids, "min_weight": min_weight})
    done = {r["id"] for r in pushed.records}
    summary = PushSummary(display_uri(store.uri), store.database)
    summary.models_skipped = [m for m in ids if m in done]
    todo = [m for m in ids if m not in done]
    batcher = _Batcher(store, batch_size, summary)
    for number, model_id in enumerate(todo):

        def report(model_id: str = model_id, number: int = number) -> None:
            detail = f"{model_id[:12]} · {summary.rows_sent:,} rows"
            emit(progress, "models", number, len(todo), detail)

        payload = model_payload(root, model_id, min_weight)
        for key, statement in _MODEL_STEPS:
            batcher.send(statement, payload[key], report)
        execute(store, statements.FINISH_MODEL, {"model_id": model_id, "min_weight": min_weight})
        summary.models_pushed.append(model_id)
        emit(
            progress,
            "models",
            number + 1,
            len(todo),
            f"{model_id[:12]} · {summary.rows_sent:,} rows",
        )
    lineage = read_table(root, "lineage").to_pylist()
    batcher.send(statements.MERGE_LINEAGE, lineage, lambda: None)
    summary.lineage_rows = len(lineage)
    # a saved match of a model removed since (roon rm) would make a bare :Model node
    stored = set(ids)
    matches = [
        _match_row(r) for r in read_table(root, "matches").to_pylist() if r["model_id"] in stored
    ]
    batcher.send(statements.MERGE_MATCHES, matches, lambda: None)
    summary.match_rows = len(matches)
    summary.seconds = time.perf_counter() - started
    return summary


def _match_row(row: Mapping[str, Any]) -> dict[str, Any]:
    missing = [k for k in _MATCH_KEYS if k not in row]
    if missing:
        raise InvalidArgumentError(
            f"match row lacks {', '.join(missing)}; it needs {', '.join(_MATCH_KEYS)}"
        )

    def text(value: Any) -> str:
        # a JSON string keys the relationship, so the same maps always give the same text
        return value if isinstance(value, str) else json.dumps(value, sort_keys=True)

    deviation = row.get("deviation")
    return {
        "circuit": str(row["circuit"]),
        "circuit_id": str(row["circuit_id"]),
        "description": str(row["description"] or ""),
        "model_id": str(row["model_id"]),
        "layer_offset": int(row["layer_offset"]),
        "maps": text(row["maps"]),
        "input_map": text(row.get("input_map", [])),
        "verified": bool(row["verified"]),
        "strict": bool(row.get("strict", False)),
        "exact": None if row.get("exact") is None else bool(row["exact"]),
        "deviation": None if deviation is None else float(deviation),
    }


def push_matches(
    store: GraphStore,
    rows: Sequence[Mapping[str, Any]],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> int:
    """Write circuit matches as ``(:Circuit)-[:APPEARS_IN]->(:Model)``; idempotent.

    Args:
        store: an open connection.
        rows: one mapping per match with keys ``circuit`` (name), ``circuit_id`` (the
            circuit's network hash, which keys its node), ``description``, ``model_id``,
            ``layer_offset``, ``maps`` (JSON text, or an object that is dumped with sorted
            keys) and ``verified``, optionally ``input_map``, ``strict`` and
            ``deviation``: the shape of the ``matches`` table.
        batch_size: rows per transaction.

    Returns:
        The number of APPEARS_IN relationships created (0 when all were present).
    """
    clean = [_match_row(r) for r in rows]
    created = 0
    for start in range(0, len(clean), max(1, batch_size)):
        result = execute(
            store, statements.MERGE_MATCHES, {"rows": clean[start : start + batch_size]}
        )
        created += result.summary.counters.relationships_created
    return created
