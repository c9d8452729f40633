"""The Neo4j side of roon: connect, apply the schema, push the catalogue, read queries.

All statements come from :mod:`roon.query.cypher` (constants with parameters) or, for
``roon graph init``, from ``schema/neo4j.cypher``; the only free text that reaches the
server is the user's own query in :func:`run_read_query`, which runs in a read
transaction so that the server refuses writes. Driver failures become
:class:`~roon.errors.GraphStoreError` (server, credentials, database) or
:class:`~roon.errors.QueryError` (the query itself), one line each, naming the URI.
The password is handed to the driver and nowhere else.

Example:
    >>> from roon.query.graph_store import connect, init_schema, push_catalogue
    >>> with connect("neo4j://localhost:7687", "neo4j", "secret") as store:  # doctest: +SKIP
    ...     init_schema(store)
    ...     summary = push_catalogue(store, "roon-catalogue")
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from roon.errors import GraphStoreError, QueryError
from roon.query import cypher

__all__ = [
    "DEFAULT_URI",
    "DEFAULT_USER",
    "DEFAULT_DATABASE",
    "DEFAULT_BATCH_SIZE",
    "GraphStore",
    "QueryResult",
    "PushProgress",
    "PushSummary",
    "connect",
    "display_uri",
    "schema_statements",
    "init_schema",
    "model_payload",
    "push_catalogue",
    "push_matches",
    "run_read_query",
    "graph_counts",
]

DEFAULT_URI = "neo4j://localhost:7687"
DEFAULT_USER = "neo4j"
DEFAULT_DATABASE = "neo4j"
# Rows per UNWIND: Neo4j's guidance is 1k-10k maps per transaction; 1000 keeps each
# transaction's memory small on a default-configured server and is still one round
# trip per thousand FEEDS relationships.
DEFAULT_BATCH_SIZE = 1000
# Seconds to wait for a connection; a refused port fails at once regardless.
CONNECT_TIMEOUT_S = 10.0

# Bolt schemes only: the driver's HTTP (Query API) support is a preview feature.
_SCHEMES = ("neo4j", "neo4j+s", "neo4j+ssc", "bolt", "bolt+s", "bolt+ssc")
_MATCH_KEYS = ("circuit", "description", "model_id", "layer_offset", "maps", "verified")


@dataclass
class GraphStore:
    """An open connection: the driver plus the URI and database it talks to."""

    driver: Any
    uri: str
    database: str
    user: str = DEFAULT_USER

    def close(self) -> None:
        """Close the driver (idempotent)."""
        self.driver.close()

    def __enter__(self) -> GraphStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class QueryResult:
    """Result of a read query: column names and rows of plain Python values."""

    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)


def display_uri(uri: str) -> str:
    """The URI with any ``user:password@`` part removed, safe to print.

    Everything up to the *last* ``@`` goes, scheme or not: a password may itself hold
    ``@``, ``/`` or ``#``, and a Neo4j URI has no other use for ``@``.
    """
    scheme, sep, rest = uri.partition("://")
    if not sep:
        scheme, rest = "", uri
    return scheme + sep + rest.rpartition("@")[2]


def _reason(exc: BaseException) -> str:
    """The innermost cause of a driver error, one line (e.g. ``Connection refused``)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    found = re.findall(r"\(reason (.+?)\)(?:\s|$)", text)
    return found[-1] if found else text


@contextlib.contextmanager
def _translated(store: GraphStore, *, query_errors: bool = False) -> Iterator[None]:
    """Turn driver exceptions into roon errors naming the URI.

    With ``query_errors``, a client error about the statement itself (syntax, access
    mode, missing parameter) is a :class:`QueryError`; otherwise any server refusal is
    a :class:`GraphStoreError`.
    """
    from neo4j import exceptions as ex

    where = display_uri(store.uri)
    try:
        yield
    except ex.AuthError:
        raise GraphStoreError(
            f"Neo4j at {where} refused the credentials of user {store.user!r}: "
            "check NEO4J_USER and NEO4J_PASSWORD"
        ) from None
    except (ex.ServiceUnavailable, ex.SessionExpired) as exc:
        raise GraphStoreError(f"cannot reach Neo4j at {where}: {_reason(exc)}") from None
    except ex.ClientError as exc:
        code = exc.code or ""
        message = " ".join(str(exc.message or exc).split())
        if code.endswith("DatabaseNotFound"):
            raise GraphStoreError(
                f"Neo4j at {where} has no database {store.database!r} (community edition "
                "has only 'neo4j'): pass --database or set NEO4J_DATABASE"
            ) from None
        if query_errors and code.endswith("Statement.AccessMode"):
            raise QueryError(
                f"roon cypher runs read-only queries; the server refused: {message}"
            ) from None
        if query_errors and ".Statement." in code:
            raise QueryError(f"{code.rsplit('.', 1)[-1]}: {message}") from None
        raise GraphStoreError(f"Neo4j at {where} refused the request: {code}: {message}") from None
    except ex.Neo4jError as exc:
        message = " ".join(str(exc.message or exc).split())
        raise GraphStoreError(f"Neo4j at {where} failed: {exc.code}: {message}") from None
    except ex.DriverError as exc:
        raise GraphStoreError(f"Neo4j at {where}: {_reason(exc)}") from None


def connect(
    uri: str = DEFAULT_URI,
    user: str = DEFAULT_USER,
    password: str | None = None,
    *,
    database: str = DEFAULT_DATABASE,
    verify: bool = True,
) -> GraphStore:
    """Open a driver and (by default) check that ``database`` answers ``RETURN 1``.

    The check runs a real query, so a missing database is caught here, not half-way
    through a push.

    Raises:
        GraphStoreError: bad URI, server unreachable, credentials refused, or no such
            database; the message names the URI and the cause.
    """
    from neo4j import GraphDatabase
    from neo4j.exceptions import DriverError

    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if scheme not in _SCHEMES:
        raise GraphStoreError(
            f"invalid Neo4j URI {display_uri(uri)!r}: the scheme must be one of "
            f"{', '.join(_SCHEMES)} (e.g. {DEFAULT_URI})"
        )
    if display_uri(uri) != uri:
        # the driver's own error would quote the URI, password and all
        raise GraphStoreError(
            f"invalid Neo4j URI {display_uri(uri)!r}: give the user with --user or "
            "NEO4J_USER and the password in NEO4J_PASSWORD, not in the URI"
        )
    try:
        driver = GraphDatabase.driver(
            uri, auth=(user, password or ""), connection_timeout=CONNECT_TIMEOUT_S
        )
    except (ValueError, DriverError) as exc:  # bad port, bad query string, ...
        raise GraphStoreError(
            f"invalid Neo4j URI {display_uri(uri)!r}: {type(exc).__name__}: {_reason(exc)}"
        ) from None
    store = GraphStore(driver=driver, uri=uri, database=database, user=user)
    if verify:
        try:
            _ping(store)
        except BaseException:
            store.close()
            raise
    return store


def _ping(store: GraphStore) -> None:
    """One auto-commit ``RETURN 1``: fails at once, where a managed transaction would
    retry a refused connection for half a minute before giving up."""
    try:
        with _translated(store), store.driver.session(database=store.database) as session:
            session.run(cypher.PING).consume()
    except ValueError as exc:  # the driver's word for an unresolvable host:port
        raise GraphStoreError(f"invalid Neo4j URI {display_uri(store.uri)!r}: {exc}") from None


def _execute(
    store: GraphStore, statement: str, params: Mapping[str, Any], *, read: bool = False
) -> Any:
    """Run one roon statement in a managed transaction; returns the ``EagerResult``."""
    from neo4j import RoutingControl

    with _translated(store):
        return store.driver.execute_query(
            statement,
            dict(params),
            database_=store.database,
            routing_=RoutingControl.READ if read else RoutingControl.WRITE,
        )


def schema_statements() -> list[str]:
    """The statements of ``schema/neo4j.cypher``, in order (what ``init_schema`` runs)."""
    from roon.schema import read_text

    return cypher.split_statements(read_text("neo4j.cypher"))


def init_schema(store: GraphStore) -> list[str]:
    """Apply ``schema/neo4j.cypher`` (constraints and indexes); idempotent.

    Returns:
        The statements that were run.
    """
    statements = schema_statements()
    for statement in statements:
        _execute(store, statement, {})
    return statements


def graph_counts(store: GraphStore) -> dict[str, int]:
    """Nodes per label and relationships per type, e.g. ``{"Model": 2, "FEEDS": 40}``."""
    labels = _execute(store, cypher.COUNT_LABELS, {}, read=True)
    types = _execute(store, cypher.COUNT_TYPES, {}, read=True)
    counts = {r["label"]: r["count"] for r in labels.records}
    counts.update({r["type"]: r["count"] for r in types.records})
    return counts


def _match_row(row: Mapping[str, Any]) -> dict[str, Any]:
    missing = [k for k in _MATCH_KEYS if k not in row]
    if missing:
        raise QueryError(f"match row lacks {', '.join(missing)}; it needs {', '.join(_MATCH_KEYS)}")
    maps = row["maps"]
    return {
        "circuit": str(row["circuit"]),
        "description": str(row["description"] or ""),
        "model_id": str(row["model_id"]),
        "layer_offset": int(row["layer_offset"]),
        # a JSON string keys the relationship, so the same maps always give the same text
        "maps": maps if isinstance(maps, str) else json.dumps(maps, sort_keys=True),
        "verified": bool(row["verified"]),
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
        rows: one mapping per match with keys ``circuit`` (name), ``description``,
            ``model_id``, ``layer_offset``, ``maps`` (JSON text, or an object that is
            dumped with sorted keys) and ``verified``: the shape of the ``matches`` table.
        batch_size: rows per transaction.

    Returns:
        The number of APPEARS_IN relationships created (0 when all were present).
    """
    clean = [_match_row(r) for r in rows]
    created = 0
    for start in range(0, len(clean), max(1, batch_size)):
        result = _execute(store, cypher.MERGE_MATCHES, {"rows": clean[start : start + batch_size]})
        created += result.summary.counters.relationships_created
    return created


def _plain(value: Any) -> Any:
    """A driver value as plain Python (nodes, relationships and paths as dicts/lists)."""
    from neo4j.graph import Node, Path, Relationship

    if isinstance(value, Node):
        return {"labels": sorted(value.labels), "properties": _plain(dict(value))}
    if isinstance(value, Relationship):
        start, end = (n.get("id", n.get("hash")) if n is not None else None for n in value.nodes)
        return {"type": value.type, "start": start, "end": end, "properties": _plain(dict(value))}
    if isinstance(value, Path):
        return {
            "nodes": [_plain(n) for n in value.nodes],
            "relationships": [_plain(r) for r in value.relationships],
        }
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "iso_format"):  # neo4j temporal types
        return value.iso_format()
    return value


def run_read_query(
    store: GraphStore, query: str, params: Mapping[str, Any] | None = None
) -> QueryResult:
    """Run a user's Cypher query in a read transaction and return all its rows.

    The query text is the user's; values go in ``params``. Because the transaction is
    opened in read mode, the server refuses any write (``CREATE``, ``MERGE``, ``SET``,
    ``DELETE``, schema commands).

    Raises:
        QueryError: empty query, syntax error, a write, a missing parameter.
        GraphStoreError: connection problems.
    """
    if not query.strip():
        raise QueryError("empty Cypher query; give a MATCH ... RETURN statement")

    def work(tx: Any) -> QueryResult:
        result = tx.run(query, dict(params or {}))
        columns = list(result.keys())
        return QueryResult(columns, [[_plain(v) for v in record.values()] for record in result])

    with (
        _translated(store, query_errors=True),
        store.driver.session(database=store.database) as session,
    ):
        return session.execute_read(work)


# --- push: catalogue -> graph -------------------------------------------------------


@dataclass(frozen=True)
class PushProgress:
    """Where a push stands, reported after every batch."""

    model_id: str
    models_done: int
    models_total: int
    rows_sent: int


@dataclass
class PushSummary:
    """What a push did. Counters come from the server, so a re-push shows zeros."""

    uri: str
    database: str
    models_pushed: list[str] = field(default_factory=list)
    models_skipped: list[str] = field(default_factory=list)
    lineage_rows: int = 0
    rows_sent: int = 0
    batches: int = 0
    nodes_created: int = 0
    relationships_created: int = 0
    seconds: float = 0.0


def _rows(table: Any, props: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """Arrow rows as maps keyed by graph property (``props``: see graph_model)."""
    columns = [source.split(".", 1)[1] for _, source in props]
    return table.select(columns).rename_columns([name for name, _ in props]).to_pylist()


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
    from roon.ingest.catalogue import read_model_table
    from roon.query import graph_model as gm

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
    ("models", cypher.MERGE_MODELS),
    ("input_layers", cypher.MERGE_INPUT_LAYERS),
    ("layers", cypher.MERGE_LAYERS),
    ("next", cypher.MERGE_NEXT),
    ("input_neurons", cypher.MERGE_INPUT_NEURONS),
    ("neurons", cypher.MERGE_NEURONS),
    ("signatures", cypher.MERGE_SIGNATURES),
    ("feeds", cypher.MERGE_FEEDS),
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
            counters = _execute(self.store, statement, {"rows": batch}).summary.counters
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
    progress: Callable[[PushProgress], None] | None = None,
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
        progress: called after every batch.

    Raises:
        CatalogueError: no catalogue at ``catalogue``.
        GraphStoreError: the server is unreachable or refuses a write.
        QueryError: ``batch_size`` < 1 or ``min_weight`` negative or not finite.
    """
    import math
    import time

    from roon.ingest.catalogue import list_models, open_catalogue, read_table

    if batch_size < 1:
        raise QueryError(f"batch size {batch_size}: give a positive number of rows")
    if not (min_weight >= 0 and math.isfinite(min_weight)):
        raise QueryError(f"min weight {min_weight}: give a finite number >= 0")
    started = time.perf_counter()
    root = open_catalogue(catalogue)
    ids = list_models(root)
    pushed = _execute(store, cypher.PUSHED_MODELS, {"ids": ids, "min_weight": min_weight})
    done = {r["id"] for r in pushed.records}
    summary = PushSummary(display_uri(store.uri), store.database)
    summary.models_skipped = [m for m in ids if m in done]
    todo = [m for m in ids if m not in done]
    batcher = _Batcher(store, batch_size, summary)
    for number, model_id in enumerate(todo):

        def report(model_id: str = model_id, number: int = number) -> None:
            if progress is not None:
                progress(PushProgress(model_id, number, len(todo), summary.rows_sent))

        payload = model_payload(root, model_id, min_weight)
        for key, statement in _MODEL_STEPS:
            batcher.send(statement, payload[key], report)
        _execute(store, cypher.FINISH_MODEL, {"model_id": model_id, "min_weight": min_weight})
        summary.models_pushed.append(model_id)
        if progress is not None:
            progress(PushProgress(model_id, number + 1, len(todo), summary.rows_sent))
    lineage = read_table(root, "lineage").to_pylist()
    batcher.send(cypher.MERGE_LINEAGE, lineage, lambda: None)
    summary.lineage_rows = len(lineage)
    summary.seconds = time.perf_counter() - started
    return summary
