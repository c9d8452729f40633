"""``roon graph ...`` and ``roon cypher`` without a server.

The connection-error path runs for real against a port that refuses connections
(``bolt://127.0.0.1:1``); server answers (wrong password, missing database, a refused
write) come from fakes raising the driver's own exception types.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fixtures import FakeDriver, FakeResult, build_graph_catalogue
from neo4j.exceptions import Neo4jError
from typer.testing import CliRunner

from roon.cli import app, graph_cmds
from roon.query import neo4j
from roon.query.neo4j import connection
from roon.query.neo4j.connection import GraphStore, display_uri

SECRET = "pw-S3cret-never-print"
REFUSING = "bolt://127.0.0.1:1"
runner = CliRunner()


def _invoke(*args: str, password: str | None = SECRET) -> Any:
    env = {"NEO4J_PASSWORD": password, "NEO4J_URI": None, "NEO4J_USER": None}
    return runner.invoke(app, list(args), env=env)


def test_help_imports_no_heavy_module() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from roon.cli import app\n"
        "for args in (['--help'], ['graph', '--help'], ['cypher', '--help'],"
        " ['graph', 'push', '--help']):\n"
        "    assert CliRunner().invoke(app, args).exit_code == 0, args\n"
        "print(sorted(m for m in ('neo4j', 'duckdb', 'pyarrow', 'torch') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_defaults_match_the_library() -> None:
    assert graph_cmds.DEFAULT_URI == neo4j.DEFAULT_URI == "neo4j://localhost:7687"
    assert graph_cmds.DEFAULT_USER == neo4j.DEFAULT_USER == "neo4j"
    assert graph_cmds.DEFAULT_DATABASE == neo4j.DEFAULT_DATABASE == "neo4j"


@pytest.mark.parametrize(
    "args",
    [
        ("cypher", "RETURN 1", "--uri", REFUSING),
        ("graph", "init", "--uri", REFUSING),
        ("graph", "push", "--uri", REFUSING, "--catalogue", "nowhere"),
        ("--debug", "graph", "init", "--uri", REFUSING),
    ],
)
def test_refused_connection_is_one_line_and_never_shows_the_password(
    args: tuple[str, ...], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="neo4j")
    result = _invoke(*args)
    assert result.exit_code == 1
    message = f"roon: error: cannot reach Neo4j at {REFUSING}: [Errno 111] Connection refused"
    assert result.stderr.strip().splitlines()[-1] == message
    if "--debug" not in args:
        assert result.output.strip() == message
    assert caplog.records, "the driver logged nothing at DEBUG: the check would be vacuous"
    assert all(SECRET not in r.getMessage() for r in caplog.records)
    assert SECRET not in result.output and SECRET not in caplog.text


def test_a_password_inside_the_uri_is_refused_without_echoing_it() -> None:
    result = _invoke("graph", "init", "--uri", f"bolt://neo4j:{SECRET}@127.0.0.1:1")
    assert result.exit_code == 1
    assert "invalid Neo4j URI 'bolt://127.0.0.1:1'" in result.output
    assert SECRET not in result.output


@pytest.mark.parametrize("uri", ["http://localhost:7474", "localhost:7687"])
def test_non_bolt_uris_are_refused(uri: str) -> None:
    result = _invoke("graph", "init", "--uri", uri)
    assert result.exit_code == 1 and "the scheme must be one of neo4j" in result.output


def test_no_password_and_no_terminal() -> None:
    result = _invoke("graph", "init", "--uri", REFUSING, password=None)
    assert result.exit_code == 1
    assert result.output.strip() == (
        "roon: error: no Neo4j password: set NEO4J_PASSWORD (roon prompts only on a tty)"
    )


class _Refusing:
    """A driver whose server answers every query with one error."""

    def __init__(self, code: str, message: str) -> None:
        self.error = Neo4jError._hydrate_neo4j(code=code, message=message)

    def session(self, **kwargs: Any) -> Any:
        error = self.error

        class Session:
            def __enter__(self) -> Any:
                return self

            def __exit__(self, *exc: object) -> None:
                return None

            def run(self, *a: Any, **k: Any) -> Any:
                raise error

            def execute_read(self, work: Any) -> Any:
                raise error

        return Session()

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (
            "Neo.ClientError.Security.Unauthorized",
            "Neo4j at neo4j://db:7687 refused the credentials of user 'neo4j': "
            "check NEO4J_USER and NEO4J_PASSWORD",
        ),
        (
            "Neo.ClientError.Database.DatabaseNotFound",
            "Neo4j at neo4j://db:7687 has no database 'graphs' (community edition has only "
            "'neo4j'): pass --database or set NEO4J_DATABASE",
        ),
        (  # what Neo4j 5.26 answers after 3 wrong passwords in a row (issue 15)
            "Neo.ClientError.Security.AuthenticationRateLimit",
            "Neo4j at neo4j://db:7687 refused user 'neo4j' for now: too many wrong passwords "
            "in a row lock it for a few seconds (5 by default); check NEO4J_PASSWORD, then retry",
        ),
    ],
)
def test_server_refusals_name_the_uri_and_the_cause(
    monkeypatch: pytest.MonkeyPatch, code: str, expected: str
) -> None:
    import neo4j

    monkeypatch.setattr(neo4j.GraphDatabase, "driver", lambda *a, **k: _Refusing(code, "no"))
    result = _invoke("graph", "init", "--uri", "neo4j://db:7687", "--database", "graphs")
    assert result.exit_code == 1
    assert result.output.strip() == f"roon: error: {expected}"


class _ReadDriver:
    """Answers a read transaction with fixed columns and rows (and the summary's status
    objects ``statuses``); records the query."""

    def __init__(self, columns: list[str], rows: list[list[Any]], statuses: Any = ()) -> None:
        self.columns, self.rows, self.seen = columns, rows, []
        self.statuses = list(statuses)

    def session(self, **kwargs: Any) -> Any:
        driver = self

        class Result:
            def keys(self) -> list[str]:
                return driver.columns

            def __iter__(self) -> Any:
                return iter(type("R", (), {"values": lambda s, r=r: r})() for r in driver.rows)

            def consume(self) -> Any:
                return type("Summary", (), {"gql_status_objects": driver.statuses})()

        class Tx:
            def run(self, query: str, params: dict) -> Any:
                driver.seen.append((query, params, kwargs))
                return Result()

        class Session:
            def __enter__(self) -> Any:
                return self

            def __exit__(self, *exc: object) -> None:
                return None

            def execute_read(self, work: Any) -> Any:
                return work(Tx())

        return Session()

    def close(self) -> None:
        pass


def _fake_connect(monkeypatch: pytest.MonkeyPatch, driver: Any) -> None:
    def connect(uri: str, user: str, password: str | None, *, database: str) -> GraphStore:
        assert password == SECRET
        return GraphStore(driver, uri, database, user)

    monkeypatch.setattr(connection, "connect", connect)


def test_cypher_passes_params_and_prints_json(monkeypatch: pytest.MonkeyPatch) -> None:
    driver = _ReadDriver(["name", "layers", "extra"], [["xor_net", 2, {"a": [1]}]])
    _fake_connect(monkeypatch, driver)
    query = "MATCH (m:Model) WHERE m.n_layers >= $n AND m.name = $name RETURN m"
    result = _invoke("cypher", query, "--param", "n=2", "-p", "name=xor_net", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"name": "xor_net", "layers": 2, "extra": {"a": [1]}}]
    ((seen_query, params, session),) = driver.seen
    assert seen_query == query and params == {"n": 2, "name": "xor_net"}
    assert session == {"database": "neo4j"}


def test_cypher_prints_a_table(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_connect(monkeypatch, _ReadDriver(["model", "n"], [["xor_net", 3], [None, 1]]))
    result = _invoke("cypher", "MATCH (m) RETURN m.name AS model, 3 AS n")
    assert result.exit_code == 0
    assert "model" in result.stdout and "xor_net" in result.stdout


def test_cypher_prints_the_server_warnings_one_line_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from neo4j import NotificationSeverity

    def status(severity: Any, text: str, notification: bool = True) -> Any:
        fields = {"is_notification": notification, "severity": severity, "status_description": text}
        return type("Status", (), fields)()

    deprecated = (
        "warn: feature deprecated. CALL subquery without a variable scope clause\n is deprecated."
    )
    statuses = [
        status(NotificationSeverity.WARNING, deprecated),
        status(NotificationSeverity.INFORMATION, "info: cartesian product."),
        status(NotificationSeverity.WARNING, "note: successful completion", notification=False),
    ]
    _fake_connect(monkeypatch, _ReadDriver(["y"], [[2]], statuses))
    result = _invoke("cypher", "RETURN 1", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"y": 2}]
    assert result.stderr.splitlines() == [
        "roon: warning: feature deprecated. CALL subquery without a variable scope clause "
        "is deprecated."
    ]


def test_cypher_tables_print_values_verbatim(monkeypatch: pytest.MonkeyPatch) -> None:
    # found against a real server: `LOAD CSV` of /etc/passwd showed `root:x:0` as `root❌0`
    values = ["root:x:0:0", "[bold]net[/bold]", "[/]", ":thumbs_up:"]
    _fake_connect(monkeypatch, _ReadDriver(["[red]col"], [[v] for v in values]))
    result = _invoke("cypher", "RETURN 1")
    assert result.exit_code == 0, result.output
    cells = [line.strip("┃│ ") for line in result.stdout.splitlines() if line[:1] in "┃│"]
    assert cells == ["[red]col", *values]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (
            "Neo.ClientError.Statement.AccessMode",
            "roon: error: roon cypher runs read-only queries; the server refused: "
            "Writing in read access mode not allowed",
        ),
        (
            "Neo.ClientError.Statement.SyntaxError",
            "roon: error: SyntaxError: Writing in read access mode not allowed",
        ),
    ],
)
def test_cypher_query_errors_are_one_line(
    monkeypatch: pytest.MonkeyPatch, code: str, expected: str
) -> None:
    _fake_connect(monkeypatch, _Refusing(code, "Writing in read access mode not allowed"))
    result = _invoke("cypher", "CREATE (n:X) RETURN n")
    assert result.exit_code == 1 and result.output.strip() == expected


def test_cypher_rejects_bad_params_before_connecting(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_connect(monkeypatch, None)
    result = _invoke("cypher", "RETURN $x", "--param", "x")
    assert result.exit_code == 1 and "expected name=value" in result.output


def test_push_prints_a_summary_and_skips_on_the_second_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    build_graph_catalogue(tmp_path / "cat")
    finished: set[str] = set()
    _fake_connect(monkeypatch, FakeDriver(finished=finished))
    args = ("graph", "push", "--catalogue", str(tmp_path / "cat"), "--uri", "bolt://db:7687")
    first = _invoke(*args, "--batch-size", "7")
    assert first.exit_code == 0, first.output
    text = " ".join(first.stdout.split())
    assert "pushed 5 models, skipped 0 already complete, merged 3 lineage rows" in text
    assert "→ bolt://db:7687 (database neo4j)" in text
    assert "created 90 nodes, 90 relationships" in text  # the fake counts one per row
    _fake_connect(monkeypatch, FakeDriver(finished=finished))
    second = _invoke(*args, "--json")
    summary = json.loads(second.stdout)
    assert summary["models_pushed"] == [] and len(summary["models_skipped"]) == 5
    assert SECRET not in first.output + second.output


def test_init_reports_the_statements(monkeypatch: pytest.MonkeyPatch) -> None:
    driver = FakeDriver()
    _fake_connect(monkeypatch, driver)
    result = _invoke("graph", "init", "--uri", "neo4j://db:7687")
    assert result.exit_code == 0
    assert "applied 11 schema statements → neo4j://db:7687 (database neo4j)" in result.stdout
    assert len(driver.calls) == 11


def test_export_command(tmp_path: Path) -> None:
    build_graph_catalogue(tmp_path / "cat")
    out = tmp_path / "out"
    result = _invoke(
        "graph", "export", "--format", "neo4j-admin", str(out), "--catalogue", str(tmp_path / "cat")
    )
    assert result.exit_code == 0, result.output
    assert f"import command in {out}/README.md" in " ".join(result.stdout.split())
    assert (out / "feeds.csv").is_file() and (out / "feeds.header.csv").is_file()
    as_json = _invoke(
        "graph", "export", str(out), "--catalogue", str(tmp_path / "cat"), "--min-weight", "0.1"
    )
    assert as_json.exit_code == 0
    bad = _invoke("graph", "export", "--format", "graphml", str(out))
    assert bad.exit_code == 1  # a usage error: one line, exit 1 like every error
    assert bad.stderr.strip().count("\n") == 0 and "graphml" in bad.stderr


def test_fake_result_is_the_shape_the_store_reads() -> None:
    assert FakeResult(rows=2).summary.counters.relationships_created == 2


URI_SECRET = "S3cret-never-print"


def _invoke_any_password(*args: str) -> Any:
    env = {"NEO4J_PASSWORD": "x", "NEO4J_URI": None, "NEO4J_USER": None}
    return CliRunner().invoke(app, list(args), env=env)


@pytest.mark.parametrize(
    "uri",
    [
        f"bolt://neo4j:pa/{URI_SECRET}@127.0.0.1:1",  # '/' in the password
        f"bolt://neo4j:p@{URI_SECRET}@127.0.0.1:1",  # '@' in the password
        f"neo4j://neo4j:p#{URI_SECRET}@127.0.0.1:1",
        f"neo4j:{URI_SECRET}@localhost:7687",  # no scheme
        f"http://neo4j:{URI_SECRET}@localhost:7474",  # a scheme roon refuses
    ],
)
def test_no_part_of_a_password_in_the_uri_is_ever_printed(uri: str) -> None:
    for args in (("graph", "init"), ("cypher", "RETURN 1"), ("graph", "push", "-c", "nowhere")):
        result = _invoke_any_password(*args, "--uri", uri)
        assert result.exit_code == 1
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert "invalid Neo4j URI" in result.output
        assert URI_SECRET not in result.output and URI_SECRET[:6] not in result.output


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("bolt://u:p@host:7687", "bolt://host:7687"),
        ("bolt://u:a/b@host:7687", "bolt://host:7687"),
        ("bolt://u:a@b@host:7687?x=1", "bolt://host:7687?x=1"),
        ("u:p@host:7687", "host:7687"),
        ("neo4j://host:7687", "neo4j://host:7687"),
        ("localhost:7687", "localhost:7687"),
    ],
)
def test_display_uri(uri: str, shown: str) -> None:
    assert display_uri(uri) == shown


@pytest.fixture
def silent_server():
    """A server that accepts every connection and never sends a byte."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()
    for sock in held:
        sock.close()


@pytest.mark.parametrize("scheme", ["bolt", "neo4j"])
def test_a_silent_server_honours_the_connect_timeout_in_one_line(
    silent_server: int, scheme: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver waited 60 s (its acquisition deadline) whatever connection_timeout
    said, and its loggers printed 'Unable to retrieve routing information' above roon's
    line. With the timeout set to 1 s, roon gives up within a few seconds, in one line."""
    import time

    monkeypatch.setattr(connection, "CONNECT_TIMEOUT_S", 1.0)
    uri = f"{scheme}://127.0.0.1:{silent_server}"
    start = time.monotonic()
    result = _invoke("graph", "init", "--uri", uri)
    elapsed = time.monotonic() - start
    assert result.exit_code == 1
    assert elapsed < 8, f"waited {elapsed:.0f} s with a 1 s connect timeout"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"roon: error: cannot reach Neo4j at {uri}: ")
