"""The event log keeps what matters (issue 14): warnings, errors and failures are kept apart
from the bounded stream of routine lines, and /level: filters by level."""

from __future__ import annotations

from antflow.runstream.records import Event, LogLine
from antflow_tui.screens.main import MainScreen
from antflow_tui.source.base import Frame, RunStatus
from antflow_tui.source.state import LogEntry, RunState
from antflow_tui.widgets.event_log import EventLog
from tests.tui.apps import until
from tests.tui.recorded import recorded_app

SIZE = (120, 40)


def _lines(count: int, stream: str, at: float, text: str) -> list[LogEntry]:
    return [LogEntry(line=LogLine(at=at, text=f"{text} {n}", stream=stream)) for n in range(count)]


async def test_twenty_errors_outlive_a_hundred_thousand_debug_lines() -> None:
    app = recorded_app("mid_run", log_lines=200)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.state.status is not None)
        app.redraw()
        main = app.screen
        assert isinstance(main, MainScreen)
        log = main.query_one(EventLog)
        started = app.state.status.started_at  # type: ignore[union-attr]
        main.add_log(_lines(20, "ERROR", started + 1, "disk full on shard"), force=True)
        main.add_log(_lines(3, "WARNING", started + 1, "slow shard"), force=True)
        for batch in range(100):
            # A frame's worth at a time, as the app drains them.
            main.add_log(_lines(1_000, "DEBUG", started + 2 + batch / 100, "tick"), force=True)
        assert len(log.entries) == 200, "the routine window stays bounded"
        shown = [log.entry_at(i) for i in range(log.row_count)]
        texts = [entry.line.text for entry in shown if entry is not None and entry.line]
        assert [t for t in texts if t.startswith("disk full")] == [
            f"disk full on shard {n}" for n in range(20)
        ]
        assert len([t for t in texts if t.startswith("slow shard")]) == 3
        gap = next(entry for entry in shown if entry is not None and entry.gap)
        assert gap.gap >= 99_800
        assert "earlier lines not kept" in log.render_row(shown.index(gap), 100).plain
        # The kept lines come first, the divider, then the routine window's newest lines.
        assert texts[-1] == "tick 999"

        await pilot.press("4", "slash")
        main.query_one("#filter-bar").value = "level:error"  # type: ignore[attr-defined]
        await pilot.press("enter")
        errors = [log.entry_at(i) for i in range(log.row_count)]
        lines = [e.line.text for e in errors if e is not None and e.line is not None]
        assert [t for t in lines if t.startswith("disk full")] == [
            f"disk full on shard {n}" for n in range(20)
        ]
        assert all(e is None or e.gap or e.level >= 40 for e in errors)
        assert not any(t.startswith(("tick", "slow shard")) for t in lines)

        await pilot.press("slash")
        main.query_one("#filter-bar").value = "level:warning shard"  # type: ignore[attr-defined]
        await pilot.press("enter")
        lines = [
            e.line.text
            for e in (log.entry_at(i) for i in range(log.row_count))
            if e is not None and e.line is not None
        ]
        assert len(lines) == 23


async def test_a_replay_jump_forgets_the_kept_lines_too() -> None:
    app = recorded_app("mid_run", log_lines=10)
    async with app.run_test(size=SIZE):
        await until(lambda: app.state.status is not None)
        log = app.screen.query_one(EventLog)
        log.clear_entries()
        log.add(_lines(2, "ERROR", 0.0, "bad"), force=True)
        log.add(_lines(50, "INFO", 1.0, "ok"), force=True)
        assert log.row_count == 2 + 1 + 10
        log.clear_entries()
        assert log.row_count == 0
        assert not log.kept_lines


# ------------------------------------------------- entries from one frame, in log order


def _frame(
    events: tuple[Event, ...] = (), logs: tuple[LogLine, ...] = (), dropped: int = 0
) -> Frame:
    status = RunStatus(title="t", now=10.0, started_at=0.0)
    return Frame(
        status=status, pipelines=(), snapshots={}, events=events, logs=logs, dropped=dropped
    )


def _bare_log(capacity: int) -> EventLog:
    log = EventLog(capacity)
    log.set_count = lambda count: None  # type: ignore[method-assign]  # no screen here
    return log


def test_a_frame_s_entries_are_numbered_in_the_order_the_log_shows_them() -> None:
    # Events and printed lines come apart and are merged by time; the log compares the
    # entries' numbers with its window's first, so they must run in log order.
    entries = RunState().apply(
        _frame(
            events=(Event(1, 2.0, "a", "completed", "S"), Event(1, 3.0, "b", "failed", "S")),
            logs=(LogLine(1.0, "disk almost full", "WARNING"),),
            dropped=5,
        )
    )
    assert [e.dropped > 0 for e in entries] == [True, False, False, False]
    assert [e.seq for e in entries] == sorted(e.seq for e in entries)


def test_a_failure_in_the_window_is_not_also_pinned_above_it() -> None:
    log = _bare_log(capacity=3)
    log._apply(
        RunState().apply(
            _frame(
                events=(Event(1, 1.0, "a", "failed", "S"), Event(1, 2.0, "b", "completed", "S")),
                dropped=5,
            )
        )
    )
    rows = [log.entry_at(i) for i in range(len(log._pinned_rows()) + len(log.entries))]
    failed = [row for row in rows if row is not None and row.event and row.event.kind == "failed"]
    assert len(failed) == 1


def test_a_warning_that_fell_off_the_window_stays_pinned() -> None:
    log = _bare_log(capacity=2)
    log._apply(
        RunState().apply(
            _frame(
                events=(Event(1, 2.0, "a", "completed", "S"), Event(1, 3.0, "b", "completed", "S")),
                logs=(LogLine(1.0, "disk almost full", "WARNING"),),
            )
        )
    )
    pinned = [row.line.text for row in log._pinned_rows() if row.line is not None]
    assert pinned == ["disk almost full"]
