"""A rate-limited run recorded and replayed shows the same limits as it did live.

Issue 21 ("Recorded, so replay shows all of it"): the gauges (tokens used of the budget,
calls, 429s a minute, the cool-down left), each stage's concurrency, 429s, timeouts and
tokens, and their history, read from a recording at a moment, are what the live app
showed at that moment. The run is `tests.tui.limited`, in virtual time.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from antflow.runstream.fileformat import Recording
from antflow.runstream.recorder import Recorder
from antflow_tui.gauges import limit_lines
from antflow_tui.present import STAGE_COLUMNS, stage_rows, stage_views
from antflow_tui.screens.stage import limits_section
from antflow_tui.source.replay import ReplaySource
from antflow_tui.source.state import RunState
from tests.tui.apps import text_of
from tests.tui.limited import LimitedRun

if TYPE_CHECKING:
    from pathlib import Path

    from tests.vtime import VirtualTime

LIMIT_COLUMNS = ("concurrency", "rate_limited", "timeouts", "tokens")


def shown(state: RunState) -> dict[str, Any]:
    """What the app shows of the limits at the state's moment: the gauge lines, the Ask
    row's limit cells, and the numbers of Ask's Limits section."""
    status = state.status
    assert status is not None
    started, snapshot = state.pipelines[1], state.snapshots[1]
    views = stage_views(started, snapshot)
    keys = [key for key, _ in STAGE_COLUMNS]
    ask = stage_rows(views, {}, None)[1]
    section = limits_section(views[1], snapshot.limits[0], None, None, status.now)
    return {
        "at": snapshot.at,
        "gauges": [line.plain for line in limit_lines([snapshot], status.now, 160)],
        "cells": [ask.cells[keys.index(key)].plain for key in LIMIT_COLUMNS],
        "section": text_of(type("S", (), {"content": section})(), 160),
        "snapshot": snapshot,
    }


# Issue 21: live and replayed, the same gauges and numbers at the same moments: while
# calls start, at the first 429 (a cool-down counting down) and after the timeout.
def test_a_replay_shows_the_limits_the_live_run_showed(vtime: VirtualTime, tmp_path: Path) -> None:
    path = tmp_path / "limited.jsonl"
    live: list[dict[str, Any]] = []

    async def main() -> None:
        run = LimitedRun()
        source = run.source()
        recorder = Recorder(path, source.stream, flush_every=3_600.0)
        source.recorder = recorder
        source.start()
        state = RunState()
        ask = run.pipeline.get_limit_snapshot

        def moment() -> None:
            # Recorded and shown at the same instant: nothing runs between the two.
            recorder.flush(snapshot=True)
            frame = source.next_frame(0.0)
            assert frame is not None
            state.apply(frame)
            live.append(shown(state))

        for _ in range(6):
            await asyncio.sleep(0.5)
            recorder.flush(snapshot=True)  # the history in between, as a recorder keeps it
        moment()
        await run.refused.wait()
        assert ask().stages[1].rate_limited_retries == 1
        moment()
        await run.cut.wait()
        assert ask().stages[1].timeouts == 1
        moment()
        await asyncio.sleep(1.0)  # the stop's own snapshot comes later than the last moment
        await source.stop(force=True)
        source.mark_closed()

    vtime.run(main())

    assert "cool-down" in live[1]["gauges"][0], "the second moment is in a cool-down"
    assert live[2]["cells"][2] == "1", "the third moment is after the timeout"
    with Recording.open(path) as recording:
        for seen in live:
            replay = ReplaySource(recording, at=seen["at"])
            state = RunState()
            frame = replay.next_frame(0.0)
            assert frame is not None
            state.apply(frame)
            assert shown(state) == seen
            # The history the stage screen draws is replayed too.
            trend = state.history.limit(1, "fake-llm")
            assert trend is not None
            assert trend.tokens.samples()


# Issue 21: an item's usage in a replay: what it reported, once the replay reaches the
# item's last recorded event (before, what it had reported then is not known).
async def test_a_replayed_items_usage_shows_from_its_last_event() -> None:
    from antflow.runstream.records import Usage
    from tests.tui.recorded import recording

    opened = recording("limited")
    done = ReplaySource(opened, at=opened.ended_at)
    done.next_frame(0.0)  # the replay stands where it was asked to
    detail = await done.item(1, "doc-00")
    assert detail.status == "completed"
    assert detail.usage == Usage(input_tokens=120, output_tokens=80, model="fake-1", reports=1)
    early = ReplaySource(opened, at=opened.started_at + 0.01)
    early.next_frame(0.0)
    assert (await early.item(1, "doc-00")).status == "in_progress"
    assert (await early.item(1, "doc-00")).usage is None
