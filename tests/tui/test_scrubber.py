"""Unit tests of the replay's scrubber line and of the times the seek dialog reads."""

from __future__ import annotations

import pytest

from antflow_tui.screens.seek import parse_position
from antflow_tui.source.base import ReplayPosition
from antflow_tui.widgets.scrubber import scrubber_line

START = 1_700_000_000.0
KEYS = {
    "replay.play": "space",
    "replay.back": "←",
    "replay.forward": "→",
    "replay.jump-back": "[",
    "replay.jump-forward": "]",
    "replay.slower": "<",
    "replay.faster": ">",
    "replay.seek": "t",
}


def replay(*, playing: bool = False, speed: float = 1.0, complete: bool = True) -> ReplayPosition:
    return ReplayPosition(START, START + 300.0, playing, speed, complete)


def test_the_line_shows_state_speed_position_length_and_keys() -> None:
    line = scrubber_line(replay(speed=2.0), START + 83.0, 140, keys=KEYS).plain
    assert line.startswith(" ‖ held 2x  0:01:23 ")
    assert "0:05:00" in line
    assert "space play" in line
    assert "←/→ 1s" in line
    assert "[ ] 10s" in line
    assert "< > speed" in line
    assert "t seek" in line
    assert "●" in line
    playing = scrubber_line(replay(playing=True), START, 140, keys=KEYS).plain
    assert playing.startswith(" ▶ playing 1x")
    assert "space pause" in playing


def test_the_marker_moves_along_the_track_with_the_position() -> None:
    def marker(at: float) -> int:
        return scrubber_line(replay(), START + at, 100).plain.index("●")

    assert marker(0.0) < marker(150.0) < marker(300.0)


@pytest.mark.parametrize("width", [30, 60, 100, 200])
def test_the_line_fits_its_width_the_keys_going_first(width: int) -> None:
    line = scrubber_line(replay(complete=False), START + 10, width, keys=KEYS)
    assert line.cell_len <= width
    if width >= 100:
        assert "t seek" in line.plain
        assert "incomplete" in line.plain


def test_an_incomplete_recording_says_so() -> None:
    assert "incomplete" in scrubber_line(replay(complete=False), START, 120).plain
    assert "incomplete" not in scrubber_line(replay(), START, 120).plain


# Issue 18.11: a recording with lines passed over says so.
def test_a_damaged_recording_says_so() -> None:
    damaged = ReplayPosition(START, START + 300.0, False, 1.0, complete=True, damaged=True)
    assert "damaged" in scrubber_line(damaged, START, 120).plain
    assert "damaged" not in scrubber_line(replay(), START, 120).plain


@pytest.mark.parametrize(
    ("text", "seconds_in"),
    [
        ("1:23", 83.0),
        ("0:01:23", 83.0),
        ("83", 83.0),
        ("83s", 83.0),
        ("12.5", 12.5),
        ("+10", 110.0),
        ("-5", 95.0),
        ("50%", 150.0),
        ("0%", 0.0),
        ("999", 300.0),
        ("-500", 0.0),
        (" 1:00 ", 60.0),
    ],
)
def test_positions_read_as_times_into_the_recording(text: str, seconds_in: float) -> None:
    at = parse_position(text, start=START, end=START + 300.0, now=START + 100.0)
    assert at - START == pytest.approx(seconds_in)


@pytest.mark.parametrize("text", ["soon", "1:xx", "%", "+", "1:2:3:4"])
def test_what_is_not_a_time_is_refused_saying_what_is(text: str) -> None:
    with pytest.raises(ValueError, match="give 1:23"):
        parse_position(text, start=START, end=START + 300.0, now=START)
