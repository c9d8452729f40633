"""Tokens: grammar, identity-free neuron tokens, similarity, the tokens table."""

from __future__ import annotations

import json
import random
import re
from difflib import SequenceMatcher

import numpy as np
import pytest
from fixtures import abs_net, and_or_net, permuted, random_mlp
from roon.schema import read_text, table_schema
from typer.testing import CliRunner

import roon
from roon import MLP, InvalidArgumentError, Layer
from roon.cli import app
from roon.ingest.loaders import save_safetensors
from roon.ingest.tokenize import (
    lcs_length,
    matching_characters,
    neuron_token,
    token_grammar,
    token_kind,
    token_similarity,
    tokenize,
    tokens_table,
)

MODELS = [
    and_or_net(),
    abs_net(),
    random_mlp(seed=1),
    random_mlp((7, 3, 1), seed=2, activation="tanh", dtype=np.float64),
    random_mlp((2, 2), seed=3),
]


def keep_strong(bias: float, fan_in: int, weight: float) -> bool:
    return abs(weight) > abs(bias) / fan_in


@pytest.mark.parametrize("mlp", MODELS, ids=lambda m: m.name)
@pytest.mark.parametrize("step", [2.0**-6, 0.1, 1e-4])
def test_every_token_matches_its_grammar(mlp, step):
    grammar = {kind: re.compile(p) for kind, p in token_grammar().items()}
    table = tokens_table(mlp, step=step, keep=keep_strong).to_pylist()
    assert {r["kind"] for r in table} == {"layer", "neuron", "connection"}
    for row in table:
        assert grammar[row["kind"]].fullmatch(row["token"]), row
        assert token_kind(row["token"]) == row["kind"]
        if row["kind"] == "neuron":
            fan_in = mlp.layers[row["layer"]].fan_in
            assert row["token"].count("w") == fan_in
            assert f"c{fan_in}" in row["token"]
    assert tokenize(mlp, step=step) == [r["token"] for r in table if r["kind"] != "connection"]


def test_grammar_rejects_malformed_tokens():
    for bad in ["l01c2", "nb-0c1w1", "nb1c1w", "n0b1c1w1", "L0:1->2", "L0:1->2;;", "l0c2 "]:
        assert token_kind(bad) is None, bad
    spec = json.loads(read_text("tokens.json"))
    for kind, entry in spec["kinds"].items():
        assert token_kind(entry["example"]) == kind


def test_duckdb_regexp_agrees_with_the_grammar():
    import duckdb

    table = tokens_table(random_mlp(seed=5), keep=keep_strong)
    con = duckdb.connect()
    con.register("tokens", table)
    for kind, pattern in token_grammar().items():
        bad = con.execute(
            "SELECT count(*) FROM tokens WHERE kind = ? AND NOT regexp_matches(token, ?)",
            [kind, pattern],
        ).fetchone()[0]
        found = con.execute(
            "SELECT count(*) FROM tokens WHERE regexp_matches(token, ?)", [pattern]
        ).fetchone()[0]
        assert bad == 0
        assert found == sum(k == kind for k in table.column("kind").to_pylist())


def test_neuron_token_by_hand():
    # weights sorted ascending: -0.5, 0.25, 1.0 -> -8, 4, 16 steps of 1/16; bias 0.3 -> 5
    assert neuron_token([1.0, -0.5, 0.25], 0.3, step=1 / 16) == "nb5c3w-8w4w16"
    assert neuron_token([-0.01], -0.01, step=1.0) == "nb0c1w0"  # no "-0"
    assert tokenize(and_or_net(), step=0.1) == [
        "l0c2",
        "nb-10c2w7w7",
        "nb0c2w10w10",
        "l1c1",
        "nb0c2w-20w10",
    ]


def test_connection_tokens_by_hand():
    m = MLP([Layer(np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]]), np.array([0.75, -1.0]))])
    tokens = tokenize(m, kind="connection", keep=lambda bias, fan_in, weight: weight > bias)
    # target 0 (bias 0.75) keeps source 0; target 1 (bias -1) keeps sources 0 and 1
    assert tokens == ["L0:0->0;0->1;1->1;"]
    with pytest.raises(InvalidArgumentError, match="predicate"):
        tokenize(m, kind="connection")


def test_equal_networks_give_equal_tokens_without_ids():
    a = random_mlp(seed=7, dtype=np.float32, name="a")
    b = random_mlp(seed=7, dtype=np.float64, name="b")  # float64 copy of other values
    b = MLP([Layer(la.weight.astype(np.float64), la.bias, la.activation) for la in a.layers])
    assert tokenize(a) == tokenize(b)
    # the same neuron in another model, layer and position gives the same token
    w, bias = np.array([0.5, -0.25, 1.0]), 0.125
    other = MLP([Layer(np.eye(3), np.zeros(3)), Layer(np.vstack([np.ones(3), w]), [0.0, bias])])
    assert neuron_token(w, bias) == tokenize(other)[-1]
    assert tokenize(MLP([Layer(w[None, :], [bias])]))[-1] == tokenize(other)[-1]


def test_similarity_one_for_equal_lower_for_different():
    a, b = random_mlp(seed=1), random_mlp(seed=2)
    assert token_similarity(a, random_mlp(seed=1)) == 1.0
    assert roon.token_similarity(a, a, method="lcs") == 1.0
    for method in ("difflib", "lcs"):
        assert token_similarity(a, b, method=method) < 1.0
    assert token_similarity([], []) == 1.0
    nudged = MLP([*a.layers[:-1], Layer(a.layers[-1].weight + 0.2, a.layers[-1].bias, "linear")])
    assert token_similarity(a, b) < token_similarity(a, nudged) < 1.0


def test_difflib_method_equals_sequence_matcher_without_autojunk():
    rng = random.Random(3)
    nets = [" ".join(tokenize(random_mlp((9, 12, 4), seed=s))) for s in range(6)]
    pairs = [(nets[s], nets[s + 3]) for s in range(3)]
    for _ in range(300):
        alphabet = rng.choice(["ab", "abc", "nbcw-0123 "])
        pairs.append(
            (
                "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))),
                "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))),
            )
        )
    for sa, sb in pairs:
        want = SequenceMatcher(None, sa, sb, autojunk=False)
        assert matching_characters(sa, sb) == sum(m.size for m in want.get_matching_blocks())
        if sa or sb:
            assert token_similarity(sa, sb) == want.ratio()
        assert lcs_length(sa, sb) >= matching_characters(sa, sb)


def test_lcs_matches_dynamic_programming():
    rng = random.Random(5)
    for _ in range(200):
        a = "".join(rng.choice("abc ") for _ in range(rng.randint(0, 25)))
        b = "".join(rng.choice("abc ") for _ in range(rng.randint(0, 25)))
        table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
        for i, x in enumerate(a):
            for j, y in enumerate(b):
                table[i + 1][j + 1] = (
                    table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
                )
        assert lcs_length(a, b) == table[-1][-1]


def test_tokens_table_schema():
    m = random_mlp(seed=1)
    table = tokens_table(m, step=0.25)
    assert table.schema == table_schema("tokens")
    assert table.column("position").to_pylist() == list(range(table.num_rows))
    assert set(table.column("step").to_pylist()) == {0.25}
    assert set(table.column("model_id").to_pylist()) == {m.id}
    with pytest.raises(InvalidArgumentError, match="step"):
        tokens_table(m, step=0)


def test_compare_tokens_cli(tmp_path):
    m = random_mlp((4, 7, 3), seed=9)
    save_safetensors(m, tmp_path / "a.safetensors")
    save_safetensors(permuted(m, 1), tmp_path / "b.safetensors")
    args = ["compare-tokens", str(tmp_path / "a.safetensors"), str(tmp_path / "b.safetensors")]
    plain = json.loads(CliRunner().invoke(app, [*args, "--json"]).output)
    assert plain["similarity"] < 1.0
    same = CliRunner().invoke(app, [*args, "--rules", "canonical"])
    assert same.exit_code == 0 and "similarity 1.0000" in same.output


@pytest.mark.parametrize("step", [2.0**-6, 2.0**-30, 0.1, 3.0])
def test_tokens_of_extreme_values_match_the_grammar(step):
    from roon.ingest.tokenize import token_kind, tokenize

    rng = np.random.default_rng(int(step * 2**30) % 2**32)
    for exponent in (-12, 0, 12, 30):
        w = rng.normal(size=(3, 4)) * 10.0**exponent
        w[rng.random(w.shape) < 0.3] = -0.0  # the grammar has no '-0'
        b = rng.normal(size=3) * 10.0**exponent
        m32 = MLP([Layer(w.astype(np.float32), b.astype(np.float32))])
        m64 = MLP([Layer(m32.layers[0].weight.astype(np.float64), m32.layers[0].bias)])
        tokens = tokenize(m32, step=step)
        assert [token_kind(t) for t in tokens] == ["layer", "neuron", "neuron", "neuron"]
        if np.log2(step).is_integer():  # value / step is exact: float32 and float64 agree
            assert tokenize(m64, step=step) == tokens


def test_tokens_in_blocks_are_the_tokens_of_the_whole_layer(monkeypatch):
    """Blocks of a few neurons (as for a wide layer) give exactly the one-block rows."""
    import roon.ingest.tokenize as tk

    mlp = random_mlp((7, 9, 5, 3), seed=8)
    whole = tokens_table(mlp, keep=keep_strong).to_pylist()
    monkeypatch.setattr(tk, "_TOKEN_BLOCK", 14)  # two neurons of fan-in 7 per block
    blocks = list(tk.tokens_batches(mlp, keep=keep_strong))
    assert len(blocks) > len(mlp.layers) + 1
    assert [r for b in blocks for r in b.to_pylist()] == whole
    assert [r["position"] for r in whole if r["kind"] != "connection"] == list(range(3 + 17))
