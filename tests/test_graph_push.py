"""The push logic without a server: batches, order, resumption, the maps it sends.

A recording fake stands in for ``neo4j.Driver`` (tests/fixtures.py); what the
server does with the statements is tested by tests/test_neo4j_live.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fixtures import EXPECTED_COUNTS, OUTSIDE_ID, FakeDriver, build_graph_catalogue

from roon.errors import GraphStoreError, InvalidArgumentError
from roon.progress import Progress
from roon.query.neo4j import statements as cypher
from roon.query.neo4j.connection import GraphStore
from roon.query.neo4j.push import model_payload, push_catalogue, push_matches

URI = "bolt://graph.example:7687"


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("push") / "cat"
    return path, build_graph_catalogue(path)


def _store(driver: FakeDriver) -> GraphStore:
    return GraphStore(driver, URI, "neo4j")


def _rows_sent(driver: FakeDriver, statement: str) -> list[dict]:
    return [row for s, p in driver.calls if s == statement for row in p.get("rows", [])]


def test_push_sends_every_element_in_batches(catalogue) -> None:
    path, ids = catalogue
    driver = FakeDriver()
    events: list[Progress] = []
    summary = push_catalogue(_store(driver), path, batch_size=4, progress=events.append)
    batches = [p["rows"] for _, p in driver.calls if "rows" in p]
    assert batches and max(len(b) for b in batches) <= 4
    assert summary.batches == len(batches)
    assert summary.rows_sent == sum(len(b) for b in batches)
    assert summary.models_pushed == sorted(ids.values()) and summary.models_skipped == []
    assert summary.uri == URI and summary.lineage_rows == 3
    assert len(_rows_sent(driver, cypher.MERGE_FEEDS)) == EXPECTED_COUNTS["FEEDS"]
    assert len(_rows_sent(driver, cypher.MERGE_INPUT_NEURONS)) == 11
    assert len(_rows_sent(driver, cypher.MERGE_NEURONS)) == 12
    assert len(_rows_sent(driver, cypher.MERGE_SIGNATURES)) == EXPECTED_COUNTS["COMPUTES"]
    assert len(_rows_sent(driver, cypher.MERGE_NEXT)) == EXPECTED_COUNTS["NEXT"]
    layers = _rows_sent(driver, cypher.MERGE_LAYERS) + _rows_sent(driver, cypher.MERGE_INPUT_LAYERS)
    assert len(layers) == EXPECTED_COUNTS["HAS_LAYER"]
    lineage = _rows_sent(driver, cypher.MERGE_LINEAGE)
    assert {(r["parent_id"], r["rule"]) for r in lineage} >= {(OUTSIDE_ID, "dead")}
    assert events[-1].task == "models" and events[-1].done == events[-1].total == 5
    assert events[-1].detail.endswith(f" {summary.rows_sent - len(lineage):,} rows")


def test_a_model_is_marked_pushed_only_after_its_last_batch(catalogue) -> None:
    path, _ = catalogue
    driver = FakeDriver()
    push_catalogue(_store(driver), path, batch_size=3)
    statements = [s for s, _ in driver.calls]
    assert statements[0] == cypher.PUSHED_MODELS
    finishes = [i for i, (s, _) in enumerate(driver.calls) if s == cypher.FINISH_MODEL]
    assert len(finishes) == 5
    for number, i in enumerate(finishes):
        model_id = driver.calls[i][1]["model_id"]
        begin = finishes[number - 1] + 1 if number else 1
        # everything between the previous FINISH and this one belongs to this model
        assert driver.calls[begin][0] == cypher.MERGE_MODELS
        assert driver.calls[begin][1]["rows"][0]["id"] == model_id
        assert driver.calls[i - 1][0] == cypher.MERGE_FEEDS
        for _, params in driver.calls[begin:i]:
            text = repr(params["rows"])
            assert model_id in text
            assert all(other not in text for other in driver.finished - {model_id})
    assert statements[-1] == cypher.MERGE_LINEAGE


def test_complete_models_are_skipped_and_an_interrupted_push_resumes(catalogue) -> None:
    path, ids = catalogue
    order = sorted(ids.values())
    first = FakeDriver()
    push_catalogue(_store(first), path, batch_size=2)
    per_model = next(i for i, (s, _) in enumerate(first.calls) if s == cypher.FINISH_MODEL)
    # the server goes away in the middle of the second model
    finished: set[str] = set()
    broken = FakeDriver(fail_at=per_model + 5, finished=finished)
    with pytest.raises(GraphStoreError, match=f"cannot reach Neo4j at {URI}: gone"):
        push_catalogue(_store(broken), path, batch_size=2)
    assert finished == {order[0]}
    resumed = FakeDriver(finished=finished)
    summary = push_catalogue(_store(resumed), path, batch_size=2)
    assert summary.models_skipped == [order[0]]
    assert summary.models_pushed == order[1:]
    assert resumed.calls[1][1]["rows"][0]["id"] == order[1]  # starts over with model 2
    assert finished == set(order)
    again = FakeDriver(finished=finished)
    summary = push_catalogue(_store(again), path)
    assert summary.models_pushed == [] and len(summary.models_skipped) == 5
    assert [s for s, _ in again.calls] == [cypher.PUSHED_MODELS, cypher.MERGE_LINEAGE]


def test_min_weight_drops_weak_feeds_and_is_recorded(catalogue) -> None:
    path, ids = catalogue
    driver = FakeDriver()
    push_catalogue(_store(driver), path, min_weight=0.1)
    feeds = _rows_sent(driver, cypher.MERGE_FEEDS)
    assert len(feeds) == EXPECTED_COUNTS["FEEDS"] - 1
    assert min(abs(f["weight"]) for f in feeds) >= 0.1
    assert {p["min_weight"] for s, p in driver.calls if s == cypher.FINISH_MODEL} == {0.1}


def test_model_payload_shapes(catalogue) -> None:
    path, ids = catalogue
    payload = model_payload(path, ids["E"])
    model = payload["models"][0]
    assert model["name"] == "tiny3" and model["input_width"] == 3 and "pushed" not in model
    assert payload["input_layers"] == [
        {"id": f"{ids['E']}:-1", "model_id": ids["E"], "index": -1, "width": 3}
    ]
    assert payload["next"] == [{"source": f"{ids['E']}:-1", "target": f"{ids['E']}:0"}]
    assert [r["props"]["id"] for r in payload["input_neurons"]] == [
        f"{ids['E']}:-1:{i}" for i in range(3)
    ]
    (signature,) = payload["signatures"]
    assert signature["neuron_id"] == f"{ids['E']}:0:0"
    assert signature["signature"]["fire_count"] == "6"  # a string: may exceed 64 bits
    assert signature["signature"]["fire_fraction"] == 0.75
    assert signature["computes"] == {
        "method": "exhaustive",
        "fragile": False,
        "margin": None,
        "relevant": None,
    }
    assert payload["feeds"].to_pylist()[0] == {
        "source_id": f"{ids['E']}:-1:0",
        "target_id": f"{ids['E']}:0:0",
        "weight": 0.9,
    }


def test_push_validates_its_options(catalogue, tmp_path: Path) -> None:
    path, _ = catalogue
    store = _store(FakeDriver())
    with pytest.raises(InvalidArgumentError, match="batch size 0"):
        push_catalogue(store, path, batch_size=0)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(InvalidArgumentError, match="min weight"):
            push_catalogue(store, path, min_weight=bad)
    with pytest.raises(Exception, match="no roon catalogue"):
        push_catalogue(store, tmp_path / "missing")


MATCH = {
    "circuit": "xor",
    "circuit_id": "c0ffee",
    "description": "x XOR y",
    "model_id": "m1",
    "layer_offset": 0,
    "maps": {"1": [0], "0": [1, 0]},
    "verified": 1,
}


def test_push_matches_normalizes_rows_and_batches() -> None:
    driver = FakeDriver()
    created = push_matches(_store(driver), [MATCH] * 5, batch_size=2)
    assert [len(p["rows"]) for _, p in driver.calls] == [2, 2, 1]
    assert created == 5  # the fake counts one relationship per row
    row = driver.calls[0][1]["rows"][0]
    assert row["maps"] == '{"0": [1, 0], "1": [0]}' and row["verified"] is True
    assert {s for s, _ in driver.calls} == {cypher.MERGE_MATCHES}


def test_push_matches_names_missing_keys() -> None:
    bad = {k: v for k, v in MATCH.items() if k not in ("maps", "verified")}
    with pytest.raises(InvalidArgumentError, match="lacks maps, verified"):
        push_matches(_store(FakeDriver()), [bad])


def test_a_lower_min_weight_push_sends_what_a_higher_one_left_out(tmp_path: Path) -> None:
    path = tmp_path / "cat"
    ids = build_graph_catalogue(path)
    finished: set[str] = set()
    weights: dict[str, float] = {}

    def push(min_weight: float) -> tuple[Any, FakeDriver]:
        driver = FakeDriver(finished=finished, min_weights=weights)
        store = GraphStore(driver, "bolt://graph.example:7687", "neo4j")
        return push_catalogue(store, path, min_weight=min_weight), driver

    def feeds(driver: FakeDriver) -> list[dict]:
        return [r for s, p in driver.calls if s == cypher.MERGE_FEEDS for r in p["rows"]]

    first, driver = push(0.1)
    assert len(feeds(driver)) == EXPECTED_COUNTS["FEEDS"] - 1
    # all models are complete at 0.1; a push of everything must not skip them
    second, driver = push(0.0)
    assert second.models_skipped == [] and sorted(second.models_pushed) == sorted(ids.values())
    assert len(feeds(driver)) == EXPECTED_COUNTS["FEEDS"]
    assert set(weights.values()) == {0.0}
    # the graph now holds every edge: a higher threshold has nothing to add
    third, driver = push(0.5)
    assert third.models_pushed == [] and len(third.models_skipped) == len(ids)
    assert feeds(driver) == []
    # what the fake plays, the statement says
    assert "$min_weight" in cypher.PUSHED_MODELS and "feeds_min_weight" in cypher.PUSHED_MODELS
