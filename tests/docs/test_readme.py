"""Issue 23: the README is the front door: short, its links lead somewhere, its picture is
the snapshot test's, and the commands CI copies from it are still there."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from tools.mkdocs_hooks import PICTURE, PICTURE_SOURCE, PICTURES

ROOT: Final = Path(__file__).resolve().parent.parent.parent
README: Final = (ROOT / "README.md").read_text(encoding="utf-8")
_LINK: Final = re.compile(r"\]\(([^)\s]+)\)")


def test_the_readme_is_short() -> None:
    assert len(README.splitlines()) <= 150


def test_every_relative_link_of_the_readme_leads_to_a_file() -> None:
    targets = [target for target in _LINK.findall(README) if "://" not in target]
    assert len(targets) >= 30
    missing = [target for target in targets if not (ROOT / target.split("#")[0]).is_file()]
    assert missing == []


def test_the_picture_is_the_snapshot_the_site_shows() -> None:
    assert f"]({PICTURE_SOURCE})" in README
    assert (ROOT / PICTURE_SOURCE).is_file()
    assert f"]({PICTURE})" in (ROOT / "docs" / "index.md").read_text(encoding="utf-8")


def test_ci_still_finds_the_commands_under_their_markers() -> None:
    for marker, command in (
        ("<!-- ci:run -->", "python3 -m venv .venv && .venv/bin/pip install -e '.[examples]'"),
        ("<!-- ci:test -->", "python3 -m venv .venv && .venv/bin/pip install -e '.[test]'"),
    ):
        after = README.split(marker, 1)[1].lstrip("\n").splitlines()
        assert after[0] == "```sh"
        assert after[1].startswith(command)


def test_every_picture_of_the_docs_is_a_snapshot_the_site_adds() -> None:
    """Issue 23: the docs' pictures are snapshot tests' SVGs (tools/mkdocs_hooks.py)."""
    assert all((ROOT / source).is_file() for source in PICTURES.values())
    shown = {
        match.rsplit("/", 1)[1]
        for page in (ROOT / "docs").rglob("*.md")
        for match in re.findall(r"\]\(((?:\.\./)*assets/[^)]+)\)", page.read_text("utf-8"))
    }
    assert shown == {place.rsplit("/", 1)[1] for place in PICTURES}
