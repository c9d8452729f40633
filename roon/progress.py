"""The one progress protocol: long-running library calls report :class:`Progress` events.

A function that takes ``progress: ProgressCallback | None`` calls it now and then with
one small event: how many units of a task are done, out of how many. The library never
draws anything; the CLI has one adapter (``roon.cli._common.ProgressBars``) that turns
events into rich bars, one bar per ``task``.

Example:
    >>> seen = []
    >>> emit(seen.append, "models", 1, 3, "xor.pt")
    >>> seen[0].fraction
    0.3333333333333333
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Progress", "ProgressCallback", "emit", "shifted"]


@dataclass(frozen=True)
class Progress:
    """``done`` of ``total`` units of ``task`` (``total`` None while unknown).

    Attributes:
        task: what is counted, e.g. ``models``, ``neurons``, ``rows``, ``candidates``.
        done: units finished so far (a running total, never an increment).
        total: units in all, or None.
        detail: what is being worked on now (a model name, a layer), for display.
    """

    task: str
    done: int
    total: int | None = None
    detail: str = ""

    @property
    def fraction(self) -> float | None:
        """``done / total``, or None when the total is unknown or zero."""
        return self.done / self.total if self.total else None


ProgressCallback = Callable[[Progress], None]


def emit(
    callback: ProgressCallback | None,
    task: str,
    done: int,
    total: int | None = None,
    detail: str = "",
) -> None:
    """Send one event to ``callback`` (nothing when it is None)."""
    if callback is not None:
        callback(Progress(task, int(done), None if total is None else int(total), detail))


def shifted(
    callback: ProgressCallback | None, start: int, total: int | None, detail: str = ""
) -> ProgressCallback | None:
    """A callback for a part of a job: its ``done`` counts on from ``start`` of ``total``.

    E.g. signatures of a model's layer 2 report neurons 0..n of that layer; shifted by the
    neurons of layers 0 and 1 they become the model's running total.
    """
    if callback is None:
        return None

    def forward(event: Progress) -> None:
        callback(Progress(event.task, start + event.done, total, detail or event.detail))

    return forward
