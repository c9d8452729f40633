"""`roon where` and `roon compare` from the command line; saved matches reach the graph."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fixtures import FakeDriver, random_mlp
from typer.testing import CliRunner

from roon import MLP, Layer
from roon.cli import app
from roon.ingest.loaders import save_safetensors
from roon.ingest.loaders.circuit import load_circuit
from roon.ingest.pipeline import ingest_model
from roon.query.neo4j import statements
from roon.query.neo4j.connection import GraphStore
from roon.query.neo4j.push import push_catalogue
from roon.store import open_catalogue, read_table

pytestmark = pytest.mark.integration
runner = CliRunner()


def xor_in_a_bigger_net() -> MLP:
    """4 inputs; xor planted on inputs 3 and 1, hidden neurons 2 and 0, output 1."""
    w0 = np.full((3, 4), 0.0)
    b0 = np.array([0.0, 0.7, 0.0])
    w0[2, [3, 1]] = [2.0, -2.0]  # relu(x3 - x1), rescaled by 2
    w0[0, [3, 1]] = [-1.0, 1.0]  # relu(x1 - x3)
    w0[1] = [0.05, -0.1, 0.08, 0.02]  # a filler that fires everywhere
    w1 = np.array([[0.0, 0.3, -0.2], [1.0, 0.0, 0.5]])  # output 1 = h0 + h2 / 2
    return MLP([Layer(w0, b0, "relu"), Layer(w1, np.array([0.6, 0.0]), "linear")], name="big")


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory) -> Path:
    root = open_catalogue(tmp_path_factory.mktemp("where") / "cat", create=True)
    ingest_model(xor_in_a_bigger_net(), root, backend="ref")
    ingest_model(random_mlp((4, 5, 2), seed=3, name="other"), root, backend="ref")
    return root


def test_where_json_has_the_documented_records(catalogue: Path):
    out = runner.invoke(app, ["where", "xor", "-c", str(catalogue), "--json"])
    assert out.exit_code == 0, out.output
    records = [r for r in json.loads(out.stdout) if r["verified"]]
    assert len(records) == 2  # the plant, and its image under xor's input swap
    keys = {"circuit", "model", "model_id", "layer_offset", "maps", "input_map", "verified",
            "deviation", "exact"}  # fmt: skip
    assert all(set(r) == keys and r["exact"] is True for r in records)
    by_input = {tuple(map(tuple, r["input_map"])): r for r in records}
    plant = by_input[((0, 3), (1, 1))]
    assert plant["maps"] == [[[0, 2], [1, 0]], [[0, 1]]] and plant["layer_offset"] == 0
    assert plant["model"] == "big" and plant["deviation"] < 1e-12


def test_where_table_says_where_and_how_often(catalogue: Path):
    out = runner.invoke(app, ["where", "xor", "-c", str(catalogue)])
    assert out.exit_code == 0, out.output
    assert "found in 1 of 2 models (2 verified embeddings" in out.stdout
    assert "0→2 1→0 | 0→1" in out.stdout


def test_other_kinds_of_pattern(tmp_path: Path, catalogue: Path):
    path = tmp_path / "xor.json"
    path.write_text(json.dumps(load_circuit("xor").as_dict()))
    as_file = runner.invoke(app, ["where", str(path), "-c", str(catalogue), "--json"])
    assert sum(r["verified"] for r in json.loads(as_file.stdout)) == 2
    model = tmp_path / "xor.safetensors"
    save_safetensors(load_circuit("xor").mlp, model)
    as_model = runner.invoke(app, ["where", str(model), "-c", str(catalogue), "--json"])
    assert sum(r["verified"] for r in json.loads(as_model.stdout)) == 2
    # a catalogued model as the pattern: found in itself
    itself = runner.invoke(app, ["where", "other", "-c", str(catalogue), "--json"])
    assert {r["model"] for r in json.loads(itself.stdout) if r["verified"]} == {"other"}


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["where", "nope"], "unknown circuit 'nope'"),
        (["where", "xor", "--limit", "0"], "Invalid value"),
        (["where", "xor", "--model", "zzzz"], "no model 'zzzz'"),
    ],
)
def test_where_errors_are_one_line_exit_1(catalogue: Path, args, fragment):
    out = runner.invoke(app, [*args, "-c", str(catalogue)])
    assert out.exit_code in (1, 2) and fragment in out.output
    if out.exit_code == 1:
        assert len(out.output.strip().splitlines()) == 1


def test_save_is_idempotent_and_push_carries_the_matches(tmp_path: Path, catalogue: Path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(catalogue, copy)
    for _ in range(2):
        out = runner.invoke(app, ["where", "xor", "-c", str(copy), "--save"])
        assert out.exit_code == 0, out.output
    saved = read_table(copy, "matches")
    total = len(json.loads(runner.invoke(app, ["where", "xor", "-c", str(copy), "--json"]).stdout))
    assert saved.num_rows == total and sum(saved["verified"].to_pylist()) == 2
    driver = FakeDriver()
    summary = push_catalogue(GraphStore(driver, "bolt://x:7687", "neo4j"), copy)
    sent = [r for s, p in driver.calls if s == statements.MERGE_MATCHES for r in p["rows"]]
    assert summary.match_rows == total == len(sent)
    assert {r["circuit"] for r in sent} == {"xor"} and all(isinstance(r["maps"], str) for r in sent)
    # the matches of a model removed since stay in the table, but never reach the graph
    assert runner.invoke(app, ["rm", "big", "-c", str(copy)]).exit_code == 0
    driver = FakeDriver()
    summary = push_catalogue(GraphStore(driver, "bolt://x:7687", "neo4j"), copy)
    assert summary.match_rows == 0 and read_table(copy, "matches").num_rows == total


def test_compare_finds_the_shared_and_embedded_parts(tmp_path: Path, catalogue: Path):
    xor = tmp_path / "xor.safetensors"
    save_safetensors(load_circuit("xor").mlp, xor)
    out = runner.invoke(app, ["compare", str(xor), "big", "-c", str(catalogue), "--json"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert result["a_in_b"]["whole_model_at"] == [0]  # xor embeds in big at offset 0
    assert result["b_in_a"]["whole_model_at"] == []
    assert result["shared_neurons"] == 0  # fan-ins differ (2 vs 4): no equal signature
    table = runner.invoke(app, ["compare", str(xor), "big", "-c", str(catalogue)])
    assert "embeds in big at layer offset 0" in table.stdout
    # the same circuit with its hidden units swapped: everything shared, both ways
    c = load_circuit("xor").mlp
    swapped = MLP(
        [Layer(c.layers[0].weight[::-1], c.layers[0].bias[::-1], "relu"),
         Layer(c.layers[1].weight[:, ::-1], c.layers[1].bias, "linear")],
        name="swapped",
    )  # fmt: skip
    other = tmp_path / "swapped.safetensors"
    save_safetensors(swapped, other)
    both = json.loads(runner.invoke(app, ["compare", str(xor), str(other), "--json"]).stdout)
    assert both["shared_neurons"] == 3
    for direction in ("a_in_b", "b_in_a"):
        assert both[direction]["whole_model_at"] == [0]
        assert {(c["layer"], c["in_layer"], c["embeds"]) for c in both[direction]["contained"]} >= {
            (0, 0, True),
            (1, 1, True),
        }
