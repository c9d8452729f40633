"""docker/: the compose file starts Neo4j 5 on localhost only, auth from an env file.

Checked as text (no YAML parser in the project's dependencies, no Docker engine here).
"""

from __future__ import annotations

import re
from pathlib import Path

DOCKER = Path(__file__).resolve().parents[1] / "docker"


def test_compose_file_runs_neo4j_5_on_localhost_with_a_health_check() -> None:
    text = (DOCKER / "compose.yaml").read_text()
    assert re.search(r"^\s+image: neo4j:5[\w.-]*-community\s*$", text, re.M)
    ports = re.findall(r'^\s+- "([^"]+)"', text, re.M)
    assert ports == [
        "127.0.0.1:${NEO4J_HTTP_PORT:-7474}:7474",
        "127.0.0.1:${NEO4J_BOLT_PORT:-7687}:7687",
    ]
    assert re.search(r"^\s+env_file:\n\s+- neo4j.env\b", text, re.M)
    assert re.search(r"^\s+- neo4j-data:/data\s*$", text, re.M)
    assert "healthcheck:" in text and "cypher-shell -a bolt://localhost:7687" in text
    assert not re.search(r"NEO4J_AUTH[=:]", text)  # the password lives in the env file only


def test_env_example_sets_only_the_server_auth() -> None:
    lines = [
        line
        for line in (DOCKER / "neo4j.env.example").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert len(lines) == 1 and re.fullmatch(r"NEO4J_AUTH=neo4j/\S{8,}", lines[0])
