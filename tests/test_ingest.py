"""ingest_models: progress, modules, normalization, source expansion."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from roon import CatalogueError, ingest_models
from roon.ingest import expand_sources
from roon.ingest.catalogue import list_models, read_table

pytestmark = pytest.mark.integration

DATA = Path(__file__).parent / "data"
ACAS = DATA / "ACASXU_experimental_v2a_1_1.nnet"


class Recorder:
    def __init__(self) -> None:
        self.started: list[tuple[str, int]] = []
        self.increments: list[int] = []
        self.finished: list[str] = []

    def model_started(self, source: str, neurons: int) -> None:
        self.started.append((Path(source).name, neurons))

    def neurons_done(self, count: int) -> None:
        self.increments.append(count)

    def model_finished(self, result) -> None:
        self.finished.append(result.status)


def test_progress_reports_every_neuron_once(tmp_path: Path):
    progress = Recorder()
    ingest_models([ACAS], tmp_path / "cat", progress=progress, backend="ref")
    assert progress.started == [(ACAS.name, 305)]
    assert all(k > 0 for k in progress.increments)
    assert sum(progress.increments) == 305
    assert progress.finished == ["ingested"]


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
