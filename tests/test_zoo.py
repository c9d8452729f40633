"""roon.zoo: the tasks and their data, deterministic training, cards, `roon zoo train`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from roon import ingest_models, load_model
from roon.cli import app
from roon.errors import InvalidArgumentError
from roon.zoo import TASKS, load_card, load_zoo, resolve_tasks, train_model, train_zoo

runner = CliRunner()

# Independent definitions of the tasks (the oracle the zoo's data are checked against).
GATES = {
    "and": lambda a, b: a & b,
    "or": lambda a, b: a | b,
    "xor": lambda a, b: a ^ b,
    "maj3": lambda a, b, c: int(a + b + c >= 2),
    "parity3": lambda a, b, c: a ^ b ^ c,
}
FUNCTIONS = {
    "abs": lambda x: abs(x[0]),
    "min": lambda x: min(x[0], x[1]),
    "max": lambda x: max(x[0], x[1]),
    "sub": lambda x: x[0] - x[1],
    "absdiff": lambda x: abs(x[0] - x[1]),
    "greater": lambda x: max(x[0] - x[1], 0.0),
}


def cube_points(n: int) -> list[tuple[int, ...]]:
    """{0,1}^n with point m having x[i] = bit i of m (roon's signature order)."""
    return [tuple((m >> i) & 1 for i in range(n)) for m in range(2**n)]


def file_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def small_zoo(tmp_path_factory) -> tuple[Path, object]:
    """xor and abs, seeds 0-1, width 4, with their controls: 8 models, about a second."""
    root = tmp_path_factory.mktemp("zoo")
    return root, train_zoo(root, ["xor", "abs"], seeds=2, widths=[4])


# -- tasks and data ----------------------------------------------------------------------


def test_task_data_are_the_functions_they_name():
    for name, gate in GATES.items():
        data = TASKS[name].dataset()
        n = TASKS[name].inputs
        assert data.x.tolist() == [list(map(float, p)) for p in cube_points(n)]
        assert data.y.tolist() == [float(gate(*p)) for p in cube_points(n)]
        assert TASKS[name].input_domain == "binary" and TASKS[name].input_bounds == (0.0, 1.0)
    for name, fn in FUNCTIONS.items():
        task = TASKS[name]
        data = task.dataset()
        assert data.x.shape == (4096, task.inputs) and data.x.dtype == np.float32
        assert data.x.min() >= -1.0 and data.x.max() <= 1.0 and data.x.std() > 0.5
        expected = [fn([float(v) for v in row]) for row in data.x[:200]]
        assert np.allclose(data.y[:200], expected, atol=1e-6)
        grid = data.x_eval
        assert {-1.0, 0.0, 1.0} <= set(grid[:, 0].tolist())  # corners and the kink at 0
        assert np.allclose(data.y_eval, [fn([float(v) for v in row]) for row in grid], atol=1e-6)
        assert task.input_domain == "signed" and task.input_bounds == (-1.0, 1.0)


def test_each_task_names_a_library_circuit_that_exists():
    from roon.ingest.loaders.circuit import list_circuits

    library = {c.name: c for c in list_circuits()}
    named = {name: task.circuit for name, task in TASKS.items() if task.circuit}
    assert set(named) == set(TASKS) - {"absdiff", "parity3", "digits"}
    for name, circuit in named.items():
        assert circuit in library, circuit
        task, reference = TASKS[name], library[circuit]
        assert reference.input_domain == task.input_domain
        assert reference.input_width == task.inputs


def test_digits_are_the_bundled_ones_scaled_and_split_by_class():
    data = TASKS["digits"].dataset()
    assert data.x.shape == (1437, 64) and data.x_eval.shape == (360, 64)
    assert data.x.min() == 0.0 and data.x.max() == 1.0
    counts = np.bincount(data.y_eval, minlength=10)
    assert counts.sum() == 360 and counts.min() >= 35 and counts.max() <= 37  # stratified
    # the same split every call (the split seed is fixed)
    from roon.zoo.tasks import _digits

    assert np.array_equal(_digits().y, data.y)


def test_shuffled_controls_permute_the_targets():
    for name in TASKS:
        real = TASKS[name].dataset()
        control = TASKS[name].shuffled()
        assert control.name == f"shuffled-{name}" and control.is_control
        assert control.base == name and control.circuit is None
        one, same, other = control.dataset(0), control.dataset(0), control.dataset(1)
        assert np.array_equal(one.x, real.x)  # the same inputs
        assert np.array_equal(np.sort(one.y), np.sort(real.y))  # the same targets ...
        assert not np.array_equal(one.y, real.y)  # ... in another order
        assert np.array_equal(one.y, same.y)  # seeded
        assert np.array_equal(one.y_eval, real.y_eval)  # judged against the real task
        assert one.shuffle_seed == 0 and real.shuffle_seed is None
        if len(real.y) > 8:  # a 4-point cube has few orders; thousands of points do not
            assert not np.array_equal(one.y, other.y)


def test_unknown_task_names_error_cleanly(tmp_path: Path):
    with pytest.raises(InvalidArgumentError) as info:
        resolve_tasks(["xor", "nand"])
    message = str(info.value)
    assert "'nand'" in message and "and, or, xor, maj3" in message and "\n" not in message
    with pytest.raises(InvalidArgumentError, match="'shuffled-nand'"):
        train_zoo(tmp_path / "zoo", ["shuffled-nand"])
    with pytest.raises(InvalidArgumentError, match="seeds 0"):
        train_zoo(tmp_path / "zoo", ["xor"], seeds=0)
    with pytest.raises(InvalidArgumentError, match="widths"):
        train_zoo(tmp_path / "zoo", ["xor"], widths=[0])
    assert not (tmp_path / "zoo").exists()  # nothing written on bad input
    result = runner.invoke(app, ["zoo", "train", str(tmp_path / "zoo"), "--tasks", "and,nand"])
    assert result.exit_code == 1 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("roon: error: unknown task 'nand'")
    result = runner.invoke(app, ["zoo", "train", str(tmp_path / "zoo"), "--widths", "2,x"])
    assert result.exit_code == 1 and "--widths '2,x'" in result.stderr
    assert not (tmp_path / "zoo").exists()


def test_int_lists_parse_and_name_the_option_on_bad_input():
    from roon.cli._common import parse_int_list

    assert parse_int_list(None, "--widths") is None
    assert parse_int_list("2, 4,,8,", "--widths") == [2, 4, 8]
    for bad in ("", ",", "2,x", "2.5", "0", "4,-1"):
        with pytest.raises(InvalidArgumentError) as info:
            parse_int_list(bad, "--seeds")
        assert str(info.value) == (
            f"--seeds {bad!r}: give comma-separated positive integers, e.g. 2,4,8"
        )


# -- training, files, determinism --------------------------------------------------------


def test_reduced_zoo_end_to_end(small_zoo):
    root, result = small_zoo
    names = [m.name for m in result.models]
    assert names == [
        "xor-w4-s0", "xor-w4-s1", "abs-w4-s0", "abs-w4-s1",
        "shuffled-xor-w4-s0", "shuffled-xor-w4-s1", "shuffled-abs-w4-s0", "shuffled-abs-w4-s1",
    ]  # fmt: skip
    assert {m.status for m in result.models} == {"trained"}
    for model in result.models:
        assert model.path == root / model.task / f"{model.name}.safetensors"
        card = load_card(model.path)
        assert card == model.card == json.loads(model.path.with_suffix(".json").read_text())
        assert card["weights_sha256"] == hashlib.sha256(model.path.read_bytes()).hexdigest()
    assert not list(root.rglob("*.tmp"))  # no temporary file left behind
    assert [c["name"] for c in load_zoo(root)] == sorted(
        names, key=lambda n: (n.rsplit("-w", 1)[0], n)
    )
    summary = {s.task: s for s in result.by_task()}
    assert list(summary) == ["xor", "abs", "shuffled-xor", "shuffled-abs"]
    assert summary["xor"].models == 2 and summary["xor"].mean_max_error is None
    errors = [m.card["metrics"]["max_error"] for m in result.models if m.task == "abs"]
    assert summary["abs"].mean_accuracy is None
    assert summary["abs"].mean_max_error == pytest.approx(np.mean(errors))
    converged = [m.card["converged"] for m in result.models if m.task == "shuffled-abs"]
    assert summary["shuffled-abs"].converged == sum(converged)


def test_rerun_skips_identical_cards_and_force_retrains(tmp_path: Path):
    root = tmp_path / "zoo"
    first = train_zoo(root, ["and", "greater"], seeds=1, widths=[2], controls=False)
    before = file_bytes(root)
    again = train_zoo(root, ["and", "greater"], seeds=1, widths=[2], controls=False)
    assert [m.status for m in again.models] == ["present", "present"]
    assert [m.card for m in again.models] == [m.card for m in first.models]
    assert file_bytes(root) == before
    # a card from another recipe, or weights that no longer match it, mean: train again
    card_path = root / "and" / "and-w2-s0.json"
    card = json.loads(card_path.read_text())
    card["hyperparameters"]["lr"] = 0.5
    card_path.write_text(json.dumps(card))
    (root / "greater" / "greater-w2-s0.safetensors").write_bytes(b"not a model")
    third = train_zoo(root, ["and", "greater"], seeds=1, widths=[2], controls=False)
    assert [m.status for m in third.models] == ["trained", "trained"]
    assert file_bytes(root) == before
    forced = train_zoo(root, ["and"], seeds=1, widths=[2], controls=False, force=True)
    assert [m.status for m in forced.models] == ["trained"]
    assert file_bytes(root) == before


def test_same_seed_gives_the_same_bytes(tmp_path: Path):
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    options = {"seeds": 2, "widths": [2], "controls": True}
    train_zoo(tmp_path / "a", ["and", "sub"], **options)
    train_zoo(tmp_path / "b", ["and", "sub"], **options)
    a, b = file_bytes(tmp_path / "a"), file_bytes(tmp_path / "b")
    assert len(a) == 16 and a == b  # 8 models: weights and card each
    assert torch.get_num_threads() == threads  # restored
    # the seed matters: another seed, other weights
    assert a["and/and-w2-s0.safetensors"] != a["and/and-w2-s1.safetensors"]
    one, two = train_model("sub", 2, 0), train_model("sub", 2, 0)
    assert one.mlp == two.mlp and one.card == two.card


def test_trained_gates_compute_their_gate_on_the_cube(tmp_path: Path):
    result = train_zoo(tmp_path / "zoo", ["and", "or", "xor"], seeds=5, controls=False)
    assert len(result.models) == 45  # widths 2, 4, 8 × seeds 0-4 × 3 gates
    for model in result.models:
        mlp = load_model(model.path)
        points = cube_points(2)
        fires = mlp.forward(np.array(points, dtype=np.float64))[:, 0] > 0.5
        right = [bool(f) == bool(GATES[model.task](*p)) for f, p in zip(fires, points, strict=True)]
        card = model.card
        assert card["metrics"]["accuracy"] == sum(right) / 4  # the card tells the truth
        if card["converged"]:
            assert all(right)  # MSE < 1e-3 on 4 points: every error below 0.07
    # MSE onto 0/1 strands a net whose ReLUs die at the start (loss 0.125, the linear fit):
    # measured 2 of the 30 and/or nets; their cards say converged: false
    easy = [m for m in result.models if m.task in ("and", "or")]
    assert sum(m.card["converged"] for m in easy) >= 25


def test_arithmetic_models_have_small_error(tmp_path: Path):
    result = train_zoo(tmp_path / "zoo", list(FUNCTIONS), seeds=2, widths=[8], controls=False)
    rng = np.random.default_rng(12345)  # fresh points, not the training sample
    for model in result.models:
        card, mlp = model.card, load_model(model.path)
        assert card["converged"] and card["final_loss"] < 1e-4
        x = rng.uniform(-1.0, 1.0, size=(2000, card["inputs"]))
        truth = np.array([FUNCTIONS[model.task](row) for row in x])
        error = np.abs(mlp.forward(x)[:, 0] - truth)
        assert np.mean(error**2) < 5e-4 and error.max() < 0.3, model.name
        assert card["metrics"]["max_error"] < 0.3 and card["metrics"]["mse"] < 5e-4


def test_digits_models_classify_and_their_controls_do_not(tmp_path: Path):
    result = train_zoo(tmp_path / "zoo", ["digits"], seeds=1, widths=[16])
    real, control = (m.card for m in result.models)
    assert real["metrics"]["accuracy"] > 0.9 and real["converged"]
    assert control["control"] and control["metrics"]["accuracy"] < 0.3  # ~chance, 0.1
    data = TASKS["digits"].dataset()
    mlp = load_model(result.models[0].path)
    accuracy = np.mean(mlp.forward(data.x_eval.astype(np.float64)).argmax(axis=1) == data.y_eval)
    assert accuracy == real["metrics"]["accuracy"]


def test_card_fields_are_present_and_typed(small_zoo):
    _, result = small_zoo
    types = {
        "task": str, "base_task": str, "control": bool, "kind": str, "name": str,
        "seed": int, "width": int, "widths": list, "hidden_layers": int, "inputs": int,
        "outputs": int, "activations": list, "epochs": int, "final_loss": float,
        "converged": bool, "metrics": dict, "input_domain": str, "input_bounds": list,
        "roon_version": str, "torch_version": str, "hyperparameters": dict, "weights": str,
        "weights_sha256": str, "model_id": str, "card_version": int,
    }  # fmt: skip
    from roon import __version__

    for model in result.models:
        card = model.card
        for key, kind in types.items():
            assert isinstance(card[key], kind), (key, card[key])
        assert card["roon_version"] == __version__
        assert card["activations"] == ["relu", "linear"] and card["widths"] == [4]
        hyper = card["hyperparameters"]
        assert hyper["optimizer"] == "adam" and hyper["batch"] == "full"
        assert isinstance(hyper["lr"], float) and isinstance(hyper["max_epochs"], int)
        assert 0 < card["epochs"] <= hyper["max_epochs"]
        if card["task"].endswith("xor"):
            assert card["input_domain"] == "binary" and card["input_bounds"] == [0.0, 1.0]
            assert set(card["metrics"]) >= {"accuracy", "train_accuracy", "target_table"}
        else:
            assert card["input_domain"] == "signed" and card["input_bounds"] == [-1.0, 1.0]
            assert set(card["metrics"]) >= {"mse", "max_error", "grid_points"}
        if card["control"]:
            assert card["shuffle_seed"] == card["seed"] and card["circuit"] is None
        else:
            assert card["shuffle_seed"] is None and card["circuit"] == card["task"]
    tables = [m.card["metrics"]["target_table"] for m in result.models if "xor" in m.task]
    assert tables[:2] == ["0110", "0110"] and "0110" not in tables[2:]  # controls: permuted


def test_ingest_of_the_zoo_reads_names_domains_and_bounds(small_zoo, tmp_path: Path):
    root, result = small_zoo
    results = ingest_models([root], tmp_path / "cat", backend="ref")
    assert {r.status for r in results} == {"ingested"}
    from roon import read_table

    models = {r["model_id"]: r for r in read_table(tmp_path / "cat", "models").to_pylist()}
    layers = read_table(tmp_path / "cat", "layers").to_pylist()
    domain = {r["model_id"]: r["input_domain"] for r in layers if r["layer"] == 0}
    for model in result.models:
        card = model.card
        row = models[card["model_id"]]  # the card's model id is roon's
        assert row["name"] == card["name"]
        assert domain[card["model_id"]] == card["input_domain"]
        metadata = json.loads(row["metadata"])
        assert metadata["input_bounds"] == card["input_bounds"]
        assert metadata["zoo.task"] == card["task"] and metadata["zoo.seed"] == card["seed"]


def test_progress_reports_every_model_and_epochs(tmp_path: Path):
    events = []
    train_zoo(tmp_path / "zoo", ["or"], seeds=2, widths=[4], progress=events.append)
    models = [e for e in events if e.task == "models"]
    assert [(e.done, e.total) for e in models] == [(i, 4) for i in range(5)]
    names = ["or-w4-s0", "or-w4-s1", "shuffled-or-w4-s0", "shuffled-or-w4-s1"]
    assert [e.detail for e in models[:4]] == names
    finished = [e for e in events if e.task == "epochs" and e.done == e.total]
    assert [e.detail for e in finished] == names


def test_two_hidden_layers_train_and_name_both_widths():
    task = replace(TASKS["xor"], hidden_layers=2)
    trained = train_model(task, 4, 0)
    assert trained.mlp.widths == (2, 4, 4, 1) and trained.mlp.name == "xor-w4x4-s0"
    assert trained.mlp.activations == ("relu", "relu", "linear")
    assert trained.card["widths"] == [4, 4] and trained.card["metrics"]["accuracy"] == 1.0


def test_cli_trains_prints_a_summary_and_skips_on_rerun(tmp_path: Path):
    args = ["zoo", "train", str(tmp_path / "zoo"), "--tasks", "or", "--seeds", "1"]
    first = runner.invoke(app, [*args, "--widths", "2,4", "--no-controls"])
    assert first.exit_code == 0, first.output
    assert "│ or " in first.stdout and "2/2" in first.stdout
    assert "trained 2 models, 0 already present" in first.stdout
    again = runner.invoke(app, [*args, "--widths", "2,4", "--no-controls", "--json"])
    assert again.exit_code == 0, again.output
    report = json.loads(again.stdout)
    assert [m["status"] for m in report["models"]] == ["present", "present"]
    assert report["tasks"][0]["task"] == "or" and report["tasks"][0]["trained"] == 0
    assert sorted(p.name for p in (tmp_path / "zoo" / "or").iterdir()) == [
        "or-w2-s0.json", "or-w2-s0.safetensors", "or-w4-s0.json", "or-w4-s0.safetensors",
    ]  # fmt: skip
