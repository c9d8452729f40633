"""The whole graph path against a live Neo4j 5 server (``make test-neo4j``).

Runs when ``NEO4J_URI`` is set (with ``NEO4J_PASSWORD``, optionally ``NEO4J_USER`` and
``NEO4J_DATABASE``); skipped with the reason shown by ``pytest -ra`` otherwise. The
tests empty the database between steps, so they refuse a database that already holds
data unless ``ROON_NEO4J_TEST_WIPE=1`` says it may be wiped (the Makefile target runs a
throw-away server and sets it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures import (
    EXPECTED_COUNTS,
    OUTSIDE_ID,
    build_graph_catalogue,
    live_neo4j_settings,
    signature_hash,
)

from roon.errors import GraphStoreError, QueryError
from roon.query.neo4j.connection import GraphStore, connect
from roon.query.neo4j.push import push_catalogue, push_matches
from roon.query.neo4j.read import run_read_query
from roon.query.neo4j.schema import graph_counts, init_schema
from roon.query.neo4j.statements import EXAMPLE_QUERIES

pytestmark = pytest.mark.neo4j

WIPE = "MATCH (n) DETACH DELETE n"  # the test graph is tiny: one transaction will do


def _settings() -> dict[str, str]:
    settings, why = live_neo4j_settings()
    if settings is None:
        pytest.skip(why)
    return settings


def _wipe(store: GraphStore) -> None:
    store.driver.execute_query(WIPE, database_=store.database)


@pytest.fixture(scope="module")
def server() -> dict[str, str]:
    return _settings()


@pytest.fixture
def store(server: dict[str, str]) -> Iterator[GraphStore]:
    with connect(
        server["uri"], server["user"], server["password"], database=server["database"]
    ) as s:
        if graph_counts(s) and os.environ.get("ROON_NEO4J_TEST_WIPE") != "1":
            pytest.skip(
                "the Neo4j database holds data; set ROON_NEO4J_TEST_WIPE=1 to let tests wipe it"
            )
        _wipe(s)
        init_schema(s)
        yield s
        _wipe(s)


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("live") / "cat"
    return path, build_graph_catalogue(path)


def _example(store: GraphStore, name: str, **params: Any) -> list[dict[str, Any]]:
    result = run_read_query(store, EXAMPLE_QUERIES[name].query, params)
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


def test_init_is_idempotent_and_creates_the_schema(store: GraphStore) -> None:
    init_schema(store)  # a second time: IF NOT EXISTS everywhere
    constraints = run_read_query(store, "SHOW CONSTRAINTS YIELD name RETURN name")
    indexes = run_read_query(store, "SHOW INDEXES YIELD name RETURN name")
    names = {r[0] for r in constraints.rows} | {r[0] for r in indexes.rows}
    assert {"model_id", "layer_id", "neuron_id", "signature_hash", "circuit_id"} <= names
    assert "circuit_name" not in {r[0] for r in constraints.rows}  # keyed on the id now
    assert {"signature_hash_text", "neuron_model_layer", "layer_model", "model_name"} <= names


def test_push_twice_changes_nothing(store: GraphStore, catalogue) -> None:
    path, ids = catalogue
    first = push_catalogue(store, path, batch_size=5)
    assert sorted(first.models_pushed) == sorted(ids.values())
    assert graph_counts(store) == EXPECTED_COUNTS
    assert first.nodes_created == sum(
        EXPECTED_COUNTS[k] for k in ("Model", "Layer", "Neuron", "Signature")
    )
    second = push_catalogue(store, path, batch_size=5)
    assert second.models_pushed == [] and len(second.models_skipped) == 5
    assert second.nodes_created == second.relationships_created == 0
    assert graph_counts(store) == EXPECTED_COUNTS


def test_example_queries_answer_as_expected(store: GraphStore, catalogue) -> None:
    path, ids = catalogue
    push_catalogue(store, path)
    matches = [
        {"circuit": "xor", "circuit_id": "x1", "description": "x XOR y", "model_id": ids[k],
         "layer_offset": 0, "maps": {"0": [0, 1]}, "verified": k != "D"}
        for k in ("A", "C", "D")
    ] + [{"circuit": "and", "circuit_id": "a1", "description": "x AND y",
          "model_id": ids["B"], "layer_offset": 0, "maps": {"0": [0]}, "verified": False},
         # another circuit of the same name is another node
         {"circuit": "xor", "circuit_id": "x2", "description": "x XOR y, as a file",
          "model_id": ids["D"], "layer_offset": 0, "maps": {"0": [0, 1]}, "verified": True,
          "strict": True}]  # fmt: skip
    assert push_matches(store, matches) == 5
    assert push_matches(store, matches) == 0  # idempotent
    circuits = run_read_query(store, "MATCH (c:Circuit) RETURN c.id ORDER BY c.id")
    assert [r[0] for r in circuits.rows] == ["a1", "x1", "x2"]

    top = _example(store, "signatures_in_most_models", limit=3)
    and2 = signature_hash(2, 0b1000)
    assert top[0]["hash"] == and2 and top[0]["models"] == 4 and top[0]["neurons"] == 4
    tied = sorted([signature_hash(2, 0b1110), signature_hash(2, 0b0100)])
    assert [r["hash"] for r in top[1:]] == tied and {r["models"] for r in top[1:]} == {3}

    # verified embeddings only: D's through x1 failed its check, through x2 it passed
    xor = _example(store, "models_with_circuit", circuit="xor")
    assert [r["model"] for r in xor] == ["xor_net", "xor_net_scaled", "xor_net_sorted"]
    assert [r["model_id"] for r in xor] == [ids["A"], ids["D"], ids["C"]]
    assert all(r["layer_offset"] == 0 for r in xor)
    assert _example(store, "models_with_circuit", circuit="and") == []

    feeding = _example(store, "feeding_neuron", neuron_id=f"{ids['E']}:0:0", threshold=0.1)
    assert [(r["source"], r["weight"]) for r in feeding] == [
        (f"{ids['E']}:-1:0", 0.9),
        (f"{ids['E']}:-1:1", -0.2),
    ]

    lineage = _example(store, "lineage", model_id=ids["D"])
    assert [(r["depth"], r["model_id"], r["rule"], r["derived_from"]) for r in lineage] == [
        (1, ids["D"], "scale", ids["C"]),
        (2, ids["C"], "sort", ids["A"]),
        (3, ids["A"], "dead", OUTSIDE_ID),
    ]
    assert lineage[2]["parent_name"] is None  # the bare model outside the catalogue


def test_interrupted_push_resumes(store: GraphStore, catalogue) -> None:
    path, ids = catalogue

    class Flaky:
        """The real driver, cut off after a number of queries."""

        def __init__(self, driver: Any, budget: int) -> None:
            self.driver, self.budget = driver, budget

        def execute_query(self, *args: Any, **kwargs: Any) -> Any:
            from neo4j.exceptions import ServiceUnavailable

            self.budget -= 1
            if self.budget < 0:
                raise ServiceUnavailable("connection lost (reason test interruption)")
            return self.driver.execute_query(*args, **kwargs)

    # 1 query to list complete models, 13 to write the first model (C, by sorted id),
    # then 3 of the second (B): its node and layers are in, its `pushed` mark is not.
    order = sorted(ids.values())
    assert order[:2] == [ids["C"], ids["B"]]
    flaky = GraphStore(Flaky(store.driver, 17), store.uri, store.database, store.user)
    with pytest.raises(GraphStoreError, match="test interruption"):
        push_catalogue(flaky, path, batch_size=2)
    marks = run_read_query(store, "MATCH (m:Model) WHERE m.name IS NOT NULL RETURN m.id, m.pushed")
    assert sorted(marks.rows) == sorted([[ids["C"], True], [ids["B"], None]])
    assert 0 < graph_counts(store)["Layer"] < EXPECTED_COUNTS["Layer"]
    resumed = push_catalogue(store, path, batch_size=2)
    assert resumed.models_skipped == [ids["C"]] and resumed.models_pushed == order[1:]
    assert graph_counts(store) == EXPECTED_COUNTS


def test_min_weight_push(store: GraphStore, catalogue) -> None:
    path, ids = catalogue
    push_catalogue(store, path, min_weight=0.1)
    counts = graph_counts(store)
    assert counts["FEEDS"] == EXPECTED_COUNTS["FEEDS"] - 1
    rows = run_read_query(
        store, "MATCH (m:Model {id: $id}) RETURN m.feeds_min_weight", {"id": ids["E"]}
    ).rows
    assert rows == [[0.1]]


def test_a_lower_min_weight_push_completes_the_feeds(store: GraphStore, catalogue) -> None:
    path, ids = catalogue
    push_catalogue(store, path, min_weight=0.1)
    assert graph_counts(store)["FEEDS"] == EXPECTED_COUNTS["FEEDS"] - 1
    again = push_catalogue(store, path)  # min weight 0: the weak FEEDS are missing
    assert again.models_skipped == [] and len(again.models_pushed) == len(ids)
    assert graph_counts(store) == EXPECTED_COUNTS
    higher = push_catalogue(store, path, min_weight=0.5)  # the graph holds a superset
    assert higher.models_pushed == [] and higher.nodes_created == 0
    assert graph_counts(store) == EXPECTED_COUNTS


def test_reads_only(store: GraphStore) -> None:
    with pytest.raises(QueryError, match="read-only"):
        run_read_query(store, "CREATE (n:Intruder) RETURN n")
    with pytest.raises(QueryError):
        run_read_query(store, "MATCH (n RETURN n")
    assert "Intruder" not in graph_counts(store)


def test_wrong_password_and_database(server: dict[str, str]) -> None:
    with pytest.raises(GraphStoreError, match="refused the credentials") as info:
        connect(
            server["uri"],
            server["user"],
            "wrong-" + server["password"],
            database=server["database"],
        )
    assert server["password"] not in str(info.value) or not server["password"]
    with pytest.raises(GraphStoreError, match="has no database 'roon_no_such_db'"):
        connect(server["uri"], server["user"], server["password"], database="roon_no_such_db")
