"""Unit tests of antflow_tui.keys: binding ids and --keymap parsing."""

from __future__ import annotations

import pytest

from antflow_tui.attach.source import AttachSource
from antflow_tui.keymap import KeymapError, parse_keymap
from antflow_tui.keys import default_keys
from antflow_tui.live.source import LiveSource
from antflow_tui.source.replay import ReplaySource


def test_default_keys_cover_the_documented_actions() -> None:
    keys = default_keys()
    for binding_id in ("quit", "pause", "freeze", "filter", "retry", "retry-all", "help"):
        assert binding_id in keys
    assert "p" in keys["pause"].split(",")


def test_parse_pairs() -> None:
    assert parse_keymap("pause=space,retry=t", LiveSource.CAN) == {"pause": "space", "retry": "t"}


def test_parse_tolerates_spaces_and_empty_pairs() -> None:
    assert parse_keymap(" pause = space , ,retry=t, ", LiveSource.CAN) == {
        "pause": "space",
        "retry": "t",
    }


def test_parse_nothing() -> None:
    assert parse_keymap("", LiveSource.CAN) == {}


def test_several_keys_for_one_id_are_joined_with_a_bar() -> None:
    assert parse_keymap("pause=space|p|f5", LiveSource.CAN) == {"pause": "space,p,f5"}
    assert parse_keymap("pause=space | p", LiveSource.CAN) == {"pause": "space,p"}


def test_the_last_pair_for_an_id_wins() -> None:
    assert parse_keymap("pause=x,pause=y", LiveSource.CAN) == {"pause": "y"}


@pytest.mark.parametrize("pair", ["pause", "=space", "pause=", "pause:space"])
def test_a_bad_pair_is_named(pair: str) -> None:
    with pytest.raises(KeymapError, match="is not ID=KEY") as raised:
        parse_keymap(f"retry=t,{pair}", LiveSource.CAN)
    assert repr(pair) in str(raised.value)


def test_an_unknown_id_lists_the_known_ids() -> None:
    with pytest.raises(KeymapError, match="no binding has the id 'pasue'") as raised:
        parse_keymap("pasue=space", LiveSource.CAN)
    message = str(raised.value)
    listed = message.split("ids: ", 1)[1].split(", ")
    assert listed == sorted(default_keys())
    assert "pause" in listed


def test_keymap_error_is_a_value_error() -> None:
    assert issubclass(KeymapError, ValueError)


# Issue 17.7: --keymap pause=q took quit's key without a word.
def test_a_key_another_binding_has_is_refused_naming_both() -> None:
    with pytest.raises(KeymapError) as raised:
        parse_keymap("pause=q", LiveSource.CAN)
    message = str(raised.value)
    assert "'pause' and 'quit' would both be 'q' on the main screen" in message
    assert "pause=q,quit=" in message  # how to have it anyway


def test_a_key_is_free_once_its_binding_is_remapped_too() -> None:
    assert parse_keymap("pause=q,quit=x", LiveSource.CAN) == {"pause": "q", "quit": "x"}


def test_two_ids_given_one_key_are_refused() -> None:
    with pytest.raises(KeymapError, match="'pause' and 'retry' would both be 'x'"):
        parse_keymap("pause=x,retry=x", LiveSource.CAN)


def test_a_panels_own_key_is_refused_for_a_screen_binding() -> None:
    # j moves the focused panel's cursor: pause=j would never pause.
    with pytest.raises(KeymapError, match=r"'pause' and 'Down' .* would both be 'j'"):
        parse_keymap("pause=j", LiveSource.CAN)


def test_keys_of_different_screens_may_be_the_same() -> None:
    # s switches pipelines on the main screen only.
    assert parse_keymap("item.value=s", LiveSource.CAN) == {"item.value": "s"}


def test_keys_the_run_cannot_use_do_not_clash() -> None:
    # A live run has no scrubber (space plays a replay); a replay has no pause.
    assert parse_keymap("pause=space", LiveSource.CAN) == {"pause": "space"}
    assert parse_keymap("replay.play=p", ReplaySource.CAN) == {"replay.play": "p"}
    with pytest.raises(KeymapError, match=r"'replay\.play' and 'freeze' would both be 'z'"):
        parse_keymap("replay.play=z", ReplaySource.CAN)


def test_the_attach_apps_own_key_can_be_remapped() -> None:
    assert parse_keymap("stop-job=ctrl+x", AttachSource.CAN) == {"stop-job": "ctrl+x"}
    with pytest.raises(KeymapError, match="'stop-job' and 'pause' would both be 'p'"):
        parse_keymap("stop-job=p", AttachSource.CAN)
