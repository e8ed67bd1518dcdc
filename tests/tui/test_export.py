"""Unit tests of antflow_tui.export: the header the app writes from its counts (the item
lines and the writer are antflow.export's: tests/engine/test_export.py)."""

from __future__ import annotations

import json

from antflow.runstream.jsonlines import encode_line
from antflow_tui.accounting import RunCounts
from antflow_tui.export import header_line


def test_the_header_names_the_format_and_gives_the_summarys_counts() -> None:
    counts = RunCounts(
        completed=49,
        failed=6,
        skipped=0,
        in_flight=0,
        unfinished=86,
        abandoned=0,
        not_fed=159,
        total=300,
    )
    record = header_line(counts, script="scrape.py", pipelines=["pipeline"])
    header = json.loads(encode_line(record))
    assert header == {
        "antflow_export": 1,
        "script": "scrape.py",
        "pipelines": ["pipeline"],
        "items": 300,
        "completed": 49,
        "failed": 6,
        "skipped": 0,
        "in_flight": 0,
        "unfinished": 86,
        "abandoned": 0,
        "not_fed": 159,
        "done_earlier": 0,
    }


# Issue 20.2: a resumed run's export counts the items done earlier with their own word.
def test_the_header_counts_items_done_earlier() -> None:
    counts = RunCounts(
        completed=30,
        failed=0,
        skipped=0,
        in_flight=0,
        unfinished=0,
        abandoned=0,
        not_fed=0,
        total=100,
        done_earlier=70,
    )
    header = json.loads(encode_line(header_line(counts, script="job.py", pipelines=["p"])))
    assert (header["items"], header["completed"], header["done_earlier"]) == (100, 30, 70)
