"""The runs list's pure parts (issue 20.3): a kept run's row at any width, its JSON
object, the filter, and the command that resumes it; and the header's resumed line."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from antflow.history import Counts, Run
from antflow_tui.header import resumed_description
from antflow_tui.runs.actions import Launch, Refusal, resume_command
from antflow_tui.runs.present import (
    JSON_FIELDS,
    header_row,
    layout,
    left_over,
    matches,
    of_script,
    run_json,
    run_row,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

SCRIPT = "/jobs/scrape.py"


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Start times read the same wherever the tests run."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def a_run(**fields: object) -> Run:
    base: dict[str, object] = {
        "id": "20261205-064100-00ab",
        "started_at": 1_796_453_000.0,
        "script": "scrape.py",
        "script_path": SCRIPT,
        "argv": ("antflow-tui", SCRIPT),
        "pid": 0,
        "process_start": None,
        "status": "finished",
        "ended_at": 1_796_453_600.0,
        "updated_at": 1_796_453_600.0,
        "counts": Counts(fed=600, done=540, failed=12, unfinished=48, done_earlier=2_000),
        "duration": 600.0,
        "rate": 0.9,
        "resumed_from": "20261205-050000-00aa",
        "fingerprint": "fp",
        "path": Path("/h/runs/20261205-064100-00ab.jsonl"),
        "bytes": 1234,
        "antflow": "0.1.0",
    }
    base.update(fields)
    return Run(**base)  # type: ignore[arg-type]


# Issue 20.3: at 80 columns a row still says done, failed, unfinished and done earlier
# (the duration gives way first); wide, every column is there, "done earlier" in full.
def test_a_narrow_row_keeps_done_earlier() -> None:
    narrow = layout(78)
    titles = header_row(narrow).plain.split()
    assert titles == ["started", "script", "status", "done", "failed", "unfinished", "earlier"]
    row = run_row(a_run(), narrow).plain
    assert row.split() == ["12-05", "06:43", "scrape.py", "finished", "540", "12", "48", "2,000"]
    assert len(row) <= 78
    wide = header_row(layout(200)).plain
    for title in ("done earlier", "duration", "rate", "resumed from", "run"):
        assert title in wide


# Issue 20.3: a crashed run's unfinished are those in flight at its last update.
def test_a_crashed_runs_unfinished_are_those_in_flight() -> None:
    crashed = a_run(status="crashed", counts=Counts(fed=186, done=88, failed=10))
    assert left_over(crashed) == 88
    assert left_over(a_run()) == 48


# Issue 20.3: `runs --json` gives every field, in order, with the counts by name.
def test_run_json_has_every_field() -> None:
    found = run_json(a_run())
    assert tuple(found) == JSON_FIELDS
    assert (found["done"], found["unfinished"], found["done_earlier"]) == (540, 48, 2_000)
    assert found["resumed_from"] == "20261205-050000-00aa"
    assert found["argv"] == ["antflow-tui", SCRIPT]


# Issue 20.3: the filter matches a script, a status or an id; --script a name or a path.
def test_filter_and_script_selection() -> None:
    run = a_run()
    assert all(matches(run, text) for text in ("SCRAPE", "fini", "00ab"))
    assert not matches(run, "llm")
    assert all(of_script(run, script) for script in ("scrape.py", SCRIPT))
    assert not of_script(run, "/elsewhere/scrape.py")


# Issue 20.3: r runs `antflow-tui SCRIPT --resume RUN` when the script is there, says the
# command when it is gone, and refuses a run that is still running.
def test_the_resume_command() -> None:
    run = a_run()
    launch = resume_command(run, exists={SCRIPT}, cwd="/jobs", prefix=("antflow-tui",))
    assert launch == Launch(
        ("antflow-tui", SCRIPT, "--resume", run.id), f"antflow-tui scrape.py --resume {run.id}"
    )
    gone = resume_command(run, exists=(), cwd="/elsewhere", prefix=("antflow-tui",))
    assert isinstance(gone, Refusal)
    assert gone.words.endswith(f"then run: antflow-tui {SCRIPT} --resume {run.id}")
    running = resume_command(a_run(status="running"), exists={SCRIPT}, prefix=("x",))
    assert isinstance(running, Refusal)
    assert "still running" in running.words
    named = a_run(argv=("antflow-tui", f"{SCRIPT}:main"))
    with_name = resume_command(named, exists={SCRIPT}, cwd="/jobs", prefix=("antflow-tui",))
    assert isinstance(with_name, Launch)
    assert with_name.argv[1] == f"{SCRIPT}:main"


# Issue 20.4: a replayed run says what it resumed, as its live header did; fields that do
# not read right (a hostile file) say nothing.
def test_resumed_description_from_a_recordings_header() -> None:
    kept = {"resumed_from": "20261205-064100-00ab", "done_earlier": 2000}
    assert resumed_description(kept) == "resumed from 2026-12-05 06:41 · 2,000 done earlier"
    assert resumed_description(None) == ""
    assert resumed_description({"resumed_from": "[red]x", "done_earlier": 3}) == ""
    hostile = {"resumed_from": "20261205-064100-00ab", "done_earlier": "[red]lots"}
    assert resumed_description(hostile) == "resumed from 2026-12-05 06:41 · 0 done earlier"
