"""Accepting viewers within bounds: refusals said as counts, a limit below the process's."""

from __future__ import annotations

import logging
import resource
from typing import TYPE_CHECKING

from antflow.runstream import listen
from antflow.runstream.listen import Complaints, connection_limit
from tests.engine.helpers import FakeClock

if TYPE_CHECKING:
    import pytest


# Issue 18.3: a traceback per bad connection in the job's log; now one line per interval.
def test_complaints_are_one_line_of_counts_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="antflow")
    clock = FakeClock()
    complaints = Complaints(every=10.0, clock=clock)
    for _ in range(300):
        complaints.note("connections closed at once")
    complaints.note("bad tokens")
    clock.advance(10.0)
    complaints.note("bad tokens")
    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        "serving: connections closed at once: 1 (counted; said at most once per 10 s)",
        "serving: connections closed at once: 299; bad tokens: 2 (counted since the last "
        "such line; said at most once per 10 s)",
    ]
    assert complaints.total == {"connections closed at once": 300, "bad tokens": 2}


# Issue 18.2: the server must never take the descriptors the job needs.
def test_connections_are_a_small_share_of_the_files_the_process_may_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def limit_of(soft: int) -> int:
        monkeypatch.setattr(resource, "getrlimit", lambda _: (soft, 1 << 20))
        return connection_limit()

    assert limit_of(1 << 20) == listen.CONNECTIONS
    assert limit_of(1024) == 64
    assert limit_of(256) == 16
    assert limit_of(20) == 4
