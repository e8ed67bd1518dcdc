"""The run history: runs kept in a folder, listed, found, pruned; never a failed run.

Issue 20 ("Durable runs"): every run kept in ./.antflow (or ANTFLOW_HOME) with a
.gitignore, a small index rebuilt from the recordings when lost, running / crashed told
apart by PID and process start time, retention that keeps what a resume needs, and one
error type for a history that cannot be written.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

import antflow
from antflow import Pipeline, Stage
from antflow.history import (
    Counts,
    History,
    HistorySettingError,
    HistoryUnavailable,
    Retention,
    Run,
    RunNotFound,
    end_status,
    history_setting,
    history_wanted,
)
from antflow.history import index as index_module
from antflow.history import status as status_module
from antflow.history.header import HEADER_KEY
from antflow.history.resolve import chain
from antflow.history.retention import doomed
from antflow.history.run import is_run_id, new_run_id, recording_name
from antflow.runstream.filelines import encode_record
from antflow.runstream.records import (
    FORMAT,
    VERSION,
    End,
    Header,
    LogLine,
    PipelineTotals,
    Snapshot,
)
from tests.engine.helpers import FakeClock, no_wait

if TYPE_CHECKING:
    from pathlib import Path

START = 1_800_000_000.0


def make_history(tmp_path: Path, **options: Any) -> History:
    options.setdefault("clock", FakeClock(START))
    return History(tmp_path / "history", **options)


def begin_finished(history: History, script: str = "job.py", **options: Any) -> Run:
    """A run begun and finished, one minute after the previous one."""
    clock = history._clock
    assert isinstance(clock, FakeClock)
    clock.advance(60)
    handle = history.begin(script, [script], "fp", **options)
    clock.advance(10)
    return handle.finish("finished", Counts(fed=5, done=5))


def write_recording(
    path: Path,
    run: Run,
    *,
    snapshots: tuple[Snapshot | LogLine, ...] = (),
    end: End | None = None,
    fields: dict[str, Any] | None = None,
) -> None:
    """A recording as the recorder writes one, with the history's header fields."""
    header = Header(
        format=FORMAT,
        version=VERSION,
        antflow=antflow.__version__,
        started_at=run.started_at,
        argv=run.argv,
        pid=run.pid,
        script=run.script,
    )
    raw = msgspec.json.decode(encode_record(header))
    raw[HEADER_KEY] = fields if fields is not None else header_fields_of(run)
    lines = [json.dumps(raw).encode() + b"\n"]
    lines += [encode_record(snapshot) for snapshot in snapshots]
    if end is not None:
        lines.append(encode_record(end))
    path.write_bytes(b"".join(lines))


def header_fields_of(run: Run) -> dict[str, Any]:
    return {
        "run_id": run.id,
        "started_at": run.started_at,
        "script_path": run.script_path,
        "fingerprint": run.fingerprint,
        "resumed_from": run.resumed_from,
        "process_start": run.process_start,
        "done_earlier": run.counts.done_earlier,
    }


def snapshot(at: float, fed: int, done: int, failed: int = 0, pipeline: int = 1) -> Snapshot:
    return Snapshot(
        pipeline=pipeline,
        at=at,
        running=True,
        paused=False,
        stopping=False,
        fed=fed,
        processed=done,
        failed=failed,
        in_flight=fed - done - failed,
        unfinished=0,
    )


def dead_pid() -> int:
    """The PID of a process that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def key_fields(run: Run) -> tuple[Any, ...]:
    return (
        run.id,
        round(run.started_at, 6),
        run.script,
        run.script_path,
        run.argv,
        run.pid,
        run.process_start,
        run.status,
        run.counts,
        run.resumed_from,
        run.fingerprint,
        run.path,
        run.bytes,
        run.antflow,
    )


# ---------------------------------------------------------------------- where


# Issue 20.1: ./.antflow with a .gitignore, as pytest's .pytest_cache.
def test_the_history_is_kept_in_dot_antflow_with_a_gitignore(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ANTFLOW_HOME", raising=False)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    handle = History().begin("job.py", ["job.py"], "fp")
    assert handle.path.parent == tmp_path / ".antflow" / "runs"
    assert handle.path.exists()
    assert (tmp_path / ".antflow" / ".gitignore").read_text().splitlines()[-1] == "*"
    untracked = subprocess.run(
        ["git", "-C", str(tmp_path), "status", "--porcelain", "--untracked-files=all"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert ".antflow" not in untracked


# Issue 20.1: reading a history that was never written makes no folder.
def test_listing_where_no_run_was_kept_is_empty_and_makes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ANTFLOW_HOME", raising=False)
    history = History()
    assert history.runs() == []
    assert history.get("20261205-064102-3f9a") is None
    assert history.prune() == []
    assert not (tmp_path / ".antflow").exists()


# Issue 20.1: ANTFLOW_HOME puts the history elsewhere.
def test_antflow_home_puts_the_history_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    monkeypatch.setenv("ANTFLOW_HOME", str(tmp_path / "kept" / "history"))
    history = History()
    handle = history.begin("job.py", ["job.py"], "fp")
    assert history.home == tmp_path / "kept" / "history"
    assert handle.path.parent == tmp_path / "kept" / "history" / "runs"
    assert (tmp_path / "kept" / "history" / ".gitignore").exists()
    assert not (project / ".antflow").exists()
    assert [run.id for run in History().runs()] == [handle.run_id]


# Issue 20.1: a .gitignore only in a folder the history made: ANTFLOW_HOME=. must not
# make git ignore a whole project.
def test_an_existing_antflow_home_gets_no_gitignore(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANTFLOW_HOME", ".")
    History().begin("job.py", ["job.py"], "fp")
    assert not (tmp_path / ".gitignore").exists()
    assert len(list((tmp_path / "runs").iterdir())) == 1


# Issue 20.1: a symlinked .antflow is not followed into somewhere else.
def test_a_symlinked_dot_antflow_is_refused_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    project = tmp_path / "project"
    project.mkdir()
    (project / ".antflow").symlink_to(elsewhere)
    monkeypatch.chdir(project)
    monkeypatch.delenv("ANTFLOW_HOME", raising=False)
    with pytest.raises(HistoryUnavailable, match="symbolic link") as raised:
        History().begin("job.py", ["job.py"], "fp")
    assert "ANTFLOW_HOME" in str(raised.value)
    with pytest.raises(HistoryUnavailable, match="symbolic link"):
        History().runs()
    assert list(elsewhere.iterdir()) == []
    # Named by ANTFLOW_HOME, the same link is followed: the user chose it.
    monkeypatch.setenv("ANTFLOW_HOME", str(project / ".antflow"))
    History().begin("job.py", ["job.py"], "fp")
    assert len(list((elsewhere / "runs").iterdir())) == 1


# Issue 20.1: a symlinked runs folder inside the history is refused too.
def test_a_symlinked_runs_folder_is_refused(tmp_path: Path) -> None:
    history = make_history(tmp_path)
    begin_finished(history)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (history.home / "runs").rename(tmp_path / "old-runs")
    (history.home / "runs").symlink_to(elsewhere)
    with pytest.raises(HistoryUnavailable, match="symbolic link"):
        history.begin("job.py", ["job.py"], "fp")
    assert list(elsewhere.iterdir()) == []


# ---------------------------------------------------------------------- settings


# Issue 20.1: ANTFLOW_HISTORY says off / on / default; the caller decides.
@pytest.mark.parametrize(
    ("value", "expected"),
    [("", "default"), ("0", "off"), ("false", "off"), ("1", "on"), (" YES ", "on")],
)
def test_history_setting_reads_antflow_history(value: str, expected: str) -> None:
    assert history_setting({"ANTFLOW_HISTORY": value}) == expected
    assert history_setting({}) == "default"


def test_history_is_wanted_by_default_only_in_the_app() -> None:
    assert history_wanted("default", by_default=True)
    assert not history_wanted("default", by_default=False)
    assert history_wanted("on", by_default=False)
    assert not history_wanted("off", by_default=True)


def test_a_meaningless_setting_is_one_clear_error() -> None:
    with pytest.raises(HistorySettingError, match=r"ANTFLOW_HISTORY='maybe' means nothing"):
        history_setting({"ANTFLOW_HISTORY": "maybe"})
    with pytest.raises(HistorySettingError, match="ANTFLOW_HISTORY_KEEP='lots'"):
        Retention.from_environment({"ANTFLOW_HISTORY_KEEP": "lots"})
    with pytest.raises(HistorySettingError, match="ANTFLOW_HISTORY_MAX_BYTES='2 parsecs'"):
        Retention.from_environment({"ANTFLOW_HISTORY_MAX_BYTES": "2 parsecs"})


# Issue 20.4: the limits are configurable by environment.
def test_retention_limits_come_from_the_environment() -> None:
    assert Retention.from_environment({}) == Retention(keep=100, max_bytes=2 << 30)
    assert Retention.from_environment(
        {"ANTFLOW_HISTORY_KEEP": "7", "ANTFLOW_HISTORY_MAX_BYTES": "500M"}
    ) == Retention(keep=7, max_bytes=500 << 20)
    assert Retention.from_environment({"ANTFLOW_HISTORY_MAX_BYTES": "1234"}).max_bytes == 1234


# ---------------------------------------------------------------------- runs


# Issue 20.2: ids sort by start time (local time, then random) and name only run files.
def test_run_ids_sort_by_start_and_never_name_another_file() -> None:
    early, late = new_run_id(START), new_run_id(START + 1)
    assert is_run_id(early)
    assert is_run_id(late)
    assert early < late
    assert early[:15] == time.strftime("%Y%m%d-%H%M%S", time.localtime(START))
    for hostile in ("../../etc/passwd", "20261205-064102-3f9a/..", "x", ""):
        assert not is_run_id(hostile)


# Issue 20.2 / 20.3: begin, update, finish: one row, written through.
def test_a_run_is_begun_updated_and_finished(tmp_path: Path) -> None:
    clock = FakeClock(START)
    monotonic = FakeClock(0.0)
    history = make_history(tmp_path, clock=clock, monotonic=monotonic)
    handle = history.begin("job.py", ["job.py", "--fast"], "stages:A,B", done_earlier=3)
    (run,) = history.runs()
    assert run.id == handle.run_id
    assert run.status == "running"
    assert run.script == "job.py"
    assert run.script_path == os.path.abspath("job.py")
    assert run.argv == ("job.py", "--fast")
    assert run.pid == os.getpid()
    assert run.process_start == status_module.process_start(os.getpid())
    assert run.fingerprint == "stages:A,B"
    assert run.counts.done_earlier == 3
    assert run.antflow == antflow.__version__
    assert handle.header_fields()["run_id"] == run.id
    handle.path.write_bytes(b"x" * 100)
    clock.advance(2)
    assert not handle.update_counts(Counts(fed=10, done=4, done_earlier=3))
    monotonic.advance(5)
    assert handle.update_counts(Counts(fed=10, done=4))
    run = history.runs()[0]
    assert run.counts.done_earlier == 3
    assert (run.counts.fed, run.counts.done, run.bytes) == (10, 4, 100)
    assert run.status == "running"
    clock.advance(8)
    finished = handle.finish("failed", Counts(fed=10, done=9, failed=1, done_earlier=3))
    assert history.get(handle.run_id) == finished
    assert finished.status == "failed"
    assert finished.ended_at == START + 10
    assert finished.duration == 10
    assert finished.rate == pytest.approx(0.9)
    assert not handle.update_counts(Counts(fed=99), force=True)


def test_end_status_follows_the_exit_status_rule() -> None:
    assert end_status("finished", Counts(fed=3, done=3)) == "finished"
    assert end_status("finished", Counts(fed=3, done=2, failed=1)) == "failed"
    assert end_status("error", Counts()) == "failed"
    assert end_status("stopped", Counts(fed=3, done=1, unfinished=2)) == "stopped"
    assert end_status("interrupted", Counts()) == "stopped"


# Issue 20.3: a thousand runs listed newest first (the time is in benchmarks/history.py).
def test_a_thousand_runs_are_listed_newest_first(tmp_path: Path) -> None:
    history = make_history(tmp_path)
    first = begin_finished(history)
    made = [
        replace(
            first,
            id=new_run_id(START + 3600 + n),
            started_at=START + 3600 + n,
            status="running" if n % 100 == 0 else "finished",
            pid=0 if n % 100 == 0 else os.getpid(),  # PID 0: no process, crashed
            counts=Counts(fed=n, done=n),
        )
        for n in range(1_000)
    ]
    with (
        index_module.connected(history.home / "index.db") as connection,
        index_module.writing(connection),
    ):
        index_module.put(connection, made)
    listed = history.runs()
    assert len(listed) == 1_001
    assert [run.started_at for run in listed] == sorted(
        (run.started_at for run in listed), reverse=True
    )
    assert listed[0].counts.done == 999
    assert {run.status for run in listed if run.counts.done % 100 == 0} == {"crashed"}
    assert [run.id for run in history.runs(limit=3)] == [run.id for run in listed[:3]]


# ---------------------------------------------------------------------- status


CRASHING_CHILD = textwrap.dedent(
    """
    import os, sys
    from antflow.history import History
    handle = History(sys.argv[1]).begin("job.py", ["job.py"], "fp")
    print(handle.run_id, flush=True)
    os._exit(0)
    """
)


# Issue 20.3: a run whose process is gone without an end is crashed.
def test_a_run_whose_process_died_is_crashed(tmp_path: Path) -> None:
    history = make_history(tmp_path)
    child = subprocess.run(
        [sys.executable, "-c", CRASHING_CHILD, str(history.home)],
        check=True,
        capture_output=True,
        text=True,
    )
    run_id = child.stdout.strip()
    run = history.get(run_id)
    assert run is not None
    assert run.status == "crashed"
    assert run.pid != os.getpid()
    run.path.write_bytes(b"x" * 123)  # what it recorded before it died
    assert history.runs()[0].bytes == 123
    assert history.resolve("last", "job.py").status == "crashed"


# Issue 20.3: a PID given to another process is not the run's process: the start time
# tells them apart.
def test_a_reused_pid_is_not_taken_for_the_runs_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = make_history(tmp_path)
    handle = history.begin("job.py", ["job.py"], "fp")
    assert history.runs()[0].status == "running"
    started = handle.run.process_start
    assert started is not None
    monkeypatch.setattr(status_module, "process_start", lambda pid: started + 1)
    (run,) = history.runs()
    assert run.status == "crashed"
    assert run.pid == os.getpid()


# ---------------------------------------------------------------------- concurrency


CONCURRENT_CHILD = textwrap.dedent(
    """
    import sys
    from antflow.history import Counts, History
    history = History(sys.argv[1])
    print("ready", flush=True)
    sys.stdin.readline()  # the gate: both children start writing together
    for n in range(int(sys.argv[2])):
        handle = history.begin("job.py", ["job.py", str(n)], "fp")
        handle.update_counts(Counts(fed=n), force=True)
        handle.finish("finished", Counts(fed=n, done=n))
    print("done", flush=True)
    """
)


# Issue 20.3: two runs of the same script at once never corrupt each other or the index
# (from a folder neither has made yet).
def test_two_processes_keeping_runs_at_once_lose_nothing(tmp_path: Path) -> None:
    home = tmp_path / "history"
    each = 40
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT_CHILD, str(home), str(each)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for child in children:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    outputs = [child.communicate(timeout=60) for child in children]
    for child, (out, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
        assert out.strip() == "done"
    runs = History(home).runs()
    assert len(runs) == 2 * each
    assert len({run.id for run in runs}) == 2 * each
    assert {run.status for run in runs} == {"finished"}
    assert sorted(run.counts.done for run in runs) == sorted([*range(each), *range(each)])
    assert len({run.pid for run in runs}) == 2
    assert sorted(p.name for p in (home / "runs").iterdir()) == sorted(
        recording_name(run.id) for run in runs
    )
    with sqlite3.connect(home / "index.db") as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)


# ---------------------------------------------------------------------- rebuilding


def kept_runs(history: History, dead: int) -> list[Run]:
    """Three runs with recordings: a finished one, one resuming it, one crashed."""
    first = begin_finished(history)
    write_recording(
        first.path,
        first,
        snapshots=(snapshot(first.started_at + 1, 5, 2),),
        end=End(
            at=first.ended_at or 0.0,
            reason="finished",
            totals=(PipelineTotals(pipeline=1, fed=5, processed=5, failed=0, unfinished=0),),
        ),
    )
    second = begin_finished(history, resumed_from=first.id)
    failed = Counts(fed=4, done=3, failed=1, done_earlier=5)
    second = replace(second, status="failed", counts=failed)
    write_recording(
        second.path,
        second,
        end=End(
            at=second.ended_at or 0.0,
            reason="finished",
            totals=(PipelineTotals(pipeline=1, fed=4, processed=3, failed=1, unfinished=0),),
        ),
    )
    third = begin_finished(history)
    third = replace(third, pid=dead, status="running", counts=Counts(fed=9, done=6))
    write_recording(
        third.path,
        third,
        snapshots=(
            snapshot(third.started_at + 1, 5, 1),
            LogLine(at=third.started_at + 1.5, text="working"),
            snapshot(third.started_at + 2, 9, 6),
        ),
    )
    return [first, second, third]


# Issue 20.2: the index is a cache: deleted, it is rebuilt from the recordings.
def test_a_deleted_index_is_rebuilt_from_the_recordings(tmp_path: Path) -> None:
    history = make_history(tmp_path)
    first, second, third = kept_runs(history, dead_pid())
    assert history.rebuild_index() == 3
    before = history.runs()
    assert [run.status for run in before] == ["crashed", "failed", "finished"]
    assert before[0].counts == Counts(fed=9, done=6)
    assert before[1].counts == Counts(fed=4, done=3, failed=1, done_earlier=5)
    assert before[1].resumed_from == first.id
    assert before[2].duration == 10
    for name in ("index.db", "index.db-wal", "index.db-shm"):
        (history.home / name).unlink(missing_ok=True)
    after = history.runs()
    assert [key_fields(run) for run in after] == [key_fields(run) for run in before]
    assert [run.id for run in history.chain(second.id)] == [second.id, first.id]
    assert history.resolve("last", "job.py").id == third.id


# Issue 20.2: a damaged index, one of another schema, or a link in its place is rebuilt,
# never a traceback.
@pytest.mark.parametrize("damage", ["garbage", "other schema", "link", "half made"])
def test_a_damaged_index_is_rebuilt(tmp_path: Path, damage: str) -> None:
    history = make_history(tmp_path)
    kept_runs(history, dead_pid())
    history.rebuild_index()
    before = [key_fields(run) for run in history.runs()]
    path = history.home / "index.db"
    target = tmp_path / "target"
    target.write_bytes(b"not the index")
    path.unlink()
    if damage == "garbage":
        path.write_bytes(b"\x00garbage" * 1_000)
    elif damage == "link":
        path.symlink_to(target)
    else:
        with sqlite3.connect(path) as connection:
            connection.execute("CREATE TABLE runs (id TEXT)")
            version = 99 if damage == "other schema" else 0
            connection.execute(f"PRAGMA user_version = {version}")
    assert [key_fields(run) for run in history.runs()] == before
    assert target.read_bytes() == b"not the index"


# Issue 20.2: the recorder's own recording reads back into a row.
async def test_a_recording_the_recorder_wrote_is_read_back(tmp_path: Path) -> None:
    history = make_history(tmp_path)
    handle = history.begin("job.py", ["job.py"], "fp")

    async def double(x: int) -> int:
        return 2 * x

    pipeline = Pipeline([Stage("A", 2, [double]), Stage("B", 1, [double])], sleep=no_wait)
    async with antflow.record(handle.path):
        await pipeline.run(range(20))
    (history.home / "index.db").unlink()
    (run,) = history.runs()
    assert run.id == handle.run_id
    assert run.status == "finished"
    assert run.counts == Counts(fed=20, done=20)
    assert run.pid == os.getpid()
    assert run.bytes == handle.path.stat().st_size > 0


# Issue 20.2: a file that is not a recording (yet) still gets a row, shown crashed.
def test_a_run_file_without_a_header_is_listed_as_crashed(tmp_path: Path) -> None:
    history = make_history(tmp_path)
    begin_finished(history)
    stray = history.home / "runs" / recording_name("20270101-000000-abcd")
    stray.write_bytes(b'{"not": "a header"}\n')
    (history.home / "runs" / "notes.txt").write_text("not a run")
    (history.home / "index.db").unlink()
    listed = {run.id: run for run in history.runs()}
    assert len(listed) == 2
    assert listed["20270101-000000-abcd"].status == "crashed"


# Issue 20.2: an index row is never trusted to name a file: ids are checked, paths derived.
def test_hostile_index_rows_name_no_file_outside_the_history(tmp_path: Path) -> None:
    history = make_history(tmp_path)
    run = begin_finished(history)
    victim = tmp_path / "victim.jsonl"  # what runs/../../victim.jsonl would name
    victim.write_text("keep me")
    with sqlite3.connect(history.home / "index.db") as connection:
        connection.execute("UPDATE runs SET path = ?", (str(victim),))
        row = connection.execute("SELECT * FROM runs").fetchone()
        marks = ", ".join("?" * len(row))
        connection.execute(f"INSERT INTO runs VALUES ({marks})", ("../../victim", *row[1:]))
    (listed,) = history.runs()
    assert listed.path == history.home / "runs" / recording_name(run.id)
    assert history.prune(keep=0, max_bytes=0) == []
    history.delete(run.id)
    assert not run.path.exists()
    assert victim.read_text() == "keep me"


# ---------------------------------------------------------------------- retention


# Issue 20.4: keep the last N runs, but never one a kept run's resume chain needs.
def test_retention_keeps_what_a_kept_resume_needs(tmp_path: Path) -> None:
    history = make_history(tmp_path)
    oldest = begin_finished(history)
    resumed = begin_finished(history, resumed_from=oldest.id)
    other = begin_finished(history, "etl.py")
    newer = begin_finished(history, resumed_from=resumed.id)
    newest = begin_finished(history)
    gone = history.prune(keep=2)
    assert [run.id for run in gone] == [other.id]
    assert not other.path.exists()
    assert {run.id for run in history.runs()} == {oldest.id, resumed.id, newer.id, newest.id}
    assert [run.id for run in history.chain(newer.id)] == [newer.id, resumed.id, oldest.id]
    assert history.prune(keep=2) == []


# Issue 20.4: the byte limit, whichever comes first; the newest run is kept whatever
# its size; a running run is never deleted.
def test_retention_by_bytes_keeps_running_runs(tmp_path: Path) -> None:
    history = make_history(tmp_path)
    running = history.begin("job.py", ["job.py"], "fp")
    running.path.write_bytes(b"r" * 5_000)
    made = []
    for size in (1_000, 1_000, 1_000, 3_000):
        run = begin_finished(history)
        run.path.write_bytes(b"x" * size)
        made.append(run)
    # Newest first: 3,000 kept (the newest), 4,000 > 2,500: that one and all older go.
    gone = history.prune(keep=100, max_bytes=2_500)
    assert [run.id for run in gone] == [made[0].id, made[1].id, made[2].id]
    assert [run.id for run in history.runs()] == [made[3].id, running.run_id]
    assert running.path.exists()
    alone = begin_finished(history)
    alone.path.write_bytes(b"y" * 50_000)
    assert [run.id for run in history.prune(max_bytes=10)] == [made[3].id]
    assert [run.id for run in history.runs()] == [alone.id, running.run_id]


def test_retention_deletes_rows_whose_file_is_gone(tmp_path: Path) -> None:
    history = make_history(tmp_path)
    kept = begin_finished(history)
    lost = begin_finished(history)
    lost.path.unlink()
    assert [run.id for run in history.prune()] == [lost.id]
    assert [run.id for run in history.runs()] == [kept.id]


# Issue 20.4: the rules: newest first while both limits hold, then keep the chains of
# what is kept; a cycle in a damaged index ends a chain.
def test_retention_rules_on_hand_made_runs(tmp_path: Path) -> None:
    def run(n: int, size: int = 0, resumed_from: int | None = None) -> Run:
        return Run(
            id=f"20270101-0000{n:02d}-aaaa",
            started_at=START + n,
            script="job.py",
            script_path=None,
            argv=(),
            pid=0,
            process_start=None,
            status="finished",
            ended_at=None,
            updated_at=START + n,
            counts=Counts(),
            duration=None,
            rate=None,
            resumed_from=None if resumed_from is None else f"20270101-0000{resumed_from:02d}-aaaa",
            fingerprint=None,
            path=tmp_path / str(n),
            bytes=size,
            antflow="",
        )

    # 5 resumed 1: 1 stays. 3 resumed 2, but 3 is not kept: 2 goes with it.
    newest_first = [run(5, resumed_from=1), run(4), run(3, resumed_from=2), run(2), run(1)]
    gone = doomed(newest_first, Retention(keep=2, max_bytes=10), running=())
    assert [r.started_at - START for r in gone] == [2, 3]
    sized = [run(3, size=6), run(2, size=6), run(1, size=1)]
    gone = doomed(sized, Retention(keep=10, max_bytes=10), running=())
    assert [r.started_at - START for r in gone] == [1, 2]
    assert doomed(sized, Retention(keep=1, max_bytes=10), running={sized[1].id}) == [sized[2]]
    cycle = {
        "a": replace(run(1), id="a", resumed_from="b"),
        "b": replace(run(2), id="b", resumed_from="a"),
    }
    assert [r.id for r in chain(cycle, "a")] == ["a", "b"]


# ---------------------------------------------------------------------- resolving


# Issue 20.3: last, last~N, ids and prefixes; one clear error naming what exists.
def test_resolve_finds_runs_and_says_what_exists_when_nothing_matches(tmp_path: Path) -> None:
    history = make_history(tmp_path)
    with pytest.raises(RunNotFound, match=r"no run of job\.py in .* yet"):
        history.resolve("last", "job.py")
    first = begin_finished(history)
    second = begin_finished(history)
    other = begin_finished(history, "etl.py")
    assert history.resolve("last", "job.py") == second
    assert history.resolve("last~1", "job.py") == first
    assert history.resolve("last") == other
    assert history.resolve(first.id) == first
    assert history.resolve(f" {second.id[:-1]}") == second
    with pytest.raises(RunNotFound, match=r"there is no last~2: .* holds 2 runs of job.py") as e:
        history.resolve("last~2", "job.py")
    assert first.id in str(e.value)
    with pytest.raises(RunNotFound, match="is the start of 3 run ids") as e:
        history.resolve(first.id[:9])
    assert "give more of the id" in str(e.value)
    with pytest.raises(RunNotFound, match=r"no run '1999' in .* it holds 3 runs") as e:
        history.resolve("1999")
    assert other.id in str(e.value)
    with pytest.raises(RunNotFound, match="'yesterday' names no run"):
        history.resolve("yesterday")
    with pytest.raises(
        RunNotFound, match=r"no run of scrape\.py .* holds runs of etl\.py, job\.py"
    ):
        history.resolve("last", "scrape.py")


# Issue 20.3: a resume names a run that exists; a chain stops at a deleted run.
def test_a_resume_of_a_deleted_run_is_refused(tmp_path: Path) -> None:
    history = make_history(tmp_path)
    first = begin_finished(history)
    second = begin_finished(history, resumed_from=first.id)
    history.delete(first.id)
    assert [run.id for run in history.chain(second.id)] == [second.id]
    assert history.chain(second.id)[-1].resumed_from == first.id
    with pytest.raises(RunNotFound, match=f"cannot resume run {first.id}"):
        history.begin("job.py", ["job.py"], "fp", resumed_from=first.id)
    assert len(list((history.home / "runs").iterdir())) == 1
    with pytest.raises(RunNotFound):
        history.chain(first.id)


def test_a_running_run_is_not_deleted(tmp_path: Path) -> None:
    history = make_history(tmp_path)
    handle = history.begin("job.py", ["job.py"], "fp")
    with pytest.raises(antflow.history.HistoryError, match="still running"):
        history.delete(handle.run_id)
    assert handle.path.exists()


# ---------------------------------------------------------------------- unavailable


# Issue 20.5: a folder that cannot be made or written is one error with a clear message.
@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.EACCES, "permission denied"),
        (errno.EROFS, "read-only"),
        (errno.ENOSPC, "the disk is full"),
    ],
)
def test_a_folder_that_cannot_be_made_is_history_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, words: str
) -> None:
    def refused(*args: Any, **kwargs: Any) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "mkdir", refused)
    with pytest.raises(HistoryUnavailable, match=words) as raised:
        make_history(tmp_path).begin("job.py", ["job.py"], "fp")
    assert str(tmp_path / "history") in str(raised.value)


@pytest.mark.parametrize(
    ("code", "words"),
    [(errno.EROFS, "read-only"), (errno.ENOSPC, "the disk is full"), (errno.EACCES, "denied")],
)
def test_a_run_file_that_cannot_be_made_is_history_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, words: str
) -> None:
    history = make_history(tmp_path)
    begin_finished(history)
    real_open = os.open

    def open_refusing_runs(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if str(path).endswith(".jsonl") and flags & os.O_CREAT:
            raise OSError(code, os.strerror(code))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_refusing_runs)
    with pytest.raises(HistoryUnavailable, match=words):
        history.begin("job.py", ["job.py"], "fp")
    monkeypatch.undo()
    assert len(history.runs()) == 1


# Issue 20.5: a file where the folder should be.
@pytest.mark.parametrize("where", ["home", "runs"])
def test_a_file_in_place_of_the_folder_is_history_unavailable(tmp_path: Path, where: str) -> None:
    history = make_history(tmp_path)
    if where == "home":
        history.home.write_text("a file")
    else:
        history.home.mkdir()
        (history.home / "runs").write_text("a file")
    with pytest.raises(HistoryUnavailable, match="is a file, not a folder"):
        history.begin("job.py", ["job.py"], "fp")


class FullDatabase(sqlite3.Connection):
    """A connection to an index that may not grow: SQLite's own "database or disk is
    full" when a write needs a page more."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        (pages,) = self.execute("PRAGMA page_count").fetchone()
        self.execute(f"PRAGMA max_page_count = {max(pages, 1)}")


# Issue 20.5: a full disk under the index (SQLite's SQLITE_FULL).
def test_a_full_index_is_history_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = make_history(tmp_path)
    begin_finished(history)
    real_connect = sqlite3.connect
    monkeypatch.setattr(
        index_module.sqlite3,
        "connect",
        lambda *args, **kwargs: real_connect(*args, factory=FullDatabase, **kwargs),
    )
    kept = 1
    failure = None
    for _ in range(1_000):
        try:
            history.begin("job.py", ["job.py"], "f" * 500)
        except HistoryUnavailable as error:
            failure = error
            break
        kept += 1
    assert failure is not None
    assert "the disk is full" in str(failure)
    monkeypatch.undo()
    assert len(history.runs()) == kept
    # The run that could not be listed left no file behind.
    assert len(list((history.home / "runs").iterdir())) == kept


class FailingWrites(sqlite3.Connection):
    """A connection whose writes fail with the error a test sets."""

    message = "database or disk is full"

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        raise sqlite3.OperationalError(self.message)


# Issue 20.5: a history that stops being writable mid-run: one error, then quiet.
@pytest.mark.parametrize(
    ("message", "words"),
    [
        ("database or disk is full", "the disk is full"),
        ("attempt to write a readonly database", "read-only"),
        ("database is locked", "locked by another process"),
        ("unable to open database file", "its index cannot be opened"),
    ],
)
def test_updates_that_cannot_be_written_raise_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, message: str, words: str
) -> None:
    history = make_history(tmp_path)
    handle = history.begin("job.py", ["job.py"], "fp")
    real_connect = sqlite3.connect
    monkeypatch.setattr(FailingWrites, "message", message)
    monkeypatch.setattr(
        index_module.sqlite3,
        "connect",
        lambda *args, **kwargs: real_connect(*args, factory=FailingWrites, **kwargs),
    )
    with pytest.raises(HistoryUnavailable, match=words):
        handle.update_counts(Counts(fed=1), force=True)
    assert handle.failure is not None
    assert not handle.update_counts(Counts(fed=2), force=True)
    with pytest.raises(HistoryUnavailable, match=words):
        handle.finish("finished", Counts(fed=2, done=2))
    monkeypatch.undo()
    handle.finish("finished", Counts(fed=2, done=2))
    assert history.runs()[0].status == "finished"


# Issue 20.5: an index another process keeps rebuilding is waited for, then given up on
# with the same error (never a hang).
def test_an_index_repair_held_by_another_process_times_out(tmp_path: Path) -> None:
    import fcntl

    history = make_history(tmp_path, busy_timeout=0.05)
    begin_finished(history)
    (history.home / "index.db").unlink()
    with open(history.home / "index.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with pytest.raises(HistoryUnavailable, match="rebuilding its index"):
            history.runs()
    assert len(history.runs()) == 1
