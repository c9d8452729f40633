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
    }
    calls[name]()


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
