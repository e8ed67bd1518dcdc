"""Error groups: normalising messages, grouping failures, sorting them (pure, no app)."""

from __future__ import annotations

from itertools import count

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from textual.app import App, ComposeResult

from antflow.runstream.records import ErrorRecord, ItemKey
from antflow_tui import error_groups
from antflow_tui.error_groups import (
    GroupKeys,
    failure_sort_key,
    group_cells,
    group_failures,
    group_key,
    group_sort_key,
    in_group,
    normalise_message,
    type_counts,
)
from antflow_tui.widgets import error_panel as error_panel_module
from antflow_tui.widgets.error_panel import REGROUP_EVERY, REGROUP_LARGE, ErrorPanel
from tests.tui.apps import until

_numbers = count(1)


def failure(
    message: str,
    *,
    kind: str = "scrape.ParseError",
    stage: str = "Parse",
    item: ItemKey = None,
    at: float = 0.0,
    pipeline: int = 1,
    attempt: int = 1,
) -> ErrorRecord:
    number = next(_numbers)
    return ErrorRecord(
        number=number,
        pipeline=pipeline,
        at=at,
        item=number if item is None else item,
        stage=stage,
        task="parse",
        attempt=attempt,
        type=kind,
        message=message,
        traceback="",
    )


# ---------------------------------------------------------------------- normalising


@pytest.mark.parametrize(
    ("message", "normalised"),
    [
        ("HTTP 500 from https://example.test/page-2", "HTTP <n> from <url>"),
        ("timeout after 3.1s on http://127.0.0.1:8080/page/12", "timeout after <n>s on <url>"),
        ("object at 0x7f3a2b4c is gone", "object at <hex> is gone"),
        ("blob deadbeef12 not found", "blob <hex> not found"),
        ("job 123e4567-e89b-12d3-a456-426614174000 lost", "job <id> lost"),
        ("prompt of 930 words exceeds 900", "prompt of <n> words exceeds <n>"),
        ("doc-014 failed", "doc-<n> failed"),
        ("1,000,000 rows", "<n> rows"),
        ("Unexpected <div> at line 12\n  more detail 7", "Unexpected <div> at line <n>"),
        ("\n\n  spaced    out  \n", "spaced out"),
        ("", ""),
        ("deadline exceeded", "deadline exceeded"),  # words of hex letters stay words
    ],
)
def test_normalise_masks_what_varies(message: str, normalised: str) -> None:
    assert normalise_message(message) == normalised


def test_normalise_shows_control_characters_literally() -> None:
    masked = normalise_message("bad \x1b[2J byte 7")
    assert "\x1b" not in masked
    assert masked.endswith("byte <n>")


@given(st.integers(0, 10**12), st.integers(0, 10**12))
def test_messages_that_differ_only_in_numbers_normalise_alike(a: int, b: int) -> None:
    assert normalise_message(f"row {a} of batch {a * 7}: bad value") == normalise_message(
        f"row {b} of batch {b * 3}: bad value"
    )


@given(
    st.text(alphabet="abcdefghij/-_", min_size=1, max_size=20),
    st.text(alphabet="abcdefghij/-_", min_size=1, max_size=20),
)
def test_messages_that_differ_only_in_urls_normalise_alike(first: str, second: str) -> None:
    one = normalise_message(f"GET https://site.test/{first} failed")
    other = normalise_message(f"GET http://other.test:81/{second} failed")
    assert one == other == "GET <url> failed"


@given(st.text(st.characters(blacklist_categories=("Cc", "Cf", "Cs")), max_size=200))
def test_normalising_twice_changes_nothing(message: str) -> None:
    """(Control characters are shown as escapes, \\x1b, whose digits a second pass would
    mask: printable text only.)"""
    once = normalise_message(message)
    assert normalise_message(once) == once
    assert "\n" not in once


# ---------------------------------------------------------------------- grouping


def test_failures_group_by_type_and_normalised_message_biggest_first() -> None:
    failures = [
        failure("malformed page 1", at=10.0, stage="Parse"),
        failure("HTTP 500", kind="httpx.HTTPStatusError", at=11.0, stage="Fetch"),
        failure("malformed page 2", at=12.0, stage="Parse"),
        failure("malformed page 3", at=13.0, stage="Save"),
        failure("malformed page 4", kind="ValueError", at=14.0, stage="Parse"),
    ]
    groups = group_failures(failures)
    assert [(g.type, g.pattern, g.count) for g in groups] == [
        ("scrape.ParseError", "malformed page <n>", 3),
        ("ValueError", "malformed page <n>", 1),
        ("httpx.HTTPStatusError", "HTTP <n>", 1),
    ]
    biggest = groups[0]
    assert (biggest.first_seen, biggest.last_seen) == (10.0, 13.0)
    assert biggest.stages == ("Parse", "Save")
    assert biggest.items == tuple((1, f.item) for f in (failures[0], failures[2], failures[3]))
    assert biggest.example == "malformed page 3"
    assert in_group(failures, biggest.key) == [failures[0], failures[2], failures[3]]
    assert type_counts(failures) == {
        "scrape.ParseError": 3,
        "httpx.HTTPStatusError": 1,
        "ValueError": 1,
    }


def test_items_keep_their_pipeline() -> None:
    failures = [failure("x 1", pipeline=1, item="a"), failure("x 2", pipeline=2, item="a")]
    (group,) = group_failures(failures)
    assert group.items == ((1, "a"), (2, "a"))


@given(
    st.lists(
        st.tuples(st.sampled_from(["A", "B", "C"]), st.integers(0, 99), st.floats(0, 100)),
        max_size=60,
    )
)
def test_every_failure_is_in_exactly_one_group(rows: list[tuple[str, int, float]]) -> None:
    failures = [failure(f"boom {n}", kind=kind, at=at) for kind, n, at in rows]
    groups = group_failures(failures)
    assert sum(group.count for group in groups) == len(failures)
    assert len({group.key for group in groups}) == len(groups)
    for group in groups:
        members = in_group(failures, group.key)
        assert len(members) == group.count == len(group.items)
        assert all(group_key(member) == group.key for member in members)
        assert group.first_seen == min(m.at for m in members)
        assert group.last_seen == max(m.at for m in members)


def test_group_cells_show_user_text_literally() -> None:
    (group,) = group_failures([failure("[red]x[/red] 5", stage="[b]S[/b]", at=65.0)])
    cells = group_cells(group, started=0.0)
    assert [cell.plain for cell in cells] == [
        "1",
        "ParseError",
        "[red]x[/red] <n>",
        "[b]S[/b]",
        "0:01:05",
        "0:01:05",
    ]


# ---------------------------------------------------------------------- sorting


def test_failure_sort_keys_order_ids_numbers_first() -> None:
    failures = [failure("m", item=item) for item in ("b", 10, 2, "a")]
    ordered = sorted(failures, key=lambda f: failure_sort_key(f, "item"))
    assert [f.item for f in ordered] == [2, 10, "a", "b"]
    by_tries = sorted(
        [failure("m", attempt=3), failure("m", attempt=1)],
        key=lambda f: failure_sort_key(f, "tries"),
    )
    assert [f.attempt for f in by_tries] == [1, 3]


def test_group_sort_keys() -> None:
    groups = group_failures(
        [
            failure("a 1", kind="Zed", at=5.0),
            failure("b 1", kind="Alpha", at=1.0),
            failure("b 2", kind="Alpha", at=9.0),
        ]
    )
    by_error = sorted(groups, key=lambda g: group_sort_key(g, "error"))
    assert [g.type for g in by_error] == ["Alpha", "Zed"]
    by_first = sorted(groups, key=lambda g: group_sort_key(g, "first"))
    assert [g.type for g in by_first] == ["Alpha", "Zed"]
    by_last = sorted(groups, key=lambda g: group_sort_key(g, "last"))
    assert [g.type for g in by_last] == ["Zed", "Alpha"]


# ---------------------------------------------------------------------- keeping up


def test_group_keys_mask_each_failure_once(monkeypatch: pytest.MonkeyPatch) -> None:
    masked: list[str] = []
    real = error_groups.group_key

    def counting(one: ErrorRecord) -> tuple[str, str]:
        masked.append(one.message)
        return real(one)

    monkeypatch.setattr(error_groups, "group_key", counting)
    first = [failure(f"timeout on https://host/{n}") for n in range(3)]
    keys = GroupKeys()
    keys.update(first)
    later = [*first[1:], failure("timeout on https://host/9")]  # one retried, one new
    keys.update(later)
    groups = group_failures(later, keys)
    assert masked == [f.message for f in (*first, later[-1])]
    assert [(g.pattern, g.count) for g in groups] == [("timeout on <url>", 3)]


def test_a_big_groups_view_regroups_a_changing_list_once_a_second() -> None:
    now = [100.0]
    panel = ErrorPanel()
    panel.set_count = lambda rows: None  # type: ignore[method-assign]  # no screen here
    panel.clock = lambda: now[0]
    panel.toggle_groups()
    many = [failure(f"bad row {n}") for n in range(REGROUP_LARGE + 1)]
    panel.show(many)
    assert [g.count for g in panel.groups] == [REGROUP_LARGE + 1]
    more = [*many, failure("another kind of trouble")]
    panel.show(more)
    assert [g.count for g in panel.groups] == [REGROUP_LARGE + 1], "not yet: a pass is costly"
    now[0] += REGROUP_EVERY
    panel.show(more)  # the same list, a frame later
    assert sorted(g.count for g in panel.groups) == [1, REGROUP_LARGE + 1]


def test_rows_of_failures_with_unknown_numbers_are_cached_apart() -> None:
    # 0 is "number not known" (an error older than a recording's memory of numbers): two
    # such rows drawn from one cache entry showed one item's id on every row.
    panel = ErrorPanel()
    panel.set_count = lambda rows: None  # type: ignore[method-assign]  # no screen here
    unknown = [
        msgspec.structs.replace(failure(f"bad {n}", item=f"n{n}", at=float(n)), number=0)
        for n in range(3)
    ]
    panel.show(unknown)
    assert len({panel.row_key(index) for index in range(3)}) == 3


async def test_a_put_off_regrouping_happens_even_if_no_frame_comes_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # After the run's last frame nothing calls show() again: the panel must catch up alone.
    monkeypatch.setattr(error_panel_module, "REGROUP_EVERY", 0.001)

    class OnePanel(App[None]):
        def compose(self) -> ComposeResult:
            yield ErrorPanel()

    app = OnePanel()
    async with app.run_test(size=(100, 20)):
        panel = app.query_one(ErrorPanel)
        panel.clock = lambda: 5.0  # the put-off is measured from this frozen clock
        panel.toggle_groups()
        many = [failure(f"bad row {n}") for n in range(REGROUP_LARGE + 1)]
        panel.show(many)
        panel.show([*many, failure("another kind of trouble")])  # put off: too soon
        assert [g.count for g in panel.groups] == [REGROUP_LARGE + 1]
        await until(lambda: sorted(g.count for g in panel.groups) == [1, REGROUP_LARGE + 1])
