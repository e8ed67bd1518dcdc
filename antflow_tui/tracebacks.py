"""Tracebacks as a person reads them: the user's own frames marked, library frames folded.

Errors reach the UI as text (a recording or a served job carries the traceback as it was
formatted), so the text is parsed: a frame is a ``File "PATH", line N, in FUNCTION`` line
and the lines indented under it; everything else (the header, chained-exception lines, the
exception and its message) is kept as it is. A frame is the user's own unless its file is
in site-packages, the standard library (this interpreter's, or any ``lib/pythonX.Y``) or
antflow itself. Runs of two or more library frames fold into one line: a ReadTimeout is
~40 lines of httpcore and anyio before ``scrape.py", line 64``.

What the text holds is user data: each line is shown literally (`clean`), and nothing in
it is run or opened unless the user asks for the editor on one of its own frames.
"""

from __future__ import annotations

import importlib.util
import re
import sysconfig
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Final

from rich.style import Style
from rich.text import Text

from antflow_tui.formatting import short_path
from antflow_tui.palette import DEFAULT, Palette
from antflow_tui.safe_text import clean

if TYPE_CHECKING:
    from collections.abc import Sequence

FRAME_LINE: Final = re.compile(
    r'^(?P<lead>[ |]*)File "(?P<path>[^"\n]*)", line (?P<line>\d+)(?:, in (?P<function>.*))?$'
)
"""A frame's first line; exception groups put ``|`` before theirs."""
_LEAD: Final = re.compile(r"[ |]*")
_STACK_LEAD: Final = re.compile(r"[ |+]*")
_HEADER: Final = re.compile(r"^[ |+]*(?:Exception Group )?Traceback \(most recent call last\):")
_STDLIB_ANYWHERE: Final = re.compile(r"/lib/python\d+(?:\.\d+)?t?/", re.IGNORECASE)
FOLD_AT_LEAST: Final = 2
"""Library frames in a row that fold (one alone takes no more room than its fold)."""
NAMES_SHOWN: Final = 3
"""Packages a fold line names."""
OWN_MARK: Final = "›"


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame of a traceback."""

    path: str
    """The file, as the traceback wrote it."""
    line: int
    function: str
    lines: tuple[str, ...]
    """Its lines: the ``File`` line, then its source and markers."""
    own: bool
    """The user's code (not a library's, the standard library's or antflow's)."""

    @property
    def package(self) -> str:
        """What the frame is part of: 'httpx', 'asyncio', 'antflow'."""
        return package_of(self.path)


@dataclass(frozen=True, slots=True)
class Fold:
    """Library frames in a row, shown as one line until unfolded."""

    frames: tuple[Frame, ...]

    @property
    def packages(self) -> tuple[str, ...]:
        """The packages of its frames, in order, each once."""
        return tuple(dict.fromkeys(frame.package for frame in self.frames))


Piece = str | Frame | Fold
"""A traceback's line (header, chained-exception words, the exception), a frame, or a
fold of frames."""


def parse(text: str) -> list[str | Frame]:
    """`text` as its lines and frames, in order.

    Frames are read between a ``Traceback (most recent call last):`` line and the
    exception's line under it (the next line as far left as that header), so a message
    that holds a ``File "…"`` line stays a message. A text with no such header (a stack
    printed some other way) has its frames read wherever they are.
    """
    pieces: list[str | Frame] = []
    lines = text.splitlines()
    headed = any(_HEADER.match(line) for line in lines)
    depth: int | None = None if headed else -1
    """How far right the open stack's header is (None: no stack is open)."""
    index = 0
    while index < len(lines):
        line = lines[index]
        found = FRAME_LINE.match(line) if depth is not None else None
        if found is None:
            if _HEADER.match(line):
                depth = len(_stack_lead(line))
            elif depth is not None and headed and len(_stack_lead(line)) <= depth and line.strip():
                depth = None  # the exception's line: the stack is over
            pieces.append(line)
            index += 1
            continue
        lead = len(found.group("lead"))
        end = index + 1
        while (
            end < len(lines)
            and len(_lead(lines[end])) > lead
            and FRAME_LINE.match(lines[end]) is None
        ):
            end += 1
        path = found.group("path")
        pieces.append(
            Frame(
                path=path,
                line=int(found.group("line")),
                function=found.group("function") or "",
                lines=tuple(lines[index:end]),
                own=not is_library(path),
            )
        )
        index = end
    return pieces


def folded(pieces: Sequence[str | Frame]) -> list[Piece]:
    """`pieces` with each run of `FOLD_AT_LEAST` library frames or more as one `Fold`."""
    result: list[Piece] = []
    run: list[Frame] = []

    def close_run() -> None:
        if len(run) >= FOLD_AT_LEAST:
            result.append(Fold(tuple(run)))
        else:
            result.extend(run)
        run.clear()

    for piece in pieces:
        if isinstance(piece, Frame) and not piece.own:
            run.append(piece)
            continue
        close_run()
        result.append(piece)
    close_run()
    return result


def last_own_frame(pieces: Sequence[Piece]) -> Frame | None:
    """The user's frame nearest the error (the last one)."""
    for piece in reversed(pieces):
        if isinstance(piece, Frame) and piece.own:
            return piece
    return None


def is_library(path: str) -> bool:
    """Whether a traceback's file is a library's (site-packages, the standard library,
    antflow itself, or no file at all: ``<frozen …>``, ``<string>``)."""
    if path.startswith("<"):
        return True
    shown = path.replace("\\", "/")
    if "/site-packages/" in shown or "/dist-packages/" in shown:
        return True
    if _STDLIB_ANYWHERE.search(shown):
        return True
    return any(shown.startswith(root) for root in _library_roots())


def package_of(path: str) -> str:
    """'…/site-packages/httpx/_client.py' -> 'httpx'; '…/lib/python3.11/contextlib.py' ->
    'contextlib'; '<frozen importlib._bootstrap>' -> 'importlib._bootstrap'."""
    if path.startswith("<"):
        return path.strip("<>").removeprefix("frozen ")
    shown = path.replace("\\", "/")
    for marker in ("/site-packages/", "/dist-packages/"):
        if marker in shown:
            return _first_part(shown.split(marker, 1)[1])
    for root, name in _named_roots():
        if shown.startswith(root):
            return name or _first_part(shown[len(root) :])
    found = _STDLIB_ANYWHERE.search(shown)
    if found is not None:
        return _first_part(shown[found.end() :])
    return Path(shown).parent.name or shown


def _first_part(relative: str) -> str:
    first = relative.split("/", 1)[0]
    return first.removesuffix(".py") or relative


@cache
def _named_roots() -> tuple[tuple[str, str], ...]:
    """Folders of library code on this machine, each with the name its frames go by ('':
    the folder's first part names it)."""
    roots: list[tuple[str, str]] = []
    spec = importlib.util.find_spec("antflow")
    if spec is not None and spec.origin:
        roots.append((str(Path(spec.origin).parent).replace("\\", "/") + "/", "antflow"))
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        folder = sysconfig.get_paths().get(key)
        if folder:
            roots.append((folder.replace("\\", "/").rstrip("/") + "/", ""))
    return tuple(roots)


def _library_roots() -> tuple[str, ...]:
    return tuple(root for root, _ in _named_roots())


# ---------------------------------------------------------------------- drawing


def traceback_text(
    text: str,
    *,
    unfolded: bool = False,
    palette: Palette = DEFAULT,
    cwd: str = "",
    unfold_key: str = "enter",
) -> Text:
    """A traceback, its own frames marked and (unless `unfolded`) library frames folded.

    Args:
        cwd: Paths under this folder are shown relative to it.
        unfold_key: The key the fold lines name.
    """
    pieces: Sequence[Piece] = parse(text) if unfolded else folded(parse(text))
    stdlib = sysconfig.get_paths().get("stdlib", "")
    shown = Text()
    for piece in pieces:
        if isinstance(piece, str):
            _line(shown, piece, _text_style(piece, palette))
        elif isinstance(piece, Fold):
            count = len(piece.frames)
            names = ", ".join(piece.packages[:NAMES_SHOWN])
            more = ", …" if len(piece.packages) > NAMES_SHOWN else ""
            indent = _lead(piece.frames[0].lines[0])
            _line(
                shown,
                f"{indent}… {count} frames in {names}{more} ({unfold_key}: all frames)",
                palette("frame-fold"),
            )
        else:
            _frame(shown, piece, palette, cwd, stdlib)
    shown.rstrip()
    return shown


def _frame(shown: Text, frame: Frame, palette: Palette, cwd: str, stdlib: str) -> None:
    first, *rest = frame.lines
    where = first.replace(f'"{frame.path}"', f'"{short_path(frame.path, cwd, stdlib)}"', 1)
    if not frame.own:
        for line in (where, *rest):
            _line(shown, line, palette("frame-library"))
        return
    indent = _lead(where)
    # The mark takes the indent's last two spaces: the frame's text stays where it was.
    kept = indent[:-2] if indent.endswith("  ") else indent
    style = palette("frame-own")
    shown.append(clean(kept), style=style)
    shown.append(f"{OWN_MARK} ", style=style)
    _line(shown, where[len(indent) :], style)
    for line in rest:
        _line(shown, line, palette("frame-own-source"))


def _lead(line: str) -> str:
    """The spaces (and exception groups' bars) a line starts with."""
    found = _LEAD.match(line)
    return found.group() if found is not None else ""


def _stack_lead(line: str) -> str:
    """What a line starts with in an exception group's drawing too (``  + ``)."""
    found = _STACK_LEAD.match(line)
    return found.group() if found is not None else ""


def _line(shown: Text, line: str, style: Style) -> None:
    shown.append(clean(line), style=style)
    shown.append("\n")


def _text_style(line: str, palette: Palette) -> Style:
    """The header and chained-exception words dim; the exception and its message (lines
    that start at the margin) as an error."""
    stripped = line.lstrip(" |+-")
    if not stripped:
        return Style()
    if line[:1] not in (" ", "|", "+") and not stripped.startswith(_WORDS):
        return palette.status("failed")
    return palette("frame-library")


_WORDS: Final = (
    "Traceback (most recent call last)",
    "During handling of the above exception",
    "The above exception was the direct cause",
)
