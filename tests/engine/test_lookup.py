"""Finding a live id by its repr without scanning every failure per request."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from antflow import Pipeline, Stage
from antflow.runstream.lookup import MISSING, ReprIndex
from antflow.runstream.records import ReprKey
from antflow.runstream.stream import RunStream
from tests.engine.helpers import FakeClock

if TYPE_CHECKING:
    from collections.abc import Iterator


class Counted:
    """An id whose reprs are counted."""

    made = 0

    def __init__(self, n: int) -> None:
        self.n = n

    def __repr__(self) -> str:
        Counted.made += 1
        return f"Counted({self.n})"

    def __hash__(self) -> int:
        return self.n

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Counted) and other.n == self.n


# Issue 18.4: item requests by a repr key scanned every failure on the job's loop (200 of
# them stalled it up to 4 s with 100k failures).
def test_reprs_are_made_once_and_scans_happen_only_when_the_ids_changed() -> None:
    ids = [Counted(n) for n in range(1_000)]
    index = ReprIndex(FakeClock())  # scans take no time: only versions hold them back
    Counted.made = 0
    live = set(ids)

    def find(text: str, version: int) -> object:
        return index.find(text, lambda: iter(ids), version=version, is_live=live.__contains__)

    assert find("Counted(7)", 1) == Counted(7)
    assert Counted.made == 1_000
    for n in range(200):
        assert find(f"Counted({n})", 1) == Counted(n)
    assert find("Counted(99999)", 1) is MISSING  # unknown, and nothing changed: no scan
    assert Counted.made == 1_000
    ids.append(Counted(1_000))
    live.add(ids[-1])
    assert find("Counted(1000)", 2) == Counted(1_000)
    assert Counted.made == 1_001  # only the new id's repr was made


def test_scans_take_a_small_share_of_the_time() -> None:
    clock = FakeClock()
    index = ReprIndex(clock)
    scans = 0
    live: list[object] = [("a", 1)]

    def ids() -> Iterator[object]:
        nonlocal scans
        scans += 1
        clock.advance(0.02)  # a scan of 100,000 failures
        yield from live

    for version in range(10):
        index.find("('zzz', 0)", ids, version=version, is_live=lambda _: True)
    assert scans == 1  # asked for again at once: no new scan for 20 x 0.02 s
    live.append(("b", 2))
    assert index.find("('b', 2)", ids, version=10, is_live=lambda _: True) is MISSING
    clock.advance(0.4)
    assert index.find("('b', 2)", ids, version=11, is_live=lambda _: True) == ("b", 2)
    assert scans == 2


async def test_a_stream_finds_a_failed_tuple_id_by_its_repr() -> None:
    async def fail(x: object) -> object:
        raise ValueError("no")

    stream = RunStream()
    pipeline = Pipeline([Stage("A", 2, [fail], task_attempts=1)])
    stream.attach(pipeline)
    await pipeline.run([{"id": ("page", n), "value": n} for n in range(50)])
    detail = stream.item(1, ReprKey("('page', 7)"))
    assert detail.known
    assert detail.status == "failed"
    assert not stream.item(1, ReprKey("('page', 700)")).known
    await asyncio.sleep(0)
    stream.close()
