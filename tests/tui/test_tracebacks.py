"""Unit tests of antflow_tui.tracebacks: frames read from traceback text, the user's own
marked, library frames folded, hostile text shown literally."""

from __future__ import annotations

import textwrap

from antflow_tui.tracebacks import (
    Fold,
    Frame,
    folded,
    is_library,
    last_own_frame,
    package_of,
    parse,
    traceback_text,
)

VENV = "/home/ana/project/.venv/lib/python3.11/site-packages"
STDLIB = "/usr/lib/python3.11"


def _frame(path: str, line: int, function: str, source: str) -> str:
    return f'  File "{path}", line {line}, in {function}\n    {source}\n'


# A ReadTimeout as httpx raises it (shortened: 12 library frames, then the user's, then 9).
READ_TIMEOUT = (
    "Traceback (most recent call last):\n"
    + "".join(
        _frame(f"{VENV}/httpcore/_async/http11.py", 100 + n, "handle_async_request", "raise exc")
        for n in range(9)
    )
    + _frame(f"{VENV}/anyio/_backends/_asyncio.py", 1200, "receive", "await self._protocol")
    + _frame(f"{STDLIB}/contextlib.py", 158, "__exit__", "self.gen.throw(value)")
    + _frame(f"{VENV}/httpcore/_exceptions.py", 14, "map_exceptions", "raise to_exc(exc)")
    + "httpcore.ReadTimeout\n"
    "\n"
    "The above exception was the direct cause of the following exception:\n"
    "\n"
    "Traceback (most recent call last):\n"
    + _frame("/home/ana/project/scrape.py", 64, "fetch", "response = await client().get(url)")
    + "               ^^^^^^^^^^^^^^^^^^^^^^^\n"
    + "".join(_frame(f"{VENV}/httpx/_client.py", 1700 + n, "send", "return x") for n in range(8))
    + _frame(f"{STDLIB}/contextlib.py", 158, "__exit__", "self.gen.throw(value)")
    + "httpx.ReadTimeout\n"
)


def frames(pieces: list[object]) -> list[Frame]:
    return [piece for piece in pieces if isinstance(piece, Frame)]


# Issue 17.10: tracebacks were one grey colour, ~40 lines of httpcore and anyio before
# scrape.py", line 64.
def test_frames_are_read_with_their_source_lines() -> None:
    pieces = parse(READ_TIMEOUT)
    read = frames(pieces)
    assert len(read) == 22
    own = [frame for frame in read if frame.own]
    assert [(frame.path, frame.line, frame.function) for frame in own] == [
        ("/home/ana/project/scrape.py", 64, "fetch")
    ]
    assert own[0].lines[1].strip() == "response = await client().get(url)"
    assert own[0].lines[2].strip().startswith("^^^")
    assert "httpx.ReadTimeout" in pieces


def test_library_runs_fold_and_name_their_packages() -> None:
    shown = folded(parse(READ_TIMEOUT))
    folds = [piece for piece in shown if isinstance(piece, Fold)]
    assert [len(fold.frames) for fold in folds] == [12, 9]
    assert folds[0].packages == ("httpcore", "anyio", "contextlib")
    assert folds[1].packages == ("httpx", "contextlib")
    assert last_own_frame(shown) == frames(parse(READ_TIMEOUT))[12]


def test_the_drawing_marks_the_users_frame_and_says_what_is_folded() -> None:
    text = traceback_text(READ_TIMEOUT, cwd="/home/ana/project", unfold_key="enter").plain
    lines = text.splitlines()
    assert '› File "scrape.py", line 64, in fetch' in lines
    assert "  … 12 frames in httpcore, anyio, contextlib (enter: all frames)" in lines
    assert "  … 9 frames in httpx, contextlib (enter: all frames)" in lines
    assert "http11.py" not in text
    assert len(lines) < len(READ_TIMEOUT.splitlines()) / 3
    unfolded = traceback_text(READ_TIMEOUT, unfolded=True).plain
    assert unfolded.count("http11.py") == 9
    assert "frames in" not in unfolded


def test_a_single_library_frame_is_shown_not_folded() -> None:
    text = (
        "Traceback (most recent call last):\n"
        + _frame("/home/ana/project/scrape.py", 65, "fetch", "response.raise_for_status()")
        + _frame(f"{VENV}/httpx/_models.py", 829, "raise_for_status", "raise HTTPStatusError")
        + "httpx.HTTPStatusError: Server error '500' for url 'http://127.0.0.1:8765/page/5'\n"
    )
    shown = folded(parse(text))
    assert not any(isinstance(piece, Fold) for piece in shown)
    assert len(frames(shown)) == 2


def test_what_is_library_code() -> None:
    assert is_library(f"{VENV}/httpx/_client.py")
    assert is_library("/usr/local/lib/python3.12/asyncio/tasks.py")
    assert is_library("/usr/lib/python3/dist-packages/yaml/__init__.py")
    assert is_library("<frozen importlib._bootstrap>")
    assert is_library("C:\\Python311\\Lib\\site-packages\\httpx\\_client.py")
    assert not is_library("/home/ana/project/scrape.py")
    assert not is_library("/srv/jobs/lib/helpers.py")


def test_package_names() -> None:
    assert package_of(f"{VENV}/httpcore/_async/http11.py") == "httpcore"
    assert package_of(f"{STDLIB}/contextlib.py") == "contextlib"
    assert package_of(f"{STDLIB}/asyncio/tasks.py") == "asyncio"
    assert package_of("<frozen runpy>") == "runpy"


def test_a_frame_written_in_the_message_is_not_a_frame() -> None:
    # The message is user data: it must not send the editor to a file it names.
    text = (
        "Traceback (most recent call last):\n"
        + _frame("/home/ana/project/scrape.py", 70, "parse", "raise ParseError(html)")
        + "scrape.ParseError: bad page\n"
        + '  File "/etc/passwd", line 1, in <module>\n'
        + "    root:x:0:0\n"
    )
    pieces = parse(text)
    assert [frame.path for frame in frames(pieces)] == ["/home/ana/project/scrape.py"]
    assert last_own_frame(folded(pieces)).line == 70  # type: ignore[union-attr]


def test_exception_groups_keep_their_frames() -> None:
    text = textwrap.dedent(
        """\
          + Exception Group Traceback (most recent call last):
          |   File "/home/ana/project/job.py", line 8, in main
          |     async with asyncio.TaskGroup() as group:
          | ExceptionGroup: unhandled errors in a TaskGroup (1 sub-exception)
          +-+---------------- 1 ----------------
            | Traceback (most recent call last):
            |   File "/home/ana/project/job.py", line 3, in work
            |     raise ValueError("x")
            | ValueError: x
            +------------------------------------
        """
    )
    read = frames(parse(text))
    assert [(frame.line, frame.function) for frame in read] == [(8, "main"), (3, "work")]
    assert all(frame.own for frame in read)


def test_hostile_text_is_shown_literally() -> None:
    text = (
        "Traceback (most recent call last):\n"
        + _frame("/home/ana/[red]x[/red]/job.py", 1, "f\x1b[2J", "raise E('[bold]')")
        + "E: \x1b]52;c;aGk=\x07 [link=http://x]y[/link]\n"
    )
    shown = traceback_text(text)
    assert "\x1b" not in shown.plain
    assert "\x07" not in shown.plain
    assert "[red]x[/red]" in shown.plain
    assert "[link=http://x]y[/link]" in shown.plain
    assert not shown.spans or all("link" not in str(span.style) for span in shown.spans)
