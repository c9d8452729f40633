"""The one error tree of roon.

Library code raises these; the CLI turns any :class:`RoonError` into a one-line
message on stderr and exit code 1. Each message names the bad value and, where one
exists, the fix.
"""

from __future__ import annotations

import os

__all__ = [
    "RoonError",
    "ModelFormatError",
    "UnsupportedArchitectureError",
    "CatalogueError",
    "KernelUnavailableError",
    "GraphStoreError",
    "QueryError",
    "InvalidArgumentError",
    "one_line",
    "require_reference",
]


class RoonError(Exception):
    """Base class of every error roon raises on purpose."""


class ModelFormatError(RoonError, ValueError):
    """A model file is unreadable, truncated, corrupt or holds invalid values."""


class UnsupportedArchitectureError(RoonError, ValueError):
    """A model is readable but is not a chain of dense layers roon can analyse."""


class CatalogueError(RoonError):
    """The catalogue directory is missing, damaged, or a lookup in it failed."""


class KernelUnavailableError(RoonError, RuntimeError):
    """An explicitly requested compute backend cannot run on this machine."""


class GraphStoreError(RoonError):
    """The Neo4j server cannot be reached or refused a request."""


class QueryError(RoonError, ValueError):
    """A query is malformed, refers to unknown names, or would write when it may not."""


class InvalidArgumentError(RoonError, ValueError):
    """A parameter is out of range, of the wrong type or shape, or names nothing known."""


def one_line(message: object) -> str:
    """``message`` (text or an exception) with every run of whitespace collapsed to one space.

    Error messages are printed on one line; libraries below roon (DuckDB, the Neo4j
    driver, torch) often put newlines and indentation in theirs. An empty message
    becomes the exception's type name.
    """
    text = " ".join(str(message).split())
    if not text and isinstance(message, BaseException):
        return type(message).__name__
    return text


def require_reference(value: object, what: str) -> str | os.PathLike[str]:
    """``value`` when it can name something (a file, a catalogued model, a circuit): a
    ``str`` or a text ``os.PathLike``; the shared check of the public entry points.

    Args:
        value: what the caller passed.
        what: the parameter in words, for the message (e.g. ``"model a"``).

    Raises:
        InvalidArgumentError: any other type (an int, bytes, a list, an array, ...).
    """
    if isinstance(value, str):
        return value
    if isinstance(value, os.PathLike) and isinstance(os.fspath(value), str):
        return value
    raise InvalidArgumentError(
        f"{what} must be a path or a name (a str or a pathlib.Path), not {type(value).__name__}"
    )
