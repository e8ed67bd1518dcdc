"""Unit tests of antflow_tui.keys: binding ids and --keymap parsing."""

from __future__ import annotations

import pytest

from antflow_tui.keys import KeymapError, default_keys, parse_keymap


def test_default_keys_cover_the_documented_actions() -> None:
    keys = default_keys()
    for binding_id in ("quit", "pause", "freeze", "filter", "retry", "retry-all", "help"):
        assert binding_id in keys
    assert "p" in keys["pause"].split(",")


def test_parse_pairs() -> None:
    assert parse_keymap("pause=space,retry=t") == {"pause": "space", "retry": "t"}


def test_parse_tolerates_spaces_and_empty_pairs() -> None:
    assert parse_keymap(" pause = space , ,retry=t, ") == {"pause": "space", "retry": "t"}


def test_parse_nothing() -> None:
    assert parse_keymap("") == {}


def test_several_keys_for_one_id_are_joined_with_a_bar() -> None:
    assert parse_keymap("pause=space|p|f5") == {"pause": "space,p,f5"}
    assert parse_keymap("pause=space | p") == {"pause": "space,p"}


def test_the_last_pair_for_an_id_wins() -> None:
    assert parse_keymap("pause=x,pause=y") == {"pause": "y"}


@pytest.mark.parametrize("pair", ["pause", "=space", "pause=", "pause:space"])
def test_a_bad_pair_is_named(pair: str) -> None:
    with pytest.raises(KeymapError, match="is not ID=KEY") as raised:
        parse_keymap(f"retry=t,{pair}")
    assert repr(pair) in str(raised.value)


def test_an_unknown_id_lists_the_known_ids() -> None:
    with pytest.raises(KeymapError, match="no binding has the id 'pasue'") as raised:
        parse_keymap("pasue=space")
    message = str(raised.value)
    listed = message.split("ids: ", 1)[1].split(", ")
    assert listed == sorted(default_keys())
    assert "pause" in listed


def test_keymap_error_is_a_value_error() -> None:
    assert issubclass(KeymapError, ValueError)
