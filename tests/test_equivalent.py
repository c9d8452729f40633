"""Model equivalence on input spaces: trained XOR models, twins, a flipped sign, embeddings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures import fraction_preactivations, random_mlp, train_xor
from typer.testing import CliRunner

import roon
from roon import MLP, InvalidArgumentError, Layer
from roon.cli import app
from roon.ingest.loaders import save_safetensors
from roon.kernels.input_space import input_space_signatures
from roon.kernels.model_equivalence import check_embedding, compare_on_space, embedding_mlp
from roon.kernels.spaces import binary_space

runner = CliRunner()
XOR_POINTS = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=np.float64)


@pytest.fixture(scope="module")
def xor_models(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("xor")
    paths = []
    for seed in range(5):
        path = folder / f"xor_seed{seed}.pt"
        torch.save(train_xor(seed).state_dict(), path)
        paths.append(path)
    return paths


def test_xor_models_of_every_seed_share_their_output_signature(xor_models):
    models = [roon.load_model(p) for p in xor_models]
    space = binary_space(2)
    outputs = []
    for mlp in models:
        logits = mlp.forward(XOR_POINTS)[:, 0]
        assert ((logits > 0) == [False, True, True, False]).all()  # each one learned XOR
        [out] = input_space_signatures(mlp, space).layers[-1].hash
        outputs.append(out)
    assert len(set(outputs)) == 1
    assert len({m.id for m in models}) == 5  # five different networks


def test_roon_equivalent_says_the_xor_models_are_equivalent(xor_models):
    for other in xor_models[1:]:
        result = runner.invoke(app, ["equivalent", str(xor_models[0]), str(other), "--json"])
        assert result.exit_code == 0, result.output
        found = json.loads(result.stdout)
        assert found["equivalent"] is True and found["space"] == "binary"
        assert found["points"] == 4 and found["counterexample"] is None
        assert found["max_difference"] > 0  # equal decisions, different logits
        assert any("relu assumed" in note for note in found["notes"])  # state_dicts
    assert roon.equivalent(xor_models[0], xor_models[1], outputs="boolean").exact


def _permute_and_rescale(mlp: MLP, seed: int) -> tuple[MLP, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    ws = [np.array(la.weight, dtype=np.float64) for la in mlp.layers]
    bs = [np.array(la.bias, dtype=np.float64) for la in mlp.layers]
    perms = []
    for i in range(len(ws) - 1):
        p = rng.permutation(ws[i].shape[0])
        scale = rng.uniform(0.25, 4.0, size=ws[i].shape[0])
        ws[i], bs[i] = ws[i][p] * scale[:, None], bs[i][p] * scale
        ws[i + 1] = ws[i + 1][:, p] / scale[None, :]
        perms.append(p)
    layers = [Layer(w, b, la.activation) for w, b, la in zip(ws, bs, mlp.layers, strict=True)]
    return mlp.replace(layers), perms


def test_a_permuted_rescaled_twin_is_equivalent_and_every_neuron_finds_its_twin():
    mlp = random_mlp((8, 12, 9, 3), seed=5, dtype=np.float64)
    twin, perms = _permute_and_rescale(mlp, 1)
    assert twin.id != mlp.id
    space = binary_space(8)
    assert compare_on_space(mlp, twin, space).equivalent
    real = compare_on_space(mlp, twin, space, outputs="real")
    assert real.equivalent and real.max_difference < 1e-12
    a, b = input_space_signatures(mlp, space), input_space_signatures(twin, space)
    for k, (la, lb) in enumerate(zip(a.layers, b.layers, strict=True)):
        where = {h: j for j, h in enumerate(lb.hash)}
        for i, h in enumerate(la.hash):
            # twin neuron j holds original neuron perms[k][j]
            expected = int(np.flatnonzero(perms[k] == i)[0]) if k < len(perms) else i
            if la.hash.count(h) == 1:
                assert where[h] == expected, (k, i)
            assert h in where


def test_one_flipped_output_weight_breaks_equivalence_with_a_real_counterexample(tmp_path):
    mlp = random_mlp((6, 5, 1), seed=2, dtype=np.float64)
    w = np.array(mlp.layers[1].weight)
    j = int(np.argmax(np.abs(w[0])))
    w[0, j] = -w[0, j]
    flipped = mlp.replace([mlp.layers[0], Layer(w, mlp.layers[1].bias, "linear")])
    found = compare_on_space(mlp, flipped, binary_space(6))
    assert not found.equivalent and found.differing > 0
    x = found.counterexample
    za = fraction_preactivations(mlp, x)[-1][0]
    zb = fraction_preactivations(flipped, x)[-1][0]
    assert (za > 0) != (zb > 0)  # they really differ there, exactly
    # and it is the first such point in the cube's order
    earlier = binary_space(6).points(0, found.counterexample_index)
    for p in earlier:
        assert (fraction_preactivations(mlp, p)[-1][0] > 0) == (
            fraction_preactivations(flipped, p)[-1][0] > 0
        )
    save_safetensors(mlp, tmp_path / "a.safetensors")
    save_safetensors(flipped, tmp_path / "b.safetensors")
    args = ["equivalent", str(tmp_path / "a.safetensors"), str(tmp_path / "b.safetensors")]
    result = runner.invoke(app, [*args, "--json", "--counterexample"])
    assert result.exit_code == 2, result.output
    shown = json.loads(result.stdout)
    assert shown["equivalent"] is False and shown["counterexample"] == x.tolist()
    text = runner.invoke(app, [*args, "--counterexample"])
    assert "NOT equivalent" in text.stdout and "first differing input" in text.stdout


def test_real_outputs_compare_values_within_the_tolerance():
    mlp = random_mlp((4, 5, 2), seed=9, dtype=np.float64)
    shifted = mlp.replace(
        [mlp.layers[0], Layer(mlp.layers[1].weight, mlp.layers[1].bias + 1e-3, "linear")]
    )
    space = binary_space(4)
    real = compare_on_space(mlp, shifted, space, outputs="real")
    assert not real.equivalent and real.max_difference == pytest.approx(1e-3, rel=1e-6)
    loose = compare_on_space(mlp, shifted, space, outputs="real", tolerance=1e-2)
    assert loose.equivalent and not loose.exact


def test_an_embedded_circuit_checks_neuron_by_neuron():
    xor = roon.load_circuit("xor").mlp
    # a 3-input target holding the XOR circuit on inputs 2, 0 in hidden neurons 3, 1
    w0 = np.zeros((4, 3))
    w0[3, [2, 0]] = [1, -1]
    w0[1, [2, 0]] = [-1, 1]
    w0[0] = [0.5, 0.5, 0.5]
    w0[2] = [1.0, 2.0, -1.0]
    w1 = np.array([[7.0, 1.0, 3.0, 1.0], [0.0, 1.0, 0.0, -1.0]])
    target = MLP([Layer(w0, np.zeros(4), "relu"), Layer(w1, np.zeros(2), "linear")])
    sub = embedding_mlp(target, 0, [2, 0], [[3, 1], [0]])
    assert sub.widths == (2, 2, 1)
    found = check_embedding(xor, target, 0, [2, 0], [[3, 1], [0]])
    assert found.equivalent and found.exact
    wrong = check_embedding(xor, target, 0, [2, 0], [[3, 1], [1]])
    assert not wrong.equivalent
    with pytest.raises(InvalidArgumentError, match="not injective"):
        embedding_mlp(target, 0, [2, 2], [[3, 1], [0]])


def test_models_of_different_widths_are_refused_in_one_line():
    with pytest.raises(InvalidArgumentError, match="take 2 and 3 inputs"):
        compare_on_space(random_mlp((2, 3, 1)), random_mlp((3, 3, 1)), binary_space(2))
    result = runner.invoke(app, ["equivalent", "nowhere.pt", "nothing.pt", "-c", "/nonexistent"])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1


def test_a_probe_set_or_grid_verdict_says_it_holds_for_those_points_only(tmp_path):
    mlp = random_mlp((3, 4, 1), seed=4, dtype=np.float64)
    path = save_safetensors(mlp, tmp_path / "m.safetensors")
    probe = tmp_path / "probe.npy"
    np.save(probe, np.array([[0.0, 0.5, 1.0], [2.0, -1.0, 0.25]]))
    args = ["equivalent", str(path), str(path)]
    shown = json.loads(runner.invoke(app, [*args, "--space", str(probe), "--json"]).stdout)
    assert shown["equivalent"] is True and shown["complete"] is False
    assert any("2 points of the probe set only" in note for note in shown["notes"])
    text = runner.invoke(app, [*args, "--space", str(probe)])
    assert text.exit_code == 0 and "holds for the 2 points of the probe set only" in text.stdout
    grid = json.loads(
        runner.invoke(app, [*args, "--space", "box:3", "--input-bounds", "0,1", "--json"]).stdout
    )
    assert grid["complete"] is False and any("27 points of the grid" in n for n in grid["notes"])
    cube = json.loads(runner.invoke(app, [*args, "--space", "binary", "--json"]).stdout)
    assert cube["complete"] is True and cube["notes"] == []


def test_roon_equivalent_reports_progress_over_the_points(tmp_path, monkeypatch):
    from roon.cli import input_space_cmds

    events = []

    class Recorder:
        def __enter__(self):
            return lambda event: events.append((event.task, event.done, event.total))

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(input_space_cmds, "ProgressBars", Recorder)
    path = save_safetensors(random_mlp((4, 3, 1), seed=1), tmp_path / "m.safetensors")
    result = runner.invoke(app, ["equivalent", str(path), str(path), "--space", "binary"])
    assert result.exit_code == 0, result.output
    assert events and events[-1] == ("points", 16, 16)
