"""What one viewer may make a served job hold: lines and answers bounded in bytes, requests
paced."""

from __future__ import annotations

import asyncio

from antflow.runstream.outbox import Budget, Outbox, RequestPace
from tests.engine.helpers import FakeClock


# Issue 18.5: the backlog is bounded in bytes (a busy job's events line is ~380 KB: a
# bound of 2,000 lines let one slow viewer grow the job by half a gigabyte).
def test_lines_are_bounded_in_bytes_and_a_reader_always_gets_the_next_one() -> None:
    outbox = Outbox(Budget(10_000), limit=1_000)
    assert outbox.offer(b"x" * 5_000)  # nothing waits: it fits, however long
    assert not outbox.offer(b"y")  # one waits and the bound is passed
    assert outbox.take() == b"x" * 5_000
    assert [outbox.offer(b"z" * 300) for _ in range(4)] == [True, True, True, False]
    assert outbox.size == 900
    assert outbox.drop() == 3
    assert (outbox.size, outbox.budget.used) == (0, 0)


# Issue 18.5: all viewers together are bounded too; a viewer that reads keeps up.
def test_all_viewers_together_are_bounded() -> None:
    budget = Budget(1_000)
    slow = [Outbox(budget, limit=10_000) for _ in range(3)]
    taken = [sum(outbox.offer(b"s" * 200) for _ in range(10)) for outbox in slow]
    assert budget.used <= 1_000 + 200 * len(slow)
    assert taken[-1] == 1  # the budget was spent: only its first line fitted
    reader = Outbox(budget, limit=10_000)
    for _ in range(5):
        assert reader.offer(b"r" * 200)
        assert reader.take() is not None
    for outbox in slow:
        outbox.close()
    assert budget.used == 0


# Issue 18.4: answers are never dropped, but a viewer with too many unread answers is
# held back (its next request is not read) instead of growing the job.
async def test_unread_answers_hold_the_next_request_back() -> None:
    outbox = Outbox(Budget(), reply_limit=1_000)
    outbox.answer(b"a" * 600)
    await asyncio.wait_for(outbox.room_for_answers(), 1)
    outbox.answer(b"b" * 600)
    waiting = asyncio.ensure_future(outbox.room_for_answers())
    await asyncio.sleep(0)
    assert not waiting.done()
    assert outbox.offer(b"line")
    assert outbox.drop() == 1  # a gap drops lines, not answers
    assert outbox.take() == b"a" * 600
    await asyncio.wait_for(waiting, 1)
    assert outbox.take() == b"b" * 600
    assert outbox.take() is None


def test_a_resynchronisation_replaces_the_lines_waiting_and_answers_come_first() -> None:
    outbox = Outbox(Budget())
    outbox.offer(b"old")
    outbox.answer(b"answer")
    assert outbox.resynchronise([b"state-1", b"state-2"]) == 1
    outbox.offer(b"new")
    assert [outbox.take() for _ in range(5)] == [b"answer", b"state-1", b"state-2", b"new", None]


# Issue 18.4: requests are paced per viewer: a burst, then a steady rate.
def test_requests_are_paced() -> None:
    clock = FakeClock()
    pace = RequestPace(clock, rate=10.0, burst=3)
    assert [pace.wait() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert pace.wait() == 0.1
    assert pace.wait() == 0.2
    clock.advance(10.0)
    assert pace.wait() == 0.0
