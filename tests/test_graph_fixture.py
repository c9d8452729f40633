"""The graph catalogue of tests/fixtures.py: its hand-derived answers hold."""

from __future__ import annotations

from pathlib import Path

from fixtures import (
    EXPECTED_COUNTS,
    build_graph_catalogue,
    graph_models,
    signature_hash,
    signatures_table,
)


def test_fixture_signatures_match_the_hand_derivation() -> None:
    by = {k: signatures_table(m).to_pylist() for k, m in graph_models().items()}
    and2, or2 = signature_hash(2, 0b1000), signature_hash(2, 0b1110)
    assert [r["hash"] for r in by["A"]] == [and2, or2, signature_hash(2, 0b0100)]
    assert [r["hash"] for r in by["C"]][:2] == [or2, and2]
    assert by["D"][2]["hash"] == by["A"][2]["hash"]  # same function after rescaling
    assert by["B"][1]["truth_table"] == "2"
    # tiny3 sorted weights (-0.2, 0.05, 0.9), bias 0.1: fires unless x0=1 and x2=0
    assert by["E"][0]["truth_table"] == f"{0b11110101:x}"
    assert by["E"][0]["chow"] == [6, 2, 3, 4] and by["E"][0]["fire_count"] == 6


def test_fixture_builds_and_counts(tmp_path: Path) -> None:
    from roon.store import list_models, read_table

    ids = build_graph_catalogue(tmp_path / "cat")
    assert sorted(ids.values()) == list_models(tmp_path / "cat")
    assert read_table(tmp_path / "cat", "edges").num_rows == EXPECTED_COUNTS["FEEDS"]
    assert read_table(tmp_path / "cat", "lineage").num_rows == EXPECTED_COUNTS["DERIVED_FROM"]
