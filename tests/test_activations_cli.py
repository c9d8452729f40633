"""`roon compare-activations` end to end through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fixtures import permuted, random_mlp
from typer.testing import CliRunner

from roon.cli import app
from roon.ingest.loaders import save_safetensors

pytestmark = pytest.mark.integration
runner = CliRunner()


def roon(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("activations")
    a = random_mlp((5, 8, 6, 3), seed=21)
    paths = {
        "a": save_safetensors(a, folder / "a.safetensors"),
        "b": save_safetensors(permuted(a, 2), folder / "b.safetensors"),
        "x": folder / "x.npy",
    }
    np.save(paths["x"], np.random.default_rng(0).normal(size=(400, 5)))
    return paths


def test_table_output_shows_cka_and_matched_pairs(files):
    result = roon("compare-activations", files["a"], files["b"], "--inputs", files["x"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "400 samples" in out and "linear CKA between all layer pairs" in out
    assert "│ layer0 │ 1.000  │" in out  # CKA of layer0 with its permuted twin
    assert out.count("│ equal      │") == 8 + 6 + 3  # every matched pair, signatures equal
    assert "8/8" in out and "6/6" in out


def test_json_output_and_the_figure(files, tmp_path):
    import matplotlib.image

    figure = tmp_path / "cmp.png"
    result = roon(
        "compare-activations",
        files["a"],
        files["b"],
        "--inputs",
        files["x"],
        "--layers",
        "layer0,layer1",
        "--json",
        "--plot",
        figure,
        "--debiased",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["debiased"] is True and data["cka"]["rows"] == ["layer0", "layer1"]
    assert np.allclose(np.diag(data["cka"]["values"]), 1.0, atol=1e-6)
    assert all(p["signatures_equal"] for layer in data["layers"] for p in layer["pairs"])
    image = matplotlib.image.imread(figure)
    assert image.shape[:2] == (2 * 500, 1300) and image[..., :3].var() > 0.01


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--layers", "layer9"], "has no layer 'layer9'; its layers are layer0, layer0.pre"),
        (["--threshold", "3"], "threshold 3.0"),
        (["--batch-size", "0"], "batch_size 0"),
    ],
)
def test_bad_options_give_one_line_and_exit_1(files, extra, fragment):
    result = roon("compare-activations", files["a"], files["b"], "--inputs", files["x"], *extra)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr


def test_inputs_of_the_wrong_width_or_a_missing_file(files, tmp_path):
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((10, 7)))
    result = roon("compare-activations", files["a"], files["b"], "--inputs", wrong)
    assert result.exit_code == 1 and "7 features per sample" in result.stderr
    result = roon("compare-activations", files["a"], files["b"], "--inputs", tmp_path / "no.npy")
    assert result.exit_code == 1 and "no such inputs file" in result.stderr
