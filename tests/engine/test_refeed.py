"""antflow.refeed: read an export, feed its failed, unfinished and never-fed items back
where they were, and list the lines it cannot."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from antflow import Pipeline, Stage
from antflow.refeed import ExportFileError, check_stages, feed_export, read_export
from tests.engine.helpers import Gates, settle, wait_until

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


# ---------------------------------------------------------------------- hostile exports


# Issue 18.13: a tuple id was written as a JSON array, and feeding it raised (unhashable)
# before anything was fed.
def test_tuple_ids_are_read_back_as_tuples_flagged_or_not(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "run.jsonl",
        line("failed", ["page", 3], id_is_tuple=True, stage="Parse", value=1),
        line("failed", ["page", ["nested", 1]], stage="Parse", value=2),
        line("failed", 7, stage="Parse", value=3),
    )
    plan = read_export(path)
    assert plan.skipped == ()
    assert [item.item_id for item in plan.items] == [("page", 3), ("page", ("nested", 1)), 7]


# Issue 18.13: one line that cannot be fed is skipped with its reason, never the rest.
def test_ids_that_cannot_be_ids_are_skipped_and_the_rest_read(tmp_path: Path) -> None:
    deep: Any = 1
    for _ in range(40):
        deep = [deep]
    path = write_lines(
        tmp_path / "run.jsonl",
        line("failed", {"k": 1}, stage="Parse", value=1),
        line("failed", ["a", {"k": 1}], stage="Parse", value=2),
        line("failed", "x", id_is_tuple=True, stage="Parse", value=3),
        line("failed", deep, stage="Parse", value=4),
        line("failed", 5, stage="Parse", value=5),
    )
    plan = read_export(path)
    assert [item.item_id for item in plan.items] == [5]
    reasons = {skipped.line: skipped.reason for skipped in plan.skipped}
    assert "its id is an object" in reasons[2]
    assert "its id is an array holding an object" in reasons[3]
    assert "flagged id_is_tuple but is not an array" in reasons[4]
    assert "nested more than 32 deep" in reasons[5]


# Issue 18.14: an id repeated further down was fed twice; a list or dict stage raised
# TypeError; deep nesting raised RecursionError; a status or pipeline that is not a string
# was taken as one.
def test_hostile_lines_are_each_skipped_with_their_reason(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "run.jsonl",
        line("failed", 1, stage="Parse", value="first"),
        line("unfinished", 1, stage="Parse", value="again"),
        line("failed", 1.0, stage="Parse", value="the same id to a pipeline"),
        line("failed", 2, stage=["Parse"], value=2),
        line("failed", 3, stage={"name": "Parse"}, value=3),
        line("failed", 4, stage="Parse", value=4),
        {"pipeline": "pipeline", "status": ["failed"], "id": 5},
        {"pipeline": ["p"], "status": "failed", "id": 6},
    )
    with path.open("a", encoding="utf-8") as out:
        out.write("[" * 100_000 + "]" * 100_000 + "\n")
        out.write('{"status": "failed", "id": NaN, "stage": "Parse", "value": 1}\n')
    plan = read_export(path)
    assert [(item.item_id, item.value) for item in plan.items] == [(1, "first"), (4, 4)]
    reasons = {skipped.line: skipped.reason for skipped in plan.skipped}
    assert reasons[3] == "its id is line 2's too, and an id is fed once"
    assert reasons[4] == "its id is line 2's too, and an id is fed once"
    assert reasons[5] == "its stage ['Parse'] is not a stage name"
    assert reasons[6] == "its stage {'name': 'Parse'} is not a stage name"
    assert reasons[8] == "its status ['failed'] is not a word"
    assert reasons[9] == "its pipeline ['p'] is not a name"
    assert reasons[10] == "not JSON this reads (nested too deep)"
    assert reasons[11].startswith("not JSON (NaN is not JSON")
    assert plan.pipelines == ("pipeline",)


# Issue 18.14: `true` (and 1.0) equal 1 in Python and passed as a version.
@pytest.mark.parametrize("version", ["true", "1.0", '"1"', "null"])
def test_a_header_whose_version_is_not_a_number_is_refused(tmp_path: Path, version: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(f'{{"antflow_export": {version}}}\n', encoding="utf-8")
    with pytest.raises(ExportFileError, match="not a version number"):
        read_export(path)


def test_a_header_nested_too_deep_is_refused_with_the_usual_message(tmp_path: Path) -> None:
    path = tmp_path / "deep.jsonl"
    path.write_text("[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    with pytest.raises(ExportFileError, match="is not an antflow-tui export"):
        read_export(path)


# Issue 18.14: a live id aborted the whole feed half-way, and no plan came back.
async def test_an_id_live_in_the_pipeline_is_skipped_with_its_reason_and_the_rest_fed(
    tmp_path: Path,
) -> None:
    gates = Gates()

    async def held(value: Any) -> Any:
        await gates.pass_through(value)
        return value

    pipeline = Pipeline([Stage("Parse", 2, [held])])
    path = write_lines(
        tmp_path / "run.jsonl",
        line("failed", "live", stage="Parse", value="refed"),
        line("failed", ("t", 1), stage="Parse", value="tuple"),
        line("failed", "other", stage="Parse", value="other"),
    )
    await pipeline.start()
    await pipeline.feed([{"id": "live", "value": "holder"}])
    await gates.entered("holder")
    plan = await feed_export(pipeline, path)
    gates.open_all()
    await pipeline.join()

    assert [item.item_id for item in plan.items] == [("t", 1), "other"]
    (skipped,) = plan.skipped
    assert skipped.line == 2
    assert "item id 'live' is already in the pipeline" in skipped.reason
    assert sorted(map(repr, (r.id for r in pipeline.results))) == sorted(
        map(repr, ["live", ("t", 1), "other"])
    )
    assert plan.not_fed == ()


async def test_a_shutdown_that_meets_the_feeding_leaves_the_rest_in_not_fed(
    tmp_path: Path,
) -> None:
    async def task(value: Any) -> Any:
        return value

    pipeline = Pipeline([Stage("Parse", 1, [task], queue_capacity=1)])
    pipeline.pause()
    path = write_lines(
        tmp_path / "run.jsonl", *(line("failed", n, stage="Parse", value=n) for n in range(4))
    )
    await pipeline.start()
    feeding = asyncio.create_task(feed_export(pipeline, path))
    await wait_until(lambda: pipeline.get_stats().items_fed == 1)
    await settle()
    await pipeline.shutdown(graceful=False)
    plan = await feeding

    assert [item.item_id for item in plan.items] == [0]
    assert [item.item_id for item in plan.not_fed] == [1, 2, 3]
    assert pipeline.get_unfinished_items() == [0]


# Issue 18.14: whatever the lines, feed_export returns a plan (the only error is a file
# that is not an export), feeds no id twice, and accounts for every line.
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=False, allow_infinity=False, width=16),
    st.sampled_from(["a", "b", "Parse", "Save", "failed", "[red]x", "\x1b[2J"]),
)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=8,
)
_hostile_line = st.one_of(
    st.fixed_dictionaries(
        {
            "status": st.sampled_from(["failed", "unfinished", "not_fed", "completed"]) | _json,
            "id": _json,
        },
        optional={
            "pipeline": st.sampled_from(["pipeline"]) | _json,
            "stage": st.sampled_from(["Parse", "Save", "Gone"]) | _json,
            "value": _json,
            "input": _json,
            "id_is_tuple": _json,
            "id_is_repr": _json,
            "value_is_repr": _json,
        },
    ).map(json.dumps),
    _json.map(json.dumps),
    st.sampled_from(["", "{", "NaN", "[" * 5_000, '{"status": "failed", "id": Infinity}']),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(_hostile_line, max_size=12))
def test_feed_export_survives_any_lines_and_feeds_no_id_twice(
    tmp_path_factory: pytest.TempPathFactory, lines: list[str]
) -> None:
    fed: list[Any] = []
    path = tmp_path_factory.getbasetemp() / "fuzzed-export.jsonl"

    async def drive() -> None:
        async def task(value: Any) -> Any:
            return value

        pipeline = Pipeline([Stage("Parse", 2, [task]), Stage("Save", 1, [task])])
        path.write_text("\n".join([json.dumps(HEADER), *lines]) + "\n", encoding="utf-8")
        await pipeline.start()
        # Something already live, so the pipeline refuses a line or two itself.
        await pipeline.feed([{"id": "a", "value": 0}])
        plan = await feed_export(pipeline, path)
        await pipeline.join()
        fed.extend(item.item_id for item in plan.items)
        numbers = [item.line for item in plan.items] + [s.line for s in plan.skipped]
        assert len(numbers) == len(set(numbers)), "a line is either fed or skipped"
        assert pipeline.get_stats().items_fed == 1 + len(plan.items)

    asyncio.run(drive())
    assert len(set(fed)) == len(fed)
