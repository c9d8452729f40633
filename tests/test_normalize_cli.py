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
    missing = tmp_path / "no-such-dir" / "report.json"
    result = invoke("normalize", model_file, "-o", out, "--report", missing)
    one_line_failure(result, str(missing), "cannot write")
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.safetensors"]


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
