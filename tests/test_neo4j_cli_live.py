"""``roon graph init|push`` and ``roon cypher`` against a real Neo4j 5 server.

``make test`` starts one (docker/neo4j-test-server) for the whole run; without Java and
Maven these tests skip with the reason shown. Every check reads the graph through the
official driver (``fixtures.LiveNeo4j``), not through roon, and every test starts from
an empty graph.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fixtures import EXPECTED_COUNTS, OUTSIDE_ID, build_graph_catalogue, signature_hash
from typer.testing import CliRunner

from roon.cli import app

pytestmark = pytest.mark.neo4j

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SCHEMA = ROOT / "schema" / "neo4j.cypher"
runner = CliRunner()
# Generous bounds for a loaded 2-core machine; the waits end as soon as the state is seen.
WAIT_S = 60.0


@pytest.fixture
def neo4j(live_neo4j: Any) -> Any:
    live_neo4j.wipe()
    yield live_neo4j
    live_neo4j.wipe()


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("cli-live") / "cat"
    return path, build_graph_catalogue(path)


def _roon(neo4j: Any, *args: str, **env: str | None) -> Any:
    """``roon ARGS`` in this process, against the live server."""
    return runner.invoke(app, list(args), env=neo4j.env(**env))


def _roon_process(neo4j: Any, *args: str, **env: str | None) -> subprocess.CompletedProcess:
    """``python -m roon ARGS`` as a real process (real exit code, real stderr)."""
    full = {**os.environ, **{k: v for k, v in neo4j.env(**env).items() if v is not None}}
    return subprocess.run(
        [sys.executable, "-m", "roon", *args], capture_output=True, text=True, env=full, timeout=120
    )


def _json(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# --- roon graph init -------------------------------------------------------------------

_STATEMENT = re.compile(
    r"CREATE (?P<kind>CONSTRAINT|TEXT INDEX|INDEX) (?P<name>\w+) IF NOT EXISTS "
    r"FOR \((?P<var>\w+):(?P<label>\w+)\) "
    r"(?:REQUIRE (?P=var)\.(?P<unique>\w+) IS UNIQUE|ON \((?P<on>[^)]*)\))"
)


def _schema_objects(neo4j: Any) -> dict[str, dict[str, Any]]:
    constraints = neo4j.run("SHOW CONSTRAINTS YIELD id, name, type, labelsOrTypes, properties")
    indexes = neo4j.run(
        "SHOW INDEXES YIELD id, name, type, labelsOrTypes, properties, state WHERE type <> 'LOOKUP'"
    )
    found = {f"constraint {c['name']}": c for c in constraints}
    found.update({f"index {i['name']}": i for i in indexes})
    return found


def test_graph_init_applies_every_schema_statement_and_a_rerun_changes_nothing(neo4j) -> None:
    neo4j.drop_schema()
    assert _schema_objects(neo4j) == {}
    statements = [
        " ".join(s.split()) for s in re.sub(r"(?m)^\s*//.*$", "", SCHEMA.read_text()).split(";")
    ]
    statements = [s for s in statements if s]
    drops = [s for s in statements if s.startswith("DROP CONSTRAINT")]
    assert drops == ["DROP CONSTRAINT circuit_name IF EXISTS"]
    parsed = [_STATEMENT.fullmatch(s) for s in statements if s not in drops]
    assert all(parsed), [s for s in statements if s not in drops and not _STATEMENT.fullmatch(s)]
    # a graph an older roon initialised keys circuits on their name: init removes that
    neo4j.run("CREATE CONSTRAINT circuit_name FOR (c:Circuit) REQUIRE c.name IS UNIQUE")

    result = _roon(neo4j, "graph", "init")
    assert result.exit_code == 0, result.output
    assert f"applied {len(statements)} schema statements" in result.stdout
    neo4j.run("CALL db.awaitIndexes(60)")
    created = _schema_objects(neo4j)

    expected: dict[str, tuple[str, list[str], list[str]]] = {}
    for m in parsed:
        assert m is not None
        label = m["label"]
        if m["kind"] == "CONSTRAINT":
            # a uniqueness constraint owns a range index of the same name
            expected[f"constraint {m['name']}"] = ("UNIQUENESS", [label], [m["unique"]])
            expected[f"index {m['name']}"] = ("RANGE", [label], [m["unique"]])
        else:
            props = [p.strip().split(".", 1)[1] for p in m["on"].split(",")]
            kind = "TEXT" if m["kind"] == "TEXT INDEX" else "RANGE"
            expected[f"index {m['name']}"] = (kind, [label], props)
    got = {k: (v["type"], v["labelsOrTypes"], v["properties"]) for k, v in created.items()}
    assert got == expected
    assert {v["state"] for k, v in created.items() if k.startswith("index")} == {"ONLINE"}

    again = _roon(neo4j, "graph", "init")
    assert again.exit_code == 0, again.output
    assert _schema_objects(neo4j) == created  # same objects, same ids: nothing was recreated


# --- roon graph push -------------------------------------------------------------------


def test_push_twice_through_the_cli_leaves_the_counts_unchanged(neo4j, catalogue) -> None:
    path, ids = catalogue
    assert _roon(neo4j, "graph", "init").exit_code == 0
    # the routing scheme, the default one, against a single server
    routed = {"NEO4J_URI": neo4j.uri.replace("bolt://", "neo4j://")}
    first = _json(_roon(neo4j, "graph", "push", "--catalogue", str(path), "--json", **routed))
    assert first["uri"] == routed["NEO4J_URI"]
    assert sorted(first["models_pushed"]) == sorted(ids.values())
    assert neo4j.counts() == EXPECTED_COUNTS
    graph = neo4j.dump()
    second = _json(_roon(neo4j, "graph", "push", "--catalogue", str(path), "--json"))
    assert second["models_pushed"] == [] and sorted(second["models_skipped"]) == sorted(
        ids.values()
    )
    assert second["nodes_created"] == second["relationships_created"] == 0
    assert neo4j.counts() == EXPECTED_COUNTS
    assert neo4j.dump() == graph


def _wait_for(what: str, check: Any) -> Any:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"not seen within {WAIT_S} s: {what}")


def test_a_push_killed_mid_batch_resumes_to_the_graph_of_a_clean_push(neo4j, catalogue) -> None:
    """SIGKILL a real `roon graph push` while one of its batch transactions is open on the
    server, re-run it, and get exactly the graph of an uninterrupted push.

    The kill lands mid-batch for certain: this test holds a write lock on the node the
    push's second MERGE_LAYERS batch of model B must update, so that batch waits on the
    server (SHOW TRANSACTIONS says `Blocked by`) until the push process is gone.
    """
    path, ids = catalogue
    order = sorted(ids.values())
    assert order[:2] == [ids["C"], ids["B"]]  # C is pushed whole first, then B
    assert _roon(neo4j, "graph", "init").exit_code == 0
    clean_push = _json(_roon(neo4j, "graph", "push", "--catalogue", str(path), "--json"))
    clean = neo4j.dump()
    neo4j.wipe()

    locked = f"{ids['B']}:1"  # B's second dense layer: batch 2 of its layers at --batch-size 1
    neo4j.run("CREATE (:Layer {id: $id})", id=locked)
    with neo4j.driver.session(database=neo4j.database) as session:
        holder = session.begin_transaction()
        holder.run("MATCH (l:Layer {id: $id}) SET l.held = true", id=locked).consume()
        env = {**os.environ, **{k: v for k, v in neo4j.env().items() if v is not None}}
        push = subprocess.Popen(
            [sys.executable, "-m", "roon", "graph", "push", "--catalogue", str(path),
             "--batch-size", "1", "--json"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            blocked = _wait_for(
                "the push's layer batch waiting on the lock",
                lambda: neo4j.run(
                    "SHOW TRANSACTIONS YIELD currentQuery, status "
                    "WHERE status STARTS WITH 'Blocked' AND currentQuery CONTAINS 'MERGE (l:Layer'"
                    " RETURN currentQuery"
                ),
            )
            assert len(blocked) == 1
            push.send_signal(signal.SIGKILL)
            assert push.wait(timeout=WAIT_S) == -signal.SIGKILL
        finally:
            if push.poll() is None:
                push.kill()
                push.wait()
            holder.rollback()
    # the server notices the dead connection and rolls its transaction back
    _wait_for(
        "the killed push's transaction gone",
        lambda: (
            not neo4j.run(
                "SHOW TRANSACTIONS YIELD currentQuery WHERE NOT currentQuery STARTS WITH 'SHOW' "
                "RETURN currentQuery"
            )
        ),
    )

    marks = {
        r["id"]: r["pushed"]
        for r in neo4j.run("MATCH (m:Model) RETURN m.id AS id, m.pushed AS pushed")
    }
    assert marks == {ids["C"]: True, ids["B"]: None}  # B's node is in, its mark is not
    layers = {r["id"]: r["model_id"] for r in neo4j.run(
        "MATCH (l:Layer) WHERE l.id STARTS WITH $b RETURN l.id AS id, l.model_id AS model_id",
        b=ids["B"],
    )}  # fmt: skip
    # B's input layer and first layer were committed; the blocked batch was not
    assert layers == {f"{ids['B']}:-1": ids["B"], f"{ids['B']}:0": ids["B"], locked: None}
    assert neo4j.counts()["Layer"] < EXPECTED_COUNTS["Layer"]

    resumed = _json(_roon(neo4j, "graph", "push", "--catalogue", str(path), "--json"))
    assert resumed["models_skipped"] == [ids["C"]] and resumed["models_pushed"] == order[1:]
    assert neo4j.counts() == EXPECTED_COUNTS
    assert neo4j.dump() == clean
    assert sorted(clean_push["models_pushed"]) == order


def test_min_weight_push_leaves_out_exactly_the_weak_feeds(neo4j, catalogue) -> None:
    path, ids = catalogue
    assert _roon(neo4j, "graph", "init").exit_code == 0
    out = _json(
        _roon(neo4j, "graph", "push", "--catalogue", str(path), "--min-weight", "0.1", "--json")
    )
    assert len(out["models_pushed"]) == len(ids)
    # tiny3's third input weighs 0.05; every other stored weight has |w| >= 0.1
    assert neo4j.counts() == {**EXPECTED_COUNTS, "FEEDS": EXPECTED_COUNTS["FEEDS"] - 1}
    weakest = neo4j.run("MATCH ()-[f:FEEDS]->() RETURN min(abs(f.weight)) AS w")[0]["w"]
    assert weakest >= 0.1
    missing = neo4j.run(
        "MATCH (a:Neuron {id: $a}), (b:Neuron {id: $b}) RETURN exists((a)-[:FEEDS]->(b)) AS e",
        a=f"{ids['E']}:-1:2",
        b=f"{ids['E']}:0:0",
    )
    assert missing == [{"e": False}]
    marks = neo4j.run("MATCH (m:Model) WHERE m.pushed RETURN DISTINCT m.feeds_min_weight AS w")
    assert marks == [{"w": 0.1}]


# --- roon cypher -----------------------------------------------------------------------


def _readme_queries() -> dict[str, tuple[str, list[str]]]:
    """The README's `roon cypher '<query>' --param ...` examples: first query line → text
    and --param values."""
    section = README.read_text().split("\n## Graph server", 1)[1].split("\n## ", 1)[0]
    found = re.findall(r"```sh\nroon cypher '\n(.*?)'((?: --param \S+)*)\n```", section, re.S)
    return {q.split("\n", 1)[0]: (q, re.findall(r"--param (\S+)", p)) for q, p in found}


def test_the_readme_example_queries_answer_as_expected(neo4j, catalogue) -> None:
    from roon.query.neo4j.connection import connect
    from roon.query.neo4j.push import push_matches

    path, ids = catalogue
    queries = _readme_queries()
    assert len(queries) == 5, sorted(queries)
    assert _roon(neo4j, "graph", "init").exit_code == 0
    assert _roon(neo4j, "graph", "push", "--catalogue", str(path), "--json").exit_code == 0
    matches = [
        {"circuit": "xor", "circuit_id": "x1", "description": "x XOR y", "model_id": ids[k],
         "layer_offset": 0, "maps": {"0": [0, 1]}, "verified": k != "D"}
        for k in ("A", "C", "D")
    ]  # fmt: skip
    with connect(neo4j.uri, neo4j.user, neo4j.password, database=neo4j.database) as store:
        assert push_matches(store, matches) == 3

    def answer(first_line: str, model: str | None = None) -> list[dict[str, Any]]:
        query, params = queries[first_line]
        params = [p.replace("MODEL_ID", ids[model]) if model else p for p in params]
        args = ["cypher", query, *[a for p in params for a in ("--param", p)], "--json"]
        return _json(_roon(neo4j, *args))

    top = answer("MATCH (n:Neuron)-[:COMPUTES]->(s:Signature)")
    and2, or2, xor = signature_hash(2, 0b1000), signature_hash(2, 0b1110), signature_hash(2, 0b0100)
    # AND2 in A, B, C, D; OR2 and OR-AND in A, C, D; then 2·x (B) and tiny3 (E), once each
    assert [(r["hash"], r["models"], r["neurons"]) for r in top[:3]] == [
        (and2, 4, 4),
        *sorted([(or2, 3, 3), (xor, 3, 3)]),
    ]
    assert len(top) == EXPECTED_COUNTS["Signature"] and {r["models"] for r in top[3:]} == {1}
    assert all(r["domain"] == "binary" and r["fan_in"] in (1, 2, 3) for r in top)

    circuit = answer("MATCH (c:Circuit {name: $circuit})-[a:APPEARS_IN]->(m:Model)")
    # verified embeddings only: D's failed the functional check
    assert [(r["model"], r["model_id"]) for r in circuit] == [
        ("xor_net", ids["A"]),
        ("xor_net_sorted", ids["C"]),
    ]

    # OR − AND fed by AND (−) and OR (+): xor_net, its sorted and its scaled copies
    motifs = answer("MATCH (src:Neuron)-[f:FEEDS]->(n:Neuron)-[:COMPUTES]->(s:Signature),")
    assert (motifs[0]["signature"], motifs[0]["models"], motifs[0]["neurons"]) == (xor, 3, 3)
    assert motifs[0]["inputs"] == sorted([and2 + "-1", or2 + "1"])
    assert all(r["models"] == 1 for r in motifs[1:])

    # xor_net's output = OR − AND: both hidden neurons feed it with |weight| 1 > 0.5
    feeding = answer("MATCH (source:Neuron)-[f:FEEDS]->(:Neuron {id: $neuron_id})", "A")
    assert [(r["source"], r["layer"], r["index"], r["weight"]) for r in feeding] == [
        (f"{ids['A']}:0:0", 0, 0, -1.0),
        (f"{ids['A']}:0:1", 0, 1, 1.0),
    ]

    lineage = answer("MATCH path = (:Model {id: $model_id})-[:DERIVED_FROM*1..]->(:Model)", "D")
    assert [(r["depth"], r["model_id"], r["rule"], r["derived_from"], r["parent_name"])
            for r in lineage] == [
        (1, ids["D"], "scale", ids["C"], "xor_net_sorted"),
        (2, ids["C"], "sort", ids["A"], "xor_net"),
        (3, ids["A"], "dead", OUTSIDE_ID, None),
    ]  # fmt: skip
    assert json.loads(lineage[0]["params"]) == {"factor": 2.0}


@pytest.mark.parametrize(
    "query",
    [
        "CREATE (n:Intruder) RETURN n",
        "MATCH (m:Model) SET m.name = 'renamed' RETURN m",
        "MERGE (n:Intruder {id: 1}) RETURN n",
        "MATCH (n) DETACH DELETE n",
        "CREATE INDEX intruder IF NOT EXISTS FOR (n:Intruder) ON (n.id)",
        "CALL db.createLabel('Intruder')",
    ],
)
def test_roon_cypher_refuses_writes(neo4j, catalogue, query: str) -> None:
    path, _ = catalogue
    assert _roon(neo4j, "graph", "push", "--catalogue", str(path), "--json").exit_code == 0
    before, indexes = neo4j.dump(), neo4j.run("SHOW INDEXES YIELD name")
    result = _roon(neo4j, "cypher", query)
    assert result.exit_code == 1
    assert result.output.strip() == (
        "roon: error: roon cypher runs read-only queries; the server refused: "
        "Writing in read access mode not allowed. Attempted write to neo4j"
    )
    assert neo4j.dump() == before and neo4j.run("SHOW INDEXES YIELD name") == indexes
    assert "Intruder" not in {r["label"] for r in neo4j.run("CALL db.labels() YIELD label")}


# --- connection errors -----------------------------------------------------------------


def _one_line_error(result: subprocess.CompletedProcess, password: str) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert password not in result.stderr
    return lines[0]


def test_a_wrong_password_ends_in_one_line_naming_the_uri(neo4j) -> None:
    wrong = "wrong-" + neo4j.password
    result = _roon_process(neo4j, "graph", "init", NEO4J_PASSWORD=wrong)
    assert _one_line_error(result, wrong) == (
        f"roon: error: Neo4j at {neo4j.uri} refused the credentials of user 'neo4j': "
        "check NEO4J_USER and NEO4J_PASSWORD"
    )
    assert neo4j.password not in result.stderr


def test_a_missing_database_ends_in_one_line_naming_the_uri(neo4j) -> None:
    result = _roon_process(neo4j, "cypher", "RETURN 1", "--database", "roon_no_such_db")
    assert _one_line_error(result, neo4j.password) == (
        f"roon: error: Neo4j at {neo4j.uri} has no database 'roon_no_such_db' (community "
        "edition has only 'neo4j'): pass --database or set NEO4J_DATABASE"
    )


def test_too_many_wrong_passwords_end_in_one_line_saying_so(neo4j) -> None:
    # A user of its own, new each run: the lock-out must not lock the other tests' user
    # out, and the server counts failed attempts per user name until a login succeeds.
    user, password = (
        f"roon_locked_out_{os.getpid()}_{time.monotonic_ns()}",
        "right-" + neo4j.password,
    )
    neo4j.run(
        f"CREATE USER {user} SET PASSWORD $pw CHANGE NOT REQUIRED", database="system", pw=password
    )
    try:
        wrong = "wrong-" + password
        for _ in range(3):  # dbms.security.auth_max_failed_attempts
            result = _roon(neo4j, "graph", "init", NEO4J_USER=user, NEO4J_PASSWORD=wrong)
            assert f"refused the credentials of user '{user}'" in result.output
        # now even the right password is refused, for auth_lock_time (5 s)
        locked = _roon_process(neo4j, "graph", "init", NEO4J_USER=user, NEO4J_PASSWORD=password)
        assert _one_line_error(locked, password) == (
            f"roon: error: Neo4j at {neo4j.uri} refused user '{user}' for now: too many wrong "
            "passwords in a row lock it for a few seconds (5 by default); check NEO4J_PASSWORD, "
            "then retry"
        )
    finally:
        neo4j.run(f"DROP USER {user} IF EXISTS", database="system")


def test_roon_cypher_shows_the_server_warnings_in_one_line_each(neo4j) -> None:
    query = "UNWIND [1, 2] AS x CALL { WITH x RETURN x * 2 AS y } RETURN y"  # 5.26: deprecated
    result = _roon_process(neo4j, "cypher", query, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"y": 2}, {"y": 4}]
    assert result.stderr.splitlines() == [
        "roon: warning: feature deprecated. CALL subquery without a variable scope clause is "
        "deprecated. Use CALL (x) { ... }"
    ]
