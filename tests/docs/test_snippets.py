"""Issue 23: the code in the docs runs. Every Python block of the README and of docs/ runs
here, page by page (in order, in one namespace and one event loop per page), or is marked
``<!-- fragment -->`` and only compiled: an API change that breaks an example fails here.

Each page runs in a fresh folder (with ``examples/`` linked into it, as in a checkout),
with no ``ANTFLOW_*`` variable set and a private runtime folder for served jobs.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

from antflow import use_prices
from tests.docs.snippets import FRAGMENT, PYTHON, blocks, compiled, run_page

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT: Final = Path(__file__).resolve().parent.parent.parent
PAGES: Final = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
WITH_PYTHON: Final = [
    page for page in PAGES if any(block.language in PYTHON for block in blocks(page))
]


@pytest.fixture
def page_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh working folder as a checkout's, and an environment that asks for nothing."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "examples").symlink_to(ROOT / "examples")
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    for name in list(os.environ):
        if name.startswith("ANTFLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.chdir(work)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield work
    use_prices(None)


@pytest.mark.parametrize("page", WITH_PYTHON, ids=lambda page: str(page.relative_to(ROOT)))
def test_the_page_runs(page: Path, page_folder: Path) -> None:
    page_blocks = blocks(page)
    for block in page_blocks:
        if block.language in PYTHON:
            compiled(block)  # a fragment is still Python
    namespace = {"__name__": "docs_page"}
    ran = asyncio.run(run_page(page_blocks, namespace))
    assert ran == sum(block.runs for block in page_blocks)


def test_some_page_runs_its_code() -> None:
    """The collector finds blocks (a broken parser would pass every page vacuously)."""
    runnable = [block for page in PAGES for block in blocks(page) if block.runs]
    assert len(runnable) >= 40


def test_fragment_marks_stand_before_python_blocks() -> None:
    """A stray mark (before prose, a shell block) is a mistake: say where."""
    misplaced = []
    for page in PAGES:
        lines = page.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            if not FRAGMENT.match(line):
                continue
            after = next((text.strip() for text in lines[number + 1 :] if text.strip()), "")
            if not after.startswith(("```python", "```py")):
                misplaced.append(f"{page.relative_to(ROOT)}:{number + 1}")
    assert misplaced == []
