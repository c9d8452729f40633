"""Shared pytest setup: tests import tiny models from tests/fixtures.py; the live Neo4j
server fixture."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` run only where Triton can launch on a CUDA GPU."""
    import pytest

    gpu = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu:
        return
    from roon.kernels.dispatch import gpu_missing

    reason = gpu_missing()
    if reason is not None:
        for item in gpu:
            item.add_marker(pytest.mark.skip(reason=f"no GPU: {reason}"))


@pytest.fixture(scope="session")
def live_neo4j():
    """The run's Neo4j server (see fixtures.LiveNeo4j), or a skip naming why there is none.

    Its database must be empty, or ROON_NEO4J_TEST_WIPE=1 must say the tests may wipe it
    (``make test`` sets it for the throw-away server it starts).
    """
    import os

    from fixtures import LiveNeo4j, live_neo4j_settings

    settings, why = live_neo4j_settings()
    if settings is None:
        pytest.skip(why)
    server = LiveNeo4j(settings)
    try:
        if server.counts() and os.environ.get("ROON_NEO4J_TEST_WIPE") != "1":
            pytest.skip("the Neo4j database holds data; ROON_NEO4J_TEST_WIPE=1 lets tests wipe it")
        yield server
    finally:
        server.close()
