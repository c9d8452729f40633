"""A small catalogue with known graph answers, shared by the graph and Neo4j tests.

Five hand-set models (float64, so every signature below is exact by inspection):

* ``xor_net`` (A): 2 inputs → [AND, OR] (relu) → OR − AND (linear);
* ``xor_net_sorted`` (C): A with its hidden neurons swapped, derived from A (``sort``);
* ``xor_net_scaled`` (D): C with hidden weights ×2 and output ×0.5, derived from C;
* ``and_net`` (B): 2 inputs → AND → 2·AND;
* ``tiny3`` (E): 3 inputs with weights 0.9, −0.2, 0.05 → one relu neuron;

and lineage ``A → C → D`` plus ``A`` derived from a model the catalogue lacks
(:data:`OUTSIDE_ID`), which becomes a bare ``(:Model {id})`` in the graph.

Signatures are computed here by brute force (binary domain, weights sorted ascending,
bit ``m`` = input ``x[i] = (m >> i) & 1``), independently of roon's kernels.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
from roon.schema import table_schema

from roon import MLP, Layer

OUTSIDE_ID = "f" * 32

# Nodes per label and relationships per type that the catalogue makes (min weight 0).
EXPECTED_COUNTS = {
    "Model": 6,  # 5 models + the bare lineage parent
    "Layer": 14,  # 9 dense layers + 5 input layers
    "Neuron": 23,  # 12 neurons + 11 inputs
    "Input": 16,  # 5 input layers + 11 input neurons
    "Signature": 5,  # AND2, OR2, OR−AND, 2·x, tiny3
    "HAS_LAYER": 14,
    "NEXT": 9,
    "HAS_NEURON": 23,
    "FEEDS": 24,
    "COMPUTES": 12,
    "DERIVED_FROM": 3,
}


def models() -> dict[str, MLP]:
    """The five models by letter."""

    def mlp(name: str, *layers: tuple[list, list, str]) -> MLP:
        return MLP([Layer(np.array(w, float), np.array(b, float), a) for w, b, a in layers], name)

    return {
        "A": mlp(
            "xor_net",
            ([[1, 1], [1, 1]], [-1.5, -0.5], "relu"),
            ([[-1, 1]], [0], "linear"),
        ),
        "C": mlp(
            "xor_net_sorted",
            ([[1, 1], [1, 1]], [-0.5, -1.5], "relu"),
            ([[1, -1]], [0], "linear"),
        ),
        "D": mlp(
            "xor_net_scaled",
            ([[2, 2], [2, 2]], [-1, -3], "relu"),
            ([[0.5, -0.5]], [0], "linear"),
        ),
        "B": mlp("and_net", ([[1, 1]], [-1.5], "relu"), ([[2]], [0], "linear")),
        "E": mlp("tiny3", ([[0.9, -0.2, 0.05]], [0.1], "relu")),
    }


def truth_table(weights: np.ndarray, bias: float) -> int:
    """Binary-domain truth table over ascending-sorted weights, as an integer."""
    w = np.sort(weights)
    table = 0
    for m in range(2 ** len(w)):
        x = [(m >> i) & 1 for i in range(len(w))]
        if float(np.dot(w, x)) + bias > 0:
            table |= 1 << m
    return table


def signature_hash(fan_in: int, table: int) -> str:
    return hashlib.blake2b(f"binary|{fan_in}|{table:x}".encode(), digest_size=16).hexdigest()


def signatures_table(mlp: MLP) -> pa.Table:
    rows = []
    for li, layer in enumerate(mlp.layers):
        for j in range(layer.width):
            n = layer.fan_in
            table = truth_table(layer.weight[j], float(layer.bias[j]))
            fire = bin(table).count("1")
            chow = [fire] + [
                sum(1 for m in range(2**n) if (table >> m) & 1 and (m >> i) & 1) for i in range(n)
            ]
            rows.append(
                {
                    "neuron_id": f"{mlp.id}:{li}:{j}",
                    "model_id": mlp.id,
                    "layer": li,
                    "neuron": j,
                    "domain": "binary",
                    "hash": signature_hash(n, table),
                    "fan_in": n,
                    "relevant": None,
                    "fire_count": str(fire),
                    "fire_fraction": fire / 2**n,
                    "chow": ",".join(map(str, chow)),
                    "truth_table": f"{table:x}",
                    "exact": True,
                    "method": "exhaustive",
                    "fragile": False,
                    "margin": None,
                }
            )
    return pa.Table.from_pylist(rows, schema=table_schema("signatures"))


def lineage_table(ids: dict[str, str]) -> pa.Table:
    when = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
    steps = [
        (OUTSIDE_ID, ids["A"], "dead", {}),
        (ids["A"], ids["C"], "sort", {}),
        (ids["C"], ids["D"], "scale", {"factor": 2.0}),
    ]
    rows = [
        {
            "parent_id": parent,
            "child_id": child,
            "rule": rule,
            "params": json.dumps(params, sort_keys=True),
            "changes": "{}",
            "max_output_change": 0.0,
            "created_at": when,
        }
        for parent, child, rule, params in steps
    ]
    return pa.Table.from_pylist(rows, schema=table_schema("lineage"))


def build_graph_catalogue(path: Path) -> dict[str, str]:
    """Write the catalogue into ``path``; returns the model ids by letter.

    Writes the Parquet files of the catalogue layout directly (``models/<id>/<table>``,
    ``lineage/*.parquet``), so it needs only the row builders, not the whole ingest.
    """
    import pyarrow.parquet as pq

    from roon.ingest.catalogue import open_catalogue
    from roon.ingest.rows import model_tables

    root = open_catalogue(path, create=True)
    ids = {}
    for letter, mlp in models().items():
        folder = root / "models" / mlp.id
        folder.mkdir(parents=True)
        tables = {**model_tables(mlp), "signatures": signatures_table(mlp)}
        for name, table in tables.items():
            pq.write_table(table, folder / f"{name}.parquet")
        ids[letter] = mlp.id
    (root / "lineage").mkdir(exist_ok=True)
    pq.write_table(lineage_table(ids), root / "lineage" / "fixture.parquet")
    return ids


def test_fixture_signatures_match_the_hand_derivation() -> None:
    by = {k: signatures_table(m).to_pylist() for k, m in models().items()}
    and2, or2 = signature_hash(2, 0b1000), signature_hash(2, 0b1110)
    assert [r["hash"] for r in by["A"]] == [and2, or2, signature_hash(2, 0b0100)]
    assert [r["hash"] for r in by["C"]][:2] == [or2, and2]
    assert by["D"][2]["hash"] == by["A"][2]["hash"]  # same function after rescaling
    assert by["B"][1]["truth_table"] == "2"
    # tiny3 sorted weights (-0.2, 0.05, 0.9), bias 0.1: fires unless x0=1 and x2=0
    assert by["E"][0]["truth_table"] == f"{0b11110101:x}"
    assert by["E"][0]["chow"] == "6,2,3,4"


def test_fixture_builds_and_counts(tmp_path: Path) -> None:
    from roon.ingest.catalogue import list_models, read_table

    ids = build_graph_catalogue(tmp_path / "cat")
    assert sorted(ids.values()) == list_models(tmp_path / "cat")
    assert read_table(tmp_path / "cat", "edges").num_rows == EXPECTED_COUNTS["FEEDS"]
    assert read_table(tmp_path / "cat", "lineage").num_rows == EXPECTED_COUNTS["DERIVED_FROM"]


# --- a recording stand-in for neo4j.Driver (offline tests) ----------------------------


class FakeCounters:
    def __init__(self, rows: int = 0) -> None:
        self.nodes_created = rows
        self.relationships_created = rows


class FakeResult:
    """What ``execute_query`` returns: ``records`` and ``summary.counters``."""

    def __init__(self, records: list[dict] | None = None, rows: int = 0) -> None:
        self.records = records or []
        self.summary = type("Summary", (), {"counters": FakeCounters(rows)})()

    def consume(self) -> None:
        return None


class FakeDriver:
    """Records every statement; remembers FINISH_MODEL so PUSHED_MODELS can answer.

    ``fail_at``: raise ``ServiceUnavailable`` on that execute_query call (1-based), as
    if the server went away mid-push. ``finished`` (and ``min_weights``, each finished
    model's ``feeds_min_weight``) may be shared between two fakes to play one server
    across an interruption.
    """

    def __init__(
        self,
        fail_at: int | None = None,
        finished: set[str] | None = None,
        min_weights: dict[str, float] | None = None,
    ) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.fail_at = fail_at
        self.finished = finished if finished is not None else set()
        self.min_weights = min_weights if min_weights is not None else {}
        self.closed = False

    def execute_query(self, statement, params=None, **kwargs):
        from neo4j.exceptions import ServiceUnavailable

        from roon.query import cypher

        params = params or {}
        if self.fail_at is not None and len(self.calls) + 1 == self.fail_at:
            raise ServiceUnavailable("Failed to read from defunct connection (reason gone)")
        self.calls.append((statement, params))
        if statement == cypher.PUSHED_MODELS:  # pushed, with no higher FEEDS threshold
            done = [
                i
                for i in params["ids"]
                if i in self.finished and self.min_weights.get(i, 0.0) <= params["min_weight"]
            ]
            return FakeResult([{"id": i} for i in done])
        if statement == cypher.FINISH_MODEL:
            self.finished.add(params["model_id"])
            self.min_weights[params["model_id"]] = params["min_weight"]
        return FakeResult(rows=len(params.get("rows", [])))

    def session(self, **kwargs):
        driver = self

        class Session:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return None

            def run(self, statement, params=None):
                driver.calls.append((statement, params or {}))
                return FakeResult()

        return Session()

    def close(self) -> None:
        self.closed = True
