"""`roon demo`: a reduced zoo end to end; its numbers are those of a direct `where`.

One demo run (and, xor and greater at width 2, one seed, their shuffled-label controls:
6 models; 2 plants per library circuit) serves the module. Its report is checked against
``where`` called directly on the same catalogue — without the demo's ``include_derived``
search and id filtering — and against the report's own per-model records; the planted
control must find every plant; the figure must be a PNG of the documented size that is
not blank.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from roon.cli import app
from roon.errors import CatalogueError, InvalidArgumentError
from roon.ingest.loaders.circuit import list_circuits
from roon.query.match import where
from roon.store import layout
from roon.zoo import TASKS, load_zoo
from roon.zoo.demo import run_demo
from roon.zoo.figure import FIGURE_DPI, FIGURE_SIZE
from roon.zoo.findings import EXPECTED_SHARE

pytestmark = pytest.mark.integration

runner = CliRunner()
TASK_NAMES = ["and", "xor", "greater"]
PLANTS = 2


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("demo")
    report = run_demo(
        root / "zoo", root / "cat", root / "out", tasks=TASK_NAMES, seeds=1, widths=[2],
        plants=PLANTS,
    )  # fmt: skip
    return root, report


def _direct_where(circuit: str, catalogue: Path) -> set[str]:
    """Models with a verified embedding, by ``where`` with its defaults."""
    try:
        result = where(circuit, catalogue)
    except InvalidArgumentError:  # the circuit fits no model of the reduced zoo
        return set()
    return {m.model_id for m in result.verified}


def test_the_zoo_is_the_reduced_plan_and_every_model_is_catalogued(demo):
    root, report = demo
    cards = load_zoo(root / "zoo")
    assert sorted(c["task"] for c in cards) == sorted(
        TASK_NAMES + [f"shuffled-{t}" for t in TASK_NAMES]
    )
    assert report["zoo"]["models"] == 6 and report["zoo"]["controls"] == 3
    assert report["catalogue"]["models"] == 6
    ids = {m["model_id"] for m in report["models"]}
    assert ids == {c["model_id"] for c in cards}
    stored = set(layout.committed_models(root / "cat"))
    normalized = {m["normalized_id"] for m in report["models"]}
    assert ids | normalized <= stored


def test_every_count_equals_a_direct_where_on_the_same_catalogue(demo):
    root, report = demo
    task_of = {c["model_id"]: c["task"] for c in load_zoo(root / "zoo")}
    sizes = Counter(task_of.values())
    assert [c["name"] for c in report["circuits"]] == [c.name for c in list_circuits()]
    for circuit in list_circuits():
        found = Counter(task_of[m] for m in _direct_where(circuit.name, root / "cat"))
        row = report["matrix"][circuit.name]
        assert set(row) == set(sizes)
        for task, cell in row.items():
            assert cell == {"found": found.get(task, 0), "total": sizes[task]}, (circuit, task)


def test_per_model_records_agree_with_the_matrix(demo):
    _, report = demo
    for circuit, row in report["matrix"].items():
        for task, cell in row.items():
            mine = [m for m in report["models"] if m["task"] == task]
            assert cell["found"] == sum(circuit in m["found"] for m in mine)


def test_expected_outcomes_follow_the_cards_and_the_rule(demo):
    _, report = demo
    expected = {e["task"]: e for e in report["expected"]}
    assert set(expected) == {t for t in TASK_NAMES if TASKS[t].circuit}
    for task, e in expected.items():
        assert e["circuit"] == TASKS[task].circuit
        mine = [m for m in report["models"] if m["task"] == task]
        converged = [m for m in mine if m["converged"]]
        hits = sum(e["circuit"] in m["found"] for m in converged)
        assert (e["converged"], e["converged_found"]) == (len(converged), hits)
        assert e["met"] == (None if not converged else hits >= EXPECTED_SHARE * len(converged))
        structure = {m["name"] for m in mine if e["circuit"] in m["structure_only"]}
        assert set(e["structure_deviations"]) == structure
        control = report["shuffled_control"][e["circuit"]]
        assert control["task"] == f"shuffled-{task}" and control["task_total"] == 1


def test_the_planted_control_finds_every_plant(demo):
    root, report = demo
    circuits = [c.name for c in list_circuits()]
    assert report["planted_control"] == {c: {"found": PLANTS, "total": PLANTS} for c in circuits}
    planted = root / "out" / "planted-catalogue"
    assert len(layout.committed_models(planted)) == PLANTS * len(circuits)


def test_a_plant_counts_only_when_its_planted_embedding_is_verified(tmp_path: Path):
    from roon.zoo.demo import _planted_control
    from roon.zoo.plant import planted_control_models

    honest, elsewhere, wrong_input = planted_control_models(["and"], per_circuit=3)
    width = elsewhere.mlp.layers[elsewhere.offset].width
    filler = next(t for t in range(width) if t not in elsewhere.maps[0])
    inputs = wrong_input.mlp.layers[wrong_input.offset].weight.shape[1]
    unused = next(i for i in range(inputs) if i not in wrong_input.input_map)
    records = [
        honest,
        # the AND really is in each network, but not where these records say it was put
        replace(elsewhere, maps=[[filler]]),
        replace(wrong_input, input_map=[unused, *wrong_input.input_map[1:]]),
    ]
    assert _planted_control(tmp_path / "cat", records, None) == {"and": {"found": 1, "total": 3}}
    # every network has a verified AND: counting any verified embedding would say 3/3
    assert all(where("and", tmp_path / "cat", models=[p.mlp.id]).verified for p in records)
    assert _planted_control(tmp_path / "cat", [honest, elsewhere], None) == {
        "and": {"found": 2, "total": 2}
    }


def test_the_shuffled_control_counts_every_control_model(demo):
    _, report = demo
    for circuit, control in report["shuffled_control"].items():
        row = report["matrix"][circuit]
        assert control["total"] == 3
        assert control["found"] == sum(row[f"shuffled-{t}"]["found"] for t in TASK_NAMES)


def test_normalized_differences_are_real(demo):
    root, report = demo
    by_name = {m["name"]: m for m in report["models"]}
    for d in report["normalized"]["differences"]:
        m = by_name[d["model"]]
        for side, ref in (("as_ingested", m["model_id"]), ("normalized", m["normalized_id"])):
            result = where(d["circuit"], root / "cat", models=[ref])
            assert bool(result.verified) == d[side], d
    assert any(s.startswith("normalized copies") for s in report["findings"])


def test_the_figure_has_its_size_and_is_not_blank(demo):
    import matplotlib.image as mpimg

    root, report = demo
    path = Path(report["files"]["figure"])
    assert path == root / "out" / "summary.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = mpimg.imread(path)
    height, width = pixels.shape[:2]
    assert (width, height) == (
        round(FIGURE_SIZE[0] * FIGURE_DPI),
        round(FIGURE_SIZE[1] * FIGURE_DPI),
    )
    assert float(np.var(pixels[..., :3])) > 0


def test_report_json_is_the_returned_report(demo):
    root, report = demo
    saved = json.loads((root / "out" / "report.json").read_text())
    assert saved == json.loads(json.dumps(report))
    assert set(report["stages"]) == {"train", "ingest", "where", "controls", "recurring", "figure"}
    assert all(v["seconds"] >= 0 for v in report["stages"].values())


def test_recurring_rows_name_the_tasks_of_their_models(demo):
    root, report = demo
    task_of = {c["name"]: c["task"] for c in load_zoo(root / "zoo")}
    for row in report["recurring"]["neurons"] + report["recurring"]["motifs"]:
        assert row["models"] >= 2
        assert row["tasks"] == dict(Counter(task_of[n] for n in row["found_in"]))


def test_recurring_counts_only_the_zoo_models_of_a_shared_catalogue(tmp_path: Path):
    from roon import MLP, Layer
    from roon.ingest.pipeline import ingest_model
    from roon.store import open_catalogue
    from roon.zoo.demo import _recurring

    root = open_catalogue(tmp_path / "cat", create=True)

    def net(name: str, scale: float) -> MLP:  # an AND neuron (x1 + x2 > 1.5) and a linear out
        layers = [Layer(np.array([[scale, scale]]), np.array([-1.5 * scale]), "relu"),
                  Layer(np.array([[1.0]]), np.array([0.0]), "linear")]  # fmt: skip
        return MLP(layers, name=name, metadata={"input_domain": "binary"})

    nets = {name: net(name, scale) for name, scale in
            (("and-a", 1.0), ("and-b", 2.0), ("foreign-a", 3.0), ("foreign-b", 4.0))}  # fmt: skip
    for m in nets.values():
        ingest_model(m, root)
    zoo = [_model("and-a", "and"), _model("and-b", "and")]
    zoo = [replace(z, model_id=nets[z.name].id, normalized_id=nets[z.name].id) for z in zoo]
    rows = _recurring(root, zoo)["neurons"]
    [row] = [r for r in rows if r["circuits"] == ["and"]]
    # the two foreign models hold the same AND neuron: counted, they would make it 4 models
    assert row["models"] == 2 and row["found_in"] == ["and-a", "and-b"]
    assert row["tasks"] == {"and": 2}
    assert all(set(r["found_in"]) <= {"and-a", "and-b"} for r in rows)


def test_the_cli_reuses_the_zoo_and_prints_where_the_files_are(demo):
    root, report = demo
    args = ["demo", "--zoo", str(root / "zoo"), "--catalogue", str(root / "cat"),
            "--out", str(root / "out"), "--tasks", ",".join(TASK_NAMES), "--seeds", "1",
            "--widths", "2"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[-2:] == [f"report: {root / 'out' / 'report.json'}",
                          f"figure: {root / 'out' / 'summary.png'}"]  # fmt: skip
    assert "expected circuits" in result.output and "planted control" in result.output
    again = json.loads((root / "out" / "report.json").read_text())
    assert again["zoo"]["trained"] == 0 and again["zoo"]["present"] == 6
    assert again["catalogue"]["ingested"] == 0
    assert again["matrix"] == report["matrix"]


def test_bad_input_is_one_line(tmp_path: Path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidArgumentError, match="is not a directory"):
        run_demo(tmp_path / "zoo", tmp_path / "cat", tmp_path / "file", tasks=["and"])
    with pytest.raises(InvalidArgumentError, match="plants 0"):
        run_demo(tmp_path / "zoo", tmp_path / "cat", tmp_path / "out", plants=0)
    result = runner.invoke(app, ["demo", "--zoo", str(tmp_path / "zoo"), "--widths", "two"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "roon: error: --widths 'two': give comma-separated positive integers, e.g. 2,4,8"
    ]
    assert not (tmp_path / "zoo").exists()


def test_a_catalogue_that_cannot_be_one_fails_before_the_zoo_trains(tmp_path: Path):
    (tmp_path / "file").write_text("x")
    foreign = tmp_path / "etc"  # like --catalogue /etc: a folder of other files
    foreign.mkdir()
    (foreign / "passwd").write_text("root:x:0:0")
    for catalogue, message in ((tmp_path / "file", "is a file, not a directory"),
                               (foreign, "is a non-empty directory that is not a roon "
                                         "catalogue")):  # fmt: skip
        with pytest.raises(CatalogueError, match=message):
            run_demo(tmp_path / "zoo", catalogue, tmp_path / "out", tasks=["and"], seeds=1)
        args = ["demo", "--zoo", str(tmp_path / "zoo"), "--catalogue", str(catalogue),
                "--out", str(tmp_path / "out"), "--tasks", "and", "--seeds", "1"]  # fmt: skip
        result = runner.invoke(app, args)
        assert result.exit_code == 1
        [line] = result.output.strip().splitlines()
        assert line.startswith("roon: error: catalogue ") or line.startswith(
            f"roon: error: {foreign}"
        )
        assert message in line
    assert not (tmp_path / "zoo").exists() and not (tmp_path / "out").exists()
    assert sorted(p.name for p in foreign.iterdir()) == ["passwd"]
    with pytest.raises(InvalidArgumentError, match="unknown task 'nand'"):
        run_demo(tmp_path / "zoo", tmp_path / "new-cat", tmp_path / "out", tasks=["nand"])
    assert not (tmp_path / "new-cat").exists()


# -- the findings, from hand-made matches -------------------------------------------------


def _model(name: str, task: str, converged: bool = True, width: int = 2, norm: str | None = None):
    from roon.zoo.findings import DemoModel

    control = task.startswith("shuffled-")
    return DemoModel(name, task, task.removeprefix("shuffled-"), control, width, 0, converged,
                     "binary", f"id-{name}", norm or f"id-{name}")  # fmt: skip


def _match(circuit: str, model: str, verified: bool, offset: int = 0, inputs=(0, 1), unit=0):
    from roon.query.match import Match

    return Match(circuit, model, f"id-{model}", offset, [[[0, unit]]],
                 [[i, x] for i, x in enumerate(inputs)], verified,
                 0.01 if verified else 0.4)  # fmt: skip


def test_findings_count_models_not_embeddings_and_apply_the_rule():
    from roon.zoo.findings import circuit_matrix, control_counts, expected_outcomes

    models = [_model("a1", "and"), _model("a2", "and"), _model("a3", "and", converged=False),
              _model("s1", "shuffled-and")]  # fmt: skip
    # a1: two verified embeddings (one model); a2: structure only; a3: verified, not converged
    matches = {"and": [_match("and", "a1", True), _match("and", "a1", True, inputs=(1, 0)),
                       _match("and", "a2", False), _match("and", "a3", True)]}  # fmt: skip
    found = {"and": {m.model_id for m in matches["and"] if m.verified}}
    matrix = circuit_matrix(models, found)
    assert matrix == {"and": {"and": {"found": 2, "total": 3},
                              "shuffled-and": {"found": 0, "total": 1}}}  # fmt: skip
    shuffled = control_counts(matrix, {"and": "and"}, "shuffled-")
    assert shuffled["and"] == {"found": 0, "total": 1, "task": "shuffled-and", "task_found": 0,
                               "task_total": 1}  # fmt: skip
    [e] = expected_outcomes(models, {"and": "and"}, matches, matrix, shuffled, {})
    # 1 of the 2 converged models: exactly half, which meets the rule (share 0.5)
    assert EXPECTED_SHARE == 0.5
    assert (e["found"], e["total"], e["converged_found"], e["converged"]) == (2, 3, 1, 2)
    assert e["met"] is True
    assert e["structure_only"] == 1 and e["structure_deviations"] == {"a2": 0.4}
    assert e["by_width"] == {"2": [2, 3]}


def test_hidden_unit_labels_say_which_input_an_asymmetric_circuit_reads():
    from roon.zoo.findings import hidden_unit_circuits

    models = [_model("x1", "xor"), _model("x2", "xor")]
    matches = {
        "greater": [_match("greater", "x1", True, inputs=(0, 1), unit=0),
                    _match("greater", "x1", True, inputs=(1, 0), unit=1),
                    _match("greater", "x2", True, inputs=(1, 0), unit=3),
                    _match("greater", "x2", True, offset=1, unit=0)],  # not a hidden unit
        "and": [_match("and", "x2", True, unit=1), _match("and", "x2", True, inputs=(1, 0), unit=1),
                _match("and", "x1", False, unit=2)],  # not verified
    }  # fmt: skip
    units, per_task, recipes = hidden_unit_circuits(
        models, matches, {"greater": False, "and": True}, {"id-x1": 2, "id-x2": 2}
    )
    assert units == {"x1": {0: ["greater(x1,x2)"], 1: ["greater(x2,x1)"]},
                     "x2": {1: ["and"], 3: ["greater(x2,x1)"]}}  # fmt: skip
    assert per_task["xor"] == {"greater(x2,x1)": 2, "and": 1, "greater(x1,x2)": 1}
    assert recipes["xor"] == {"and + greater(x2,x1)": 1, "greater(x1,x2) + greater(x2,x1)": 1}


def test_normalized_differences_list_exactly_the_changed_verdicts():
    from roon.zoo.findings import normalized_differences

    models = [_model("m1", "or", norm="n1"), _model("m2", "or", norm="n2"),
              _model("m3", "or")]  # m3: unchanged by normalization  # fmt: skip
    found = {"or": {"id-m1", "id-m3"}}
    found_normalized = {"or": {"n2"}}
    offsets = {"or": {"id-m1": {1}, "n2": {0, 1}, "id-m3": {0}}}
    diffs = normalized_differences(models, found, found_normalized, offsets)
    assert diffs == [
        {"circuit": "or", "model": "m1", "as_ingested": True, "normalized": False, "offsets": [1]},
        {"circuit": "or", "model": "m2", "as_ingested": False, "normalized": True,
         "offsets": [0, 1]},
    ]  # fmt: skip


def test_the_default_tasks_are_every_task_but_digits_and_all_means_every_task(monkeypatch):
    import roon.zoo.demo as demo_module
    from roon.zoo.demo import DEMO_TASKS

    assert list(DEMO_TASKS) == [t for t in TASKS if t != "digits"]
    seen = []
    monkeypatch.setattr(demo_module, "run_demo", lambda *a, **kw: seen.append(kw) or {})
    for args in (["--tasks", "all"], ["--tasks", "xor,abs", "--seeds", "5"], []):
        assert runner.invoke(app, ["demo", "--json", *args]).exit_code == 0
    assert seen == [{"widths": None, "tasks": None}, {"widths": None, "tasks": ["xor", "abs"],
                    "seeds": 5}, {"widths": None}]  # fmt: skip
