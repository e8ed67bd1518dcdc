"""The Python blocks of a Markdown page, and running them in order in one namespace.

A page's fenced ``python`` blocks run one after another, sharing one namespace (a page
builds on its earlier blocks) inside one event loop, so a block may ``await`` at its top
level, as in ``python -m asyncio`` or a notebook. A block the page marks with
``<!-- fragment -->`` (or ``<!-- fragment: why -->``) on the line before it is only
compiled: it must still be Python, but may name things the page does not define.
"""

from __future__ import annotations

import ast
import inspect
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from pathlib import Path

PYTHON: Final = frozenset({"python", "py"})
"""Info strings of the blocks that run."""
FRAGMENT: Final = re.compile(r"^\s*<!--\s*fragment\b.*-->\s*$")
_FENCE: Final = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")


@dataclass(frozen=True, slots=True)
class Block:
    """One fenced code block."""

    path: Path
    line: int
    """The line of its first line of code (1-based)."""
    language: str
    code: str
    fragment: bool
    """Marked `<!-- fragment -->`: compiled, not run."""

    @property
    def runs(self) -> bool:
        return self.language in PYTHON and not self.fragment

    def where(self) -> str:
        return f"{self.path}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """Every fenced block of the page, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    number = 0
    while number < len(lines):
        opening = _FENCE.match(lines[number])
        if opening is None:
            number += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        language = opening["info"].split()[0].lower() if opening["info"].strip() else ""
        previous = next((text for text in reversed(lines[:number]) if text.strip()), "")
        body: list[str] = []
        number += 1
        while number < len(lines) and not _closes(lines[number], fence, indent):
            body.append(_dedent(lines[number], indent))
            number += 1
        start = number - len(body) + 1
        fragment = bool(FRAGMENT.match(previous))
        found.append(Block(path, start, language, "\n".join(body) + "\n", fragment))
        number += 1
    return found


def _dedent(line: str, indent: int) -> str:
    """A line of a block indented `indent` (in a list item), without that indent."""
    return line[indent:] if line[:indent].isspace() else line


def _closes(line: str, fence: str, indent: int) -> bool:
    stripped = line.strip()
    return (
        len(line) - len(line.lstrip(" ")) <= indent + 3
        and stripped.startswith(fence[0] * len(fence))
        and not stripped.strip(fence[0])
    )


def compiled(block: Block) -> Any:
    """The block's code object: tracebacks and syntax errors name the page and its line."""
    source = "\n" * (block.line - 1) + block.code
    return compile(
        source, str(block.path), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
    )


async def run_page(page: list[Block], namespace: dict[str, Any]) -> int:
    """Run the page's blocks that run, in order, in `namespace`; return how many ran."""
    ran = 0
    for block in page:
        if not block.runs:
            continue
        result = eval(compiled(block), namespace)
        if inspect.iscoroutine(result):
            await result
        ran += 1
    return ran
