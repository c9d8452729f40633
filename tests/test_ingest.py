"""ingest_models: progress, modules, normalization, source expansion."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pytest
from fixtures import random_mlp

from roon import CatalogueError, InvalidArgumentError, ingest_models
from roon.ingest import expand_sources
from roon.progress import Progress
from roon.store import list_models, read_table

pytestmark = pytest.mark.integration

DATA = Path(__file__).parent / "data"
ACAS = DATA / "ACASXU_experimental_v2a_1_1.nnet"


def test_progress_reports_every_neuron_once(tmp_path: Path):
    events: list[Progress] = []
    [result] = ingest_models([ACAS], tmp_path / "cat", progress=events.append, backend="ref")
    assert result.status == "ingested"
    models = [(e.done, e.total, e.detail) for e in events if e.task == "models"]
    assert models == [(0, 1, ACAS.name), (1, 1, ACAS.name)]
    neurons = [e for e in events if e.task == "neurons"]
    done = [e.done for e in neurons]
    assert all(b > a for a, b in zip(done, done[1:], strict=False))  # each neuron once
    assert done[-1] == 305 and {e.total for e in neurons} == {305}


def test_in_memory_module_is_ingested_with_its_activations(tmp_path: Path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    [result] = ingest_models([net], tmp_path / "cat")
    assert result.status == "ingested" and result.source == "<module Sequential>"
    layers = read_table(tmp_path / "cat", "layers").to_pylist()
    assert [r["activation"] for r in layers] == ["tanh", "linear"]
    # after tanh the next layer's inputs can be negative: signed domain
    assert [r["input_domain"] for r in layers] == ["binary", "signed"]
    domains = read_table(tmp_path / "cat", "signatures").column("domain").to_pylist()
    assert domains == ["binary"] * 4 + ["signed"] * 2


def test_input_domain_comes_from_the_model_metadata_unless_given(tmp_path: Path):
    from fixtures import abs_net, random_mlp

    from roon.ingest.loaders import save_safetensors

    signed = save_safetensors(
        abs_net().replace(metadata={"input_domain": "signed"}), tmp_path / "abs.safetensors"
    )
    plain = save_safetensors(random_mlp(seed=3, name="plain"), tmp_path / "plain.safetensors")
    results = ingest_models([signed, plain], tmp_path / "cat", backend="ref")
    assert [r.status for r in results] == ["ingested", "ingested"]
    layers = read_table(tmp_path / "cat", "layers").to_pylist()
    by_model = {(r["model_id"], r["layer"]): r["input_domain"] for r in layers}
    assert by_model[(results[0].model_id, 0)] == "signed"  # from the metadata
    assert by_model[(results[1].model_id, 0)] == "binary"  # nothing recorded: binary
    # an explicit domain wins over the metadata
    [explicit] = ingest_models([signed], tmp_path / "cat2", input_domain="binary", backend="ref")
    layers = read_table(tmp_path / "cat2", "layers").to_pylist()
    assert [r["input_domain"] for r in layers if r["layer"] == 0] == ["binary"]
    # a domain roon does not know fails that source with one line, the others go on
    odd = save_safetensors(
        abs_net().replace(metadata={"input_domain": "ternary"}), tmp_path / "odd.safetensors"
    )
    [bad] = ingest_models([odd], tmp_path / "cat3", backend="ref")
    assert bad.status == "failed" and "'ternary'" in bad.reason and "\n" not in bad.reason


def test_normalize_stores_both_models_and_the_lineage(tmp_path: Path):
    cat = tmp_path / "cat"
    [result] = ingest_models([ACAS], cat, normalize=["rescale", "canonical"])
    assert result.status == "ingested" and result.parent_id is not None
    assert result.model_id != result.parent_id
    assert sorted(list_models(cat)) == sorted([result.model_id, result.parent_id])
    steps = read_table(cat, "lineage").to_pylist()
    assert {s["rule"] for s in steps} == {"rescale", "canonical"}
    assert any(s["parent_id"] == result.parent_id for s in steps)
    assert any(s["child_id"] == result.model_id for s in steps)
    again = ingest_models([ACAS], cat, normalize=["rescale", "canonical"])
    assert again[0].status == "present"
    assert read_table(cat, "lineage").num_rows == len(steps)


def test_expand_sources(tmp_path: Path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "deep").mkdir()
    shutil.copy(ACAS, tmp_path / "a" / "deep" / "x.nnet")
    shutil.copy(ACAS, tmp_path / "y.nnet")
    (tmp_path / "a" / "readme.txt").write_text("not a model")
    found = expand_sources([tmp_path / "a", str(tmp_path / "*.nnet"), tmp_path / "y.nnet"])
    assert found == [tmp_path / "a" / "deep" / "x.nnet", tmp_path / "y.nnet"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(CatalogueError, match="no model files"):
        expand_sources([tmp_path / "empty"])


def test_same_network_in_two_formats_is_one_model(tmp_path: Path):
    results = ingest_models([ACAS, DATA / "ACASXU_experimental_v2a_1_1.onnx"], tmp_path / "cat")
    assert [r.status for r in results] == ["ingested", "present"]
    assert results[0].model_id == results[1].model_id
    assert read_table(tmp_path / "cat", "neurons").num_rows == 305


def test_ingest_models_accepts_one_path_and_reports_missing_ones(tmp_path: Path):
    from roon.ingest import ingest_models

    root = tmp_path / "cat"
    nnet = DATA / "ACASXU_experimental_v2a_1_1.nnet"
    [only] = ingest_models(str(nnet), root)  # a string is one path, not its characters
    assert only.status == "ingested" and only.source == str(nnet)
    results = ingest_models([tmp_path / "missing.pt", nnet], root)
    assert [r.status for r in results] == ["failed", "present"]
    assert results[0].reason == f"{tmp_path / 'missing.pt'}: no such file or directory"
    with pytest.raises(InvalidArgumentError, match="sources is a int"):
        ingest_models(3, root)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_model_with_a_non_finite_weight_never_reaches_the_catalogue(tmp_path: Path, bad):
    # behaviour beside the message tests: the file fails on its own, naming the layer
    # by its key, the others ingest, and no row of it is stored
    import numpy as np
    from safetensors.numpy import save_file

    w = np.ones((3, 2), dtype=np.float32)
    w[1, 0] = bad
    tensors = {"fc1.weight": w, "fc1.bias": np.zeros(3, np.float32)}
    tensors |= {"fc2.weight": np.ones((1, 3), np.float32), "fc2.bias": np.zeros(1, np.float32)}
    save_file(tensors, str(tmp_path / "bad.safetensors"))
    root = tmp_path / "cat"
    results = ingest_models([tmp_path / "bad.safetensors", ACAS], root)
    assert [r.status for r in results] == ["failed", "ingested"]
    word = "NaN" if bad != bad else "infinite"
    assert results[0].reason == (
        f"{tmp_path / 'bad.safetensors'}: layer 'fc1' weight holds {word} values"
    )
    assert list_models(root) == [results[1].model_id]
    weights = read_table(root, "edges").column("weight").to_numpy()
    assert np.all(np.isfinite(weights))


def test_a_rule_that_makes_weights_non_finite_is_refused():
    # the MLP itself refuses non-finite values, whatever built them (here a custom rule)
    import numpy as np

    from roon import MLP, Layer, ModelFormatError
    from roon.ingest.normalize import normalize

    def overflow(mlp: MLP):
        first = mlp.layers[0]
        huge = Layer(first.weight * np.float32(1e38) * 10, first.bias, first.activation)
        return mlp.replace([huge, *mlp.layers[1:]]), {}

    m = MLP(
        [Layer(np.ones((2, 2), np.float32), np.zeros(2, np.float32)), Layer(np.ones((1, 2)), [0.0])]
    )
    with (
        np.errstate(over="ignore"),
        pytest.raises(ModelFormatError, match="layer 0 weight holds infinite"),
    ):
        normalize(m, [overflow])


def test_reingesting_with_other_options_says_so_and_force_rebuilds(tmp_path: Path):

    from fixtures import edit_segment

    root = tmp_path / "cat"
    [first] = ingest_models(ACAS, root)
    assert first.status == "ingested" and first.notes == ()
    [same] = ingest_models(ACAS, root)
    assert same.status == "present" and same.notes == ()
    [signed] = ingest_models(ACAS, root, input_domain="signed")
    assert signed.status == "present"
    assert signed.notes == (
        "stored with other options (input domain binary, not signed): nothing changed; "
        "re-ingest with --force to rebuild it with these",
    )
    [weight] = ingest_models(ACAS, root, min_weight=0.5, input_domain="signed")
    assert "input domain binary, not signed; min_weight 0, not 0.5" in weight.notes[0]
    edges = read_table(root, "edges").num_rows
    [rebuilt] = ingest_models(ACAS, root, min_weight=0.5, force=True)
    assert rebuilt.status == "ingested" and rebuilt.model_id == first.model_id
    assert rebuilt.notes == ("rebuilt: replaced the stored model (--force)",)
    assert list_models(root) == [first.model_id]
    assert read_table(root, "provenance").column("min_weight").to_pylist() == [0.5]
    assert 0 < read_table(root, "edges").num_rows < edges
    assert not any((root / ".staging").iterdir())  # nothing staged is left
    [again] = ingest_models(ACAS, root, min_weight=0.5)
    assert again.status == "present" and again.notes == ()
    # derived tables of an older definition: reindex, not --force, is the way
    edit_segment(root, first.model_id, versions={"signatures": 0})
    [old] = ingest_models(ACAS, root, min_weight=0.5)
    assert old.notes == ("signatures computed by an older roon: 'roon reindex' recomputes them",)


def test_rm_removes_models_atomically_and_keeps_lineage(tmp_path: Path):
    from typer.testing import CliRunner

    from roon.cli import app
    from roon.store import remove_model

    root = tmp_path / "cat"
    [norm] = ingest_models(ACAS, root, normalize="zero-out,rescale")
    assert len(list_models(root)) == 2
    lineage = read_table(root, "lineage").num_rows
    runner = CliRunner()
    bad = runner.invoke(app, ["rm", norm.parent_id, "nope", "-c", str(root)])
    assert bad.exit_code == 1 and "no model 'nope'" in bad.output
    assert len(list_models(root)) == 2  # every reference is resolved before removing
    ok = runner.invoke(app, ["rm", norm.parent_id[:8], "-c", str(root)])
    assert ok.exit_code == 0, ok.output
    assert ok.output.strip() == f"removed {norm.parent_id[:12]} ACASXU_experimental_v2a_1_1"
    assert list_models(root) == [norm.model_id]
    assert read_table(root, "lineage").num_rows == lineage  # history stays
    assert not any((root / ".staging").iterdir())
    assert remove_model(root, norm.parent_id) is False
    [back] = ingest_models(ACAS, root)  # and it can come back
    assert back.status == "ingested"


def test_derived_models_get_their_own_names_and_counts_leave_them_out(tmp_path: Path):
    from typer.testing import CliRunner

    from roon.cli import app
    from roon.query.originals import originals_only
    from roon.query.scan import run_sql

    root = tmp_path / "cat"
    circuits = Path(__file__).parents[1] / "examples" / "circuits"
    results = ingest_models([circuits / "abs.pt", circuits / "xor.pt"], root, normalize="exact")
    # abs is already in normal form (the same model, so its own name); xor is not
    assert [(r.name, r.parent_id == r.model_id) for r in results] == [
        ("abs", True),
        ("xor+exact", False),
    ]
    names = run_sql(root, "SELECT name FROM models ORDER BY name").column("name").to_pylist()
    assert names == ["abs", "xor", "xor+exact"]
    show = CliRunner().invoke(app, ["show", "xor", "-c", str(root)])
    assert show.exit_code == 0, show.output  # one model of that name, not two
    counts = "SELECT hash, count(DISTINCT model_id) AS n FROM signatures WHERE {} GROUP BY hash"
    everything = run_sql(root, counts.format(originals_only(include_derived=True)))
    assert max(everything.column("n").to_pylist()) == 3  # xor+exact counted again
    originals = run_sql(root, counts.format(originals_only()))
    assert max(originals.column("n").to_pylist()) == 2  # OR, in abs and in xor


def test_name_sets_the_model_name_for_one_source(tmp_path: Path):
    root = tmp_path / "cat"
    [result] = ingest_models(ACAS, root, name="acas_1_1", normalize="zero-out,rescale")
    assert result.name == "acas_1_1+zero-out,rescale"
    stored = sorted(read_table(root, "models").column("name").to_pylist())
    assert stored == ["acas_1_1", "acas_1_1+zero-out,rescale"]
    with pytest.raises(InvalidArgumentError, match="names one model, but the sources hold 2"):
        ingest_models([ACAS, DATA / "ACASXU_experimental_v2a_1_1.onnx"], root, name="x")


def test_derived_tables_in_blocks_equal_the_whole_layer_tables(monkeypatch):
    """Wide layers are computed a block of neurons at a time; the rows do not change."""
    import roon.ingest.derived as derived
    from roon.ingest.rows import layer_domains

    mlp = random_mlp((6, 9, 7, 2), seed=12)
    domains = layer_domains(mlp)
    whole = derived.derived_tables(mlp, domains, backend="ref")
    monkeypatch.setattr(derived, "ROW_BLOCK", 12)  # two neurons of fan-in 6 per block
    blocks = derived.derived_tables(mlp, domains, backend="ref")
    streamed = derived.derived_tables(mlp, domains, backend="ref", stream=True)

    def rows(table: pa.Table) -> list:
        # restricted rows come block by block (the order within a table means nothing)
        found = table.to_pylist()
        return sorted(found, key=repr) if "inputs" in table.column_names else found

    for name in derived.DERIVED_TABLES:
        assert rows(blocks[name]) == rows(whole[name]), name
        if isinstance(streamed[name], pa.Table):  # input_space: one table per model
            assert rows(streamed[name]) == rows(whole[name])
            continue
        parts = list(streamed[name])
        assert len(parts) > 1
        joined = pa.concat_tables(
            p if isinstance(p, pa.Table) else pa.Table.from_batches([p]) for p in parts
        )
        assert rows(joined) == rows(whole[name]), name


@pytest.mark.parametrize(
    ("width", "options", "reason"),
    [
        (24, {"input_space": "binary"}, "exceeds the limit"),  # 2^24 points
        (3, {"input_space": "box"}, "a box grid needs finite input bounds"),
        (3, {"input_domain": "box"}, "needs finite input bounds"),
        (3, {"input_domain": "box", "input_space": "none"}, "the box domain needs finite"),
    ],
)
def test_models_that_all_fail_after_loading_leave_no_catalogue(
    tmp_path: Path, width, options, reason
):
    from roon.ingest.loaders import save_safetensors

    files = [
        save_safetensors(
            random_mlp((width, 3, 1), seed=s, name=f"w{s}"), tmp_path / f"w{s}.safetensors"
        )
        for s in range(2)
    ]
    results = ingest_models(files, tmp_path / "cat", backend="ref", **options)
    assert [r.status for r in results] == ["failed", "failed"]
    assert all(reason in r.reason for r in results), results
    assert not (tmp_path / "cat").exists()
    # into an existing catalogue the same models fail with the same reason
    [first] = ingest_models(files[:1], tmp_path / "cat", backend="ref", input_space="none",
                            input_bounds=(0, 1))  # fmt: skip
    assert first.status == "ingested"
    [again] = ingest_models(files[1:], tmp_path / "cat", backend="ref", **options)
    assert again.status == "failed" and reason in again.reason
    assert len(list_models(tmp_path / "cat")) == 1


def test_reingesting_with_another_input_space_or_box_says_so(tmp_path: Path):
    from roon.ingest.loaders import save_safetensors

    path = save_safetensors(random_mlp((3, 4, 1), seed=9, name="s"), tmp_path / "s.safetensors")
    root = tmp_path / "cat"
    [first] = ingest_models(path, root, input_space="binary")
    assert first.status == "ingested"
    [same] = ingest_models(path, root, input_space="binary")
    assert same.status == "present" and same.notes == ()
    [signed] = ingest_models(path, root, input_space="signed")
    assert signed.status == "present"
    assert signed.notes == (
        "stored with other options (input space binary (8 points), not signed {-1,0,1}^3 "
        "(27 points)): nothing changed; re-ingest with --force to rebuild it with these",
    )
    [none] = ingest_models(path, root, input_space="none")
    assert "input space binary (8 points), not none" in none.notes[0]
    [boxed] = ingest_models(path, root, input_space="binary", input_bounds=(-1, 1))
    assert boxed.notes[0].startswith(
        "stored with other options (input bounds none, not [-1.0, 1.0]): nothing changed"
    )
    [grid] = ingest_models(path, root, input_space="box:2", input_bounds=(0, 1))
    assert "input space binary (8 points), not box vertices (3 inputs) (8 points)" in grid.notes[0]
    [bad] = ingest_models(path, root, input_space="box")
    assert "the new one fails: a box grid needs finite input bounds" in bad.notes[0]
    [rebuilt] = ingest_models(path, root, input_space="signed", force=True)
    assert rebuilt.status == "ingested"
    [after] = ingest_models(path, root, input_space="signed")
    assert after.status == "present" and after.notes == ()


def _all_rows(root: Path) -> dict[str, list[dict]]:
    """Every table's rows in one canonical order, without the timestamps."""
    import json

    from roon.schema import TABLES

    out = {}
    for table in TABLES:
        rows = read_table(root, table).to_pylist()
        for row in rows:
            row.pop("ingested_at", None)
            row.pop("created_at", None)
        out[table] = sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))
    return out


@pytest.mark.slow
def test_jobs_n_writes_the_same_catalogue_as_jobs_1(tmp_path: Path):
    from roon.ingest.loaders import save_safetensors
    from roon.store.manifest import current_manifest

    folder = tmp_path / "nets"
    folder.mkdir()
    files = [
        save_safetensors(random_mlp((4, 16, 16, 2), seed=s), folder / f"n{s:02d}.safetensors")
        for s in range(18)
    ]
    (folder / "bad.safetensors").write_bytes(b"not a model")  # one failure among them
    twin = folder / "twin.safetensors"
    twin.write_bytes(files[3].read_bytes())  # the same model twice: present once
    sources = [*files, folder / "bad.safetensors", twin, ACAS]
    one = ingest_models(sources, tmp_path / "one", jobs=1, normalize="dead", backend="ref")
    many = ingest_models(sources, tmp_path / "many", jobs=3, normalize="dead", backend="ref")
    assert one == many
    assert [r.status for r in one].count("failed") == 1
    assert [r.status for r in one].count("present") == 1
    assert _all_rows(tmp_path / "one") == _all_rows(tmp_path / "many")
    # batches, not one commit per model: fewer segments than models
    assert len(current_manifest(tmp_path / "many").segments) < len(list_models(tmp_path / "many"))
    # a second run is a no-op either way
    again = ingest_models(sources, tmp_path / "many", jobs=2, normalize="dead", backend="ref")
    assert {r.status for r in again} == {"present", "failed"}


def test_jobs_must_be_a_positive_whole_number(tmp_path: Path):
    with pytest.raises(InvalidArgumentError, match="jobs=0"):
        ingest_models(ACAS, tmp_path / "cat", jobs=0)
    assert not (tmp_path / "cat").exists()
