"""Shared fixtures for the app's tests: SVG snapshots kept in the top-level snapshots/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytest_textual_snapshot
from pytest_textual_snapshot import SVGImageExtension

SNAPSHOTS = Path(__file__).resolve().parents[2] / "snapshots"


class TopLevelSVG(SVGImageExtension):
    """pytest-textual-snapshot's SVG files, stored in snapshots/<test module>/."""

    @classmethod
    def dirname(cls, *, test_location: Any) -> str:
        return str(SNAPSHOTS / test_location.basename)


class _SnapshotsAtTopLevel:
    """Hands the plugin our extension whichever one it asks for."""

    def __init__(self, snapshot: Any) -> None:
        self._snapshot = snapshot

    def use_extension(self, _extension: Any) -> Any:
        return self._snapshot.use_extension(TopLevelSVG)


@pytest.fixture
def snap_compare(snapshot: Any, request: pytest.FixtureRequest) -> Any:
    """The plugin's snap_compare, storing snapshots under snapshots/ instead of the tests."""
    compare = pytest_textual_snapshot.snap_compare._get_wrapped_function()
    return compare(_SnapshotsAtTopLevel(snapshot), request)
