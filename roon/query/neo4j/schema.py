"""The graph's schema on the server: apply ``schema/neo4j.cypher`` and count what is there."""

from __future__ import annotations

from roon.query.neo4j import statements
from roon.query.neo4j.connection import GraphStore, execute

__all__ = ["schema_statements", "init_schema", "graph_counts"]


def schema_statements() -> list[str]:
    """The statements of ``schema/neo4j.cypher``, in order (what ``init_schema`` runs)."""
    from roon.schema import read_text

    return statements.split_statements(read_text("neo4j.cypher"))


def init_schema(store: GraphStore) -> list[str]:
    """Apply ``schema/neo4j.cypher`` (constraints and indexes); idempotent.

    Returns:
        The statements that were run.
    """
    statements = schema_statements()
    for statement in statements:
        execute(store, statement, {})
    return statements


def graph_counts(store: GraphStore) -> dict[str, int]:
    """Nodes per label and relationships per type, e.g. ``{"Model": 2, "FEEDS": 40}``."""
    labels = execute(store, statements.COUNT_LABELS, {}, read=True)
    types = execute(store, statements.COUNT_TYPES, {}, read=True)
    counts = {r["label"]: r["count"] for r in labels.records}
    counts.update({r["type"]: r["count"] for r in types.records})
    return counts
