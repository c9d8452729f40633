"""The CLI's progress adapter: bars with elapsed time and ETA on a terminal, plain lines
every few seconds elsewhere (CI logs used to show nothing until the end)."""

from __future__ import annotations

import io

from roon.cli._common import ProgressBars
from roon.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_off_a_terminal_a_plain_line_every_interval_with_elapsed_and_eta():
    out, clock = io.StringIO(), Clock()
    with ProgressBars(out, interval=5.0, clock=clock) as bars:
        bars(Progress("models", 0, 10, "a.pt"))
        clock.now += 2.0
        bars(Progress("models", 1, 10, "b.pt"))  # 2 s in: too soon for a line
        assert out.getvalue() == ""
        clock.now += 4.0
        bars(Progress("models", 2, 10, "c.pt"))  # 6 s in, 2 of 10: 24 s left
        clock.now += 1.0
        bars(Progress("models", 3, 10, "d.pt"))  # 1 s after the last line: quiet
        clock.now += 9.0
        bars(Progress("models", 5, 10, "e.pt"))  # 16 s in, 5 of 10: 16 s left
    assert out.getvalue().splitlines() == [
        "roon: models 2/10 (20%) elapsed 0:00:06, about 0:00:24 left (c.pt)",
        "roon: models 5/10 (50%) elapsed 0:00:16, about 0:00:16 left (e.pt)",
    ]


def test_tasks_are_timed_apart_and_a_restarted_count_restarts_its_clock():
    out, clock = io.StringIO(), Clock()
    bars = ProgressBars(out, interval=1.0, clock=clock)
    bars(Progress("neurons", 0, 300, "net1"))
    clock.now += 30.0
    bars(Progress("neurons", 300, 300, "net1"))
    bars(Progress("neurons", 0, 100, "net2"))  # the next model: a new count
    clock.now += 2.0
    bars(Progress("neurons", 50, 100, "net2"))
    bars(Progress("rows", 7, None))  # another task, total unknown: its first event
    clock.now += 3600.0 + 61.0
    bars(Progress("rows", 9, None))
    assert out.getvalue().splitlines() == [
        "roon: neurons 300/300 (100%) elapsed 0:00:30 (net1)",
        "roon: neurons 50/100 (50%) elapsed 0:00:02, about 0:00:02 left (net2)",
        "roon: rows 9 elapsed 1:01:01",
    ]


def test_on_a_terminal_bars_show_elapsed_time_and_time_left():
    from rich.progress import TimeElapsedColumn, TimeRemainingColumn

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    with ProgressBars(out) as bars:
        bars(Progress("models", 1, 4, "x.pt"))
        kinds = {type(c) for c in bars._bar.columns}
        assert {TimeElapsedColumn, TimeRemainingColumn} <= kinds
        [task] = bars._bar.tasks
        assert (task.completed, task.total, task.description) == (1, 4, "models x.pt")
    assert "roon: models" not in out.getvalue()  # no plain lines on a terminal
