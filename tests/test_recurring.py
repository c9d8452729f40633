"""`roon recurring`: exactly the shared functions and motifs of a hand-built catalogue."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from roon import MLP, Layer
from roon.cli import app
from roon.errors import InvalidArgumentError
from roon.ingest.normalize import normalize
from roon.ingest.pipeline import ingest_model, store_derivation
from roon.kernels import signatures
from roon.query.recurring import recurring
from roon.store import open_catalogue

pytestmark = pytest.mark.integration

# three realisations of AND, two of OR, a dead unit in every model
AND = [([1.0, 1.0], -1.5), ([0.6, 0.7], -1.0), ([2.0, 3.0], -4.0)]
OR = [([1.0, 1.0], -0.5), ([0.9, 0.4], -0.1)]
DEAD = ([-1.0, -1.0], -0.5)


def model(i: int) -> MLP:
    rows = [AND[i], DEAD] + ([OR[i]] if i < 2 else [([-0.3, 0.2], 0.05)])
    w0 = np.array([r[0] for r in rows])
    b0 = np.array([r[1] for r in rows])
    # layer 1: AND excites, OR inhibits (the motif) in models 0 and 1
    w1 = np.array([[1.0, 0.0, -0.8]]) if i < 2 else np.array([[0.5, 0.0, 0.7]])
    return MLP([Layer(w0, b0, "relu"), Layer(w1, np.array([0.1]), "relu")], name=f"m{i}")


def _hash(weights, bias) -> str:
    return signatures([weights], [bias]).hash[0]


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory) -> Path:
    root = open_catalogue(tmp_path_factory.mktemp("rec") / "cat", create=True)
    for i in range(3):
        ingest_model(model(i), root, backend="ref")
    # a normalized copy of m0: the same functions, must not count twice by default
    parent = model(0)
    child, steps = normalize(parent, "rescale,canonical")
    store_derivation(root, parent, child, steps)
    return root


def test_neurons_recurring_are_exactly_the_shared_functions(catalogue: Path):
    rows = {r["signature"]: r for r in recurring(catalogue)}
    and_hash = _hash(*AND[0])
    or_hash = _hash(*OR[0])
    assert {_hash(*a) for a in AND} == {and_hash} and _hash(*OR[1]) == or_hash
    top = _hash([1.0, 0.0, -0.8], 0.1)  # the layer-1 neuron of m0 and m1 (binary inputs)
    assert set(rows) == {and_hash, or_hash, top}
    assert rows[and_hash]["models"] == 3 and rows[and_hash]["neurons"] == 3
    assert rows[and_hash]["found_in"] == ["m0", "m1", "m2"]
    assert rows[and_hash]["circuits"] == ["and"]
    # AND of two inputs fires on 1 of 4, each input on in it: exact ints, not Decimals
    assert rows[and_hash]["chow"] == [1, 1, 1] and type(rows[and_hash]["chow"][0]) is int
    json.dumps(rows[and_hash]["chow"])
    assert rows[or_hash]["models"] == 2 and rows[or_hash]["found_in"] == ["m0", "m1"]
    assert list(rows)[0] == and_hash  # most frequent first


def test_constant_and_derived_neurons_count_only_when_asked(catalogue: Path):
    dead = _hash(*DEAD)
    assert dead not in {r["signature"] for r in recurring(catalogue)}
    with_dead = {r["signature"]: r for r in recurring(catalogue, include_constant=True)}
    assert with_dead[dead]["models"] == 3
    derived = {r["signature"]: r for r in recurring(catalogue, include_derived=True)}
    assert derived[_hash(*AND[0])]["models"] == 4  # m0's normalized copy too


def test_motifs_recurring_are_exactly_the_shared_motif(catalogue: Path):
    rows = recurring(catalogue, kind="motif")
    assert len(rows) == 1
    [row] = rows
    assert row["models"] == 2 and row["found_in"] == ["m0", "m1"]
    parts = sorted([_hash(*AND[0]) + "+", _hash(*OR[0]) + "-"])
    assert row["inputs"] == ",".join(parts)
    assert recurring(catalogue, kind="motif", min_models=3) == []


def test_bad_arguments(catalogue: Path):
    with pytest.raises(InvalidArgumentError, match="unknown kind"):
        recurring(catalogue, kind="layer")
    with pytest.raises(InvalidArgumentError, match="min models"):
        recurring(catalogue, min_models=0)


def test_cli_json_and_table(catalogue: Path):
    runner = CliRunner()
    out = runner.invoke(app, ["recurring", "-c", str(catalogue), "--json", "--min-models", "3"])
    assert out.exit_code == 0, out.output
    [row] = json.loads(out.stdout)
    assert row["signature"] == _hash(*AND[0]) and row["models"] == 3
    table = runner.invoke(app, ["recurring", "-c", str(catalogue), "--kind", "motif"])
    assert table.exit_code == 0 and "m0, m1" in table.stdout


def test_only_the_models_asked_for_count(catalogue: Path):
    ids = {name: mid for mid, name in _names(catalogue).items()}
    rows = {r["signature"]: r for r in recurring(catalogue, models=[ids["m1"], ids["m2"]])}
    # AND is in m1 and m2; OR and the motif's top neuron only in m0 and m1 (one model here)
    assert set(rows) == {_hash(*AND[0])}
    assert rows[_hash(*AND[0])]["found_in"] == ["m1", "m2"]
    assert rows[_hash(*AND[0])]["models"] == 2 and rows[_hash(*AND[0])]["neurons"] == 2
    both = recurring(catalogue, kind="motif", models=[ids["m0"], ids["m1"]])
    assert [r["found_in"] for r in both] == [["m0", "m1"]]
    assert recurring(catalogue, kind="motif", models=[ids["m0"], ids["m2"]]) == []
    assert recurring(catalogue, models=[]) == []
    assert recurring(catalogue, models=None) == recurring(catalogue)
    with pytest.raises(InvalidArgumentError, match="list of model ids"):
        recurring(catalogue, models=ids["m0"])


def _names(root: Path) -> dict[str, str]:
    from roon.query.scan import scan_catalogue

    return dict(scan_catalogue(root).sql("SELECT model_id, name FROM models").fetchall())


@pytest.mark.parametrize(
    ("table", "args"),
    [
        ("signatures", ["recurring"]),
        ("signatures", ["recurring", "--kind", "motif"]),
        ("input_space", ["recurring", "--space", "input"]),
    ],
)
def test_a_truncated_table_is_named_in_one_line_with_the_fix(tmp_path, table, args):
    import os

    from roon.store import layout
    from roon.store.read import resolve_model

    root = open_catalogue(tmp_path / "cat", create=True)
    for i in range(2):
        ingest_model(model(i), root, backend="ref")
    m1 = resolve_model(root, "m1")
    os.truncate(layout.table_path(root, m1, table), 100)
    result = CliRunner().invoke(app, [*args, "-c", str(root)])
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1 and "internal error" not in result.stderr
    assert f"model {m1[:12]} is damaged" in result.stderr
    assert "roon check --repair" in result.stderr
