"""Every Cypher statement roon sends is a constant with parameters; the schema file parses.

Checked on the source (``ast``), so a later edit that splices a value into query text,
or hands the driver a string built at run time, fails here without a server.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from roon.schema import read_text

import roon.query.neo4j.statements as cypher_module
from roon.errors import QueryError
from roon.query.neo4j import model as gm
from roon.query.neo4j.connection import GraphStore
from roon.query.neo4j.schema import init_schema, schema_statements
from roon.query.neo4j.statements import EXAMPLE_QUERIES, parse_params, split_statements

ROOT = Path(__file__).resolve().parents[1]
NEO4J = ROOT / "roon" / "query" / "neo4j"
CYPHER_PY = NEO4J / "statements.py"
# the modules that talk to the driver
DRIVER_PYS = [NEO4J / f"{name}.py" for name in ("connection", "schema", "push", "read")]

STATEMENTS = {
    name: value
    for name, value in vars(cypher_module).items()
    if name.isupper() and isinstance(value, str)
}
# Calls that carry a statement to the driver, and which argument holds it.
CARRIERS = {"execute": 1, "send": 0, "execute_query": 0, "run": 0}
# Names that may carry a statement: pass-through parameters, the schema loop, the
# _MODEL_STEPS loop, and the user's own query in run_read_query.
ALLOWED_NAMES = {
    ("execute", "statement"),
    ("send", "statement"),
    ("init_schema", "statement"),
    ("push_catalogue", "statement"),
    ("work", "query"),
}


def test_every_module_level_statement_is_a_plain_string_constant() -> None:
    tree = ast.parse(CYPHER_PY.read_text())
    names = []
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            name = getattr(target, "id", "")
            # no f-strings, concatenation, % or .format() anywhere in a module-level value
            for sub in ast.walk(node.value):
                assert not isinstance(sub, ast.JoinedStr), name
                assert not (isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.Add | ast.Mod))
                if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute):
                    assert sub.func.attr in {"compile"}, (name, sub.func.attr)
            if name in STATEMENTS:
                assert isinstance(node.value, ast.Constant), name
                names.append(name)
    assert set(names) == set(STATEMENTS)
    assert len(STATEMENTS) >= 19


def _function_of(tree: ast.AST) -> dict[ast.AST, str]:
    owner: dict[ast.AST, str] = {}

    def visit(node: ast.AST, current: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, ast.FunctionDef) else current
            owner[child] = name
            visit(child, name)

    visit(tree, "<module>")
    return owner


def test_the_driver_only_ever_gets_constants_or_the_users_query() -> None:
    trees = {path.stem: ast.parse(path.read_text()) for path in DRIVER_PYS}
    owner = {k: v for tree in trees.values() for k, v in _function_of(tree).items()}
    checked = 0
    for node in (n for tree in trees.values() for n in ast.walk(tree)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if called not in CARRIERS or len(node.args) <= CARRIERS[called]:
            continue
        arg = node.args[CARRIERS[called]]
        where = owner[node]
        if isinstance(arg, ast.Attribute):
            assert isinstance(arg.value, ast.Name) and arg.value.id == "statements", ast.dump(arg)
            assert arg.attr in STATEMENTS, arg.attr
        else:
            assert isinstance(arg, ast.Name), (where, ast.dump(arg))
            assert (where, arg.id) in ALLOWED_NAMES, (where, arg.id)
        checked += 1
    assert checked >= 10
    # the statements behind the pass-through names
    steps = next(
        n.value
        for n in trees["push"].body
        if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "_MODEL_STEPS"
    )
    for pair in steps.elts:
        assert isinstance(pair.elts[1], ast.Attribute) and pair.elts[1].attr in STATEMENTS


@pytest.mark.parametrize(
    "path", ["roon/query/neo4j/export.py", "roon/query/neo4j/model.py", "roon/cli/graph_cmds.py"]
)
def test_other_graph_modules_never_talk_to_the_driver(path: str) -> None:
    tree = ast.parse((ROOT / path).read_text())
    calls = {
        n.func.attr
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
    }
    assert not calls & {"execute_query", "execute_read", "execute_write", "session"}


def test_writes_are_batched_merges_with_parameters() -> None:
    for name, text in STATEMENTS.items():
        assert "'" not in text and '"' not in text, f"{name} holds a literal string"
        if name == "FINISH_MODEL":  # sets two properties of one matched model: idempotent
            assert text.split()[:5] == ["MATCH", "(m:Model", "{id:", "$model_id})", "SET"]
        elif re.search(r"\b(MERGE|SET)\b", text):
            assert "MERGE" in text, name
            assert text.lstrip().startswith("UNWIND $rows AS row"), name
            # ON CREATE SET is MERGE's own clause; a bare CREATE would duplicate on re-push
            assert not re.search(r"(?<!ON )\bCREATE\b|\bDELETE\b", text), name


def test_every_merge_key_has_a_uniqueness_constraint() -> None:
    schema = " ".join(schema_statements())
    unique = set(re.findall(r"FOR \(\w+:(\w+)\) REQUIRE \w+\.(\w+) IS UNIQUE", schema))
    merged = set()
    for text in STATEMENTS.values():
        merged |= set(re.findall(r"MERGE \(\w+:(\w+) \{(\w+):", text))
    assert (
        merged
        == unique
        == {
            ("Model", "id"),
            ("Layer", "id"),
            ("Neuron", "id"),
            ("Signature", "hash"),
            ("Circuit", "id"),
        }
    )


def test_statements_use_exactly_the_graph_models_labels_and_types() -> None:
    text = " ".join(STATEMENTS.values())
    labels = set(re.findall(r"\(\w*:(\w+)", text)) | set(re.findall(r"SET \w+:(\w+)", text))
    types = set(re.findall(r"\[\w*:(\w+)", text))
    assert labels == set(gm.LABELS)
    assert types == set(gm.RELATIONSHIP_TYPES)


def test_schema_file_parses_into_the_statements_init_runs() -> None:
    from fixtures import FakeDriver

    statements = split_statements(read_text("neo4j.cypher"))
    assert statements == schema_statements()
    assert len(statements) == 11
    # the one DROP removes what an older roon created (Circuit keyed on its name)
    drops = [s for s in statements if s.startswith("DROP")]
    assert drops == ["DROP CONSTRAINT circuit_name IF EXISTS"]
    names = []
    for s in statements:
        if s in drops:
            continue
        m = re.fullmatch(
            r"CREATE (CONSTRAINT|TEXT INDEX|INDEX) (\w+) IF NOT EXISTS FOR \(\w+:\w+\) .+", s
        )
        assert m, s
        names.append(m.group(2))
    assert len(set(names)) == len(names)
    assert any("TEXT INDEX" in s and "s.hash" in s for s in statements)  # the Signature.hash index
    driver = FakeDriver()
    assert init_schema(GraphStore(driver, "bolt://x:7687", "neo4j")) == statements
    assert [c[0] for c in driver.calls] == statements


def test_split_statements_drops_comments_and_blank_parts() -> None:
    text = "// header; with a semicolon\nCREATE INDEX a\n  FOR (n:X) ON (n.p);\n\n// end\n;"
    assert split_statements(text) == ["CREATE INDEX a FOR (n:X) ON (n.p)"]


def test_example_queries_are_reads_whose_parameters_are_documented() -> None:
    assert set(EXAMPLE_QUERIES) == {
        "signatures_in_most_models",
        "models_with_circuit",
        "feeding_neuron",
        "recurring_motifs",
        "lineage",
    }
    for name, example in EXAMPLE_QUERIES.items():
        assert example.query in STATEMENTS.values(), name
        assert set(re.findall(r"\$(\w+)", example.query)) == set(example.params), name
        assert not re.search(r"\b(MERGE|CREATE|SET|DELETE|REMOVE)\b", example.query), name
        assert example.description


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (["n=3"], {"n": 3}),
        (["t=0.5", "ok=true"], {"t": 0.5, "ok": True}),
        (['ids=["a","b"]'], {"ids": ["a", "b"]}),
        (["name=xor"], {"name": "xor"}),
        (['name="3"'], {"name": "3"}),
        (["q=a=b"], {"q": "a=b"}),
        (["e="], {"e": ""}),
        (['m={"k": 1}'], {"m": {"k": 1}}),
    ],
)
def test_parse_params(items: list[str], expected: dict) -> None:
    assert parse_params(items) == expected


@pytest.mark.parametrize("item", ["novalue", "1x=2", "a b=1", "=3", "n-1=2"])
def test_parse_params_rejects_bad_names(item: str) -> None:
    with pytest.raises(QueryError, match="expected name=value"):
        parse_params([item])
