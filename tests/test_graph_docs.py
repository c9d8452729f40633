"""The README's "Graph server" section shows the example queries verbatim."""

from __future__ import annotations

from pathlib import Path

from roon.query.neo4j.statements import EXAMPLE_QUERIES

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_shows_every_example_query_verbatim() -> None:
    # no skip when the section is missing: a renamed or dropped section must fail here
    text = README.read_text()
    assert "\n## Graph server" in text, "README.md has no '## Graph server' section"
    section = text.split("\n## Graph server", 1)[1].split("\n## ", 1)[0]
    for name, example in EXAMPLE_QUERIES.items():
        assert example.query.strip() in section, f"example query {name!r} is not in the README"
    for command in ("roon graph init", "roon graph push", "roon graph export", "roon cypher"):
        assert command in section


def test_readme_counts_its_example_queries_right() -> None:
    import re

    text = README.read_text()
    section = text.split("\n## Graph server", 1)[1].split("\n## ", 1)[0]
    shown = len(re.findall(r"```sh\nroon cypher '\n", section))
    words = {"three": 3, "four": 4, "five": 5, "six": 6, "seven": 7}
    claims = re.findall(r"The (\w+) example queries", text)
    assert claims and all(words.get(w) == shown for w in claims), (claims, shown)
