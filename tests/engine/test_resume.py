"""Resume (issue 20): what a kept run stores, the plan a chain of runs gives, and a
resumed run that runs only what was not done.

Outcomes lines in a kept run's recording (results, durable stages' outputs), read back
without decoding event batches; a plan keyed by item id over a chain of runs; done
earlier items counted and their results returned; a durable stage not run again; the
fingerprint that refuses a changed pipeline; and a history that never fails a run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import antflow
from antflow import Pipeline, PipelineResult, ResumeError, Stage, StatusTracker, observe
from antflow.history import Counts, History, Run
from antflow.resume import Fingerprint, PipelinePlan, changes, plan_for, read_plan
from antflow.runstream import compaction as compaction_module
from antflow.runstream import keeping as keeping_module
from antflow.runstream import outcomes as outcomes_module
from antflow.runstream import recordingfile
from antflow.runstream.compactfile import OUTCOMES_FRAME_MAGIC, is_compacted, open_bytes
from antflow.runstream.compaction import compact
from antflow.runstream.fileformat import HEADER_LIMIT, Recording, RecordingError
from antflow.runstream.recorder import Recorder
from antflow.runstream.records import Event, ReprKey
from antflow.runstream.stream import RunStream
from tests.engine.helpers import no_wait, wait_until
from tests.engine.test_recording_limits import FullDisk

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from antflow.runstream.filelines import Outcomes

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = "job.py"


class SaveError(Exception):
    pass


class Unjsonable:
    """A value JSON cannot hold."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __repr__(self) -> str:
        return f"Unjsonable({self.n})"


def job(
    calls: Counter[str],
    *,
    failing: Callable[[Any], bool] = lambda doc: False,
    answer: Callable[[Any], Any] = lambda doc: {"doc": doc, "answer": str(doc).upper()},
    version: str | int | None = None,
    ask_name: str = "Ask",
    save: Callable[[Any], Any] | None = None,
) -> Pipeline:
    """Fetch → Ask (durable) → Save; `calls` counts each stage's calls by stage and
    item, `failing` says which docs Save fails."""

    async def fetch(doc: Any) -> Any:
        calls[f"fetch {doc}"] += 1
        return doc

    async def ask(doc: Any) -> Any:
        calls[f"ask {doc}"] += 1
        return answer(doc)

    async def store(value: Any) -> Any:
        doc = value["doc"] if isinstance(value, dict) else value.n
        calls[f"save {doc}"] += 1
        if failing(doc):
            raise SaveError(f"cannot save {doc}")
        return value if save is None else save(value)

    return Pipeline(
        [
            Stage("Fetch", 2, [fetch]),
            Stage(ask_name, 2, [ask], durable=True),
            Stage("Save", 2, [store], task_attempts=1),
        ],
        version=version,
        sleep=no_wait,
    )


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A history of its own, and no ANTFLOW_* variable from outside."""
    for name in (
        "ANTFLOW_HISTORY",
        "ANTFLOW_RESUME",
        "ANTFLOW_RESUME_ACCEPT_CHANGES",
        "ANTFLOW_HISTORY_KEEP",
        "ANTFLOW_HISTORY_MAX_BYTES",
    ):
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "history"
    monkeypatch.setenv("ANTFLOW_HOME", str(folder))
    monkeypatch.chdir(tmp_path)
    return folder


async def kept(
    pipeline: Pipeline,
    items: Sequence[Any],
    *,
    resume: str | None = None,
    accept_changes: bool | None = None,
) -> tuple[antflow.runstream.keeping.RunKeeper, list[PipelineResult]]:
    async with antflow.keep_history(
        resume=resume, accept_changes=accept_changes, script=SCRIPT
    ) as keeper:
        results = await pipeline.run(items)
    return keeper, results


def outcome_lines(path: Path) -> list[Outcomes]:
    with Recording.open(path) as recording:
        return list(recording.outcomes())


async def compacted(keeper: antflow.runstream.keeping.RunKeeper) -> Path:
    """The kept run's recording, once its compaction (on a thread) is done."""
    assert keeper.handle is not None
    assert keeper.recorder is not None
    compaction = keeper.recorder.compaction
    assert compaction is not None
    await asyncio.to_thread(compaction.join)
    return keeper.handle.path


def as_written(path: Path) -> bytes:
    """A recording's bytes as its recorder wrote them (compacted or not)."""
    whole = open_bytes(path, HEADER_LIMIT)
    try:
        return whole.read()
    finally:
        whole.close()


# ---------------------------------------------------------------------- what is stored


# Issue 20.1: results and durable outputs as lines of their own, read without batches.
async def test_results_and_durable_outputs_are_stored_as_outcomes_lines(home: Path) -> None:
    calls: Counter[str] = Counter()
    keeper, _ = await kept(job(calls, failing=lambda doc: doc == "b"), ["a", "b", "c"])
    assert keeper.handle is not None
    lines = outcome_lines(keeper.handle.path)
    results = {i: v for line in lines if line.stage is None for i, v in _decoded(line)}
    outputs = {i: v for line in lines if line.stage == "Ask" for i, v in _decoded(line)}
    assert results == {
        0: {"doc": "a", "answer": "A"},
        2: {"doc": "c", "answer": "C"},
    }
    # Outputs of items that completed in the same flush are left out: only b's is kept.
    assert outputs == {1: {"doc": "b", "answer": "B"}}
    # The header says what the history keeps, the fingerprint among it.
    with Recording.open(keeper.handle.path) as recording:
        fields = recording.header.history
        assert recording.header.version == 2
    assert fields is not None
    assert Fingerprint.parse(fields["fingerprint"]) == Fingerprint(
        (("Fetch", ("fetch",)), ("Ask", ("ask",)), ("Save", ("store",))), None
    )


# Issue 20.3: a kept run is compacted once closed; its outcomes read back the same and a
# resume from it runs only what was not done.
async def test_a_kept_run_is_compacted_and_resumes_from_its_compacted_file(home: Path) -> None:
    calls: Counter[str] = Counter()
    keeper, _ = await kept(job(calls, failing=lambda doc: doc == "b"), ["a", "b", "c"])
    kept_path = await compacted(keeper)
    assert is_compacted(kept_path)
    # The run list gives its size as compacted, not as the row was written at its end.
    (listed,) = History().runs()
    assert listed.bytes == kept_path.stat().st_size
    lines = outcome_lines(kept_path)
    assert {i: v for line in lines if line.stage is None for i, v in _decoded(line)} == {
        0: {"doc": "a", "answer": "A"},
        2: {"doc": "c", "answer": "C"},
    }
    calls.clear()
    resumed, results = await kept(job(calls), ["a", "b", "c"], resume="last")
    assert resumed.plan is not None
    assert resumed.plan.done_earlier == 2
    # b's answer was stored by the durable Ask: only its Save runs again.
    assert calls == Counter({"save b": 1})
    assert sorted(r.id for r in results) == [0, 1, 2]


# Issue 20.3: outcomes lines read from a compacted file's frames (without rebuilding its
# event batches) are the plain file's, wherever frames begin and end.
async def test_outcomes_read_the_same_from_small_frames(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: Counter[str] = Counter()
    keeper, _ = await kept(job(calls, failing=lambda doc: doc % 7 == 0), list(range(300)))
    kept_path = await compacted(keeper)
    with Recording.open(kept_path) as recording:
        read = list(recording.outcomes())
    plain = tmp_path / "plain.jsonl"
    plain.write_bytes(as_written(kept_path))
    # Outcomes lines in frames of their own, or left among other lines in frames that
    # say they hold one; frames of a line or two, or of many.
    for apart in (1, 1 << 30):
        monkeypatch.setattr(compaction_module, "OUTCOMES_APART", apart)
        for frame_bytes in (256, 4096, 1 << 20):
            small = tmp_path / f"small-{apart}-{frame_bytes}.jsonl"
            small.write_bytes(plain.read_bytes())
            compact(small, frame_bytes=frame_bytes)
            with Recording.open(small) as recording:
                assert list(recording.outcomes()) == read
                assert not recording.damaged
    assert outcome_lines(plain) == read
    assert sum(len(line.ids) for line in read if line.stage is None) == 300 - 43


# Issue 20 (review): a frame holding outcomes that does not decompress costs only its
# items, and the recording says it is damaged (a resume then says so).
async def test_a_damaged_outcomes_frame_marks_the_recording_damaged(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: Counter[str] = Counter()
    keeper, _ = await kept(job(calls), list(range(50)))
    kept_path = await compacted(keeper)
    path = tmp_path / "run.jsonl"
    path.write_bytes(as_written(kept_path))
    monkeypatch.setattr(compaction_module, "OUTCOMES_APART", 1)
    compact(path, frame_bytes=256)
    data = bytearray(path.read_bytes())
    first = data.rindex(OUTCOMES_FRAME_MAGIC)
    data[first + 16 : first + 24] = b"\xff" * 8  # the stored bytes, not the head
    path.write_bytes(bytes(data))
    with Recording.open(path) as recording:
        lines = list(recording.outcomes())
        assert recording.damaged
    assert read_plan([_run_at(path)]).done_earlier < 50
    whole_lines = outcome_lines(kept_path)
    assert len(lines) < len(whole_lines)


# Issue 20 (review): a kept run whose compaction was cut short at exit is compacted when
# a later run starts (one a start, on a thread of its own).
async def test_a_run_left_uncompacted_is_compacted_when_the_next_one_starts(home: Path) -> None:
    calls: Counter[str] = Counter()
    first, _ = await kept(job(calls), ["a", "b"])
    path = await compacted(first)
    path.write_bytes(as_written(path))  # as an exit that cut its compaction short leaves it
    assert not is_compacted(path)
    second, _ = await kept(job(calls), ["c"])
    assert second.tidying is not None
    await asyncio.to_thread(second.tidying.join)
    assert is_compacted(path)
    with Recording.open(path) as recording:
        assert recording.complete
        assert not recording.damaged


def _decoded(line: Outcomes) -> list[tuple[Any, Any]]:
    """(id, value) of each item of an outcomes line (None: not stored)."""
    return [
        (item, None if index in line.unstored else msgspec.json.decode(raw))
        for index, (item, raw) in enumerate(zip(line.ids, line.values, strict=True))
    ]


# Issue 20.1: zero cost when no recorder asks: no listener on the per-item path.
async def test_nothing_listens_for_outcomes_unless_a_recorder_keeps_them(tmp_path: Path) -> None:
    pipeline = job(Counter())
    stream = RunStream(follow_events=False)
    recorder = Recorder(tmp_path / "plain.jsonl", stream)
    recorder.open()
    with observe(stream.attach):
        await pipeline.run(["a"])
    recorder.close()
    assert pipeline._completed_listeners is None
    assert all(runtime.output_listeners is None for runtime in pipeline._runtimes)
    assert outcome_lines(tmp_path / "plain.jsonl") == []


# Issue 20.1: a result JSON cannot hold: not stored, said once; a resume counts the item
# done earlier without its result.
async def test_a_result_json_cannot_hold_is_said_once_and_counted_without_it(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    calls: Counter[str] = Counter()
    odd = job(calls, save=lambda value: Unjsonable(1) if value["doc"] in "ac" else value)
    with caplog.at_level(logging.WARNING):
        await kept(odd, ["a", "b", "c"])
    said = [r.getMessage() for r in caplog.records if "not stored" in r.getMessage()]
    assert said == [
        "the result of item 0 (a Unjsonable) is not stored for a resume: JSON cannot hold "
        "it. A resume counts such items done earlier without returning their result (said "
        "once for pipeline 1)."
    ]
    again = job(calls)
    _, results = await kept(again, ["a", "b", "c"], resume="last")
    assert [r.id for r in results] == [1]
    assert again.get_stats().items_done_earlier == 3
    assert calls["save a"] == 1


# Issue 20.1: a durable output JSON cannot hold: said once, and the stage runs again.
async def test_a_durable_output_json_cannot_hold_runs_the_stage_again(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    calls: Counter[str] = Counter()

    def answer(doc: str) -> Any:
        return Unjsonable(0) if doc == "a" else {"doc": doc, "answer": doc.upper()}

    first = job(calls, failing=lambda doc: True, answer=answer)
    with caplog.at_level(logging.WARNING):
        await kept(first, ["a", "b"])
    said = [r.getMessage() for r in caplog.records if "durable" in r.getMessage()]
    assert said == [
        "stage 'Ask' is durable, but its output for item 0 (a Unjsonable) is not stored: "
        "JSON cannot hold it. A resume runs such items through 'Ask' again (said once)."
    ]
    second = job(calls)
    _, results = await kept(second, ["a", "b"], resume="last")
    assert (calls["ask a"], calls["ask b"]) == (2, 1)
    assert [r.value["doc"] for r in results] == ["a", "b"]


# Issue 20.1: a value over the bound is not stored (treated as not JSON-able).
async def test_a_value_over_the_bound_is_not_stored(
    home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(outcomes_module, "VALUE_LIMIT", 100)
    monkeypatch.setattr(outcomes_module, "_SHORT", 25)
    calls: Counter[str] = Counter()
    big = job(calls, save=lambda value: "x" * 200 if value["doc"] == "a" else value)
    with caplog.at_level(logging.WARNING):
        keeper, _ = await kept(big, ["a", "b"])
    assert keeper.handle is not None
    (line,) = [line for line in outcome_lines(keeper.handle.path) if line.stage is None]
    assert line.ids == [0, 1]
    assert line.unstored == [0]
    assert any("it takes more than 100 bytes as JSON" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------------- a resumed run


# Issue 20.4: done earlier items are not run, counted apart, and their results returned
# (the JSON form: tuples as lists); failed items run again from after the durable stage.
async def test_a_resumed_run_runs_only_what_was_not_done(home: Path) -> None:
    calls: Counter[str] = Counter()
    docs = ["a", "b", "c", "d"]
    first = job(calls, failing=lambda doc: doc in "bd")
    await kept(first, docs)
    assert first.get_stats().items_failed == 2

    tracker = StatusTracker()
    second = job(calls, save=lambda value: (value["doc"], "saved"))
    second.status_tracker = tracker
    keeper, results = await kept(second, docs, resume="last")

    assert [(r.id, r.value) for r in results] == [
        (0, {"doc": "a", "answer": "A"}),
        (1, ("b", "saved")),
        (2, {"doc": "c", "answer": "C"}),
        (3, ("d", "saved")),
    ]
    assert [r.metadata for r in results] == [{"done_earlier": True}, {}, {"done_earlier": True}, {}]
    stats = second.get_stats()
    assert (stats.items_done_earlier, stats.items_fed, stats.items_processed) == (2, 2, 2)
    # Not fetched, nor asked, again: b and d went straight into Save.
    assert {key: n for key, n in calls.items() if n > 1} == {"save b": 2, "save d": 2}
    assert tracker.get_stats()["done_earlier"] == 2
    assert keeper.description is not None
    assert keeper.description.endswith(" · 2 done earlier")
    assert keeper.handle is not None
    assert keeper.handle.run.resumed_from == keeper.plan.run.id  # type: ignore[union-attr]


# Issue 20.4: the done earlier status reaches monitors and replays as an event.
async def test_done_earlier_is_recorded_and_replayed(home: Path) -> None:
    calls: Counter[str] = Counter()
    await kept(job(calls, failing=lambda doc: doc == "b"), ["a", "b"])
    keeper, _ = await kept(job(calls), ["a", "b"], resume="last")
    assert keeper.handle is not None
    with Recording.open(keeper.handle.path) as recording:
        events = [r for r in recording.records() if isinstance(r, Event)]
        (end,) = [recording.end]
    earlier = [(e.item, e.kind, e.stage, e.pipeline) for e in events if e.item == 0]
    assert earlier == [(0, "done_earlier", "Save", 1)]
    assert end is not None
    assert end.totals[0].done_earlier == 1
    run = History().get(keeper.handle.run_id)
    assert run is not None
    assert (run.status, run.counts.done, run.counts.done_earlier) == ("finished", 1, 1)


async def test_stream_yields_the_results_of_items_done_earlier(home: Path) -> None:
    calls: Counter[str] = Counter()
    await kept(job(calls, failing=lambda doc: doc == "b"), ["a", "b", "c"])
    pipeline = job(calls)
    async with antflow.keep_history(resume="last", script=SCRIPT):
        seen = {r.id: r.metadata.get("done_earlier", False) async for r in pipeline.stream("abc")}
    assert seen == {0: True, 1: False, 2: True}


# Issue 20.3: keyed by id: explicit ids, tuples (by the recording's repr keys), strings.
async def test_items_are_matched_by_their_ids_whatever_their_order(home: Path) -> None:
    calls: Counter[str] = Counter()
    ids: list[Any] = [("doc", 1), "two", 3, ("doc", 4)]
    items = [{"id": i, "value": f"v{n}"} for n, i in enumerate(ids)]
    await kept(job(calls, failing=lambda doc: doc == "v1"), items)
    pipeline = job(calls)
    _, results = await kept(pipeline, list(reversed(items)), resume="last")
    assert [r.id for r in results] == [("doc", 4), 3, "two", ("doc", 1)]
    assert pipeline.get_stats().items_done_earlier == 3
    assert calls["fetch v1"] == 1  # resumed after Ask, where it had failed later
    assert calls["save v1"] == 2


# Issue 20.3: automatic ids are feed order: a different item count is said, once.
async def test_automatic_ids_with_another_item_count_warn_once(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    calls: Counter[str] = Counter()
    await kept(job(calls), ["a", "b"])
    with caplog.at_level(logging.WARNING):
        _, results = await kept(job(calls), ["a", "b", "c"], resume="last")
    said = [r.getMessage() for r in caplog.records if "feed order" in r.getMessage()]
    assert len(said) == 1
    assert said[0].startswith("this run has 3 items where the run it resumes had 2")
    assert len(results) == 3


# Issue 20.3: the completed set is the union over the chain; each run records the run
# it resumed, and a resumed run can itself be resumed.
async def test_the_plan_is_the_union_over_a_chain_of_runs(home: Path) -> None:
    calls: Counter[str] = Counter()
    docs = list("abcdef")
    await kept(job(calls, failing=lambda doc: doc in "cdef"), docs)
    await kept(job(calls, failing=lambda doc: doc in "ef"), docs, resume="last")
    third = job(calls)
    keeper, results = await kept(third, docs, resume="last")
    assert keeper.plan is not None
    assert len(keeper.plan.chain) == 2
    assert [r.value["doc"] for r in results] == docs
    assert third.get_stats().items_done_earlier == 4
    assert all(calls[f"ask {doc}"] == 1 for doc in docs)
    assert [calls[f"save {doc}"] for doc in docs] == [1, 1, 2, 2, 3, 3]
    history = History()
    newest = history.runs()[0]
    assert [run.id for run in history.chain(newest.id)] == [r.id for r in history.runs()]


# Issue 20.2 and 20.3: a changed pipeline is refused, saying what changed; accepted, it
# goes on (outputs of a stage that is gone are not used).
async def test_a_changed_pipeline_is_refused_unless_changes_are_accepted(home: Path) -> None:
    calls: Counter[str] = Counter()
    await kept(job(calls, failing=lambda doc: doc == "b", version=1), ["a", "b"])
    changed = job(calls, version=2, ask_name="Answer")
    with pytest.raises(ResumeError) as refused:
        await kept(changed, ["a", "b"], resume="last")
    assert refused.value.changes == ("stage 'Ask' renamed 'Answer'", "version 1 → 2")
    assert "the pipeline changed since (stage 'Ask' renamed 'Answer'; version 1 → 2)" in str(
        refused.value
    )
    assert "accept_changes=True" in str(refused.value)
    assert changed.get_stats().items_fed == 0
    before = sum(calls.values())
    _, results = await kept(changed, ["a", "b"], resume="last", accept_changes=True)
    assert changed.get_stats().items_done_earlier == 1
    assert [r.id for r in results] == [0, 1]
    assert sum(calls.values()) - before == 3  # b from the start: no Ask output to use


def test_fingerprint_changes_are_said_one_by_one() -> None:
    before = Fingerprint((("Fetch", ("get",)), ("Parse", ("parse",)), ("Save", ("put",))), "1")
    now = Fingerprint(
        (("Fetch", ("get", "check")), ("Clean", ("clean",)), ("Store", ("put_v2",))), None
    )
    assert changes(before, now) == [
        "stage 'Parse' renamed 'Clean'",
        "stage 'Save' renamed 'Store'",
        "stage 'Fetch''s tasks [get] → [get, check]",
        "task 'parse' of stage 'Clean' renamed 'clean'",
        "task 'put' of stage 'Store' renamed 'put_v2'",
        "version '1' → None",
    ]
    assert changes(before, before) == []
    swapped = Fingerprint((before.stages[1], before.stages[0], before.stages[2]), "1")
    assert changes(before, swapped) == ["stages reordered: Fetch, Parse, Save → Parse, Fetch, Save"]
    assert Fingerprint.parse(before.text) == before
    assert Fingerprint.parse("not json") is None


async def test_resuming_what_is_not_there_is_one_clear_error(home: Path) -> None:
    with pytest.raises(ResumeError, match=r"cannot resume: no run of job\.py in .* yet"):
        await kept(job(Counter()), ["a"], resume="last")
    await kept(job(Counter()), ["a"])
    with pytest.raises(ResumeError, match=r"no run 'ffff'"):
        await kept(job(Counter()), ["a"], resume="ffff")


def test_a_pipeline_version_must_be_a_str_or_an_int() -> None:
    with pytest.raises(antflow.PipelineError, match="version must be a str or an int"):
        Pipeline([Stage("A", 1, [no_wait])], version=1.5)  # type: ignore[arg-type]
    assert Pipeline([Stage("A", 1, [no_wait])]).version is None


def test_a_plan_for_other_stages_is_refused() -> None:
    plan = PipelinePlan(["X"], [], {})
    with pytest.raises(antflow.PipelineError, match="made for the stages X"):
        job(Counter()).resume_from(plan)


# ---------------------------------------------------------------------- the history


# Issue 20.5: a history that cannot be written is one warning, and the run goes on (a
# file where its folder should be).
async def test_a_history_that_cannot_be_written_is_one_warning(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home.write_bytes(b"not a folder")  # noqa: ASYNC240 - before the run
    pipeline = job(Counter())
    with caplog.at_level(logging.WARNING):
        keeper, results = await kept(pipeline, ["a", "b"])
    assert len(results) == 2
    assert keeper.handle is None
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(said) == 1
    assert said[0].startswith(f"cannot keep the run history in {home}")
    assert said[0].endswith("The run goes on without it.")


# Issue 20.5: a full disk under the run's recording: one warning, the run goes on, and
# the run's row still says how it ended.
async def test_a_full_disk_under_a_kept_run_is_one_warning(
    home: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(path: Any, mode: str) -> FullDisk:
        return FullDisk(open(path, mode), limit=0)

    monkeypatch.setattr(recordingfile, "open", full, raising=False)
    pipeline = job(Counter())
    with caplog.at_level(logging.WARNING):
        keeper, results = await kept(pipeline, ["a", "b"])
    assert len(results) == 2
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(said) == 1
    assert "the disk is full" in said[0]
    assert keeper.finished is not None
    assert keeper.finished.status == "finished"


# Issue 20.5: ANTFLOW_HISTORY=0 keeps nothing; a resume asked for still applies.
async def test_history_off_keeps_nothing_but_still_resumes(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: Counter[str] = Counter()
    await kept(job(calls, failing=lambda doc: doc == "b"), ["a", "b"])
    monkeypatch.setenv("ANTFLOW_HISTORY", "0")
    keeper, results = await kept(job(calls), ["a", "b"], resume="last")
    assert keeper.handle is None
    assert len(results) == 2
    assert calls["ask a"] == 1
    assert len(History().runs()) == 1


# Issue 20.5: retention never deletes a run a kept resume still needs.
async def test_retention_keeps_the_runs_a_resume_chain_needs(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTFLOW_HISTORY_KEEP", "1")
    calls: Counter[str] = Counter()
    await kept(job(calls, failing=lambda doc: doc == "b"), ["a", "b"])
    await kept(job(calls, failing=lambda doc: doc == "b"), ["a", "b"], resume="last")
    third, _ = await kept(job(calls), ["a", "b"], resume="last")
    runs = History().runs()
    assert len(runs) == 3, "each run resumed the one before: all are needed"
    assert third.plan is not None
    assert [run.id for run in third.plan.chain] == [run.id for run in runs[1:]]
    await kept(job(calls), ["a", "b"])  # a fresh run needs none of them
    assert len(History().runs()) == 1


# Issue 20.5: a run whose process died is crashed, and resumes as any run.
def test_a_crashed_run_is_listed_crashed_and_resumed(home: Path, tmp_path: Path) -> None:
    script = tmp_path / "crash.py"
    script.write_text(
        textwrap.dedent(
            """
            import asyncio, os, signal, sys
            from antflow import Pipeline, Stage

            async def work(n):
                if n == 30 and "crash" in sys.argv:
                    await asyncio.sleep(0.7)  # a flush writes what completed
                    os.kill(os.getpid(), signal.SIGKILL)
                return n * 2

            async def main():
                pipeline = Pipeline([Stage("Work", 1, [work])])
                results = await pipeline.run(range(50))
                print(len(results), pipeline.get_stats().items_done_earlier)

            asyncio.run(main())
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ANTFLOW_HISTORY": "1"}
    crashed = subprocess.run(
        [sys.executable, str(script), "crash"], env=env, cwd=tmp_path, capture_output=True
    )
    assert crashed.returncode == -9
    (run,) = History().runs()
    assert run.status == "crashed"
    resumed = subprocess.run(
        [sys.executable, str(script)],
        env={**env, "ANTFLOW_RESUME": "last"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.split() == ["50", "30"]
    newest = History().runs()[0]
    assert (newest.status, newest.resumed_from, newest.counts.done_earlier) == (
        "finished",
        run.id,
        30,
    )


# Issue 20.5: two runs of one script at once are both kept, each whole.
def test_two_runs_at_once_are_kept_apart(home: Path, tmp_path: Path) -> None:
    script = tmp_path / "twice.py"
    script.write_text(
        textwrap.dedent(
            """
            import asyncio
            from antflow import Pipeline, Stage

            async def work(n):
                await asyncio.sleep(0.001)
                return n

            asyncio.run(Pipeline([Stage("Work", 4, [work])]).run(range(500)))
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ANTFLOW_HISTORY": "1"}
    both = [
        subprocess.Popen([sys.executable, str(script)], env=env, cwd=tmp_path) for _ in range(2)
    ]
    assert [process.wait(timeout=60) for process in both] == [0, 0]
    runs = History().runs()
    assert sorted(run.pid for run in runs) == sorted(process.pid for process in both)
    for run in runs:
        assert (run.status, run.counts.done) == ("finished", 500)
        plan = read_plan([run])
        assert plan.done_earlier == 500


# Issue 20.5: the UI's entry point: the plan and the line its header shows.
async def test_plan_for_gives_the_plan_and_its_line(home: Path) -> None:
    calls: Counter[str] = Counter()
    await kept(job(calls, failing=lambda doc: doc == "b"), ["a", "b", "c"])
    plan, line = plan_for(History(), SCRIPT, "last")
    assert plan.done_earlier == 2
    assert line.startswith("resumed from 20")
    assert line.endswith(" · 2 done earlier")


# ---------------------------------------------------------------------- a cut recording


async def _recorded(path: Path) -> tuple[dict[Any, Any], dict[Any, Any]]:
    """A run with failures in both stages after Fetch, flushed every few items from
    inside its tasks (so items are in flight at every flush): what completed (id ->
    result) and what passed the durable stage (id -> output)."""
    stream = RunStream(follow_events=False)
    recorder = Recorder(path, stream, flush_every=3_600.0, outcomes=True)
    passed: dict[Any, Any] = {}
    seen = [0]

    async def fetch(n: int) -> int:
        seen[0] += 1
        if seen[0] % 7 == 0:
            recorder.flush(snapshot=seen[0] % 21 == 0)
        await asyncio.sleep(0)
        return n

    async def ask(n: int) -> dict[str, Any]:
        await asyncio.sleep(0)
        if n % 11 == 3:
            raise SaveError(f"no answer for {n}")
        return {"n": n, "tags": [n % 3, "x"]}

    async def save(value: dict[str, Any]) -> list[Any]:
        passed[value["n"]] = value
        if value["n"] % 5 == 1:
            raise SaveError(f"cannot save {value['n']}")
        return [value["n"], value["tags"]]

    pipeline = Pipeline(
        [
            Stage("Fetch", 3, [fetch]),
            Stage("Ask", 3, [ask], durable=True, task_attempts=1),
            Stage("Save", 3, [save], task_attempts=1),
        ],
        sleep=no_wait,
    )
    recorder.open()
    with observe(stream.attach):
        results = await pipeline.run(range(120))
    recorder.close()
    done = {r.id: r.value for r in results}
    # What passed Ask with its output, keyed by id (ids are the numbers fed).
    return done, {n: passed[n] for n in passed}


def _run_at(path: Path) -> Run:
    return Run(
        id="20261205-064102-0000",
        started_at=0.0,
        script=SCRIPT,
        script_path=None,
        argv=(),
        pid=0,
        process_start=None,
        status="crashed",
        ended_at=None,
        updated_at=0.0,
        counts=Counts(),
        duration=None,
        rate=None,
        resumed_from=None,
        fingerprint=None,
        path=path,
        bytes=path.stat().st_size,
        antflow="0",
    )


def _visible(path: Path) -> tuple[set[Any], set[Any]]:
    """The items whose completion, and whose pass through Ask, the file shows."""
    try:
        recording = Recording.open(path)
    except RecordingError:
        return set(), set()
    with recording:
        events = [r for r in recording.records() if isinstance(r, Event)]
    done = {e.item for e in events if e.kind == "completed" and e.stage == "Save"}
    asked = {e.item for e in events if e.kind == "completed" and e.stage == "Ask"}
    return done, asked


# Issue 20.6b: a recording cut at any byte offset (a SIGKILL) gives a plan that never
# skips an item that did not complete (nor resumes one after a stage it did not pass),
# and never runs again one the file shows completed.
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_a_recording_cut_anywhere_gives_a_plan_that_holds(tmp_path: Path, data: Any) -> None:
    whole = tmp_path / "whole.jsonl"
    if not whole.exists():
        truth = asyncio.run(_recorded(whole))
        (tmp_path / "truth.json").write_text(
            json.dumps([list(truth[0].items()), list(truth[1].items())])
        )
    raw_truth = json.loads((tmp_path / "truth.json").read_text())
    completed = dict(map(tuple, raw_truth[0]))
    passed = dict(map(tuple, raw_truth[1]))
    content = whole.read_bytes()
    cut = data.draw(st.integers(min_value=0, max_value=len(content)), label="cut")
    path = tmp_path / "cut.jsonl"
    path.write_bytes(content[:cut])

    plan = read_plan([_run_at(path)])
    shown_done, shown_asked = _visible(path)
    part = plan.for_pipeline(1, _same_pipeline()) if plan.fingerprint(1) else None
    for item in range(120):
        route = None if part is None else part.route(item)
        if route is not None and route.stage is None:
            assert item in completed, f"item {item} never completed"
            if route.stored:
                assert PipelinePlan.result(route.value) == (True, completed[item])
        elif route is not None:
            assert route.stage == 2
            assert passed.get(item) == route.value, f"item {item} never passed Ask so"
        if item in shown_done:
            assert route is not None, f"item {item} would run again"
            assert route.stage is None, f"item {item} would run again"
        elif item in shown_asked and item in passed:
            assert route is not None, f"item {item} would be asked again"
    assert not (shown_done - set(completed))
    if cut == len(content):
        assert plan.done_earlier == len(completed)


def _same_pipeline() -> Pipeline:
    async def fetch(n: int) -> int:
        return n

    async def ask(n: int) -> int:
        return n

    async def save(n: int) -> int:
        return n

    return Pipeline(
        [
            Stage("Fetch", 1, [fetch]),
            Stage("Ask", 1, [ask], durable=True),
            Stage("Save", 1, [save]),
        ]
    )


# Issue 20.4: a tracker reports done earlier items with a status of their own; one that
# keeps every history keeps theirs, a bounded one (a monitor's) only counts them.
@pytest.mark.parametrize("bound", [None, 5])
async def test_a_tracker_reports_items_done_earlier(bound: int | None) -> None:
    seen: list[tuple[Any, str, str | None]] = []
    tracker = StatusTracker(
        on_status_change=lambda e: seen.append((e.item_id, e.status, e.stage)),
        max_history_items=bound,
    )
    pipeline = job(Counter())
    pipeline.status_tracker = tracker
    pipeline.resume_from(PipelinePlan(["Fetch", "Ask", "Save"], [], {0: msgspec.Raw(b"7")}))
    results = await pipeline.run(["a", "b"])
    assert [r.value for r in results] == [7, {"doc": "b", "answer": "B"}]
    assert tracker.get_stats()["done_earlier"] == 1
    assert seen[0] == (0, "done_earlier", "Save")
    status = tracker.get_status(0)
    if bound is None:
        assert status is not None
        assert (status.status, status.stage) == ("done_earlier", "Save")
        assert [e.status for e in tracker.get_history(0)] == ["done_earlier"]
    else:
        assert status is None
    assert pipeline.get_dashboard_snapshot().pipeline_stats.items_done_earlier == 1


def test_ids_the_recording_writes_as_reprs_are_matched_through_item_keys() -> None:
    raw = b'{"doc":1}'
    plan = PipelinePlan(["A"], [], {ReprKey("('doc', 1)"): msgspec.Raw(raw), "x": None})
    route = plan.route(("doc", 1))
    assert route is not None
    assert (route.stage, PipelinePlan.result(route.value)) == (None, (True, {"doc": 1}))
    unstored = plan.route("x")
    assert unstored is not None
    assert (unstored.stage, unstored.stored) == (None, False)
    assert plan.route(("doc", 2)) is None
    assert plan.route(["unhashable"]) is None


# Issue 20.5: ANTFLOW_RESUME is a command line's request: refused, it ends the process
# before anything runs, with its message and exit status 2, not a traceback.
def test_a_plain_run_refused_a_resume_says_why_and_exits_2(home: Path, tmp_path: Path) -> None:
    script = tmp_path / "plain.py"
    script.write_text(
        textwrap.dedent(
            """
            import asyncio, os
            from antflow import Pipeline, Stage

            async def work(n):
                print("ran", n)
                return n

            stages = [Stage(os.environ.get("STAGE", "Work"), 1, [work])]
            print(len(asyncio.run(Pipeline(stages).run(range(3)))))
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ANTFLOW_RESUME": "last"}

    def run(**more: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(script)],
            env={**env, **more},
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )

    nothing = run()
    assert nothing.returncode == 2
    assert nothing.stdout == ""
    assert nothing.stderr == f"antflow: cannot resume: no run of plain.py in {home} yet\n"
    kept = run(ANTFLOW_RESUME="", ANTFLOW_HISTORY="1")
    assert kept.returncode == 0, kept.stderr
    changed = run(STAGE="Renamed")
    assert changed.returncode == 2
    assert "Traceback" not in changed.stderr
    assert "(stage 'Work' renamed 'Renamed')" in changed.stderr
    assert changed.stderr.endswith(
        "set ANTFLOW_RESUME_ACCEPT_CHANGES=1 to resume it anyway, or run it afresh without "
        "ANTFLOW_RESUME\n"
    )
    accepted = run(STAGE="Renamed", ANTFLOW_RESUME_ACCEPT_CHANGES="1")
    assert (accepted.returncode, accepted.stdout) == (0, "3\n")


# Issue 20.3: a script's pipelines are matched by the order they start in.
async def test_each_pipeline_of_a_run_resumes_its_own_items(home: Path) -> None:
    calls: Counter[str] = Counter()

    async def two(failing: str) -> tuple[Pipeline, Pipeline]:
        first, second = job(calls), job(calls, failing=lambda doc: doc in failing)
        async with antflow.keep_history(resume="last" if not failing else None, script=SCRIPT):
            await first.run(["a", "b"])
            await second.run(["x", "y"])
        return first, second

    await two(failing="y")
    first, second = await two(failing="")
    assert first.get_stats().items_done_earlier == 2
    assert (second.get_stats().items_done_earlier, second.get_stats().items_processed) == (1, 1)
    assert (calls["ask y"], calls["save y"]) == (1, 2)


# Issue 20.5: a kept run's row is updated while it runs (a crash leaves counts as of the
# last update), and finished at its end.
async def test_a_kept_runs_row_is_updated_while_it_runs(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keeping_module, "UPDATE_EVERY", 0.0)
    updated = asyncio.Event()
    loop = asyncio.get_running_loop()
    release = asyncio.Event()

    async def held(n: int) -> int:
        if n == 3:
            await release.wait()
        return n

    pipeline = Pipeline([Stage("Work", 1, [held])])
    async with antflow.keep_history(script=SCRIPT) as keeper:
        running = asyncio.ensure_future(pipeline.run(range(5)))
        await wait_until(lambda: keeper.handle is not None)
        handle = keeper.handle
        assert handle is not None
        write = handle.update_counts

        def noted(counts: Counts, *, force: bool = False) -> bool:
            written = write(counts, force=force)
            if counts.done == 3:
                loop.call_soon_threadsafe(updated.set)
            return written

        handle.update_counts = noted  # type: ignore[method-assign]
        await asyncio.wait_for(updated.wait(), timeout=30)
        row = History().get(handle.run_id)
        assert row is not None
        assert (row.status, row.counts.done, row.counts.fed) == ("running", 3, 5)
        release.set()
        await running
    final = History().get(handle.run_id)
    assert final is not None
    assert (final.status, final.counts.done) == ("finished", 5)


# Issue 20.3: a recording read back may be damaged or hostile: a bad outcomes line costs
# its own items (they run again), never the plan.
def test_damaged_outcomes_lines_cost_only_their_items(tmp_path: Path) -> None:
    header = (
        '{"record":"header","format":"antflow-run","version":2,"antflow":"0","started_at":1,'
        '"pipelines":[{"record":"pipeline","pipeline":1,"at":1,"stages":[{"name":"A",'
        '"workers":["A-W0"],"tasks":["a"],"retry":"per_task","task_attempts":1,'
        '"task_wait_seconds":0,"stage_attempts":1,"queue_capacity":1}]}]}'
    )
    good = '{"record":"outcomes","pipeline":1,"stage":null,"ids":[1,[2,"x"]],"values":[10,20]}'
    bad = [
        '{"record":"outcomes","pipeline":1,"stage":null,"ids":[3,4],"values":[30]}',
        '{"record":"outcomes","pipeline":1,"stage":null,"ids":[5],"values":[50],"unstored":[9]}',
        '{"record":"outcomes","pipeline":1,"stage":null,"ids":[[6,{"a":1}]],"values":[60]}',
        '{"record":"outcomes","pipeline":1,"stage":null,"ids":[7],"values":[nope]}',
        '{"record":"outcomes","pipeline":1,"stage":null,"ids":[8],"values":[' + "[" * 5000,
    ]
    torn = '{"record":"outcomes","pipeline":1,"stage":null,"ids":[9],"values":[90'
    path = tmp_path / "hostile.jsonl"
    path.write_text("\n".join([header, *bad, good]) + "\n" + torn)
    # The same lines compacted (a crashed run's file: no end record) read the same.
    packed = tmp_path / "hostile-compacted.jsonl"
    packed.write_bytes(path.read_bytes())
    compact(packed, unfinished=True)
    assert is_compacted(packed)
    for each in (packed, path):
        plan = read_plan([_run_at(each)])
        assert plan.done_earlier == 2
        with Recording.open(each) as recording:
            assert len(list(recording.outcomes())) == 1
            assert recording.damaged

    async def a(n: int) -> int:
        return n

    part = plan.for_pipeline(1, Pipeline([Stage("A", 1, [a])]))
    assert part is not None
    assert [part.route(i) is not None for i in range(1, 10)] == [True] + [False] * 8
    tuple_id = part.route((2, "x"))
    assert tuple_id is not None
    assert PipelinePlan.result(tuple_id.value) == (True, 20)
