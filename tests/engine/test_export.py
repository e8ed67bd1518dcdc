"""Unit tests of antflow.export: each kind of item line, values JSON cannot hold, and the
one writer."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from antflow.export import (
    EXPORT_VERSION,
    ExportHeader,
    ExportRecord,
    completed_item,
    error_type_name,
    failed_item,
    left_item,
    not_fed_item,
    write_export,
)
from antflow.pending import PendingItem
from antflow.refeed import read_export
from antflow.runstream.jsonlines import encode_line
from antflow.types import FailedItem, PipelineResult

if TYPE_CHECKING:
    from pathlib import Path


class Opaque:
    def __repr__(self) -> str:
        return "Opaque(7)"


class ParseError(ValueError):
    pass


def result(item_id: Any, value: Any, sequence: int = 0) -> PipelineResult:
    return PipelineResult(id=item_id, value=value, sequence_id=sequence)


def failed(item_id: Any, exception: BaseException | None = None) -> FailedItem:
    return FailedItem(
        item_id=item_id,
        error="bad value",
        error_type="ValueError" if exception is None else type(exception).__name__,
        stage="Parse",
        attempts=3,
        timestamp=1.0,
        exception=exception,
        traceback="Traceback (most recent call last):\nValueError: bad value\n",
    )


def as_text(record: ExportRecord) -> str:
    return encode_line(record).decode()


def completed_line(pipeline: str, result: PipelineResult) -> str:
    return as_text(completed_item(pipeline, result))


def failed_line(pipeline: str, failure: FailedItem, **known: tuple[bool, Any]) -> str:
    return as_text(failed_item(pipeline, failure, **known))


def left_line(pipeline: str, status: Any, item_id: Any, **where: Any) -> str:
    return as_text(left_item(pipeline, status, item_id, **where))


def not_fed_line(pipeline: str, item_id: Any, stage: str | None, value: Any, fed: Any) -> str:
    return as_text(not_fed_item(pipeline, item_id, stage=stage, value=value, fed=fed))


def header(items: int) -> ExportHeader:
    return ExportHeader(EXPORT_VERSION, "s.py", ("p",), items, items, 0, 0, 0, 0, 0, 0)


def strict_loads(line: str) -> Any:
    """json.loads that refuses what is not JSON (NaN, Infinity)."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(line, parse_constant=refuse)


def test_a_completed_line() -> None:
    line = strict_loads(completed_line("p", result(1, {"n": 2})))
    assert line == {"pipeline": "p", "status": "completed", "id": 1, "value": {"n": 2}}


def test_a_failed_line_carries_what_feeding_it_again_takes() -> None:
    line = strict_loads(
        failed_line(
            "p",
            failed(3, ParseError("bad value")),
            value=(True, ["https://x/3", "<html>"]),
            fed=(True, "https://x/3"),
        )
    )
    assert line == {
        "pipeline": "p",
        "status": "failed",
        "id": 3,
        "stage": "Parse",
        "value": ["https://x/3", "<html>"],
        "input": "https://x/3",
        "error_type": f"{__name__}.ParseError",
        "error": "bad value",
        "attempts": 3,
        "traceback": "Traceback (most recent call last):\nValueError: bad value\n",
    }


def test_a_failed_line_without_the_values_leaves_them_out() -> None:
    line = strict_loads(failed_line("p", failed(3)))
    assert "value" not in line
    assert "input" not in line
    assert line["error_type"] == "ValueError"


def test_error_types_are_named_as_the_script_names_them() -> None:
    assert error_type_name(failed(1, ValueError("x"))) == "ValueError"
    assert error_type_name(failed(1, ParseError("x"))) == f"{__name__}.ParseError"
    assert error_type_name(failed(1)) == "ValueError"


def test_unfinished_and_abandoned_lines() -> None:
    held = PendingItem("page-7", "Save", {"title": "x"}, "queued")
    unfinished = strict_loads(
        left_line("p", "unfinished", "page-7", pending=held, fed=(True, "u/7"))
    )
    assert unfinished == {
        "pipeline": "p",
        "status": "unfinished",
        "id": "page-7",
        "stage": "Save",
        "state": "queued",
        "value": {"title": "x"},
        "input": "u/7",
    }
    abandoned = strict_loads(left_line("p", "abandoned", 9))
    assert abandoned == {"pipeline": "p", "status": "abandoned", "id": 9}


def test_a_not_fed_line() -> None:
    line = strict_loads(not_fed_line("p", "doc-4", None, {"w": 1}, {"id": "doc-4"}))
    assert line == {
        "pipeline": "p",
        "status": "not_fed",
        "id": "doc-4",
        "value": {"w": 1},
        "input": {"id": "doc-4"},
    }


def test_values_json_cannot_hold_are_written_as_their_repr_with_a_flag() -> None:
    values: list[Any] = [Opaque(), {1, 2}, b"\xff\xfe", {(1, 2): "tuple key"}, {1: "int key"}]
    lines = [strict_loads(completed_line("p", result(i, v))) for i, v in enumerate(values)]
    assert [line["value"] for line in lines] == [
        "Opaque(7)",
        "{1, 2}",
        "b'\\xff\\xfe'",
        "{(1, 2): 'tuple key'}",
        "{1: 'int key'}",
    ]
    assert all(line["value_is_repr"] is True for line in lines)


def test_json_values_carry_no_flag_and_tuples_are_lists() -> None:
    line = strict_loads(completed_line("p", result(1, ("url", [1, (2, 3)], {"k": None}))))
    assert line["value"] == ["url", [1, [2, 3]], {"k": None}]
    assert "value_is_repr" not in line


def test_ids_json_cannot_hold_are_written_as_their_repr_with_a_flag() -> None:
    line = strict_loads(failed_line("p", failed(b"\x00")))
    assert line["id"] == "b'\\x00'"
    assert line["id_is_repr"] is True
    inputs = strict_loads(left_line("p", "unfinished", 1, fed=(True, Opaque())))
    assert (inputs["input"], inputs["input_is_repr"]) == ("Opaque(7)", True)


# Issue 18.13: a tuple id was written as a bare array, which --retry-from could not feed.
def test_a_tuple_id_is_an_array_flagged_id_is_tuple(tmp_path: Path) -> None:
    line = strict_loads(failed_line("p", failed(("page", ("part", 2)))))
    assert (line["id"], line["id_is_tuple"]) == (["page", ["part", 2]], True)
    assert "id_is_tuple" not in strict_loads(completed_line("p", result("page-1", 1)))
    opaque = strict_loads(completed_line("p", result(("page", frozenset({1})), 1)))
    assert opaque["id_is_repr"] is True
    assert "id_is_tuple" not in opaque, "a repr is a string, not an array"

    path = write_export(
        tmp_path / "run.jsonl",
        [
            header(2),
            failed_item("p", failed(("page", ("part", 2))), value=(True, 1)),
            not_fed_item("p", ("page", 3), stage=None, value=3, fed=3),
        ],
    )
    plan = read_export(tmp_path / "run.jsonl")
    assert path == 2
    assert [item.item_id for item in plan.items] == [("page", ("part", 2)), ("page", 3)]


def test_a_circular_value_does_not_fail_the_export() -> None:
    loop: list[Any] = []
    loop.append(loop)
    value = strict_loads(completed_line("p", result(1, loop)))["value"]
    assert value.startswith("[[")
    assert "..." in value


def test_not_a_number_is_not_written_as_invalid_json() -> None:
    # JSON has no NaN or Infinity; json.dumps writes them bare unless told not to.
    for number in (float("nan"), float("inf")):
        line = strict_loads(completed_line("p", result(1, number)))
        assert line["value_is_repr"] is True


def test_a_huge_value_is_cut_only_when_json_cannot_hold_it() -> None:
    big = "x" * 1_000_000
    assert strict_loads(completed_line("p", result(1, big)))["value"] == big
    cut = strict_loads(completed_line("p", result(1, {Opaque(): big})))["value"]
    assert len(cut) < 10_000


def test_unicode_is_written_as_is() -> None:
    line = completed_line("p", result("ключ", "日本語"))
    assert "ключ" in line
    assert "日本語" in line


def test_write_export_replaces_the_file_and_counts_items(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text("old content\n" * 5, encoding="utf-8")
    records: list[ExportRecord] = [
        header(3),
        completed_item("p", result(1, "a")),
        failed_item("p", failed(2)),
        left_item("p", "unfinished", 3),
    ]
    assert write_export(path, records) == 3
    first, *items = [strict_loads(line) for line in path.read_text("utf-8").splitlines()]
    assert first["antflow_export"] == 1
    assert [item["status"] for item in items] == ["completed", "failed", "unfinished"]
    assert path.read_text(encoding="utf-8").endswith("\n")


def test_a_value_with_a_lone_surrogate_is_written_not_raised(tmp_path: Path) -> None:
    # json.dumps wrote it, and the UTF-8 file then refused it: the export failed.
    path = tmp_path / "out.jsonl"
    assert write_export(path, [header(1), completed_item("p", result(1, "a\ud800b"))]) == 1
    assert strict_loads(path.read_text("utf-8").splitlines()[1])["value"] == "a\\ud800b"
