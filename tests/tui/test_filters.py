"""Unit tests of antflow_tui.filters: what the user types after `/` and what it matches."""

from __future__ import annotations

import pytest

from antflow_tui.filters import QUALIFIERS, Facts, Filter, FilterError, parse_filter

ROW = Facts(
    text="42 Fetch failed Fetch-W1 TimeoutError read timed out",
    status="failed",
    stage="Fetch",
    item="42",
    error="TimeoutError read timed out",
    worker="Fetch-W1",
)


# ---------------------------------------------------------------------- parse_filter


def test_parse_free_words_lowercased() -> None:
    parsed = parse_filter("  Timeout  Fetch ")
    assert parsed.words == ("timeout", "fetch")
    assert parsed.fields == ()
    assert parsed.source == "Timeout  Fetch"
    assert not parsed.empty


@pytest.mark.parametrize("name", [name for name in QUALIFIERS if name != "level"])
def test_parse_each_qualifier(name: str) -> None:
    parsed = parse_filter(f"{name}:Value")
    assert parsed.fields == ((name, "Value"),)
    assert parsed.words == ()


def test_parse_mixes_words_and_qualifiers_in_order() -> None:
    parsed = parse_filter("slow status:failed stage:Fetch item:42 error:Timeout")
    assert parsed.words == ("slow",)
    assert parsed.fields == (
        ("status", "failed"),
        ("stage", "Fetch"),
        ("item", "42"),
        ("error", "Timeout"),
    )


def test_parse_quoted_values_and_words() -> None:
    parsed = parse_filter("error:\"read timed out\" 'two words' stage:'Save to DB'")
    assert parsed.fields == (("error", "read timed out"), ("stage", "Save to DB"))
    assert parsed.words == ("two words",)


def test_parse_a_value_containing_a_colon() -> None:
    assert parse_filter("item:http://x/1").fields == (("item", "http://x/1"),)


def test_parse_words_that_only_look_like_qualifiers() -> None:
    # Not a lower-case identifier before the colon: plain text to search for.
    assert parse_filter("12:30 Error:").words == ("12:30", "error:")


def test_parse_empty_filter() -> None:
    for source in ("", "   "):
        parsed = parse_filter(source)
        assert parsed.empty
        assert parsed == Filter(source="")


@pytest.mark.parametrize("source", ["colour:red", "http://example.com/page-2"])
def test_words_with_a_colon_that_name_no_qualifier_are_plain_words(source: str) -> None:
    """A URL (common in a scrape) or an unknown name: searched for as text, not refused."""
    parsed = parse_filter(source)
    assert parsed.fields == ()
    assert parsed.words == (source.lower(),)
    assert parsed.matches(Facts(text=f"fetch failed for {source}"))
    assert set(QUALIFIERS) >= {"status", "stage", "item", "error"}


@pytest.mark.parametrize("name", ["status", "item"])
def test_parse_qualifier_without_value(name: str) -> None:
    with pytest.raises(FilterError, match=f"{name}: needs a value"):
        parse_filter(f"slow {name}:")


@pytest.mark.parametrize("source", ['error:"unclosed', "'half", 'a "b'])
def test_parse_unbalanced_quotes(source: str) -> None:
    with pytest.raises(FilterError, match="cannot read the filter"):
        parse_filter(source)


def test_filter_error_is_a_value_error() -> None:
    assert issubclass(FilterError, ValueError)


# ---------------------------------------------------------------------- matches


@pytest.mark.parametrize(
    "source",
    [
        "",
        "timeout",
        "TIMEOUT fetch-w1",
        "timed out",
        "status:failed",
        "status:FAIL",
        "stage:fetch",
        "stage:etc",
        "item:42",
        "error:timeouterror",
        "error:read",
        "worker:w1",
        "read status:failed stage:Fetch item:42 error:Timeout worker:Fetch-W1",
        '"read timed"',
    ],
)
def test_matches(source: str) -> None:
    assert parse_filter(source).matches(ROW)


@pytest.mark.parametrize(
    "source",
    [
        "connection",
        "timeout connection",  # every word must match
        "status:completed",
        "status:failed stage:Parse",  # every qualifier must match
        "stage:Parse",
        "item:4",  # item is exact, not a part
        "item:420",
        "error:KeyError",
        "worker:W2",
        '"timed read"',
    ],
)
def test_does_not_match(source: str) -> None:
    assert not parse_filter(source).matches(ROW)


def test_item_is_exact_and_case_sensitive() -> None:
    facts = Facts(text="Page-7", item="Page-7")
    assert parse_filter("item:Page-7").matches(facts)
    assert not parse_filter("item:page-7").matches(facts)
    assert not parse_filter("item:Page").matches(facts)


def test_qualifier_against_an_empty_field_does_not_match() -> None:
    facts = Facts(text="Fetch", stage="Fetch")
    assert not parse_filter("error:x").matches(facts)
    assert not parse_filter("worker:W0").matches(facts)


# ---------------------------------------------------------------------- level:


@pytest.mark.parametrize(
    ("typed", "level"),
    [("error", 40), ("ERROR", 40), ("err", 40), ("warning", 30), ("warn", 30), ("debug", 10)],
)
def test_level_keeps_that_level_and_worse(typed: str, level: int) -> None:
    parsed = parse_filter(f"level:{typed}")
    assert parsed.min_level == level
    assert parsed.fields == ()
    assert not parsed.empty
    assert parsed.matches(Facts(text="x", level=level))
    assert parsed.matches(Facts(text="x", level=level + 10))
    assert not parsed.matches(Facts(text="x", level=level - 10))


def test_level_goes_with_words_and_keeps_its_source_for_editing() -> None:
    parsed = parse_filter("level:warning timeout")
    assert parsed.source == "level:warning timeout"
    assert parsed.matches(Facts(text="read timeout", level=40))
    assert not parsed.matches(Facts(text="read ok", level=40))
    assert not parsed.matches(Facts(text="read timeout", level=20))


def test_an_unknown_level_says_which_exist() -> None:
    with pytest.raises(FilterError, match="debug, info, warning, error, critical"):
        parse_filter("level:loud")
