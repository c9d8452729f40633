"""The README's "Graph server" section shows the example queries verbatim."""

from __future__ import annotations

from pathlib import Path

import pytest

from roon.query.cypher import EXAMPLE_QUERIES

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_shows_every_example_query_verbatim() -> None:
    text = README.read_text() if README.is_file() else ""
    section = text.split("\n## Graph server", 1)[-1].split("\n## ", 1)[0] if text else ""
    if "roon graph push" not in section:
        pytest.skip("README.md's '## Graph server' section is not written yet")
    for name, example in EXAMPLE_QUERIES.items():
        assert example.query.strip() in section, f"example query {name!r} is not in the README"
    for command in ("roon graph init", "roon graph push", "roon graph export", "roon cypher"):
        assert command in section
