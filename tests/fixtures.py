"""Tiny deterministic models, and a script that builds a small catalogue to poke at.

.venv/bin/python tests/fixtures.py /tmp/demo-catalogue
.venv/bin/roon models --catalogue /tmp/demo-catalogue
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
from roon.schema import table_schema

from roon import MLP, Layer


def and_or_net() -> MLP:
    """2 inputs → [AND, OR] → OR-minus-AND (= XOR on bits), hand-set weights."""
    return MLP(
        [
            Layer(np.array([[0.7, 0.7], [1.0, 1.0]]), np.array([-1.0, 0.0]), "relu"),
            Layer(np.array([[-2.0, 1.0]]), np.array([0.0]), "linear"),
        ],
        name="and_or",
    )


def abs_net() -> MLP:
    """|x| = relu(x) + relu(-x) (seed 003's absolute-value circuit)."""
    return MLP(
        [
            Layer(np.array([[1.0], [-1.0]]), np.zeros(2), "relu"),
            Layer(np.array([[1.0, 1.0]]), np.zeros(1), "linear"),
        ],
        name="abs",
    )


def random_mlp(
    widths: tuple[int, ...] = (4, 6, 5, 3),
    seed: int = 0,
    activation: str = "relu",
    dtype: type = np.float32,
    name: str | None = None,
) -> MLP:
    """A random MLP: hidden layers use ``activation``, the last layer is linear."""
    rng = np.random.default_rng(seed)
    layers = []
    for i, (fan_in, width) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        act = "linear" if i == len(widths) - 2 else activation
        w = rng.normal(0.0, 1.0 / np.sqrt(fan_in), size=(width, fan_in)).astype(dtype)
        b = rng.normal(0.0, 0.1, size=width).astype(dtype)
        layers.append(Layer(w, b, act))
    return MLP(layers, name=name or f"random{seed}")


def brute_binary(weights, bias) -> tuple[int, list[int], int, int]:
    """Oracle: exact ``(fire_count, chow per position, min |w·x+b|, Σ|w|+|b|)`` over {0,1}^n.

    Enumerates every input (n <= 14) on exact integers: every float is ``m·2^k``, so
    multiplying by the largest denominator (a power of two) makes all values integers.
    """
    from fractions import Fraction

    fr = [Fraction(float(x)) for x in [*weights, bias]]
    den = max(f.denominator for f in fr)  # powers of two: the max is the lcm
    ints = [int(f * den) for f in fr]
    n = len(weights)
    masks = np.arange(1 << n)
    pre = np.full(1 << n, ints[-1], dtype=object)
    for i in range(n):
        pre = pre + ((masks >> i) & 1).astype(object) * ints[i]
    exc = pre > 0
    chow = [int(np.count_nonzero(exc & ((masks >> i) & 1 == 1))) for i in range(n)]
    closest = min(abs(int(p)) for p in pre)
    return int(np.count_nonzero(exc)), chow, closest, sum(abs(v) for v in ints)


def fraction_preactivations(mlp: MLP, x) -> list[list]:
    """Oracle: every layer's pre-activations at point ``x`` in exact ``fractions.Fraction``
    arithmetic over the stored floats (ReLU and linear layers only), written for the
    tests independently of roon's dyadic kernel."""
    from fractions import Fraction

    h = [Fraction(float(v)) for v in x]
    out = []
    for layer in mlp.layers:
        assert layer.activation in ("relu", "linear")
        z = [
            sum((Fraction(float(w)) * v for w, v in zip(row, h, strict=True)), Fraction(float(b)))
            for row, b in zip(layer.weight.tolist(), layer.bias.tolist(), strict=True)
        ]
        out.append(z)
        h = [max(v, Fraction(0)) for v in z] if layer.activation == "relu" else z
    return out


def train_xor(seed: int):
    """A tiny torch MLP trained on XOR, seeded (~0.1 s): ``examples/train_xor.py``, the
    script that makes the README's models, so the tests check the same training."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "examples" / "train_xor.py"
    spec = importlib.util.spec_from_file_location("roon_example_train_xor", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.train_xor(seed)


def one_line_error(exc_type: type, path: Path, *fragments: str, load=None) -> str:
    """Load ``path`` (with ``load_model``, or ``load``); assert it fails with exactly
    ``exc_type`` and a one-line message that starts with the file and contains every
    fragment. Returns the message."""
    import pytest

    from roon.ingest.loaders import load_model

    with pytest.raises(exc_type) as info:
        (load or load_model)(path)
    msg = str(info.value)
    assert type(info.value) is exc_type
    assert msg.startswith(f"{path}: ") and "\n" not in msg, msg
    for fragment in fragments:
        assert fragment in msg, msg
    return msg


def permuted(mlp: MLP, rng: int | np.random.Generator) -> MLP:
    """The same function with every hidden layer's neurons shuffled (seed or generator)."""
    rng = np.random.default_rng(rng)
    ws = [np.array(la.weight) for la in mlp.layers]
    bs = [np.array(la.bias) for la in mlp.layers]
    for i in range(len(ws) - 1):
        p = rng.permutation(ws[i].shape[0])
        ws[i], bs[i], ws[i + 1] = ws[i][p], bs[i][p], ws[i + 1][:, p]
    return mlp.replace(
        [Layer(w, b, la.activation) for w, b, la in zip(ws, bs, mlp.layers, strict=True)]
    )


def store_model(root: Path, mlp: MLP, *, min_weight: float = 0.0, extra=None) -> bool:
    """Commit ``mlp``'s structural tables (and ``extra`` tables) through the store."""
    from roon.ingest.rows import model_tables
    from roon.store import write_model

    tables = model_tables(mlp, min_weight=min_weight)
    tables.update(extra or {})
    return write_model(root, mlp, tables)


def demo_models() -> list[MLP]:
    return [and_or_net(), abs_net(), random_mlp(seed=1), random_mlp(seed=2, activation="tanh")]


def build_catalogue(path: Path) -> Path:
    """Ingest :func:`demo_models` into ``path`` and return it."""
    from roon.ingest.pipeline import ingest_model
    from roon.store import open_catalogue

    root = open_catalogue(path, create=True)
    for mlp in demo_models():
        ingest_model(mlp, root, backend="ref")
    return root


# --- the graph catalogue: known answers for the graph and Neo4j tests -------------
#
# A small catalogue with known graph answers, shared by the graph and Neo4j tests.
#
# Five hand-set models (float64, so every signature below is exact by inspection):
#
# * ``xor_net`` (A): 2 inputs → [AND, OR] (relu) → OR − AND (linear);
# * ``xor_net_sorted`` (C): A with its hidden neurons swapped, derived from A (``sort``);
# * ``xor_net_scaled`` (D): C with hidden weights ×2 and output ×0.5, derived from C;
# * ``and_net`` (B): 2 inputs → AND → 2·AND;
# * ``tiny3`` (E): 3 inputs with weights 0.9, −0.2, 0.05 → one relu neuron;
#
# and lineage ``A → C → D`` plus ``A`` derived from a model the catalogue lacks
# (:data:`OUTSIDE_ID`), which becomes a bare ``(:Model {id})`` in the graph.
#
# Signatures are computed here by brute force (binary domain, weights sorted ascending,
# bit ``m`` = input ``x[i] = (m >> i) & 1``), independently of roon's kernels.

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


def graph_models() -> dict[str, MLP]:
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
                    "fire_count": fire,
                    "fire_fraction": fire / 2**n,
                    "chow": chow,
                    "truth_table": f"{table:x}",
                    "exact": True,
                    "method": "exhaustive",
                    "fragile": False,
                    "margin": None,
                }
            )
    return pa.Table.from_pylist(rows, schema=table_schema("signatures"))


def graph_lineage_table(ids: dict[str, str]) -> pa.Table:
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

    Commits the models through the store with the hand-derived signatures (and no
    tokens), so it needs only the row builders, not the whole ingest.
    """
    from roon.ingest.rows import model_tables
    from roon.store import open_catalogue, write_model, write_rows

    root = open_catalogue(path, create=True)
    ids = {}
    for letter, mlp in graph_models().items():
        write_model(root, mlp, {**model_tables(mlp), "signatures": signatures_table(mlp)})
        ids[letter] = mlp.id
    write_rows(root, "lineage", graph_lineage_table(ids))
    return ids


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

        from roon.query.neo4j import statements as cypher

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


# --- the live Neo4j server of the neo4j-marked tests ----------------------------------


def live_neo4j_settings() -> tuple[dict[str, str] | None, str]:
    """``(settings, "")`` from NEO4J_URI & co., or ``(None, why there is no server)``.

    ``make test`` (docker/neo4j-test-server/server.sh run) sets NEO4J_URI for the server
    it started, or ROON_NEO4J_SKIP_REASON when it could not start one here.
    """
    import os

    uri = os.environ.get("NEO4J_URI")
    if not uri:
        why = os.environ.get("ROON_NEO4J_SKIP_REASON") or "NEO4J_URI not set"
        return None, f"no Neo4j server: {why} (`make test` starts one where Java and Maven are)"
    return {
        "uri": uri,
        "user": os.environ.get("NEO4J_USER", "neo4j"),
        "password": os.environ.get("NEO4J_PASSWORD", ""),
        "database": os.environ.get("NEO4J_DATABASE", "neo4j"),
    }, ""


class LiveNeo4j:
    """The test server, read through the official driver rather than through roon, so a
    test checks roon's writes with a reader roon did not write."""

    def __init__(self, settings: dict[str, str]) -> None:
        from neo4j import GraphDatabase

        self.settings = settings
        self.uri, self.user, self.database = settings["uri"], settings["user"], settings["database"]
        self.password = settings["password"]
        self.driver = GraphDatabase.driver(self.uri, auth=(self.user, self.password))

    def env(self, **changes: str | None) -> dict[str, str | None]:
        """NEO4J_* variables for a ``roon`` run against this server (``changes`` on top)."""
        env: dict[str, str | None] = {
            "NEO4J_URI": self.uri,
            "NEO4J_USER": self.user,
            "NEO4J_PASSWORD": self.password,
            "NEO4J_DATABASE": self.database,
        }
        env.update(changes)
        return env

    def run(self, query: str, database: str | None = None, **params: object) -> list[dict]:
        records = self.driver.execute_query(
            query, params, database_=database or self.database
        ).records
        return [r.data() for r in records]

    def wipe(self) -> None:
        """Delete every node and relationship (the test graphs are small)."""
        self.run("MATCH (n) DETACH DELETE n")

    def drop_schema(self) -> None:
        """Drop every constraint and every index but the built-in token lookups."""
        for row in self.run("SHOW CONSTRAINTS YIELD name"):
            self.run(f"DROP CONSTRAINT `{row['name']}`")
        for row in self.run("SHOW INDEXES YIELD name, type WHERE type <> 'LOOKUP'"):
            self.run(f"DROP INDEX `{row['name']}`")

    def counts(self) -> dict[str, int]:
        """Nodes per label and relationships per type."""
        counts = {
            r["label"]: r["n"]
            for r in self.run("MATCH (n) UNWIND labels(n) AS label RETURN label, count(*) AS n")
        }
        counts.update(
            {
                r["type"]: r["n"]
                for r in self.run("MATCH ()-[r]->() RETURN type(r) AS type, count(*) AS n")
            }
        )
        return counts

    def dump(self) -> tuple[list, list]:
        """Every node and relationship with all its properties, sorted: two graphs are
        the same graph when their dumps are equal."""
        key = "coalesce(n.id, n.hash, n.name)"
        nodes = self.run(f"MATCH (n) RETURN {key} AS key, labels(n) AS labels, properties(n) AS p")
        rels = self.run(
            f"MATCH (a)-[r]->(b) RETURN {key.replace('n.', 'a.')} AS start, type(r) AS type, "
            f"{key.replace('n.', 'b.')} AS end, properties(r) AS p"
        )

        def plain(props: dict) -> list:
            return sorted((k, _plain_value(v)) for k, v in props.items())

        return (
            sorted((n["key"], sorted(n["labels"]), plain(n["p"])) for n in nodes),
            sorted((r["start"], r["type"], r["end"], plain(r["p"])) for r in rels),
        )

    def close(self) -> None:
        self.driver.close()


def _plain_value(value: object) -> object:
    """A driver value that compares and sorts, with its type: 1 and 1.0 differ, temporal
    values as ISO text, lists as tuples."""
    if hasattr(value, "iso_format"):
        return (type(value).__name__, value.iso_format())
    if isinstance(value, list):
        return ("list", tuple(_plain_value(v) for v in value))
    return (type(value).__name__, value)


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "roon-demo-catalogue")
    print(build_catalogue(target))


# --- older catalogues: what an older roon (or format version 1) left ---------------


def edit_segment(
    root: Path, model_id: str, *, drop: tuple[str, ...] = (), versions: dict | None = None
) -> None:
    """Commit a manifest in which the segment holding ``model_id`` lacks the tables in
    ``drop`` and records ``versions`` for others: what an older roon would have left."""
    from dataclasses import replace

    from roon.store.manifest import Manifest, TableFile, current_manifest, write_manifest
    from roon.store.write import catalogue_lock

    with catalogue_lock(root):
        current = current_manifest(root)
        segment = current.by_model[model_id]
        tables = {t: e for t, e in segment.tables.items() if t not in drop}
        for table, version in (versions or {}).items():
            entry = tables[table]
            tables[table] = TableFile(entry.path, entry.rows, version)
        changed = replace(segment, tables=tables)
        segments = tuple(changed if s.id == segment.id else s for s in current.segments)
        write_manifest(root, Manifest(current.generation + 1, segments))


def write_v1_catalogue(path: Path, models: list[MLP], *, lineage: pa.Table | None = None) -> Path:
    """A catalogue in format version 1 (one folder per model, one file per lineage row),
    written file by file as roon wrote it before segments: the input of the upgrade."""
    import json

    import pyarrow.parquet as pq
    from roon.schema import table_schema

    from roon.ingest.derived import DERIVED_TABLES, derived_tables
    from roon.ingest.loaders import save_safetensors
    from roon.ingest.rows import layer_domains, model_tables

    path.mkdir(parents=True)
    (path / "catalogue.json").write_text(json.dumps({"format": "roon-catalogue", "version": 1}))
    for mlp in models:
        folder = path / "models" / mlp.id
        folder.mkdir(parents=True)
        tables = model_tables(mlp, input_domain="binary")
        tables.update(derived_tables(mlp, layer_domains(mlp, "binary"), backend="ref"))
        for name, rows in tables.items():  # version 1 wrote a file even without rows
            pq.write_table(rows.cast(table_schema(name)), folder / f"{name}.parquet")
        save_safetensors(mlp, folder / "model.safetensors")
        (folder / "derived.json").write_text(json.dumps(dict(DERIVED_TABLES)))
    if lineage is not None:
        (path / "lineage").mkdir()
        for i in range(lineage.num_rows):
            row = lineage.slice(i, 1).cast(table_schema("lineage"))
            pq.write_table(row, path / "lineage" / f"{i:032x}.parquet")
    return path


def all_rows(root: Path) -> dict[str, list[dict]]:
    """Every table's rows, in one canonical order (a compaction or an upgrade may
    reorder files): equal before and after means nothing was lost or changed."""
    from roon.schema import TABLES

    from roon.store import read

    out = {}
    for table in TABLES:
        rows = read.read_table(root, table).to_pylist()
        out[table] = sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))
    return out
