"""Untrusted text reaches the terminal verbatim: never read as markup, emoji or control codes.

Model names come from file headers, paths from the user, cells from queries: each is
printed as it is, by every command that shows it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from roon import MLP, Layer
from roon.cli import app
from roon.cli._common import plain, print_rows, printable
from roon.ingest.loaders import save_safetensors

pytestmark = pytest.mark.integration
runner = CliRunner()

HOSTILE = [
    "[/]evil",
    "[link=https://example.com/x]click[/link]",
    "[b]hidden[/b] visible",
    ":x: smile :thumbs_up:",
    "[red]",
    "\x1b[31mred\x1b[0m",
]


def roon(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def _model_named(name: str, path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    mlp = MLP(
        [
            Layer(rng.normal(size=(2, 2)), rng.normal(size=2), "relu"),
            Layer(rng.normal(size=(1, 2)), rng.normal(size=1), "linear"),
        ],
        name=name,
    )
    return save_safetensors(mlp, path)


def test_print_rows_shows_markup_as_text(capsys):
    print_rows(["[/x]", "b"], [["[/bogus]", None], ["[b]hidden[/b] visible", ":x:"]], title="[/t]")
    out = capsys.readouterr().out
    for text in ("[/x]", "[/bogus]", "[b]hidden[/b] visible", ":x:", "[/t]"):
        assert text in out
    assert "❌" not in out


def test_control_characters_are_shown_not_obeyed():
    assert printable("a\x1b[31mb") == "a\\x1b[31mb"
    assert printable("x\u202eevil") == "x\\u202eevil"
    assert printable("tab\tand\nnewline") == "tab\tand\nnewline"
    assert plain(("[b]", "bold"), " x").plain == "[b] x"


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_model_names_print_verbatim_everywhere(tmp_path: Path, name: str):
    cat = tmp_path / "cat[/x]"  # a catalogue path with markup in it, too
    model = _model_named(name, tmp_path / "m.safetensors", seed=len(name))
    ingested = roon("ingest", model, "-c", cat, "--backend", "ref")
    assert ingested.exit_code == 0, ingested.output
    assert "[/x]" in ingested.stdout  # the summary line names the catalogue path as given
    shown = printable(name)
    listed = roon("models", "-c", cat)
    assert listed.exit_code == 0, listed.output
    assert shown in listed.stdout
    model_id = json.loads(roon("models", "-c", cat, "--json").stdout)[0]["model_id"]
    detail = roon("show", model_id[:8], "-c", cat)
    assert detail.exit_code == 0, detail.output
    assert shown in detail.stdout
    queried = roon("sql", "select name from models", "-c", cat)
    assert queried.exit_code == 0 and shown in queried.stdout
    assert "\x1b" not in listed.stdout + detail.stdout + queried.stdout
    lineage = roon("lineage", model_id[:8], "-c", cat)
    assert lineage.exit_code == 0, lineage.output


def test_query_results_are_not_markup(tmp_path: Path):
    cat = tmp_path / "cat"
    roon("ingest", _model_named("m", tmp_path / "m.safetensors", 1), "-c", cat, "--backend", "ref")
    result = roon("sql", "select '[b]hidden[/b] visible' AS \"[/h]\", '[/]' AS b", "-c", cat)
    assert result.exit_code == 0, result.output
    assert "[b]hidden[/b] visible" in result.stdout and "[/h]" in result.stdout
    assert "[/]" in result.stdout


def test_normalize_and_lineage_print_hostile_names(tmp_path: Path):
    cat = tmp_path / "cat"
    model = _model_named("[/]evil", tmp_path / "m.safetensors", 2)
    out = tmp_path / "[b]out.safetensors"
    result = roon("normalize", model, "--rules", "rescale", "-o", out, "--store", "-c", cat)
    assert result.exit_code == 0, result.output
    assert "[/]evil" in result.stdout and "[b]out.safetensors" in result.stdout
    some_id = json.loads(roon("models", "-c", cat, "--json").stdout)[0]["model_id"]
    lineage = roon("lineage", some_id, "-c", cat)
    assert lineage.exit_code == 0, lineage.output
    assert "[/]evil" in lineage.stdout and "rescale" in lineage.stdout


def test_errors_print_hostile_text_verbatim(tmp_path: Path):
    result = roon("show", "[/]nope\x1b[2J", "-c", tmp_path / "missing[/x]")
    assert result.exit_code == 1
    assert "[/x]" in result.stderr and "\x1b" not in result.stderr
