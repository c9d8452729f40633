"""``roon normalize``: outputs are staged, bad arguments write nothing, errors are one line."""

from __future__ import annotations

import pytest
from fixtures import random_mlp
from typer.testing import CliRunner

from roon.cli import app
from roon.ingest.loaders import save_safetensors


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_line_failure(result, *fragments: str) -> str:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("roon: error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "net.safetensors"
    save_safetensors(random_mlp((4, 6, 5, 2), seed=4, name="net"), path)
    return path


# -- roon normalize: outputs ---------------------------------------------------------


def test_a_report_path_equal_to_the_output_is_refused(tmp_path, model_file):
    # `-o net.json` used to write the model there and then overwrite it with the report
    out = tmp_path / "net.json"
    one_line_failure(invoke("normalize", model_file, "-o", out), "overwrite the model")
    assert not out.exists()
    same = tmp_path / "same.safetensors"
    result = invoke("normalize", model_file, "-o", same, "--report", same)
    one_line_failure(result, "overwrite the model")
    assert not same.exists()


def test_an_unwritable_report_leaves_no_model_behind(tmp_path, model_file):
    out = tmp_path / "net.norm.safetensors"
    (tmp_path / "a-file").write_text("not a folder")
    unwritable = tmp_path / "a-file" / "report.json"
    result = invoke("normalize", model_file, "-o", out, "--report", unwritable)
    one_line_failure(result, str(unwritable), "cannot create its folder")
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "net.safetensors"]


def test_output_folders_are_created_and_the_report_sits_beside_out(tmp_path, model_file):
    out = tmp_path / "new" / "dir" / "net.norm.safetensors"
    result = invoke("normalize", model_file, "-o", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.parent.iterdir()) == ["net.norm.json", "net.norm.safetensors"]
    assert f"wrote {out.with_suffix('.json')}" in result.output.replace("\n", "")


def test_a_directory_as_report_or_output_is_refused_before_writing(tmp_path, model_file):
    folder = tmp_path / "folder"
    folder.mkdir()
    out = tmp_path / "o.safetensors"
    one_line_failure(invoke("normalize", model_file, "-o", out, "--report", folder), "directory")
    assert not out.exists()
    one_line_failure(invoke("normalize", model_file, "-o", folder), "directory")
    assert list(folder.iterdir()) == []


def test_outputs_leave_no_temporary_files(tmp_path, model_file):
    out = tmp_path / "net.norm.safetensors"
    assert invoke("normalize", model_file, "-o", out).exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "net.norm.json",
        "net.norm.safetensors",
        "net.safetensors",
    ]


@pytest.mark.parametrize("bounds", ["1,a", "0", "0,1,2", ""])
def test_malformed_input_bounds_are_one_line_and_exit_1(tmp_path, model_file, bounds):
    out = tmp_path / "o.safetensors"
    one_line_failure(
        invoke("normalize", model_file, "--input-bounds", bounds, "-o", out), "--input-bounds"
    )
    assert not out.exists()


def test_unknown_rule_writes_nothing(tmp_path, model_file):
    out = tmp_path / "o.safetensors"
    one_line_failure(invoke("normalize", model_file, "-r", "zero-out,bogus", "-o", out), "'bogus'")
    assert not out.exists() and not out.with_suffix(".json").exists()


# -- exact rules on structured random networks ---------------------------------------


# -- tokens ----------------------------------------------------------------------------


# -- --activation: files that store none -------------------------------------------------


@pytest.fixture
def silu_pt(tmp_path):
    """A SiLU network saved as a plain state_dict, which records no activation."""
    import torch

    mlp = random_mlp((3, 5, 4, 1), seed=7, activation="silu")
    state = {}
    for i, layer in enumerate(mlp.layers):
        state[f"fc{i}.weight"] = torch.from_numpy(layer.weight.copy())
        state[f"fc{i}.bias"] = torch.from_numpy(layer.bias.copy())
    path = tmp_path / "silu.pt"
    torch.save(state, path)
    return path


def test_normalize_reads_a_state_dict_with_the_given_activation(tmp_path, silu_pt):
    from roon.ingest.loaders import load_model
    from roon.ingest.normalize import normalize

    out = tmp_path / "dead.safetensors"
    result = invoke(
        "normalize",
        silu_pt,
        "--activation",
        "silu",
        "-r",
        "dead",
        "--dead-threshold",
        "1.5",
        "-o",
        out,
    )
    assert result.exit_code == 0, result.output
    assert "assumed" not in result.output
    written = load_model(out)
    expected, [step] = normalize(load_model(silu_pt, activation="silu"), "dead", dead_threshold=1.5)
    assert step.changes["removed"] > 0  # the threshold removes something, so act(b) is folded
    assert written.activations[:-1] == ("silu", "silu")
    assert written.id == expected.id


def test_normalize_refuses_rescale_on_a_silu_state_dict(tmp_path, silu_pt):
    out = tmp_path / "r.safetensors"
    result = invoke("normalize", silu_pt, "--activation", "silu", "-r", "rescale", "-o", out)
    one_line_failure(result, "positively homogeneous", "silu")
    assert not out.exists()


def test_normalize_says_when_the_activation_was_assumed(tmp_path, silu_pt):
    import json

    out = tmp_path / "n.safetensors"
    result = invoke("normalize", silu_pt, "-r", "zero-out", "-o", out)
    assert result.exit_code == 0, result.output
    assert "activation relu assumed (the file stores none)" in result.output
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["notes"] == ["activation relu assumed (the file stores none)"]


def test_compare_tokens_takes_the_activation(silu_pt):
    import json

    from roon.ingest.loaders import load_model

    result = invoke("compare-tokens", silu_pt, silu_pt, "--activation", "silu", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["a"] == load_model(silu_pt, activation="silu").id
    plain = invoke("compare-tokens", silu_pt, silu_pt)
    assert plain.exit_code == 0 and "activation relu assumed" in plain.output


def test_normalize_says_when_no_input_domain_was_declared(tmp_path, model_file):
    import json

    out = tmp_path / "e.safetensors"
    result = invoke("normalize", model_file, "-r", "exact", "-o", out)
    assert result.exit_code == 0, result.output
    assert "no input domain declared" in result.output
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["input_bounds"] == [None, None]
    assert report["notes"] == [
        "no input domain declared: 'constant' kept the function on every real input "
        "(give --input-bounds LO,HI for a box)"
    ]
    boxed = invoke("normalize", model_file, "-r", "exact", "--input-bounds", "0,1", "-o", out)
    assert boxed.exit_code == 0 and "no input domain" not in boxed.output
    assert json.loads(out.with_suffix(".json").read_text())["input_bounds"] == [0.0, 1.0]
    rescale = invoke("normalize", model_file, "-r", "rescale", "-o", out)  # no box involved
    assert rescale.exit_code == 0 and "no input domain" not in rescale.output


@pytest.mark.parametrize(
    "command", ["ingest", "normalize", "compare-tokens", "compare", "where", "compare-activations"]
)
def test_every_command_that_loads_model_files_takes_the_activation(command):
    import typer

    group = typer.main.get_command(app)
    options = {o for p in group.commands[command].params for o in p.opts}
    assert "--activation" in options


def test_compare_where_and_compare_activations_read_the_activation(tmp_path, silu_pt):
    import json

    import numpy as np

    from roon.ingest.loaders import load_model

    silu = load_model(silu_pt, activation="silu")
    cat = tmp_path / "cat"
    assert invoke("ingest", silu_pt, "--activation", "silu", "-c", cat).exit_code == 0
    told = invoke("compare", silu_pt, silu.id, "-c", cat, "--activation", "silu", "--json")
    assert told.exit_code == 0, told.output
    result = json.loads(told.output)
    assert result["a"]["model_id"] == result["b"]["model_id"] == silu.id
    assert result["notes"] == []
    guessed = invoke("compare", silu_pt, silu.id, "-c", cat)
    assert guessed.exit_code == 0 and "activation relu assumed" in guessed.output
    where = invoke("where", silu_pt, "-c", cat, "--activation", "silu")
    assert where.exit_code == 0, where.output
    assert "assumed" not in where.output
    assumed = invoke("where", silu_pt, "-c", cat)
    assert assumed.exit_code == 0 and "activation relu assumed" in assumed.output
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((16, 3)))
    args = ["compare-activations", silu_pt, silu.id, "-i", tmp_path / "x.npy", "-c", cat]
    same = invoke(*args, "--activation", "silu")
    assert same.exit_code == 0 and "assumed" not in same.output, same.output
    plain = invoke(*args)
    assert plain.exit_code == 0 and "activation relu assumed" in plain.output
