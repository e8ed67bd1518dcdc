"""Opt-in test groups: deselected unless the -m expression names their marker; the
``vtime`` fixture (a virtual-time event loop)."""

from __future__ import annotations

import re
from typing import Final

import pytest

from tests.vtime import VirtualTime

OPT_IN: Final = ("ray", "browser")
"""Markers of tests that need an extra CI does not install (see pyproject's markers)."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A deselection rather than `addopts = -m "not ray"`: any -m a user gives would
    # replace that one and bring the opt-in tests back in.
    expression = config.getoption("markexpr") or ""
    hidden = {m for m in OPT_IN if not re.search(rf"\b{m}\b", expression)}
    if not hidden:
        return
    kept, dropped = [], []
    for item in items:
        (dropped if hidden & {mark.name for mark in item.iter_markers()} else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture
def vtime() -> VirtualTime:
    """Runs a coroutine on a fresh virtual-time event loop (see `tests.vtime`)."""
    return VirtualTime()
