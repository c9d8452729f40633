"""`roon circuits` and `roon circuits show` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from roon.cli import app
from roon.ingest.loaders.circuit import circuit_names, load_circuit

runner = CliRunner()


def roon(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def test_list_shows_every_library_circuit_with_its_widths():
    result = roon("circuits")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    for name in circuit_names():
        assert any(line.startswith(f"│ {name} ") for line in lines), name
    xor_row = next(line for line in lines if line.startswith("│ xor "))
    assert "2-2-1" in xor_row and "binary" in xor_row
    min_row = next(line for line in lines if line.startswith("│ min "))
    assert "2-3-1" in min_row and "signed" in min_row


def test_list_json():
    result = roon("circuits", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == circuit_names()
    by_name = {r["name"]: r for r in rows}
    assert by_name["xor"]["layers"] == "2-2-1" and by_name["xor"]["widths"] == [2, 2, 1]
    assert by_name["and"]["layers"] == "2-1" and by_name["maj3"]["widths"] == [3, 1]
    assert by_name["greater"]["input_domain"] == "signed"
    assert all(r["computes"] and r["source"] and r["description"] for r in rows)


def test_show_prints_the_weights_of_every_layer():
    result = roon("circuits", "show", "MIN")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "layer 0: 2 → 3, relu" in out and "layer 1: 3 → 1, linear" in out
    assert "│ 2      │ 1, -1   " in out  # the greaterness detector relu(x1 - x2)
    assert "│ 0      │ 1, -1, -1 │" in out
    assert "min(x1, x2) = x1 - relu(x1 - x2)" in out and "library:min" in out
    assert "Osier" in out


def test_show_json_is_the_file_format(tmp_path: Path):
    result = roon("circuits", "show", "xor", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc == load_circuit("xor").as_dict()
    path = tmp_path / "copy.json"
    path.write_text(result.stdout)
    assert load_circuit(path).mlp == load_circuit("xor").mlp


def test_show_a_file_prints_its_text_literally_not_as_markup(tmp_path: Path):
    doc = load_circuit("and").as_dict() | {
        "name": "mine",
        "description": "[red]not red[/red] and a stray [/bogus] tag",
        "computes": "[bold]x[/bold]",
        "input_bounds": [-1, 0.5],
    }
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(doc))
    result = roon("circuits", "show", path)
    assert result.exit_code == 0, result.output
    assert "[red]not red[/red] and a stray [/bogus] tag" in result.stdout
    assert "[bold]x[/bold]" in result.stdout
    assert "[-1, 0.5]" in result.stdout and str(path) in result.stdout


def test_unknown_name_lists_the_library_on_one_line():
    result = roon("circuits", "show", "nope")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("roon: error: no library circuit named 'nope'; the library has")
    assert all(name in lines[0] for name in circuit_names())


def test_bad_file_is_one_line_naming_the_file(tmp_path: Path):
    path = tmp_path / "bad.json"
    doc = load_circuit("xor").as_dict()
    doc["layers"][1]["weight"] = [[1, 1, 1]]
    path.write_text(json.dumps(doc))
    result = roon("circuits", "show", path)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"roon: error: {path}: layer 1 weight rows")
