"""roon.signatures: hand-checked cases, the batch API, input validation, routing, the CLI."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from typer.testing import CliRunner

import roon
from roon.errors import InvalidArgumentError, ModelFormatError
from roon.kernels import SignatureBatch, signatures
from roon.kernels.result import (
    FRAGILE_MARGIN,
    NeuronCounts,
    key_binary_chow,
    key_signed_table,
    signature_hash,
)


def one(weights, bias, domain="binary", **kw) -> NeuronCounts:
    return signatures([weights], [bias], domain, **kw)[0]


# ---------------------------------------------------------------- hand cases


def test_and_gates_with_different_weights_are_equal():
    a, b = one([0.7, 0.7], -1.0), one([0.6, 0.6], -1.0)
    assert a.hash == b.hash
    assert a.truth_table == "8" and a.chow == (1, 1, 1) and a.fire_count == 1


def test_or_differs_from_and():
    o = one([1.0, 1.0], 0.0)
    assert o.truth_table == "e" and o.chow == (3, 2, 2)
    assert o.hash != one([0.7, 0.7], -1.0).hash


def test_never_firing_neuron_is_not_and():
    dead = one([0.4, 0.4], -1.0)
    assert dead.fire_count == 0 and dead.truth_table == "0" and dead.relevant == 0
    assert dead.hash != one([0.7, 0.7], -1.0).hash


def test_exact_tie_does_not_fire():
    tie = one([0.5, 0.5], -1.0)  # the all-on input sums to exactly 0
    assert tie.fire_count == 0 and tie.margin == 0.0 and tie.fragile


def test_fan_in_zero():
    fires, silent = signatures(np.zeros((2, 0)), [0.5, -0.5])
    assert fires.truth_table == "1" and fires.chow == (1,) and fires.fire_fraction == 1.0
    assert silent.truth_table == "0" and silent.chow == (0,)
    assert one([], 0.0).fire_count == 0  # b = 0 is a tie
    assert one([], 1.0, "signed").truth_table == "1"


def test_sorted_positions_table():
    # sorted (0.25, 0.25, 0.5): excited iff the 0.5 input and one other are on
    s = one([0.25, 0.5, 0.25], -0.5)
    assert s.truth_table == "e0" and s.chow == (3, 2, 2, 3)


def test_signed_relu_and_negated_relu_and_dead_differ():
    pos, neg, dead = signatures([[1.0], [-1.0], [0.0]], [0.0, 0.0, 0.0], "signed")
    assert pos.truth_table == "4" and pos.chow == (1, 1)  # only x = +1 (digit 2)
    assert neg.truth_table == "1" and neg.chow == (1, -1)  # only x = -1 (digit 0)
    assert dead.truth_table == "0"
    assert len({pos.hash, neg.hash, dead.hash}) == 3
    # in the binary domain relu(-x) is indistinguishable from a dead neuron
    b_neg, b_dead = signatures([[-1.0], [0.0]], [0.0, 0.0], "binary")
    assert b_neg.hash == b_dead.hash


def test_signed_table_is_base_three():
    s = one([-1.0, 2.0], -1.0, "signed")  # excited at (x0, x1) = (-1, 1) and (0, 1)
    assert s.truth_table == format((1 << 6) | (1 << 7), "x") and s.chow == (2, -1, 2)


def test_signed_hash_ignores_input_order_and_counts_relevance():
    a = one([0.0, 1.0, -2.0], 0.5, "signed")
    b = one([-2.0, 0.0, 1.0], 0.5, "signed")
    assert a.hash == b.hash and a.relevant == 2
    # reduced table over (w=-2, w=1), digit 0 for w=-2: excited at {0,3,4,6,7} = 0xd9
    assert a.key == key_signed_table(3, 2, 1, "d9")


def test_binary_key_is_the_sorted_chow_vector():
    # sorted (-0.2, 0.3, 0.9), bias -0.1: excited iff x_0.9 or (x_0.3 and not x_-0.2), i.e.
    # at 5 inputs, with the three positions on in 2, 3 and 4 of them (Fraction check)
    s = one([0.3, -0.2, 0.9], -0.1)
    assert s.chow == (5, 2, 3, 4) and s.truth_table == "f4"
    assert s.key == "binary|3|chow|5|2,3,4" == key_binary_chow(3, (5, 4, 2, 3))
    assert s.hash == signature_hash(s.key) == NeuronCounts(**s.__dict__).hash
    # other weights computing the same function, inputs permuted: the same key
    assert one([1.0, -0.2, 0.35], -0.2).key == s.key
    assert one([1.0, -0.2, 0.35], -0.1).key != s.key  # (x_-0.2, x_0.35) = (1, 1) now fires


def test_near_tie_of_1e_minus_7_keeps_its_decision():
    up, down = signatures([[0.5, 0.5 + 1e-7], [0.5, 0.5 - 1e-7]], [-1.0, -1.0])
    assert up.truth_table == "8" and down.truth_table == "0"
    assert up.fragile and down.fragile and 0 < up.margin < FRAGILE_MARGIN


def test_near_tie_of_1e_minus_300_needs_the_exact_slow_path():
    # sorted (-1, 1e-300, 1); in float64 -1 + 1e-300 + 1 == 0, exactly it is 1e-300 > 0
    s = one([1.0, -1.0, 1e-300], 0.0)
    assert s.truth_table == format((1 << 2) | (1 << 4) | (1 << 6) | (1 << 7), "x")  # d4
    assert s.margin == 0.0  # -1 + 1 with the tiny weight off is an exact tie
    tie = one([1.0, -1.0, 1e-300], -1e-300)  # now all three on is the exact tie
    assert tie.truth_table == format((1 << 4) | (1 << 6), "x") and tie.margin == 0.0
    tiny = one([1.0, -1.0, 1e-300], 0.5e-300)  # no tie: closest sum is 0.5e-300
    assert tiny.margin == pytest.approx(0.5e-300 / (2 + 1.5e-300)) and tiny.fragile


def test_fragile_flag_uses_the_documented_threshold():
    robust = one([1.0, 1.0], -1.5)
    assert robust.margin == pytest.approx(0.5 / 3.5) and not robust.fragile


# ---------------------------------------------------------------- batch API


def test_batch_columns_and_conversions():
    sig = signatures(np.array([[0.7, 0.7], [1.0, 1.0]], dtype=np.float32), np.array([-1, 0.0]))
    assert isinstance(sig, SignatureBatch) and len(sig) == 2
    assert sig.truth_table == ["8", "e"] and sig.chow == [(1, 1, 1), (3, 2, 2)]
    assert sig.fire_count == [1, 3] and sig.method == ["exhaustive", "exhaustive"]
    assert sig.exact.dtype == bool and sig.exact.tolist() == [True, True]
    assert sig.fragile.tolist() == [False, True]  # OR ties at the all-off input
    assert [s.hash for s in sig] == sig.hash and all(len(h) == 32 for h in sig.hash)
    d = sig.to_dicts()[0]
    assert d["chow"] == [1, 1, 1] and d["truth_table"] == "8" and d["fire_count"] == 1
    json.dumps(sig.to_dicts())


def test_batch_from_neurons_equals_the_batch_it_came_from():
    sig = signatures([[0.7, 0.7], [1.0, 1.0], [0.5, -2.0]], [-1.0, 0.0, 0.25])
    again = SignatureBatch(list(sig), fallbacks=2, exact_seconds=0.5)
    assert list(again) == list(sig) and again.fallbacks == 2 and again.exact_seconds == 0.5
    assert again.to_arrow().equals(sig.to_arrow())
    assert len(SignatureBatch()) == 0 and SignatureBatch().to_dicts() == []
    with pytest.raises(InvalidArgumentError, match="one domain and fan-in"):
        SignatureBatch([*sig, *signatures([[1.0, 1.0, 1.0]], [0.0])])


def test_to_arrow_matches_the_catalogue_schema():
    from roon.schema import table_schema

    sig = signatures([[0.7, 0.7], [1.0, 1.0]], [-1.0, 0.0])
    table = sig.to_arrow()
    expected = list(table_schema("signatures"))[4:]
    assert table.schema.names == [f.name for f in expected]
    assert [f.type for f in table.schema] == [f.type for f in expected]
    # typed counts: exact integers (Arrow decimal128(38, 0)), chow a list of them
    assert table.column("chow").to_pylist() == [[1, 1, 1], [3, 2, 2]]
    assert table.column("fire_count").to_pylist() == [1, 3]
    assert table.column("domain").to_pylist() == ["binary", "binary"]


def test_accepts_lists_float32_and_torch():
    torch = pytest.importorskip("torch")
    w = torch.tensor([[0.7, 0.7]], requires_grad=True)
    a = signatures(w, torch.tensor([-1.0]))
    b = signatures(np.array([[0.7, 0.7]], dtype=np.float32), np.array([-1.0], dtype=np.float32))
    assert a.hash == b.hash == signatures([0.7, 0.7], -1.0).hash
    half = torch.tensor([[0.7, -0.3, 0.2]], dtype=torch.bfloat16)  # no NumPy bfloat16
    assert signatures(half, torch.zeros(1)).hash == signatures(half.float(), [0.0]).hash


def test_lazy_top_level_exports():
    assert roon.signatures is signatures
    assert roon.SignatureBatch is SignatureBatch
    if importlib.util.find_spec("roon.kernels.equivalence") is not None:
        assert callable(roon.is_equivalent_to)
    else:
        with pytest.raises(ImportError):
            roon.kernels.is_equivalent_to  # noqa: B018


def test_progress_reports_neurons_done():
    events: list = []
    signatures(np.zeros((5, 3)), np.ones(5), progress=events.append)
    seen = [e.done for e in events]
    assert seen and seen[-1] == 5 and seen == sorted(seen)
    assert {(e.task, e.total) for e in events} == {("neurons", 5)}


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_model_format_errors(bad):
    with pytest.raises(ModelFormatError, match="neuron 1"):
        signatures([[1.0, 2.0], [bad, 0.0]], [0.0, 0.0])
    with pytest.raises(ModelFormatError):
        signatures([[1.0]], [bad])


@pytest.mark.parametrize(
    "weights, bias",
    [(np.zeros((2, 3)), np.zeros(3)), (np.zeros((2, 3, 1)), np.zeros(2)), ([[1, 2], [3]], [0, 0])],
)
def test_bad_shapes_are_query_errors(weights, bias):
    with pytest.raises(InvalidArgumentError) as err:
        signatures(weights, bias)
    assert "\n" not in str(err.value)


def test_unknown_domain_and_bad_limits():
    with pytest.raises(InvalidArgumentError, match="domain"):
        signatures([[1.0]], [0.0], domain="ternary")
    with pytest.raises(InvalidArgumentError, match="exhaustive_limit"):
        signatures([[1.0]], [0.0], exhaustive_limit=-1)
    with pytest.raises(InvalidArgumentError, match="table_limit"):
        signatures([[1.0]], [0.0], table_limit="x")
    with pytest.raises(InvalidArgumentError, match="dtype"):
        signatures(np.array([[1 + 1j]]), [0.0])


def test_table_limit_hides_large_tables():
    s = signatures(np.ones((1, 11)), [-5.0])[0]
    assert s.truth_table is None and s.fire_count == sum(
        1 for m in range(2**11) if bin(m).count("1") > 5
    )
    assert one(np.ones(11), -5.0, table_limit=11).truth_table is not None


# ---------------------------------------------------------------- beyond the exhaustive limit


def test_neurons_above_the_limit_go_to_the_beyond_methods(monkeypatch):
    import roon.kernels.beyond as beyond

    calls = []
    real = beyond.beyond_rows

    def spy(ws, b, domain, **kw):
        calls.append((ws.copy(), b.copy(), domain, kw))
        return real(ws, b, domain, **kw)

    monkeypatch.setattr(beyond, "beyond_rows", spy)
    sig = signatures(
        [[3.0, -1.0, 2.0]], [0.5], "binary", exhaustive_limit=2, mitm_limit=7, samples=9, seed=4
    )
    assert len(calls) == 1
    ws, b, domain, kw = calls[0]
    assert ws.dtype == np.float64 and ws.tolist() == [[-1.0, 2.0, 3.0]]  # sorted ascending
    assert (b.tolist(), domain) == ([0.5], "binary")
    assert (kw["mitm_limit"], kw["samples"], kw["seed"]) == (7, 9, 4)
    assert sig[0].hash == one([3.0, -1.0, 2.0], 0.5).hash
    assert sig.method == ["mitm"]  # every input relevant, counted by meet-in-the-middle


def test_exact_policy_and_budget():
    rng = np.random.default_rng(2)
    w = rng.normal(size=(3, 30)).astype(np.float32)  # every input relevant: mitm, ~0.4 ms
    b = rng.normal(size=3).astype(np.float32)
    kw = {"exhaustive_limit": 20}
    always = signatures(w, b, exact="always", **kw)
    assert always.method == ["mitm"] * 3 and always.fallbacks == 0
    never = signatures(w, b, exact="never", **kw)
    assert never.method == ["sampled"] * 3 and never.fallbacks == 3
    # a budget of one neuron's estimate buys exactly one exact neuron (the first of equals)
    from roon.kernels.plan import mitm_seconds

    one_neuron = signatures(w, b, exact_budget=1.5 * mitm_seconds(30), **kw)
    assert one_neuron.method == ["mitm", "sampled", "sampled"] and one_neuron.fallbacks == 2
    assert one_neuron.hash[0] == always.hash[0] and one_neuron.exact_seconds > 0
    assert signatures(w, b, **kw).method == ["mitm"] * 3  # the default budget holds them
    # no exact method reaches dense float 784-input neurons: sampled, but no fallbacks
    wide = signatures(rng.normal(size=(2, 784)), [0.1, -0.2], exact="always")
    assert wide.method == ["sampled"] * 2 and wide.fallbacks == 0
    for bad in ("sometimes", None):
        with pytest.raises(InvalidArgumentError, match="exact policy"):
            signatures(w, b, exact=bad)
    for bad in (-1.0, float("nan"), "1", True):
        with pytest.raises(InvalidArgumentError, match="exact_budget"):
            signatures(w, b, exact_budget=bad)


@pytest.mark.parametrize("domain, n", [("binary", 9), ("signed", 5)])
def test_exact_beyond_methods_agree_with_exhaustive(domain, n):
    rng = np.random.default_rng(7)
    w = np.concatenate([rng.normal(size=(6, n)), rng.integers(-2, 3, size=(6, n)) / 2])
    b = np.concatenate([rng.normal(size=6), rng.integers(-2, 3, size=6) / 2])
    full = signatures(w, b, domain)
    beyond = signatures(w, b, domain, exhaustive_limit=n - 1)
    for e, o in zip(full, beyond, strict=True):
        if o.exact:
            assert (o.hash, o.fire_count, o.chow, o.relevant) == (
                e.hash,
                e.fire_count,
                e.chow,
                e.relevant,
            )
            assert o.margin == pytest.approx(e.margin, rel=1e-9, abs=1e-15)


# ---------------------------------------------------------------- CLI


def test_cli_json():
    from roon.cli import app

    result = CliRunner().invoke(
        app, ["signature", "--weights", "0.7,0.7", "--bias", "-1", "--json"]
    )
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)
    assert row["truth_table"] == "8" and row["chow"] == [1, 1, 1] and row["exact"] is True


def test_cli_signed_table_and_errors():
    from roon.cli import app

    runner = CliRunner()
    result = runner.invoke(
        app, ["signature", "--weights", "-1", "--bias", "0", "--domain", "signed", "--json"]
    )
    assert result.exit_code == 0 and json.loads(result.stdout)["truth_table"] == "1"
    result = runner.invoke(app, ["signature", "--weights", "1,1", "--bias", "0"])
    assert result.exit_code == 0 and "3,2,2" in result.stdout
    bad = runner.invoke(app, ["signature", "--weights", "0.7,x"])
    assert bad.exit_code == 1 and "--weights" in bad.stderr


def test_uncertain_binary_rows_without_a_table_take_the_mitm_slow_path(monkeypatch):
    # before: every uncertain row enumerated all 2^n inputs on Python ints (4 s per neuron
    # at n = 24, the GPU default limit); binary rows without a table now count by MITM on
    # the same exact integers, with the same result in every field
    import importlib

    from roon.kernels.exhaustive import exhaustive_exact

    sigmod = importlib.import_module("roon.kernels.signatures")
    rng = np.random.default_rng(3)
    w = rng.normal(size=(6, 14))
    w[:, 0] = 2.0**-70 * 1.2345  # a rounded int64 row ...
    w[:, 2] = -w[:, 1]  # ... with exact ties (x_1 = x_2 = 1, the rest 0): uncertain
    b = np.zeros(6)
    b[3] = float(rng.normal())
    want = []
    for i in range(6):
        ws = np.sort(w[i])
        counts, denom = exhaustive_exact(ws, b[i], "binary")
        fire, chow = int(counts.fire[0]), counts.chow[0].tolist()
        margin = int(counts.min_abs[0]) / denom
        want.append((fire, (fire, *chow), margin, key_binary_chow(14, (fire, *chow))))
    calls = []
    monkeypatch.setattr(sigmod, "exhaustive_exact", lambda *a, **k: calls.append(a))
    for backend in ("ref", "auto"):
        got = signatures(w, b, backend=backend)
        assert [(g.fire_count, g.chow, g.margin, g.key) for g in got] == want
        assert got.method == ["mitm"] * 6
    assert not calls
    assert [g[2] == 0.0 for g in want] == [True] * 3 + [False] + [True] * 2


@pytest.mark.parametrize("backend", ["ref", "auto"])
def test_counted_rows_equal_enumerated_ones(backend):
    # binary neurons above the table limit are counted by meet-in-the-middle; with the
    # table limit raised the same neurons are enumerated: every field but the method and
    # the table agrees, exact ties, near ties and rounded rows included
    rng = np.random.default_rng(13)
    for n in (11, 12, 14, 16):
        w = np.concatenate(
            [
                rng.integers(-3, 4, size=(6, n)) / 4,  # exact ties, sums exactly 0
                rng.normal(size=(6, n)).astype(np.float32),
                rng.normal(size=(6, n)) * np.exp2(rng.integers(-40, 40, (6, n))),  # rounded
            ]
        )
        b = np.concatenate([rng.integers(-3, 4, 6) / 4, rng.normal(size=12)])
        counted = signatures(w, b, backend=backend)
        enumerated = signatures(w, b, backend=backend, table_limit=n)
        assert set(counted.method) == {"mitm"} and set(enumerated.method) == {"exhaustive"}
        for c, e in zip(counted.to_dicts(), enumerated.to_dicts(), strict=True):
            c.pop("method"), e.pop("method"), e.pop("truth_table"), c.pop("truth_table")
            assert c == e
        assert (counted.fragile & (np.array(counted.margin) == 0)).any()  # ties occurred
