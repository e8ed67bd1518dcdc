"""antflow.refeed: read an export, feed its failed, unfinished and never-fed items back
where they were, and list the lines it cannot."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from antflow import Pipeline, Stage
from antflow.refeed import ExportFileError, check_stages, feed_export, read_export

if TYPE_CHECKING:
    from pathlib import Path

HEADER = {"antflow_export": 1, "items": 0}


def write_lines(path: Path, *records: dict[str, Any], header: Any = HEADER) -> Path:
    lines = [] if header is None else [json.dumps(header)]
    lines += [json.dumps(record) for record in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def line(status: str, item_id: Any, **fields: Any) -> dict[str, Any]:
    return {"pipeline": "pipeline", "status": status, "id": item_id, **fields}


# ---------------------------------------------------------------------- reading


def test_failed_unfinished_and_never_fed_items_are_planned_completed_ones_counted(
    tmp_path: Path,
) -> None:
    path = write_lines(
        tmp_path / "run.jsonl",
        line("completed", 1, value=2),
        line("skipped", 2, value=3),
        line("failed", 3, stage="Parse", value=["u", "<html"], input="u", error="bad"),
        line("unfinished", "page-4", stage="Save", value={"t": 1}),
        line("not_fed", 5, value=5, input=5),
    )
    plan = read_export(path)
    assert plan.done == 2
    assert plan.skipped == ()
    assert [(i.line, i.item_id, i.stage, i.value, i.status) for i in plan.items] == [
        (4, 3, "Parse", ["u", "<html"], "failed"),
        (5, "page-4", "Save", {"t": 1}, "unfinished"),
        (6, 5, None, 5, "not_fed"),
    ]
    assert plan.counts() == {"failed": 1, "unfinished": 1, "not_fed": 1}
    assert plan.pipelines == ("pipeline",)


def test_lines_that_cannot_be_fed_again_are_listed_with_the_reason(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "run.jsonl",
        line("failed", 1, stage="Parse", value="Opaque(7)", value_is_repr=True),
        line("failed", "b'\\x00'", id_is_repr=True, stage="Parse", value=1),
        line("abandoned", 3),
        line("unfinished", 4),
        line("in_flight", 5, stage="Parse", value=1),
    )
    path.write_text(path.read_text() + '{"status": "failed", "id": 9, "stage": "Par\n')
    plan = read_export(path)
    assert plan.items == ()
    reasons = {skipped.line: skipped.reason for skipped in plan.skipped}
    assert "written as a repr (not JSON)" in reasons[2]
    assert "its id was written as a repr" in reasons[3]
    assert "abandoned by the script" in reasons[4]
    assert "its value was not kept" in reasons[5]
    assert "'in_flight' is not fed again" in reasons[6]
    assert reasons[7].startswith("not JSON"), "a torn last line is listed, not fatal"


def test_a_value_not_kept_as_json_starts_over_from_its_input(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "run.jsonl",
        line("failed", 1, stage="Parse", value="<obj>", value_is_repr=True, input="url/1"),
        line("unfinished", "d", input={"id": "d", "value": {"w": 3}}),
    )
    plan = read_export(path)
    assert [(i.item_id, i.stage, i.value, i.restart) for i in plan.items] == [
        (1, None, "url/1", True),
        ("d", None, {"w": 3}, True),
    ]


def test_one_pipeline_of_several(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "run.jsonl",
        {**line("failed", 1, stage="A", value=1), "pipeline": "pipeline-1"},
        {**line("failed", 1, stage="B", value=2), "pipeline": "pipeline-2"},
    )
    assert read_export(path).pipelines == ("pipeline-1", "pipeline-2")
    plan = read_export(path, pipeline="pipeline-2")
    assert [(i.stage, i.value) for i in plan.items] == [("B", 2)]


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ("", "is empty"),
        ('{"status": "failed", "id": 1}\n', "is not an antflow-tui export"),
        ("not json at all\n", "is not an antflow-tui export"),
        ('{"antflow_export": 99}\n', "version 99"),
    ],
)
def test_a_file_that_is_not_an_export_is_refused_with_one_clear_message(
    tmp_path: Path, content: str, said: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ExportFileError, match=said):
        read_export(path)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportFileError, match="cannot read"):
        read_export(tmp_path / "nowhere.jsonl")


def test_stages_the_pipeline_lacks_are_listed(tmp_path: Path) -> None:
    async def task(value: Any) -> Any:
        return value

    path = write_lines(
        tmp_path / "run.jsonl",
        line("failed", 1, stage="Parse", value=1),
        line("failed", 2, stage="Gone", value=2),
    )
    plan = check_stages(read_export(path), Pipeline([Stage("Parse", 1, [task])]))
    assert [item.item_id for item in plan.items] == [1]
    (skipped,) = plan.skipped
    assert (skipped.line, skipped.item_id) == (3, 2)
    assert "stage 'Gone' is not in this pipeline" in skipped.reason


# ---------------------------------------------------------------------- feeding


async def test_feed_export_feeds_each_item_into_its_stage_under_its_own_id(
    tmp_path: Path,
) -> None:
    seen: list[tuple[str, Any]] = []

    def task(stage: str) -> Any:
        async def run(value: Any) -> Any:
            seen.append((stage, value))
            return value

        run.__name__ = stage.lower()
        return run

    pipeline = Pipeline([Stage(name, 1, [task(name)]) for name in ("Fetch", "Parse", "Save")])
    path = write_lines(
        tmp_path / "run.jsonl",
        line("completed", 0, value="done"),
        line("failed", "p-1", stage="Parse", value=["u1", "<html>"]),
        line("unfinished", "p-2", stage="Save", value={"title": "t"}),
        line("not_fed", "p-3", value="u3"),
    )
    await pipeline.start()
    plan = await feed_export(pipeline, path)
    await pipeline.join()
    assert [item.item_id for item in plan.items] == ["p-1", "p-2", "p-3"]
    assert ("Fetch", "done") not in seen, "completed items are not fed again"
    assert ("Fetch", ["u1", "<html>"]) not in seen, "a failed item starts where it failed"
    assert ("Parse", ["u1", "<html>"]) in seen
    assert ("Save", {"title": "t"}) in seen
    assert ("Fetch", "u3") in seen
    assert sorted(str(result.id) for result in pipeline.results) == ["p-1", "p-2", "p-3"]
