"""Unit tests of antflow_tui.export: results, failures and unfinished items as JSON Lines."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from antflow.types import FailedItem, PipelineResult
from antflow_tui.export import export_lines, write_export

if TYPE_CHECKING:
    from pathlib import Path


class Opaque:
    def __repr__(self) -> str:
        return "Opaque(7)"


def result(item_id: Any, value: Any, sequence: int = 0) -> PipelineResult:
    return PipelineResult(id=item_id, value=value, sequence_id=sequence)


def failed(item_id: Any) -> FailedItem:
    return FailedItem(
        item_id=item_id,
        error="bad value",
        error_type="ValueError",
        stage="Parse",
        attempts=3,
        timestamp=1.0,
        traceback="Traceback (most recent call last):\nValueError: bad value\n",
    )


def strict_loads(line: str) -> Any:
    """json.loads that refuses what is not JSON (NaN, Infinity)."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(line, parse_constant=refuse)


def test_one_object_per_result_failure_and_unfinished_item() -> None:
    lines = list(
        export_lines(
            [result(1, {"n": 2}), result("b", [1, 2])],
            [failed(3)],
            [4, "five"],
            pipeline="scrape",
        )
    )
    assert all("\n" not in line for line in lines)
    assert [strict_loads(line) for line in lines] == [
        {"pipeline": "scrape", "id": 1, "status": "completed", "value": {"n": 2}},
        {"pipeline": "scrape", "id": "b", "status": "completed", "value": [1, 2]},
        {
            "pipeline": "scrape",
            "id": 3,
            "status": "failed",
            "stage": "Parse",
            "error_type": "ValueError",
            "error": "bad value",
            "attempts": 3,
            "traceback": "Traceback (most recent call last):\nValueError: bad value\n",
        },
        {"pipeline": "scrape", "id": 4, "status": "unfinished"},
        {"pipeline": "scrape", "id": "five", "status": "unfinished"},
    ]


def test_nothing_to_export() -> None:
    assert list(export_lines([], [], [])) == []


def test_values_json_cannot_hold_are_written_as_their_repr() -> None:
    values: list[Any] = [Opaque(), {1, 2}, b"\xff\xfe", {(1, 2): "tuple key"}]
    lines = [
        strict_loads(line)
        for line in export_lines([result(i, v) for i, v in enumerate(values)], [], [])
    ]
    assert [line["value"] for line in lines] == [
        "Opaque(7)",
        "{1, 2}",
        "b'\\xff\\xfe'",
        "{(1, 2): 'tuple key'}",
    ]


def test_ids_json_cannot_hold_are_written_as_their_repr() -> None:
    lines = list(export_lines([result(Opaque(), 1)], [failed(b"\x00")], [frozenset({9})]))
    assert [strict_loads(line)["id"] for line in lines] == [
        "Opaque(7)",
        "b'\\x00'",
        "frozenset({9})",
    ]


def test_a_circular_value_does_not_fail_the_export() -> None:
    loop: list[Any] = []
    loop.append(loop)
    (line,) = export_lines([result(1, loop)], [], [])
    value = strict_loads(line)["value"]
    assert value.startswith("[[")
    assert value.endswith("]]")
    assert "..." in value


def test_not_a_number_is_not_written_as_invalid_json() -> None:
    # JSON has no NaN or Infinity; json.dumps writes them bare unless told not to.
    lines = list(export_lines([result(1, float("nan")), result(2, float("inf"))], [], []))
    for line in lines:
        strict_loads(line)


def test_a_huge_value_is_cut_only_when_json_cannot_hold_it() -> None:
    big = "x" * 1_000_000
    (kept,) = export_lines([result(1, big)], [], [])
    assert strict_loads(kept)["value"] == big
    (cut,) = export_lines([result(1, {Opaque(): big})], [], [])
    assert len(strict_loads(cut)["value"]) < 10_000


def test_unicode_is_written_as_is() -> None:
    (line,) = export_lines([result("ключ", "日本語")], [], [])
    assert "ключ" in line
    assert "日本語" in line


def test_write_export_replaces_the_file_and_counts_lines(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text("old content\n" * 5, encoding="utf-8")
    written = write_export(path, export_lines([result(1, "a")], [failed(2)], [3]))
    assert written == 3
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [strict_loads(line)["status"] for line in lines] == ["completed", "failed", "unfinished"]
    assert path.read_text(encoding="utf-8").endswith("\n")


def test_write_export_of_nothing_leaves_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    assert write_export(path, []) == 0
    assert path.read_text(encoding="utf-8") == ""
