"""Unit tests of antflow_tui.hosting.capture: one log line per printed line, and a stdin that says
it belongs to the app."""

from __future__ import annotations

import sys

import pytest

from antflow_tui.hosting.capture import (
    MAX_LINE,
    LineWriter,
    OwnedStdin,
    StdinOwnedError,
    script_streams,
)


class Sink:
    def __init__(self) -> None:
        self.lines: list[tuple[str, bool]] = []

    def __call__(self, line: str, is_error: bool) -> None:
        self.lines.append((line, is_error))


def test_print_pieces_make_one_line() -> None:
    """Regression (issue 10): print("got", n) showed as two log lines."""
    sink = Sink()
    out = LineWriter(sink, error=False)
    print("got", 5, file=out)
    print("x", end="", file=out, flush=True)
    print("y", end="", file=out)
    assert sink.lines == [("got 5", False)]
    print(file=out)
    assert sink.lines == [("got 5", False), ("xy", False)]


def test_several_lines_in_one_write_and_errors_flagged() -> None:
    sink = Sink()
    err = LineWriter(sink, error=True)
    err.write("a\nb\n\nc")
    assert sink.lines == [("a", True), ("b", True), ("", True)]
    err.finish()
    assert sink.lines[-1] == ("c", True)
    err.finish()
    assert len(sink.lines) == 4, "nothing is handed over twice"


def test_a_line_without_an_end_is_handed_over_once_past_the_limit() -> None:
    sink = Sink()
    out = LineWriter(sink, error=False)
    out.write("x" * (MAX_LINE + 10))
    assert [len(line) for line, _ in sink.lines] == [MAX_LINE + 10]


def test_a_writer_looks_like_a_text_stream() -> None:
    out = LineWriter(Sink(), error=False, tty=True)
    assert out.isatty()
    assert out.writable()
    assert out.encoding == "utf-8"
    with pytest.raises(OSError, match="fileno"):
        out.fileno()
    assert LineWriter(Sink(), error=False, fileno=1).fileno() == 1


def test_reading_stdin_raises_and_tells_the_app() -> None:
    """Regression (issue 10): input() under the app showed a blank screen forever."""
    told: list[str] = []
    stdin = OwnedStdin(lambda: told.append("read"))
    for read in (stdin.readline, stdin.read, stdin.readlines):
        with pytest.raises(StdinOwnedError, match="stdin is owned by antflow-tui"):
            read()
    assert told == ["read"] * 3
    assert issubclass(StdinOwnedError, EOFError), "a script reading until EOF just stops"


def test_script_streams_route_print_and_input_then_give_the_streams_back() -> None:
    sink = Sink()
    refused: list[bool] = []
    before = sys.stdout, sys.stderr, sys.stdin
    with script_streams(sink, lambda: refused.append(True)) as stdout:
        print("hello", "world")
        print("oops", file=sys.stderr)
        sys.stdout.write("Continue? ")
        with pytest.raises(StdinOwnedError):
            input()
        assert stdout is sys.stdout
    assert refused == [True]
    assert (sys.stdout, sys.stderr, sys.stdin) == before
    assert ("hello world", False) in sink.lines
    assert ("oops", True) in sink.lines
    assert ("Continue? ", False) in sink.lines, "an unfinished prompt is shown at the end"


# ---------------------------------------------------------------------- logging levels


def test_logged_lines_carry_their_level_and_the_handler_gets_its_stream_back() -> None:
    """Issue 14: the event log filters and keeps lines by level."""
    import logging

    from antflow_tui.hosting.capture import logging_into

    logger = logging.getLogger("t14.levels")
    logger.propagate = False
    handler = logging.StreamHandler(sys.__stderr__)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    plain = Sink()
    levelled: list[tuple[str, str]] = []
    try:
        with logging_into(plain, lambda line, level: levelled.append((line, level))):
            logger.debug("one")
            logger.error("two\nsecond line")
            try:
                raise ValueError("boom")
            except ValueError:
                logger.exception("three")
        assert levelled[:3] == [
            ("DEBUG one", "DEBUG"),
            ("ERROR two", "ERROR"),
            ("second line", "ERROR"),
        ]
        assert levelled[3] == ("ERROR three", "ERROR")
        assert all(level == "ERROR" for _, level in levelled[3:]), "the traceback too"
        assert any("ValueError: boom" in line for line, _ in levelled)
        assert plain.lines == []
        assert handler.stream is sys.__stderr__
        assert not handler.filters
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def test_records_no_handler_takes_come_with_their_level() -> None:
    """A script that never set logging up: warnings would go to stderr (lastResort)."""
    import logging

    from antflow_tui.hosting.capture import logging_into

    logger = logging.getLogger("t14.unconfigured")
    logger.propagate = False
    before = logging.lastResort
    levelled: list[tuple[str, str]] = []
    with logging_into(Sink(), lambda line, level: levelled.append((line, level))):
        logger.warning("careful")
        logger.info("not shown: below WARNING, as under python")
        logger.critical("on fire")
    assert levelled == [("careful", "WARNING"), ("on fire", "CRITICAL")]
    assert logging.lastResort is before
    logger.propagate = True
