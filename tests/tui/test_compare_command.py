"""``antflow-tui compare A B`` as a user runs it: runs of the history by name, --json,
--write-failed feeding --retry-from, text with no terminal, one clear message on bad
input.

Issue 22 ("Compare two runs item by item").
"""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

import antflow
from antflow import Pipeline, Stage
from antflow.refeed import feed_export, read_export
from tests.engine.compared_runs import before_and_after
from tests.engine.helpers import no_wait
from tests.tui.test_cli import assert_script_error, run_cli

if TYPE_CHECKING:
    from pathlib import Path


class SaveError(Exception):
    pass


def job(calls: Counter[str], failing: frozenset[str]) -> Pipeline:
    """Fetch → Ask (durable) → Save; Save fails the docs in `failing`."""

    async def fetch(doc: str) -> str:
        calls[f"fetch {doc}"] += 1
        return doc

    async def ask(doc: str) -> dict[str, str]:
        calls[f"ask {doc}"] += 1
        return {"doc": doc, "answer": doc.upper()}

    async def save(value: dict[str, str]) -> dict[str, str]:
        calls[f"save {value['doc']}"] += 1
        if value["doc"] in failing:
            raise SaveError(f"cannot save {value['doc']}")
        return value

    return Pipeline(
        [
            Stage("Fetch", 2, [fetch]),
            Stage("Ask", 2, [ask], durable=True),
            Stage("Save", 2, [save], task_attempts=1),
        ],
        sleep=no_wait,
    )


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A history of its own, and no ANTFLOW_* variable from outside."""
    for name in ("ANTFLOW_HISTORY", "ANTFLOW_RESUME", "ANTFLOW_HISTORY_KEEP"):
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "history"
    monkeypatch.setenv("ANTFLOW_HOME", str(folder))
    monkeypatch.chdir(tmp_path)
    return folder


async def keep(failing: frozenset[str]) -> Counter[str]:
    calls: Counter[str] = Counter()
    async with antflow.keep_history(script="job.py"):
        await job(calls, failing).run(["a", "b", "c", "d"])
    return calls


def compare_json(tmp_path: Path, *args: str) -> dict[str, Any]:
    ran = run_cli(tmp_path, "compare", *args, "--json")
    assert ran.code == 0, ran.stderr
    document: dict[str, Any] = json.loads(ran.stdout)
    return document


# Issue 22.1: runs of the history by name (last, last~1); 22: the newly failed items
# written as a file --retry-from feeds (the durable stage's output, at the next stage).
async def test_history_runs_by_name_and_the_newly_failed_items_fed_again(
    home: Path, tmp_path: Path
) -> None:
    await keep(frozenset({"a"}))
    await keep(frozenset({"c"}))
    out = tmp_path / "again.jsonl"
    ran = run_cli(tmp_path, "compare", "last~1", "last", "--json", "--write-failed", str(out))
    assert ran.code == 0, ran.stderr
    document = json.loads(ran.stdout)
    assert document["a"]["run_id"] != document["b"]["run_id"]
    assert document["a"]["run_id"] is not None
    counts = document["items"]["counts"]
    assert (counts["fixed"], counts["newly_failed"], counts["still_failing"]) == (1, 1, 0)
    assert [row["id"] for row in document["items"]["fixed"]] == [0]
    newly = document["items"]["newly_failed"]
    assert [row["id"] for row in newly] == [2]
    assert newly[0]["b"]["error"]["type"].endswith("SaveError")
    assert newly[0]["b"]["stage"] == "Save"
    # What was written is said on stderr (stdout holds the JSON only).
    assert str(out) in ran.stderr
    plan = read_export(out)
    assert [(item.item_id, item.value) for item in plan.items] == [(2, {"doc": "c", "answer": "C"})]
    assert plan.skipped == ()
    # Fed as --retry-from feeds it: Save runs again for c alone, Fetch and Ask do not.
    calls: Counter[str] = Counter()
    pipeline = job(calls, frozenset())
    await pipeline.start()
    fed = await feed_export(pipeline, out)
    await pipeline.join()
    assert [item.stage for item in fed.items] == ["Save"]
    assert calls == Counter({"save c": 1})
    assert [(result.id, result.value) for result in pipeline.results] == [
        (2, {"doc": "c", "answer": "C"})
    ]


# Issue 22.1: with no terminal, the comparison is printed as text.
def test_text_when_there_is_no_terminal(tmp_path: Path) -> None:
    a, b = before_and_after(tmp_path)
    ran = run_cli(tmp_path, "compare", str(a), str(b))
    assert ran.code == 0, ran.stderr
    assert "newly failed" in ran.stdout.lower()
    assert "KeyError" in ran.stdout
    assert "workers" in ran.stdout


# Issue 22.1: --items bounds the rows listed, never the counts.
def test_items_option_bounds_the_rows_listed(tmp_path: Path) -> None:
    a, b = before_and_after(tmp_path)
    document = compare_json(tmp_path, str(a), str(b), "--items", "0")
    assert document["items"]["counts"]["newly_failed"] == 2
    assert document["items"]["newly_failed"] == []
    every = compare_json(tmp_path, str(a), str(b), "--items", "all")
    assert [row["id"] for row in every["items"]["newly_failed"]] == [2, 8]


# Issue 22.1: a run that is not there, a folder, a file that is not a recording, an
# empty history: one message naming A or B and what to do, exit 2.
def test_bad_runs_give_one_clear_message(tmp_path: Path, home: Path) -> None:
    a, _ = before_and_after(tmp_path)
    assert_script_error(run_cli(tmp_path, "compare", "nosuch.jsonl", str(a)), "A: no such file")
    assert_script_error(run_cli(tmp_path, "compare", str(a), str(tmp_path)), "B:", "folder")
    junk = tmp_path / "junk.jsonl"
    junk.write_text("not a recording\n", encoding="utf-8")
    assert_script_error(run_cli(tmp_path, "compare", str(junk), str(a)), "A:")
    assert_script_error(run_cli(tmp_path, "compare", str(a), "last"), "B:")
