"""One run of a comparison read in a child process: the summary it hands over as bytes
reads back the same as one read here, bytes that are not one are refused, and a child
that cannot read, or is no longer wanted, gives nothing and is ended.

Issue 22 ("Two 1M-item runs compare in <= 5 s"): reading A and B at once.
"""

from __future__ import annotations

import base64
import os
import signal
from typing import TYPE_CHECKING

import msgspec
import pytest

from antflow.runstream.compare import compare
from antflow.runstream.comparejson import comparison_document
from antflow.runstream.fileformat import Recording
from antflow.runstream.filelines import batch_of
from antflow.runstream.records import ReprKey
from antflow.runstream.runsummary import summarise
from antflow.runstream.summarychild import SummaryChild
from antflow.runstream.summarywire import SummaryWireError, decode_summary, encode_summary
from tests.engine.compared_runs import Outcome, before_and_after, write_run

if TYPE_CHECKING:
    from pathlib import Path

    from antflow.runstream.runsummary import RunSummary


def read(path: Path) -> RunSummary:
    with Recording.open(path) as recording:
        return summarise(recording)


def document(a: RunSummary, b: RunSummary) -> bytes:
    return msgspec.json.encode(comparison_document(compare(a, b), items=None))


# Issue 22: the summary a child hands over compares exactly as one read here: statuses,
# task times, errors and their groups, how the run was made (ids that are their own
# slots).
def test_a_summary_as_bytes_compares_as_the_summary_itself(tmp_path: Path) -> None:
    path_a, path_b = before_and_after(tmp_path)
    a, b = read(path_a), read(path_b)
    assert b.items[1].dense
    moved = decode_summary(encode_summary(b))
    assert document(a, moved) == document(a, b)
    assert moved.items[1].seconds.tobytes() == b.items[1].seconds.tobytes()
    assert moved.errors.keys == b.errors.keys


# Issue 22: ids that are not small ints (strings, tuples, negative ints, reprs) keep
# their type and their slot.
def test_ids_of_every_kind_survive_the_bytes(tmp_path: Path) -> None:
    failing = Outcome(error=("ValueError", "no"))
    items_a: dict[object, Outcome] = {"x": Outcome(), ("k", 2): failing, -7: Outcome()}
    items_b: dict[object, Outcome] = {-7: failing, ("k", 2): Outcome(), "x": Outcome()}
    items_b[ReprKey("<object>")] = failing
    a = read(write_run(tmp_path / "a.jsonl", items_a))
    b = read(write_run(tmp_path / "b.jsonl", items_b))
    moved = decode_summary(encode_summary(b))
    assert not moved.items[1].dense
    assert moved.items[1].id_slots == b.items[1].id_slots
    assert document(a, moved) == document(a, b)


# Issue 22: bytes cut short, of another shape, or with a status or a slot out of range
# are refused with one error (the caller then reads the run itself).
def test_bytes_that_are_not_a_summary_are_refused(tmp_path: Path) -> None:
    _, path_b = before_and_after(tmp_path)
    data = encode_summary(read(path_b))
    for bad in (data[: len(data) // 2], b"", msgspec.msgpack.encode([1, 2, 3])):
        with pytest.raises(SummaryWireError):
            decode_summary(bad)
    summary = read(path_b)
    summary.items[1].status[0] = 99
    with pytest.raises(SummaryWireError, match="status"):
        decode_summary(encode_summary(summary))


# Issue 22: a child reading a run gives what reading it here gives.
def test_a_child_reads_a_run_as_this_process_would(tmp_path: Path) -> None:
    path_a, path_b = before_and_after(tmp_path)
    with SummaryChild(path_b) as child:
        moved = child.result()
    assert moved is not None
    assert document(read(path_a), moved) == document(read(path_a), read(path_b))


# Issue 22: a child that cannot read its file gives nothing (the caller reads it and says
# why, as it would have without a child).
def test_a_child_that_cannot_read_gives_nothing(tmp_path: Path) -> None:
    junk = tmp_path / "junk.jsonl"
    junk.write_text("not a recording\n", encoding="utf-8")
    for path in (junk, tmp_path / "missing.jsonl"):
        with SummaryChild(path) as child:
            assert child.result() is None


# Issue 22: leaving the block while the child still reads (an error, ctrl+c) kills it.
def test_leaving_the_block_kills_a_child_still_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "never-written"
    os.mkfifo(fifo)
    # Opening a FIFO no one writes blocks: the child is still at it when the block ends.
    with SummaryChild(fifo) as child:
        process = child._process
        assert process.poll() is None
    assert process.returncode == -signal.SIGKILL


# Issue 22: a batch of ids that are all ints >= 0 says so (a comparison then checks none
# again); any other id, or a negative code, reads as before or as damaged.
def test_a_batch_says_when_its_ids_are_all_natural_ints() -> None:
    times = base64.b64encode(bytes(16)).decode()

    def line(ids: list[object], codes: list[int]) -> bytes:
        return msgspec.json.encode(["E", 1, ids, codes, times, []]) + b"\n"

    natural = batch_of(line([0, 7], [1, 2]))
    assert natural is not None
    assert (natural.natural, natural.ids) == (True, [0, 7])
    for ids in ([0, -7], [0, "x"], [0, True], [0, ["k", 2]]):
        batch = batch_of(line(ids, [1, 2]))
        assert batch is not None
        assert (batch.natural, batch.ids) == (False, ids)
    assert batch_of(line([0, 7], [1, -2])) is None
