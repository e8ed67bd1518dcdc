"""Two recorded runs compared: totals, stages, error groups, items by id, how they were
made; the JSON a script reads; the newly failed items written for --retry-from.

Issue 22 ("Compare two runs item by item").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from antflow.refeed import read_export
from antflow.runstream.compare import compare
from antflow.runstream.comparejson import comparison_document, encode_comparison
from antflow.runstream.fileformat import Recording
from antflow.runstream.retryfile import write_newly_failed
from antflow.runstream.runsummary import summarise
from tests.engine.compared_runs import START, Outcome, before_and_after, write_run

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from antflow.runstream.compare import Comparison


@pytest.fixture
def runs(tmp_path: Path) -> Iterator[tuple[Comparison, Recording, Recording]]:
    path_a, path_b = before_and_after(tmp_path)
    with Recording.open(path_a) as a, Recording.open(path_b) as b:
        yield compare(summarise(a), summarise(b)), a, b


def ids(document: dict[str, Any], kind: str) -> list[Any]:
    return [row["id"] for row in document["items"][kind]]


# Issue 22.4: items matched by id: fixed, newly failed, still failing (same error or
# another), newly slow (most time added first; a hair slower is not slow).
def test_items_are_sorted_into_fixed_newly_failed_still_failing_and_newly_slow(
    runs: tuple[Comparison, Recording, Recording],
) -> None:
    comparison, _, _ = runs
    items = comparison.items
    assert items.counts == {
        "fixed": 1,
        "newly_failed": 2,
        "still_failing": 2,
        "newly_slow": 2,
        "still_failing_same_error": 1,
        "still_failing_other_error": 1,
        "only_in_a": 0,
        "only_in_b": 0,
        "in_both": 10,
    }
    assert [row.item for row in items.rows("fixed")] == [1]
    assert [row.item for row in items.rows("newly_failed")] == [2, 8]
    still = {row.item: row.same_error for row in items.rows("still_failing")}
    assert still == {3: True, 4: False}
    slow = list(items.rows("newly_slow"))
    assert [row.item for row in slow] == [5, 6]
    assert slow[0].added_seconds == pytest.approx(0.5)
    assert slow[1].added_seconds == pytest.approx(0.2)
    newly = items.row("newly_failed", 1)
    assert (newly.a.status, newly.b.status) == ("completed", "failed")
    assert newly.b.error == ("KeyError", "'price'")
    assert newly.b.stage == "Work"


# Issue 22.4: "top N by added time": --slow keeps the N that slowed most.
def test_newly_slow_keeps_the_items_that_slowed_most(tmp_path: Path) -> None:
    path_a, path_b = before_and_after(tmp_path)
    with Recording.open(path_a) as a, Recording.open(path_b) as b:
        comparison = compare(summarise(a), summarise(b), slow=1)
    assert [row.item for row in comparison.items.rows("newly_slow")] == [5]
    assert comparison.items.count("newly_slow") == 1


# Issue 22.3: error groups (the c view's masking) that appeared, went away, grew, shrank.
def test_error_groups_say_how_they_changed(
    runs: tuple[Comparison, Recording, Recording],
) -> None:
    comparison, _, _ = runs
    groups = {(g.type, g.message): (g.a, g.b, g.trend) for g in comparison.errors}
    assert groups == {
        ("ValueError", "bad row <n>"): (3, 1, "shrank"),
        ("KeyError", "'price'"): (0, 2, "appeared"),
        ("TimeoutError", "timed out"): (0, 1, "appeared"),
    }


# Issue 22.1 and 22.5: totals side by side; how the runs were made, differences only.
def test_totals_and_how_the_runs_were_made(
    runs: tuple[Comparison, Recording, Recording],
) -> None:
    comparison, _, _ = runs
    totals = {change.name: (change.a, change.b) for change in comparison.totals}
    assert totals["completed"] == (7, 6)
    assert totals["failed"] == (3, 4)
    made = {(d.setting, d.stage): (d.a, d.b) for d in comparison.made}
    assert made[("workers", "Work")] == (2, 3)
    assert made[("argv", None)] == (["job.py"], ["job.py", "--fast"])
    assert made[("script_sha256", None)] == ("a" * 64, "b" * 64)
    # Settings that did not change are not listed.
    assert ("task_attempts", "Work") not in made


# Issue 22.1 (--json): the document, field by field, as a script reads it.
def test_json_document_field_by_field(runs: tuple[Comparison, Recording, Recording]) -> None:
    comparison, _, _ = runs
    document = msgspec.json.decode(encode_comparison(comparison, items=1))
    assert document["antflow_compare"] == 1
    assert document["a"]["started_at"] == START
    assert document["b"]["script_sha256"] == "b" * 64
    assert document["a"]["ended"] == document["b"]["ended"] == "finished"
    assert document["totals"]["failed"] == {"a": 3, "b": 4, "change": 1, "ratio": 4 / 3}
    stage = document["stages"][0]
    assert (stage["pipeline"], stage["stage"], stage["present"]) == (1, "Work", "both")
    assert stage["done"]["change"] == -1
    # --items 1: one row per kind, whole counts.
    assert document["items"]["limit"] == 1
    assert document["items"]["counts"]["newly_failed"] == 2
    assert ids(document, "newly_failed") == [2]
    row = document["items"]["newly_failed"][0]
    assert row["a"]["status"] == "completed"
    assert row["b"]["error"] == {"type": "KeyError", "message": "'price'"}
    assert document["items"]["still_failing"][0]["same_error"] is True
    assert document["items"]["newly_slow"][0]["added_seconds"] == pytest.approx(0.5)
    workers = [d for d in document["made"] if d["setting"] == "workers"]
    assert workers == [
        {"setting": "workers", "pipeline": 1, "stage": "Work", "limit": None, "a": 2, "b": 3}
    ]
    every = comparison_document(comparison, items=None)
    assert ids(every, "newly_failed") == [2, 8]


# Issue 22.4: ids that are not small ints (strings, tuples) are matched as they are.
def test_items_with_string_and_tuple_ids_are_matched_by_id(tmp_path: Path) -> None:
    failing = Outcome(error=("ValueError", "no"))
    a = write_run(tmp_path / "a.jsonl", {"x": Outcome(), ("k", 2): failing, -7: Outcome()})
    b = write_run(tmp_path / "b.jsonl", {-7: failing, ("k", 2): Outcome(), "x": Outcome()})
    with Recording.open(a) as run_a, Recording.open(b) as run_b:
        comparison = compare(summarise(run_a), summarise(run_b))
    assert [row.item for row in comparison.items.rows("newly_failed")] == [-7]
    assert [row.item for row in comparison.items.rows("fixed")] == [("k", 2)]


# Issue 22: "The newly failed items can be written as a file that --retry-from accepts."
def test_newly_failed_items_are_written_as_a_file_retry_from_reads(
    runs: tuple[Comparison, Recording, Recording], tmp_path: Path
) -> None:
    comparison, _, b = runs
    path = tmp_path / "newly-failed.jsonl"
    written = write_newly_failed(path, comparison, b)
    assert written.written == 2
    # What --retry-from will read: both items listed, none fed (a recording keeps no
    # values; a durable stage's would be), each with its reason.
    plan = read_export(path)
    assert plan.items == ()
    assert [line.item_id for line in plan.skipped] == [2, 8]
    assert all(line.status == "failed" and line.reason for line in plan.skipped)
    assert (written.fed, [s.item_id for s in written.skipped]) == (0, [2, 8])
    text = path.read_text(encoding="utf-8")
    assert "KeyError" in text
    assert "'price'" in text
