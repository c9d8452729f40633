"""docker/neo4j-test-server/server.sh without Java or Maven: a clear reason, and the
neo4j tests skip with it. (With them, `make test` runs the neo4j tests against it.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "docker" / "neo4j-test-server" / "server.sh"


def _script(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NEO4J_", "ROON_NEO4J_"))}
    return subprocess.run(
        ["bash", str(SERVER), *args],
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=120,
    )


def test_check_names_a_missing_java() -> None:
    done = _script("check", JAVA_HOME="/nonexistent-jdk")
    assert done.returncode == 3
    assert done.stdout.strip() == (
        "no Java: the Neo4j test server needs Java 17+ (install a JDK, or set JAVA_HOME)"
    )


def test_check_names_a_java_that_is_too_old(tmp_path: Path) -> None:
    java = tmp_path / "jdk" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text("#!/bin/sh\necho 'openjdk version \"11.0.22\" 2024-01-16' >&2\n")
    java.chmod(0o755)
    done = _script("check", JAVA_HOME=str(tmp_path / "jdk"))
    assert done.returncode == 3
    assert done.stdout.strip() == (
        f"{java} is Java 11.0.22: the Neo4j test server needs Java 17+ (set JAVA_HOME)"
    )


def test_check_names_a_missing_maven() -> None:
    done = _script("check", MVN="roon-no-such-mvn")
    if "no Java" in done.stdout:  # a machine without Java says that first
        return
    assert done.returncode == 3
    assert done.stdout.strip() == (
        "no Maven (roon-no-such-mvn not on PATH): the Neo4j test server is built with Maven 3"
    )


def test_run_without_java_runs_the_command_with_the_reason_and_its_status() -> None:
    done = _script(
        "run", "sh", "-c", 'echo "$ROON_NEO4J_SKIP_REASON|${NEO4J_URI-unset}"; exit 5',
        JAVA_HOME="/nonexistent-jdk",
    )  # fmt: skip
    assert done.returncode == 5
    assert done.stdout.strip() == (
        "no Java: the Neo4j test server needs Java 17+ (install a JDK, or set JAVA_HOME)|unset"
    )
    assert "the neo4j tests will skip" in done.stderr


def test_without_java_the_neo4j_tests_skip_with_the_reason_shown() -> None:
    done = _script(
        "run", sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
        str(ROOT / "tests" / "test_neo4j_live.py"), JAVA_HOME="/nonexistent-jdk",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:]
    skipped = re.findall(r"^SKIPPED \[(\d+)\] .*?: (.*)$", done.stdout, re.M)
    total = re.search(r"^(\d+) skipped in ", done.stdout.strip().splitlines()[-1])
    assert total and sum(int(n) for n, _ in skipped) == int(total[1]) > 0  # all skipped
    assert {reason for _, reason in skipped} == {
        "no Neo4j server: no Java: the Neo4j test server needs Java 17+ (install a JDK, or "
        "set JAVA_HOME) (`make test` starts one where Java and Maven are)"
    }


def test_the_readme_names_the_neo4j_version_the_test_server_runs() -> None:
    pom = (SERVER.parent / "pom.xml").read_text()
    version = re.search(r"<neo4j.version>(5\.26\.\d+)</neo4j.version>", pom)
    assert version, "the test server is not on the 5.26 LTS line"
    section = (ROOT / "README.md").read_text().split("\n## Graph server", 1)[1]
    assert f"Neo4j Community {version[1]}" in section.split("\n## ", 1)[0]
