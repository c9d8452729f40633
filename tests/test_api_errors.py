"""Every bad argument to the public API raises a RoonError subclass with a one-line message.

Values of the wrong type (a dict where a path goes, a list where a model goes, an array
where a name goes) used to escape as TypeError, AttributeError or numpy's ambiguous-truth
ValueError.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fixtures import random_mlp

import roon

ACAS = Path(__file__).parent / "data" / "ACASXU_experimental_v2a_1_1.nnet"
BAD = [None, 3, 2.5, {"a": 1}, [1, 2], b"bytes", object(), np.zeros(3), True]
MODEL = random_mlp((3, 4, 2))


def call(name: str, bad: object, tmp: Path) -> None:
    calls = {
        "load_model": lambda: roon.load_model(bad),
        "ingest_models sources": lambda: roon.ingest_models(bad, tmp / "cat"),
        "ingest_models catalogue": lambda: roon.ingest_models([ACAS], bad),
        "ingest_models input_domain": lambda: roon.ingest_models([ACAS], tmp, input_domain=bad),
        "ingest_models min_weight": lambda: roon.ingest_models([ACAS], tmp, min_weight=bad),
        "ingest_models normalize": lambda: roon.ingest_models([ACAS], tmp, normalize=bad),
        "ingest_models backend": lambda: roon.ingest_models([ACAS], tmp, backend=bad),
        "read_table catalogue": lambda: roon.read_table(bad, "models"),
        "read_table name": lambda: roon.read_table(tmp, bad),
        "reindex_catalogue": lambda: roon.reindex_catalogue(bad),
        "scan_catalogue": lambda: roon.scan_catalogue(bad),
        "normalize model": lambda: roon.normalize(bad, "exact"),
        "normalize rules": lambda: roon.normalize(MODEL, bad),
        "tokenize": lambda: roon.tokenize(bad),
        "token_similarity": lambda: roon.token_similarity(bad, ["l0c4"]),
        "token_similarity method": lambda: roon.token_similarity(["a"], ["b"], method=bad),
        "signatures domain": lambda: roon.signatures([[1.0]], [0.0], domain=bad),
        "signatures backend": lambda: roon.signatures([[1.0]], [0.0], backend=bad),
        "is_equivalent_to others": lambda: roon.is_equivalent_to([1.0], 0, [1.0], 0, others=bad),
        "MLP": lambda: roon.MLP(bad),
        "equivalent a": lambda: roon.equivalent(bad, MODEL),
        "equivalent space": lambda: roon.equivalent(MODEL, MODEL, space=bad),
        "where circuit": lambda: roon.where(bad, _catalogue(tmp)),
        "compare b": lambda: roon.compare(ACAS, bad, _catalogue(tmp)),
        "recurring_input_space space": lambda: roon.recurring_input_space(
            _catalogue(tmp), space=bad
        ),
        "reindex_catalogue models": lambda: roon.reindex_catalogue(_catalogue(tmp), models=bad),
        "capture model": lambda: roon.capture(bad, np.zeros((4, 3))),
        "capture inputs": lambda: roon.capture(MODEL, bad),
        "compare_activations inputs": lambda: roon.compare_activations(MODEL, MODEL, bad),
        "recurring min_models": lambda: roon.recurring(_catalogue(tmp), min_models=bad),
        "recurring kind": lambda: roon.recurring(_catalogue(tmp), kind=bad),
    }
    calls[name]()


def _catalogue(tmp: Path) -> Path:
    """A catalogue holding MODEL (made once per test)."""
    from roon.ingest.pipeline import ingest_model
    from roon.store import open_catalogue

    root = tmp / "stored"
    if not root.exists():
        ingest_model(MODEL, open_catalogue(root, create=True), backend="ref")
    return root


NAMES = [
    "load_model",
    "ingest_models sources",
    "ingest_models catalogue",
    "ingest_models input_domain",
    "ingest_models min_weight",
    "ingest_models normalize",
    "ingest_models backend",
    "read_table catalogue",
    "read_table name",
    "reindex_catalogue",
    "scan_catalogue",
    "normalize model",
    "normalize rules",
    "tokenize",
    "token_similarity",
    "token_similarity method",
    "signatures domain",
    "signatures backend",
    "is_equivalent_to others",
    "MLP",
    "equivalent a",
    "equivalent space",
    "where circuit",
    "compare b",
    "recurring_input_space space",
    "reindex_catalogue models",
    "capture model",
    "capture inputs",
    "compare_activations inputs",
    "recurring min_models",
    "recurring kind",
]
# values a function accepts: a list of paths, a path-like string, no rules to apply, ...
ACCEPTED = {
    # items of a list that are not models are reported as failed sources instead
    ("ingest_models sources", "[1, 2]"),
    ("ingest_models sources", "array([0., 0., 0.])"),
    ("ingest_models normalize", "None"),
    ("ingest_models input_domain", "None"),  # None: each model's own input_domain metadata
    ("ingest_models backend", "None"),
    ("signatures backend", "None"),
    ("ingest_models sources", "None"),
    ("ingest_models min_weight", "3"),
    ("ingest_models min_weight", "2.5"),
    ("token_similarity", "b'bytes'"),
    ("equivalent space", "None"),  # refused too, by comparison_space: tested below
    ("reindex_catalogue models", "None"),  # None: every model
    ("recurring_input_space space", "None"),  # None: every space
    ("recurring min_models", "3"),
}


@pytest.mark.parametrize("name", NAMES)
def test_bad_arguments_raise_roon_errors(tmp_path, name):
    for bad in BAD:
        if (name, repr(bad)) in ACCEPTED:
            continue
        try:
            call(name, bad, tmp_path)
        except roon.RoonError as exc:
            assert "\n" not in str(exc) and str(exc), (name, bad)
        except Exception as exc:  # noqa: BLE001 - the point of the test
            pytest.fail(f"{name}({bad!r}) raised {type(exc).__name__}: {exc}")
        else:
            pytest.fail(f"{name}({bad!r}) raised nothing")


def test_load_model_names_the_type_and_what_it_takes():
    with pytest.raises(roon.InvalidArgumentError) as info:
        roon.load_model({"fc1.weight": np.ones((2, 2))})
    assert str(info.value) == "load_model takes a file path or a torch.nn.Module, not a dict"
    with pytest.raises(roon.InvalidArgumentError, match="not a list"):
        roon.load_model([ACAS])
    with pytest.raises(roon.InvalidArgumentError, match="not a roon.MLP; load one with"):
        roon.normalize(str(ACAS), "exact")


def test_ingest_models_takes_rule_names_as_one_string(tmp_path):
    [result] = roon.ingest_models(ACAS, tmp_path / "cat", normalize="zero-out,rescale")
    assert result.status == "ingested" and result.parent_id is not None
    with pytest.raises(roon.InvalidArgumentError, match="unknown normalizer rule 'nope'"):
        roon.ingest_models(ACAS, tmp_path / "other", normalize="nope")
    assert not (tmp_path / "other").exists()  # refused before anything was read or made


def test_reindex_takes_one_reference_as_a_string(tmp_path):
    root = _catalogue(tmp_path)
    [result] = roon.reindex_catalogue(root, models=MODEL.id[:8])
    assert result.model_id == MODEL.id and result.status == "current"
    with pytest.raises(roon.CatalogueError, match="no model 'zzzz'"):
        roon.reindex_catalogue(root, models="zzzz")  # the reference, not 'z' four times


def test_equivalent_without_a_space_says_so():
    with pytest.raises(roon.InvalidArgumentError, match="needs an input space"):
        roon.equivalent(MODEL, MODEL, space=None)
