"""The bulk road for real: ``neo4j-admin database import full`` of ``roon graph export``.

The import tool comes from Maven Central (``org.neo4j:neo4j-import-tool``, run through
``org.neo4j.cli.AdminTool`` as ``docker/neo4j-test-server/server.sh admin``). The test
runs the exact command that the export writes into its README, with ``neo4j-admin``
being that tool, into a fresh Neo4j home; starts a second test server on that home; and
checks that the imported graph is the graph ``roon graph push`` writes, node for node,
property for property, type for type.

Needs the embedded test server (``make test`` sets ROON_NEO4J_TEST_SERVER to its script);
skipped with the reason shown elsewhere.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fixtures import EXPECTED_COUNTS, LiveNeo4j, build_graph_catalogue
from typer.testing import CliRunner

from roon.cli import app

pytestmark = [pytest.mark.neo4j, pytest.mark.slow]

runner = CliRunner()


@pytest.fixture
def server_script(live_neo4j: Any) -> Path:
    script = os.environ.get("ROON_NEO4J_TEST_SERVER")
    if not script:
        pytest.skip(
            "the neo4j-admin import needs the embedded test server's jars; "
            "ROON_NEO4J_TEST_SERVER is not set (`make test` sets it)"
        )
    return Path(script)


def _roon(server: LiveNeo4j, *args: str) -> Any:
    result = runner.invoke(app, list(args), env=server.env())
    assert result.exit_code == 0, result.output
    return result


def test_neo4j_admin_import_of_the_export_equals_a_push(
    live_neo4j: LiveNeo4j, server_script: Path, tmp_path: Path
) -> None:
    catalogue = tmp_path / "cat"
    build_graph_catalogue(catalogue)
    export = tmp_path / "export"
    summary = json.loads(
        runner.invoke(
            app, ["graph", "export", "--format", "neo4j-admin", str(export),
                  "--catalogue", str(catalogue), "--json"],
        ).stdout
    )  # fmt: skip
    assert summary["command"] in (export / "README.md").read_text()

    home = tmp_path / "home"
    # the README's command verbatim, with `neo4j-admin` the import tool from Maven Central
    script = f'neo4j-admin() {{ "$ROON_SERVER_SH" admin "$ROON_HOME" "$@"; }}\n{summary["command"]}'
    env = {**os.environ, "ROON_SERVER_SH": str(server_script), "ROON_HOME": str(home)}
    done = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path
    )  # cwd: the tool writes import.report there
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    nodes = sum(EXPECTED_COUNTS[k] for k in ("Model", "Layer", "Neuron", "Signature"))
    rels = sum(
        EXPECTED_COUNTS[k]
        for k in ("HAS_LAYER", "NEXT", "HAS_NEURON", "FEEDS", "COMPUTES", "DERIVED_FROM")
    )
    assert f"{nodes} nodes" in done.stdout and f"{rels} relationships" in done.stdout

    state = tmp_path / "state"
    started = subprocess.run(
        [str(server_script), "start", str(state), "--home", str(home)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    try:
        assert started.returncode == 0, started.stderr[-3000:]
        settings = dict(
            line.split("=", 1) for line in (state / "env").read_text().splitlines() if line
        )
        imported = LiveNeo4j(
            {
                "uri": settings["NEO4J_URI"],
                "user": settings["NEO4J_USER"],
                "password": settings["NEO4J_PASSWORD"],
                "database": settings["NEO4J_DATABASE"],
            }
        )
        try:
            assert imported.counts() == EXPECTED_COUNTS
            _roon(imported, "graph", "init")  # the README's next step: constraints, indexes
            # every model carries pushed = true, so a push to the imported graph skips all
            again = json.loads(
                _roon(imported, "graph", "push", "--catalogue", str(catalogue), "--json").stdout
            )
            assert again["models_pushed"] == [] and again["nodes_created"] == 0
            imported_graph = imported.dump()
        finally:
            imported.close()
    finally:
        subprocess.run([str(server_script), "stop", str(state)], timeout=120)

    live_neo4j.wipe()
    try:
        _roon(live_neo4j, "graph", "init")
        _roon(live_neo4j, "graph", "push", "--catalogue", str(catalogue), "--json")
        assert live_neo4j.counts() == EXPECTED_COUNTS
        assert imported_graph == live_neo4j.dump()
    finally:
        live_neo4j.wipe()
