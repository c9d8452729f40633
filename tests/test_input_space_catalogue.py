"""The input_space table and box-domain signatures through ingest, reindex and queries."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest
import torch
from fixtures import edit_segment, random_mlp, train_xor
from typer.testing import CliRunner

import roon
from roon import MLP, Layer
from roon.cli import app
from roon.ingest.loaders import save_safetensors
from roon.ingest.reindex import reindex_catalogue
from roon.kernels.input_space import input_space_signatures
from roon.kernels.spaces import binary_space
from roon.query.input_space import recurring_input_space, task_of
from roon.store import open_catalogue, read_table

pytestmark = pytest.mark.integration

DATA = Path(__file__).parent / "data"
ACAS = DATA / "ACASXU_experimental_v2a_1_1.nnet"
runner = CliRunner()


def roon_cli(*args):
    return runner.invoke(app, [str(a) for a in args])


def _model_rows(root: Path, table: str, model_id: str) -> list[dict]:
    t = read_table(root, table)
    t = t.filter(pc.equal(t["model_id"], model_id))
    return t.sort_by([("neuron_id", "ascending")]).to_pylist()


def _save(mlp: MLP, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return save_safetensors(mlp, folder / f"{mlp.name}.safetensors")


def test_ingest_computes_the_cube_of_a_small_model_by_default(tmp_path):
    mlp = random_mlp((5, 4, 2), seed=3, name="small")
    cat = tmp_path / "cat"
    assert roon_cli("ingest", _save(mlp, tmp_path / "m"), "-c", cat).exit_code == 0
    rows = _model_rows(open_catalogue(cat), "input_space", mlp.id)
    assert len(rows) == mlp.n_neurons
    assert {r["space"] for r in rows} == {"binary"} and all(r["complete"] for r in rows)
    want = input_space_signatures(mlp, binary_space(5))
    assert [r["hash"] for r in rows if r["layer"] == 1] == want.layers[1].hash
    assert [r["pattern"] for r in rows if r["layer"] == 0] == want.layers[0].pattern
    assert rows[-1]["sign_hash"] is not None and rows[0]["sign_hash"] is None


def test_a_catalogue_without_the_table_gains_it_by_reindex_and_keeps_the_space(tmp_path):
    mlp = random_mlp((4, 3, 1), seed=8, name="signed_one")
    cat = tmp_path / "cat"
    args = ("ingest", _save(mlp, tmp_path / "m"), "-c", cat, "--input-space", "signed")
    assert roon_cli(*args).exit_code == 0
    root = open_catalogue(cat)
    before = _model_rows(root, "input_space", mlp.id)
    assert {r["space"] for r in before} == {"signed"} and before[0]["points"] == 81
    # an older roon wrote no such table: reindex takes the auto space (binary here)
    gone = tmp_path / "gone"
    shutil.copytree(cat, gone)
    edit_segment(gone, mlp.id, drop=("input_space",))
    [result] = reindex_catalogue(gone)
    assert result.tables == ("input_space",)
    assert {r["space"] for r in _model_rows(gone, "input_space", mlp.id)} == {"binary"}
    # an out-of-date table is recomputed on the space it records
    edit_segment(root, mlp.id, versions={"input_space": 0})
    [result] = reindex_catalogue(root)
    assert result.status == "reindexed" and result.tables == ("input_space",)
    assert _model_rows(root, "input_space", mlp.id) == before


def test_input_space_none_stays_none_through_reindex(tmp_path):
    mlp = random_mlp((3, 2), seed=1, name="quiet")
    cat = tmp_path / "cat"
    result = roon_cli("ingest", _save(mlp, tmp_path / "m"), "-c", cat, "--input-space", "none")
    assert result.exit_code == 0
    root = open_catalogue(cat)
    assert _model_rows(root, "input_space", mlp.id) == []
    reindex_catalogue(root, force=True)
    assert _model_rows(root, "input_space", mlp.id) == []


def test_probe_sets_are_recorded_and_a_missing_file_fails_reindex_in_one_line(tmp_path):
    mlp = random_mlp((3, 4, 1), seed=2, name="probed")
    probe = tmp_path / "probe.npy"
    np.save(probe, np.random.default_rng(0).normal(size=(50, 3)))
    cat = tmp_path / "cat"
    result = roon_cli("ingest", _save(mlp, tmp_path / "m"), "-c", cat, "--input-space", probe)
    assert result.exit_code == 0
    root = open_catalogue(cat)
    rows = _model_rows(root, "input_space", mlp.id)
    assert rows[0]["space"].startswith("probe:") and rows[0]["points"] == 50
    assert not rows[0]["complete"]
    assert json.loads(rows[0]["space_spec"])["source"] == str(probe.resolve())
    [again] = reindex_catalogue(root, force=True)
    assert again.status == "reindexed" and _model_rows(root, "input_space", mlp.id) == rows
    probe.unlink()
    [failed] = reindex_catalogue(root, force=True)
    assert failed.status == "failed" and str(probe.resolve()) in failed.reason
    assert "\n" not in failed.reason


def test_a_bad_input_space_is_refused_before_anything_is_written(tmp_path):
    mlp = random_mlp((3, 2), seed=1, name="m")
    cat = tmp_path / "cat"
    for bad in ("cubes", "box:x", tmp_path / "missing.npy"):
        result = roon_cli("ingest", _save(mlp, tmp_path / "m"), "-c", cat, "--input-space", bad)
        assert result.exit_code == 1 and "input space" in result.stderr
        assert result.stderr.count("\n") == 1
    assert not cat.exists()


NO_BOUNDS = "give --input-bounds LO,HI"


@pytest.mark.parametrize(
    "args",
    [["--input-domain", "box"], ["--input-space", "box"], ["--input-space", "box:3"]],
)
def test_box_without_declared_bounds_fails_in_one_line_naming_the_fix(tmp_path, args):
    mlp = random_mlp((3, 2), seed=1, name="m")
    cat = tmp_path / "cat"
    result = roon_cli("ingest", _save(mlp, tmp_path / "m"), "-c", cat, *args, "--json")
    assert result.exit_code == 1
    [row] = json.loads(result.stdout)
    assert row["status"] == "failed" and NO_BOUNDS in row["reason"], row
    assert "declares none" in row["reason"]
    # with bounds the same call stores the model
    ok = roon_cli("ingest", _save(mlp, tmp_path / "m"), "-c", cat, *args, "--input-bounds", "0,1")
    assert ok.exit_code == 0, ok.output


@pytest.mark.parametrize("space", ["box", "box:2"])
def test_equivalent_on_a_box_without_bounds_names_the_fix(tmp_path, space):
    path = _save(random_mlp((3, 2), seed=1, name="m"), tmp_path / "m")
    result = roon_cli("equivalent", path, path, "--space", space)
    assert result.exit_code == 1 and NO_BOUNDS in result.stderr
    assert result.stderr.count("\n") == 1
    ok = roon_cli("equivalent", path, path, "--space", space, "--input-bounds", "-1,1")
    assert ok.exit_code == 0, ok.output


def test_box_1_without_bounds_reaches_the_grid_size_error(tmp_path):
    path = _save(random_mlp((3, 2), seed=1, name="m"), tmp_path / "m")
    result = roon_cli("equivalent", path, path, "--space", "box:1")
    assert result.exit_code == 1 and "2..65536 points per axis; got 1" in result.stderr


def test_box_domain_ingest_records_box_everywhere_and_reindex_reproduces_it(tmp_path):
    mlp = random_mlp((4, 5, 3, 1), seed=6, name="boxed")
    cat = tmp_path / "cat"
    args = ["ingest", _save(mlp, tmp_path / "m"), "-c", cat, "--input-domain", "box"]
    result = roon_cli(*args, "--input-bounds", "-0.5,0.7")
    assert result.exit_code == 0, result.output
    root = open_catalogue(cat)
    layers = read_table(root, "layers").to_pylist()
    assert {row["input_domain"] for row in layers} == {"box"}
    sigs = _model_rows(root, "signatures", mlp.id)
    assert {r["domain"] for r in sigs} == {"box"}
    models = read_table(root, "models").to_pylist()
    assert json.loads(models[0]["metadata"])["input_bounds"] == [-0.5, 0.7]
    # layer 0 on the corners {-0.5, 0.7}^4 is the binary signature of w·1.2, b + w·lo
    w, b = mlp.layers[0].weight.astype(np.float64), mlp.layers[0].bias.astype(np.float64)
    binary = roon.signatures(w * 1.2, b - 0.5 * w.sum(axis=1))
    assert [r["chow"] for r in sigs if r["layer"] == 0] == [list(c) for c in binary.chow]
    space = _model_rows(root, "input_space", mlp.id)
    assert {r["space"] for r in space} == {"box"}
    assert json.loads(space[0]["space_spec"])["bounds"] == [[-0.5, 0.7]] * 4
    before = {t: _model_rows(root, t, mlp.id) for t in ("signatures", "input_space")}
    [result] = reindex_catalogue(root, force=True)
    assert result.status == "reindexed"
    assert {t: _model_rows(root, t, mlp.id) for t in before} == before


def test_acas_xu_gets_its_box_grid_and_box_signatures(tmp_path):
    cat = tmp_path / "cat"
    result = roon_cli("ingest", ACAS, "-c", cat, "--input-domain", "box", "--json")
    assert result.exit_code == 0, result.output
    root = open_catalogue(cat)
    space = read_table(root, "input_space")
    assert set(space["space"].to_pylist()) == {"box"}
    assert set(space["points"].to_pylist()) == {9**5}
    assert all(space["exact"].to_pylist())
    sigs = read_table(root, "signatures").to_pylist()
    first = [r for r in sigs if r["layer"] == 0]
    assert {r["domain"] for r in sigs} == {"box"} and all(r["exact"] for r in first)
    # judged on the real input range, far fewer first-layer neurons look dead than on {0,1}^5
    dead_box = sum(r["fire_count"] == 0 for r in first)
    binary = roon.signatures(
        roon.load_model(ACAS).layers[0].weight, roon.load_model(ACAS).layers[0].bias
    )
    assert dead_box < sum(c == 0 for c in binary.fire_count)  # 1 against 18


def test_recurring_input_space_finds_the_xor_output_in_every_seed(tmp_path):
    folder = tmp_path / "xor"
    folder.mkdir()
    for seed in range(5):
        torch.save(train_xor(seed).state_dict(), folder / f"xor_seed{seed}.pt")
    cat = tmp_path / "cat"
    assert roon_cli("ingest", folder, "-c", cat).exit_code == 0
    found = recurring_input_space(cat)
    top = found[0]
    assert (top.pattern, top.models, top.layers, top.tasks) == ("6", 5, (1,), {"xor": (5, 5)})
    assert all(r.fire_count not in (0, r.points) for r in found)  # constants left out
    assert [r.models for r in found] == sorted((r.models for r in found), reverse=True)
    with_dead = recurring_input_space(cat, include_constant=True)
    assert len(with_dead) >= len(found)


def test_complements_join_a_feature_and_its_negation(tmp_path):
    a = MLP([Layer([[1.0, -1.0]], [-0.5], "relu"), Layer([[1.0]], [0.0], "linear")], name="run_1")
    b = MLP([Layer([[-1.0, 1.0]], [0.5], "relu"), Layer([[1.0]], [0.0], "linear")], name="run_2")
    cat = tmp_path / "cat"
    files = [_save(m, tmp_path / "m") for m in (a, b)]
    assert roon_cli("ingest", *files, "-c", cat).exit_code == 0
    assert recurring_input_space(cat) == []
    [pair] = recurring_input_space(cat, complements=True)
    assert pair.models == 2 and pair.neurons == 4 and len(pair.complemented) == 2
    assert pair.tasks == {"run": (2, 2)}
    assert int(pair.pattern, 16) in (0b0010, 0b1101) and pair.fire_count in (1, 3)
    shown = roon_cli("recurring", "--space", "input", "--complements", "-c", cat, "--json")
    assert shown.exit_code == 0, shown.output
    [row] = json.loads(shown.stdout)
    assert row["hash"] == pair.hash and row["models"] == 2 and len(row["complemented"]) == 2
    plain = roon_cli("recurring", "--space", "input", "-c", cat)
    assert plain.exit_code == 0 and "nothing recurs" in plain.stdout
    wrong = roon_cli("recurring", "--complements", "--kind", "motif", "-c", cat)
    assert wrong.exit_code == 1 and "--space input" in wrong.stderr


def test_task_names_drop_a_trailing_seed_or_run_number():
    assert [task_of(n) for n in ("xor_seed3", "mlp-7", "net.s12", "ACASXU_1_2", "42")] == [
        "xor",
        "mlp",
        "net",
        "ACASXU_1",
        "42",
    ]
