"""Opt-in test groups: deselected unless the -m expression names their marker; the
``vtime`` fixture (a virtual-time event loop); no test's prices leak into another."""

from __future__ import annotations

import re
from typing import Final

import pytest

import antflow.prices as prices_module
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


@pytest.fixture(autouse=True)
def _own_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no prices (`antflow.use_prices` is process-wide), and an
    ``ANTFLOW_PRICES`` of the shell running the tests does not apply."""
    monkeypatch.delenv(prices_module.ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.setattr(prices_module, "_active", None)
    monkeypatch.setattr(prices_module, "_chosen", False)
    monkeypatch.setattr(prices_module, "_from_environment", None)


@pytest.fixture(autouse=True)
def _own_history(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test keeps its runs in a history of its own (``antflow-tui SCRIPT`` keeps every
    run by default, subprocesses too), never in the folder the tests run from, and the
    ``ANTFLOW_HISTORY*`` variables of the shell running the tests do not apply."""
    for name in (
        "ANTFLOW_HISTORY",
        "ANTFLOW_RESUME",
        "ANTFLOW_RESUME_ACCEPT_CHANGES",
        "ANTFLOW_HISTORY_KEEP",
        "ANTFLOW_HISTORY_MAX_BYTES",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ANTFLOW_HOME", str(tmp_path_factory.mktemp("history") / ".antflow"))
