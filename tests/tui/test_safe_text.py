"""Unit tests of antflow_tui.safe_text: user data shown literally, on one line, cut short."""

from __future__ import annotations

import time
from io import StringIO
from typing import Any

import pytest
from rich.console import Console
from rich.text import Text

from antflow.runstream.records import ReprKey
from antflow_tui.safe_text import (
    ELLIPSIS,
    ansi_text,
    clean,
    first_line,
    item_label,
    literal,
    value_repr,
)

FIVE_MB = 5 * 1024 * 1024


def rendered(text: Text) -> str:
    out = StringIO()
    Console(file=out, force_terminal=True, color_system="truecolor", width=400).print(text)
    return out.getvalue()


# ---------------------------------------------------------------------- clean


def test_clean_keeps_plain_text() -> None:
    assert (
        clean("hello, world [red]x[/red] ünïcödé 日本") == "hello, world [red]x[/red] ünïcödé 日本"
    )


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[2J", "\\x1b[2J"),
        ("a\x00b", "a\\x00b"),
        ("bell\x07", "bell\\x07"),
        ("del\x7f", "del\\x7f"),
        ("c1\x9b", "c1\\x9b"),
        ("cr\rlf", "cr\\x0dlf"),
        ("one\ntwo", "one⏎two"),
        ("tab\there", "tab here"),
    ],
)
def test_clean_makes_control_characters_visible(raw: str, shown: str) -> None:
    assert clean(raw) == shown


@pytest.mark.parametrize("char", ["\u202e", "\u202a", "\u2066", "\u2069", "\u200e", "\u200f"])
def test_clean_neutralises_bidi_controls(char: str) -> None:
    shown = clean(f"abc{char}def")
    assert char not in shown
    assert shown == f"abc\\u{ord(char):04x}def"


def test_clean_output_is_one_printable_line() -> None:
    raw = "".join(chr(code) for code in range(0x00, 0xA0)) + "\u202e\u2066"
    shown = clean(raw)
    assert "\n" not in shown
    assert all(char.isprintable() for char in shown)


@pytest.mark.parametrize(
    ("raw", "limit", "shown"),
    [
        ("abcdef", 6, "abcdef"),
        ("abcdefg", 6, "abcde…"),
        ("abc", 1, "…"),
        ("\x1b\x1b\x1b", 6, "\\x1b\\…"),
    ],
)
def test_clean_limit_cuts_with_an_ellipsis(raw: str, limit: int, shown: str) -> None:
    assert clean(raw, limit) == shown
    assert len(clean(raw, limit)) <= limit


def test_clean_limit_never_leaves_a_raw_escape() -> None:
    for limit in range(1, 12):
        assert "\x1b" not in clean("\x1b[2J\x1b[H", limit)


def test_clean_cuts_a_multi_megabyte_string_before_scanning_it() -> None:
    # Cleaning 20 million control characters one by one takes many seconds; cutting first
    # takes microseconds.
    huge = "\x00" * 20_000_000
    started = time.perf_counter()
    shown = clean(huge, 80)
    no_limit = clean(huge)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0
    assert len(shown) == 80
    assert shown.endswith(ELLIPSIS)
    assert len(no_limit) < 20_000


def test_clean_without_a_limit_marks_the_cut() -> None:
    # A huge message shown without an explicit limit is still cut for display: the reader
    # must be able to tell that there was more.
    shown = clean("x" * FIVE_MB)
    assert len(shown) < 10_000
    assert shown.endswith(ELLIPSIS)


def test_first_line_skips_blank_lines_and_cuts() -> None:
    assert first_line("\n  \n  boom here  \nsecond", 40) == "boom here"
    assert first_line("", 40) == ""
    assert first_line("y" * 1000, 10) == "y" * 9 + ELLIPSIS
    assert first_line("\x1b[2Jclear\nnext", 40) == "\\x1b[2Jclear"


# ---------------------------------------------------------------------- item_label


@pytest.mark.parametrize(
    ("item_id", "shown"),
    [
        ("page-7", "page-7"),
        ("[red]x[/red]", "[red]x[/red]"),
        ("a\x1b[2J", "a\\x1b[2J"),
        (42, "42"),
        (-3, "-3"),
        (True, "True"),
        (False, "False"),
        (b"\xff\xfe\x00", "b'\\xff\\xfe\\x00'"),
        ((1, "a"), "(1, 'a')"),
        (None, "None"),
        (3.5, "3.5"),
        # A non-scalar id as records carry it: shown as the id's repr, not the struct's.
        (ReprKey(repr="('page', 1)"), "('page', 1)"),
        (ReprKey(repr="[red]x\x1b[2J"), "[red]x\\x1b[2J"),
    ],
)
def test_item_label(item_id: Any, shown: str) -> None:
    assert item_label(item_id) == shown


def test_item_label_cuts_long_ids() -> None:
    assert item_label("x" * 100) == "x" * 23 + ELLIPSIS
    assert item_label("x" * 100, 10) == "x" * 9 + ELLIPSIS
    assert len(item_label(tuple(range(100)))) <= 24


def test_item_label_of_a_huge_int_is_short_and_does_not_raise() -> None:
    # str() of an int past 4,300 digits raises ValueError on Python 3.11+.
    shown = item_label(10**5000)
    assert len(shown) <= 24


def test_item_label_of_non_utf8_bytes_is_printable() -> None:
    shown = item_label(bytes(range(256)), 10_000)
    assert shown.startswith("b'\\x00\\x01")
    assert all(char.isprintable() for char in shown)


# ---------------------------------------------------------------------- value_repr


def test_value_repr_of_small_values_is_the_repr() -> None:
    assert value_repr({"url": "http://x", "n": 3}) == "{'n': 3, 'url': 'http://x'}"
    assert value_repr([1, 2, 3]) == "[1, 2, 3]"


def test_value_repr_of_a_five_megabyte_string_is_short() -> None:
    value = "z" * FIVE_MB
    started = time.perf_counter()
    short = value_repr(value)
    long = value_repr(value, long=True)
    assert time.perf_counter() - started < 1.0
    assert len(short) <= 130
    assert len(long) <= 4_010
    assert len(short) < len(long)
    assert short.startswith("'zzz")
    assert "..." in short


def test_value_repr_of_a_million_ints_is_short() -> None:
    value = list(range(1_000_000))
    started = time.perf_counter()
    short = value_repr(value)
    long = value_repr(value, long=True)
    assert time.perf_counter() - started < 1.0
    assert short.startswith("[0, 1, 2")
    assert short.endswith("...]")
    assert len(short) < 100
    assert len(short) < len(long) <= 2_000


def test_value_repr_of_deep_nesting_is_short() -> None:
    value: Any = []
    for _ in range(10_000):
        value = [value]
    assert len(value_repr(value)) < 100


def test_value_repr_of_five_megabytes_of_bytes_is_short() -> None:
    assert len(value_repr(b"\xff" * FIVE_MB)) <= 130


def test_value_repr_when_repr_raises() -> None:
    class Unprintable:
        def __repr__(self) -> str:
            raise RuntimeError("no repr for you")

    shown = value_repr(Unprintable())
    assert "Unprintable" in shown
    # The fallback names the object's address, so compare the same object's labels.
    same = Unprintable()
    assert item_label(same, 200) == clean(value_repr(same), 200)


def test_value_repr_of_a_huge_custom_repr_is_short() -> None:
    class Chatty:
        def __repr__(self) -> str:
            return "c" * 1_000_000

    assert len(value_repr(Chatty())) <= 130
    assert len(value_repr(Chatty(), long=True)) <= 4_010


# ---------------------------------------------------------------------- literal


@pytest.mark.parametrize(
    "raw",
    ["[bold]x[/bold]", "[link=http://evil]click[/link]", ":smile: [red]", "a\x1b[2Jb\nc"],
)
def test_literal_is_the_cleaned_text_without_markup(raw: str) -> None:
    text = literal(raw)
    assert isinstance(text, Text)
    assert text.plain == clean(raw)
    assert text.spans == []
    assert "\x1b[2J" not in rendered(text)
    assert clean(raw) in rendered(text)


def test_literal_style_and_limit() -> None:
    text = literal("[b]" + "x" * 50, "red", 10)
    assert text.plain == "[b]xxxxxx" + ELLIPSIS
    assert str(text.style) == "red"
    assert text.spans == []
    assert text.no_wrap is True


# ---------------------------------------------------------------------- printed lines


def test_ansi_text_renders_colours_and_drops_every_other_escape() -> None:
    text = ansi_text("\x1b[1;32mok\x1b[0m [red]x[/red] \x1b[2J\x1b]0;title\x07\x1b[5Aend")
    assert text.plain == "ok [red]x[/red] end"
    assert text.spans[0].style.color is not None
    assert text.spans[0].style.bold
    assert "\x1b" not in text.plain


def test_ansi_text_keeps_what_the_last_carriage_return_drew() -> None:
    assert ansi_text("10%\r50%\r100%").plain == "100%"
    assert ansi_text("windows line\r").plain == "windows line"


def test_ansi_text_makes_other_controls_visible_and_cuts_long_lines() -> None:
    assert ansi_text("a\x07b\x00c").plain == "a\\x07b\\x00c"
    long = ansi_text("\x1b[31m" + "y" * 10_000, limit=50)
    assert long.cell_len == 50
    assert long.plain.endswith("…")
