"""A and B read at once (B in a child process when its file is large): the same runs,
and the same one message when one cannot be read, as read one after the other.

Issue 22 ("Two 1M-item runs compare in <= 5 s").
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import msgspec
import pytest

from antflow.runstream.compare import compare
from antflow.runstream.comparejson import comparison_document
from antflow_tui.compare.runs import CompareError, locate, read, read_both
from tests.engine.compared_runs import before_and_after

if TYPE_CHECKING:
    from pathlib import Path


def message(a: Path, b: Path, **options: int) -> str:
    with pytest.raises(CompareError) as raised:
        read_both(locate(str(a), "A"), locate(str(b), "B"), **options)
    return str(raised.value)


# Issue 22: B read by a child compares exactly as B read here.
@pytest.mark.parametrize("worth_a_child", [0, 1 << 40])
def test_both_runs_read_at_once_compare_as_read_in_turn(tmp_path: Path, worth_a_child: int) -> None:
    path_a, path_b = before_and_after(tmp_path)
    located = locate(str(path_a), "A"), locate(str(path_b), "B")
    (rec_a, a), (rec_b, b) = read_both(*located, worth_a_child=worth_a_child)
    (rec_a2, a2), (rec_b2, b2) = read(located[0]), read(located[1])
    try:
        assert msgspec.json.encode(comparison_document(compare(a, b), items=None)) == (
            msgspec.json.encode(comparison_document(compare(a2, b2), items=None))
        )
        # B's recording is open here for the item stories.
        assert rec_b.item(1, 2) is not None
    finally:
        for recording in (rec_a, rec_b, rec_a2, rec_b2):
            recording.close()


# Issue 22.1: a B the child cannot read gives the message reading it here gives; a bad A
# is named first, as before.
def test_a_run_that_cannot_be_read_gives_the_same_message(tmp_path: Path) -> None:
    path_a, _ = before_and_after(tmp_path)
    junk = tmp_path / "junk.jsonl"
    junk.write_text("not a recording\n", encoding="utf-8")
    in_turn = message(path_a, junk, worth_a_child=1 << 40)
    assert in_turn.startswith("B: ")
    assert message(path_a, junk, worth_a_child=0) == in_turn
    assert message(junk, path_a, worth_a_child=0).startswith("A: ")


# Issue 22: no child can be started (no interpreter where sys.executable says): A and B
# are read in turn, as before.
def test_without_a_child_both_runs_are_read_in_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path_a, path_b = before_and_after(tmp_path)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    (rec_a, a), (rec_b, b) = read_both(
        locate(str(path_a), "A"), locate(str(path_b), "B"), worth_a_child=0
    )
    with rec_a, rec_b:
        assert compare(a, b).items.count("newly_failed") == 2
