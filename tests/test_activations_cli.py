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
        (["--top", "-1"], "--top': Input should be greater than or equal to 0"),
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


@pytest.fixture
def catalogue(files, tmp_path) -> Path:
    root = tmp_path / "cat"
    result = roon("ingest", files["a"], files["b"], "--catalogue", root)
    assert result.exit_code == 0, result.output
    return root


def _sql(catalogue: Path, query: str) -> list[dict]:
    result = roon("sql", query, "--catalogue", catalogue, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_save_stores_the_matching_once_and_models_resolve_by_reference(files, catalogue):
    from roon.ingest.loaders import load_model

    a, b = load_model(files["a"]), load_model(files["b"])
    args = ["compare-activations", a.id[:8], b.id, "--inputs", files["x"], "--save"]
    args += ["-c", catalogue]
    first = roon(*args)  # an id prefix and a full id, resolved in the catalogue
    assert first.exit_code == 0, first.output
    assert "stored 17 new matched pairs" in first.stderr
    rows = _sql(
        catalogue,
        "SELECT layer_a, count(*) AS n, bool_and(signatures_equal) AS eq, "
        "min(correlation) AS r FROM activation_matches GROUP BY ALL ORDER BY ALL",
    )
    assert [(r["layer_a"], r["n"], r["eq"]) for r in rows] == [
        ("layer0", 8, True),
        ("layer1", 6, True),
        ("layer2", 3, True),
    ]
    assert all(r["r"] == pytest.approx(1.0, abs=1e-9) for r in rows)  # b is a permuted a
    again = roon(*args)
    assert again.exit_code == 0 and "stored 0 new matched pairs" in again.stderr
    joined = _sql(
        catalogue,
        "SELECT count(*) AS n FROM activation_matches m JOIN models ma ON ma.model_id = m.model_a",
    )
    assert joined == [{"n": 17}]


def test_save_refuses_a_model_outside_the_catalogue_before_any_work(files, catalogue, tmp_path):
    other = save_safetensors(random_mlp((5, 8, 6, 3), seed=99), tmp_path / "other.safetensors")
    result = roon(
        "compare-activations", files["a"], other, "--inputs", files["x"], "--save", "-c", catalogue
    )
    assert result.exit_code == 1
    assert "is not in" in result.stderr and "ingest it first" in result.stderr
    assert result.stdout == ""  # refused before comparing
    assert _sql(catalogue, "SELECT count(*) AS n FROM activation_matches") == [{"n": 0}]


def test_matching_rows_follow_the_schema(files):
    from roon.schema import table_schema

    from roon.query.activations import compare_activations
    from roon.query.activations.store import matching_table

    result = compare_activations(files["a"], files["b"], files["x"])
    table = matching_table(result)
    assert table.schema == table_schema("activation_matches")
    assert table.num_rows == 17
    assert set(table.column("inputs_digest").to_pylist()) == {result.inputs_digest}


def test_plot_into_a_missing_folder_creates_it(files, tmp_path):
    figure = tmp_path / "figures" / "run1" / "cmp.png"
    result = roon("compare-activations", files["a"], files["b"], "--inputs", files["x"],
                  "--plot", figure)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert figure.is_file() and f"figure written to {figure}" in result.stderr
