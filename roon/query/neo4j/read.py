"""A user's read-only Cypher query, run in a read transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from roon.errors import QueryError, one_line
from roon.query.neo4j.connection import GraphStore, translated

__all__ = ["QueryResult", "run_read_query"]


@dataclass
class QueryResult:
    """Result of a read query: column names, rows of plain Python values, and the
    server's warnings about the query (deprecated syntax, say), one line each."""

    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _warnings(summary: Any) -> list[str]:
    """The WARNING-severity notifications of a result summary, one line each.

    The driver logs the same notifications as multi-line records on the
    ``neo4j.notifications`` logger; a caller that shows these silences that logger.
    """
    from neo4j import NotificationSeverity

    found = []
    for status in getattr(summary, "gql_status_objects", None) or ():
        if status.is_notification and status.severity == NotificationSeverity.WARNING:
            text = one_line(status.status_description)
            found.append(text.removeprefix("warn: "))
    return found


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
    ``DELETE``, schema commands). The server's warnings about the query come back in
    ``QueryResult.warnings``.

    Raises:
        QueryError: empty query, syntax error, a write, a missing parameter.
        GraphStoreError: connection problems.
    """
    if not query.strip():
        raise QueryError("empty Cypher query; give a MATCH ... RETURN statement")

    def work(tx: Any) -> QueryResult:
        result = tx.run(query, dict(params or {}))
        columns = list(result.keys())
        rows = [[_plain(v) for v in record.values()] for record in result]
        return QueryResult(columns, rows, _warnings(result.consume()))

    with (
        translated(store, query_errors=True),
        store.driver.session(database=store.database) as session,
    ):
        return session.execute_read(work)
