"""A connection to Neo4j: open it, ping it, run roon's statements, translate failures.

Driver failures become :class:`~roon.errors.GraphStoreError` (server, credentials,
database) or :class:`~roon.errors.QueryError` (the query itself), one line each, naming
the URI. The password is handed to the driver and nowhere else.

Example:
    >>> from roon.query.neo4j.connection import connect
    >>> with connect("neo4j://localhost:7687", "neo4j", "secret") as store:  # doctest: +SKIP
    ...     print(store.database)
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from roon.errors import GraphStoreError, QueryError, one_line
from roon.query.neo4j import (
    CONNECT_TIMEOUT_S,
    DEFAULT_DATABASE,
    DEFAULT_URI,
    DEFAULT_USER,
    statements,
)

__all__ = ["GraphStore", "connect", "display_uri", "execute", "ping", "reason", "translated"]

_QUIET = logging.NullHandler()
# Bolt schemes only: the driver's HTTP (Query API) support is a preview feature.
_SCHEMES = ("neo4j", "neo4j+s", "neo4j+ssc", "bolt", "bolt+s", "bolt+ssc")


@dataclass
class GraphStore:
    """An open connection: the driver plus the URI and database it talks to."""

    driver: Any
    uri: str
    database: str
    user: str = DEFAULT_USER

    def close(self) -> None:
        """Close the driver (idempotent)."""
        self.driver.close()

    def __enter__(self) -> GraphStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def display_uri(uri: str) -> str:
    """The URI with any ``user:password@`` part removed, safe to print.

    Everything up to the *last* ``@`` goes, scheme or not: a password may itself hold
    ``@``, ``/`` or ``#``, and a Neo4j URI has no other use for ``@``.
    """
    scheme, sep, rest = uri.partition("://")
    if not sep:
        scheme, rest = "", uri
    return scheme + sep + rest.rpartition("@")[2]


def reason(exc: BaseException) -> str:
    """The innermost cause of a driver error, one line (e.g. ``Connection refused``)."""
    text = one_line(exc)
    found = re.findall(r"\(reason (.+?)\)(?:\s|$)", text)
    return found[-1] if found else text


@contextlib.contextmanager
def translated(store: GraphStore, *, query_errors: bool = False) -> Iterator[None]:
    """Turn driver exceptions into roon errors naming the URI.

    With ``query_errors``, a client error about the statement itself (syntax, access
    mode, missing parameter) is a :class:`QueryError`; otherwise any server refusal is
    a :class:`GraphStoreError`.
    """
    from neo4j import exceptions as ex

    where = display_uri(store.uri)
    try:
        yield
    except ex.AuthError:
        raise GraphStoreError(
            f"Neo4j at {where} refused the credentials of user {store.user!r}: "
            "check NEO4J_USER and NEO4J_PASSWORD"
        ) from None
    except (ex.ServiceUnavailable, ex.SessionExpired) as exc:
        raise GraphStoreError(f"cannot reach Neo4j at {where}: {reason(exc)}") from None
    except ex.ClientError as exc:
        code = exc.code or ""
        message = one_line(exc.message or exc)
        if code.endswith("Security.AuthenticationRateLimit"):
            # after dbms.security.auth_max_failed_attempts (3) wrong passwords the server
            # refuses the user, right password or not, for auth_lock_time (5 s)
            raise GraphStoreError(
                f"Neo4j at {where} refused user {store.user!r} for now: too many wrong "
                "passwords in a row lock it for a few seconds (5 by default); check "
                "NEO4J_PASSWORD, then retry"
            ) from None
        if code.endswith("DatabaseNotFound"):
            raise GraphStoreError(
                f"Neo4j at {where} has no database {store.database!r} (community edition "
                "has only 'neo4j'): pass --database or set NEO4J_DATABASE"
            ) from None
        if query_errors and code.endswith("Statement.AccessMode"):
            raise QueryError(
                f"roon cypher runs read-only queries; the server refused: {message}"
            ) from None
        if query_errors and ".Statement." in code:
            raise QueryError(f"{code.rsplit('.', 1)[-1]}: {message}") from None
        raise GraphStoreError(f"Neo4j at {where} refused the request: {code}: {message}") from None
    except ex.Neo4jError as exc:
        message = one_line(exc.message or exc)
        raise GraphStoreError(f"Neo4j at {where} failed: {exc.code}: {message}") from None
    except ex.DriverError as exc:
        raise GraphStoreError(f"Neo4j at {where}: {reason(exc)}") from None


def connect(
    uri: str = DEFAULT_URI,
    user: str = DEFAULT_USER,
    password: str | None = None,
    *,
    database: str = DEFAULT_DATABASE,
    verify: bool = True,
) -> GraphStore:
    """Open a driver and (by default) check that ``database`` answers ``RETURN 1``.

    The check runs a real query, so a missing database is caught here, not half-way
    through a push.

    Raises:
        GraphStoreError: bad URI, server unreachable, credentials refused, or no such
            database; the message names the URI and the cause.
    """
    from neo4j import GraphDatabase
    from neo4j.exceptions import DriverError

    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if scheme not in _SCHEMES:
        raise GraphStoreError(
            f"invalid Neo4j URI {display_uri(uri)!r}: the scheme must be one of "
            f"{', '.join(_SCHEMES)} (e.g. {DEFAULT_URI})"
        )
    if display_uri(uri) != uri:
        # the driver's own error would quote the URI, password and all
        raise GraphStoreError(
            f"invalid Neo4j URI {display_uri(uri)!r}: give the user with --user or "
            "NEO4J_USER and the password in NEO4J_PASSWORD, not in the URI"
        )
    # The driver logs what it also raises ("Unable to retrieve routing information",
    # "defunct connection"); with no handler configured, logging's last resort printed
    # those on stderr above roon's one line. A NullHandler stops that and leaves logging
    # the user configures (on the root logger, say) untouched.
    logging.getLogger("neo4j").addHandler(_QUIET)
    try:
        driver = GraphDatabase.driver(
            uri,
            auth=(user, password or ""),
            connection_timeout=CONNECT_TIMEOUT_S,
            # a server that accepts the connection and never answers: the Bolt handshake
            # waits for this deadline (60 s by default), not for connection_timeout
            connection_acquisition_timeout=CONNECT_TIMEOUT_S,
        )
    except (ValueError, DriverError) as exc:  # bad port, bad query string, ...
        raise GraphStoreError(
            f"invalid Neo4j URI {display_uri(uri)!r}: {type(exc).__name__}: {reason(exc)}"
        ) from None
    store = GraphStore(driver=driver, uri=uri, database=database, user=user)
    if verify:
        try:
            ping(store)
        except BaseException:
            store.close()
            raise
    return store


def ping(store: GraphStore) -> None:
    """One auto-commit ``RETURN 1``: fails at once, where a managed transaction would
    retry a refused connection for half a minute before giving up."""
    try:
        with translated(store), store.driver.session(database=store.database) as session:
            session.run(statements.PING).consume()
    except ValueError as exc:  # the driver's word for an unresolvable host:port
        raise GraphStoreError(f"invalid Neo4j URI {display_uri(store.uri)!r}: {exc}") from None


def execute(
    store: GraphStore, statement: str, params: Mapping[str, Any], *, read: bool = False
) -> Any:
    """Run one roon statement in a managed transaction; returns the ``EagerResult``."""
    from neo4j import RoutingControl

    with translated(store):
        return store.driver.execute_query(
            statement,
            dict(params),
            database_=store.database,
            routing_=RoutingControl.READ if read else RoutingControl.WRITE,
        )
