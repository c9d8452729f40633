"""The pipeline: composition, provenance, parameters, step records, the CLI command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fixtures import random_mlp
from roon.schema import table_schema
from typer.testing import CliRunner

import roon
from roon import MLP, InvalidArgumentError, Layer
from roon.cli import app
from roon.ingest.normalize import RULES, Step, lineage_table, normalize


def test_steps_chain_and_provenance_records_them():
    m = random_mlp((4, 8, 6, 2), seed=2)
    child, steps = normalize(m, "dead,duplicates,rescale,canonical", dead_threshold=0.3)
    assert [s.rule for s in steps] == ["dead", "duplicates", "rescale", "canonical"]
    assert steps[0].parent_id == m.id and steps[-1].child_id == child.id
    for before, after in zip(steps, steps[1:], strict=False):
        assert after.parent_id == before.child_id
    assert [p["rule"] for p in child.provenance[-4:]] == [s.rule for s in steps]
    assert m.name == "random2" and child.name == "random2+dead,duplicates,rescale,canonical"
    same, _ = normalize(child, "canonical")  # already canonical: the same model, same name
    assert same.id == child.id and same.name == child.name
    assert child.provenance[: len(m.provenance)] == m.provenance
    assert json.loads(json.dumps(child.provenance[-1])) == steps[-1].to_dict()
    assert steps[0].changes["removed"] > 0  # threshold 0.3 kills something in this net
    assert steps[0].exact is False and steps[-1].exact is True
    assert roon.normalize is normalize


def test_rule_objects_are_pure_functions():
    m = random_mlp(seed=4)
    child, step = RULES["rescale"](m)
    assert isinstance(step, Step) and step.child_id == child.id
    assert m.id == random_mlp(seed=4).id  # the input is untouched


def test_custom_rule_callable():
    def halve_outputs(mlp: MLP, *, factor: float = 0.5):
        last = mlp.layers[-1]
        layers = [*mlp.layers[:-1], Layer(last.weight * factor, last.bias * factor, "linear")]
        return mlp.replace(layers), {"scaled": factor}

    m = random_mlp(seed=1)
    child, [step] = normalize(m, [halve_outputs], factor=0.25)
    assert step.rule == "halve_outputs" and step.params == {"factor": 0.25}
    assert step.changes == {"scaled": 0.25} and step.max_output_change > 0


@pytest.mark.parametrize(
    ("rules", "params", "message"),
    [
        ("dead,nope", {}, "unknown normalizer rule 'nope'"),
        ("", {}, "no normalizer rules"),
        ("dead", {"dead_treshold": 0.1}, "unknown normalizer parameter 'dead_treshold'"),
        ("dead", {"dead_threshold": -1.0}, "dead_threshold=-1.0"),
        ("dead", {"dead_threshold": "x"}, "not a number"),
        ("constant", {"input_bounds": (1.0, 0.0)}, "above upper bound"),
        ("constant", {"input_bounds": [[0, 1]] * 3}, "shape"),
        ("canonical", {"domain": "ternary"}, "ternary"),
    ],
)
def test_bad_requests_raise_one_line_errors(rules, params, message):
    with pytest.raises(InvalidArgumentError, match=message):
        normalize(random_mlp(seed=0), rules, **params)


def test_lineage_table_matches_schema_and_skips_noops():
    m = random_mlp(seed=3)
    _, steps = normalize(m, "zero-out,rescale,canonical")
    assert steps[0].is_noop  # a random net has no silent neuron
    table = lineage_table(steps)
    assert table.schema == table_schema("lineage")
    assert table.column("rule").to_pylist() == ["rescale", "canonical"]
    assert json.loads(table.column("params")[1].as_py()) == {"domain": "binary", "signature": True}
    assert lineage_table(steps, include_noops=True).num_rows == 3


def test_report_and_safetensors_from_the_cli(tmp_path):
    from roon.ingest.loaders import load_model, save_safetensors

    m = random_mlp((4, 8, 6, 2), seed=2, name="net")
    save_safetensors(m, tmp_path / "net.safetensors")
    out = tmp_path / "net.norm.safetensors"
    result = CliRunner().invoke(
        app,
        [
            "normalize",
            str(tmp_path / "net.safetensors"),
            "--rules",
            "dead,duplicates,rescale,canonical",
            "--dead-threshold",
            "0.3",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    child, steps = normalize(m, "dead,duplicates,rescale,canonical", dead_threshold=0.3)
    assert load_model(out).id == child.id
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["parent_id"] == m.id and report["child_id"] == child.id
    assert [s["rule"] for s in report["steps"]] == ["dead", "duplicates", "rescale", "canonical"]
    assert report["steps"][0]["params"] == {"dead_threshold": 0.3, "dead_rescore": False}
    assert "canonical" in result.output and child.id[:12] in result.output
    bad = CliRunner().invoke(app, ["normalize", str(out), "--rules", "rescale,nope"])
    assert bad.exit_code == 1 and "unknown normalizer rule 'nope'" in bad.output


def test_cli_refuses_rescale_on_silu(tmp_path):
    from roon.ingest.loaders import save_safetensors

    save_safetensors(random_mlp(seed=1, activation="silu"), tmp_path / "s.safetensors")
    result = CliRunner().invoke(
        app, ["normalize", str(tmp_path / "s.safetensors"), "-r", "rescale"]
    )
    assert result.exit_code == 1
    assert "silu" in result.output and "rescale" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_nnet_bounds_come_from_its_header():
    from roon.ingest.normalize.bounds import resolve_input_bounds

    m = MLP(
        [Layer(np.eye(2), np.zeros(2)), Layer(np.ones((1, 2)), np.zeros(1), "linear")],
        metadata={
            "nnet.mins": [0.0, -2.0],
            "nnet.maxes": [4.0, 2.0],
            "nnet.means": [1.0, 0.0, 0.0],
            "nnet.ranges": [2.0, 4.0, 1.0],
        },
    )
    lo, hi = resolve_input_bounds(m)
    np.testing.assert_allclose(lo, [-0.5, -0.5])
    np.testing.assert_allclose(hi, [1.5, 0.5])
    assert np.all(lo < [-0.5, -0.5]) and np.all(hi > [1.5, 0.5])  # rounded outward
    lo, hi = resolve_input_bounds(m, (0, 1))  # the parameter wins
    assert lo.tolist() == [0.0, 0.0]
