"""Lineage: steps stored once, drawn as a tree by ``roon lineage``."""

from __future__ import annotations

import json

import numpy as np
from fixtures import random_mlp
from typer.testing import CliRunner

from roon import MLP, Layer
from roon.cli import app
from roon.ingest.normalize import lineage_table, normalize
from roon.query.lineage import lineage_tree
from roon.store import open_catalogue, read_table, write_rows

RULES3 = "dead,duplicates,canonical"


def busy_net() -> MLP:
    """A random net plus a near-duplicate and a dead neuron in layer 0: every rule of
    RULES3 changes something."""
    base = random_mlp((4, 6, 5, 2), seed=11, dtype=np.float64, name="busy")
    w0, b0 = np.array(base.layers[0].weight), np.array(base.layers[0].bias)
    w1 = np.array(base.layers[1].weight)
    w0 = np.vstack([w0, w0[0] + 0.01, np.full(4, 0.001)])
    b0 = np.concatenate([b0, [b0[0], 0.2]])
    w1 = np.hstack([w1, np.full((5, 1), 0.5), np.full((5, 1), 0.01)])
    layers = [Layer(w0, b0), Layer(w1, base.layers[1].bias), base.layers[2]]
    return base.replace(layers)


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def indent(output: str, word: str) -> int:
    line = next(line for line in output.splitlines() if word + "(" in line)
    return len(line) - len(line.lstrip(" │├└─"))


def test_three_step_derivation_is_a_tree_and_reruns_add_nothing(tmp_path):
    from roon.ingest.loaders import save_safetensors

    m = busy_net()
    child, steps = normalize(m, RULES3)
    assert not any(s.is_noop for s in steps)
    save_safetensors(m, tmp_path / "busy.safetensors")
    cat = str(tmp_path / "cat")
    src = str(tmp_path / "busy.safetensors")
    first = json.loads(run("normalize", src, "-r", RULES3, "--store", "-c", cat, "--json"))
    assert first["lineage_rows_added"] == 3 and first["child_id"] == child.id
    again = json.loads(run("normalize", src, "-r", RULES3, "--store", "-c", cat, "--json"))
    assert again["lineage_rows_added"] == 0
    run("normalize", src, "-r", "rescale", "--store", "-c", cat)  # a second branch
    root = open_catalogue(tmp_path / "cat")
    assert read_table(root, "lineage").num_rows == 4

    out = run("lineage", m.id[:10], "-c", cat)
    assert m.id[:12] in out.splitlines()[0]
    assert indent(out, "dead") < indent(out, "duplicates") < indent(out, "canonical")
    assert indent(out, "rescale") == indent(out, "dead")
    assert child.id[:12] in out and "(not stored)" in out  # intermediates are not stored

    [tree] = json.loads(run("lineage", child.id, "-c", cat, "--json"))
    assert tree["model_id"] == m.id and tree["name"] == "busy"
    edge = tree["children"][0]
    chain = []
    while edge:
        chain.append(edge["rule"])
        node = edge["model"]
        edge = node["children"][0] if node["children"] else None
    assert chain == ["dead", "duplicates", "canonical"]
    assert node["model_id"] == child.id and node["focus"]


def test_show_and_lineage_say_what_is_not_stored_and_count_removals_plainly(tmp_path):
    from roon.ingest.loaders import save_safetensors

    m = busy_net()
    child, steps = normalize(m, RULES3)
    save_safetensors(m, tmp_path / "busy.safetensors")
    cat = str(tmp_path / "cat")
    run("normalize", str(tmp_path / "busy.safetensors"), "-r", RULES3, "--store", "-c", cat)
    removed = steps[0].changes["removed"]
    assert removed == 1  # the dead neuron of busy_net
    out = run("lineage", m.id[:8], "-c", cat)
    assert f"{removed} removed" in out and f"-{removed} removed" not in out
    # the stored child's parent is the intermediate after `duplicates`, never stored
    shown = run("show", child.id[:8], "-c", cat)
    assert f"← canonical {steps[1].child_id[:12]} (not stored" in shown
    assert f"derived from {m.id[:12]} busy by {RULES3}" in shown
    info = json.loads(run("show", child.id[:8], "-c", cat, "--json"))
    assert [r["stored"] for r in info["derived_from"]] == [False]
    assert info["origins"] == [
        {"model_id": m.id, "name": "busy", "rules": ["dead", "duplicates", "canonical"]}
    ]
    parent = run("show", m.id[:8], "-c", cat)
    assert f"→ dead {steps[0].child_id[:12]} (not stored" in parent


def test_lineage_of_an_unstored_intermediate_by_prefix(tmp_path):
    m = busy_net()
    _, steps = normalize(m, RULES3)
    root = open_catalogue(tmp_path / "cat", create=True)
    write_rows(root, "lineage", lineage_table(steps))
    middle = steps[1].child_id
    out = run("lineage", middle[:8], "-c", str(tmp_path / "cat"))
    assert "◀" in next(line for line in out.splitlines() if middle[:12] in line)
    bad = CliRunner().invoke(app, ["lineage", "ffffffff", "-c", str(tmp_path / "cat")])
    assert bad.exit_code == 1 and "no model 'ffffffff'" in bad.output


def test_lineage_tree_handles_two_parents_of_one_child():
    rows = [
        {"parent_id": p, "child_id": "c", "rule": "canonical", "params": "{}",
         "changes": "{}", "max_output_change": 0.0, "created_at": "t"}
        for p in ("a", "b")
    ] + [
        {"parent_id": "c", "child_id": "d", "rule": "dead", "params": "{}",
         "changes": "{}", "max_output_change": 0.1, "created_at": "t"}
    ]  # fmt: skip
    trees = lineage_tree(rows, "d")
    assert [t["model_id"] for t in trees] == ["a", "b"]
    assert trees[0]["children"][0]["model"]["children"][0]["model"]["model_id"] == "d"
    assert trees[1]["children"][0]["model"]["repeat"] is True
