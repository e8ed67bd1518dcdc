"""Built-in dashboards: a plain progress bar and three Rich panels, plus `BaseDashboard`.

Rich loads only when a Rich dashboard is first used, so ``progress=True`` stays Rich-free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from antflow.display.base import BaseDashboard
from antflow.display.progress import ProgressDisplay

if TYPE_CHECKING:
    from antflow.display.rich_dashboards import (
        CompactDashboard,
        DetailedDashboard,
        FullDashboard,
    )
    from antflow.types import DashboardProtocol

BuiltinDisplay = Literal["progress", "compact", "detailed", "full"]

_RICH_DASHBOARDS = ("CompactDashboard", "DetailedDashboard", "FullDashboard")


def __getattr__(name: str) -> Any:
    if name in _RICH_DASHBOARDS:
        from antflow.display import rich_dashboards

        return getattr(rich_dashboards, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_builtin_display(kind: BuiltinDisplay) -> DashboardProtocol:
    """A new built-in display, as ``run(progress=True)`` and ``run(dashboard=kind)`` use.

    Args:
        kind: ``progress`` (plain text on stderr), or the ``compact``, ``detailed`` or
            ``full`` Rich dashboard (on stdout).

    Returns:
        The display, ready for `Pipeline.run(custom_dashboard=...)` or `add_monitor`.

    Raises:
        ValueError: `kind` is none of those.
    """
    if kind == "progress":
        return ProgressDisplay()
    from antflow.display import rich_dashboards

    dashboards: dict[str, type[BaseDashboard]] = {
        "compact": rich_dashboards.CompactDashboard,
        "detailed": rich_dashboards.DetailedDashboard,
        "full": rich_dashboards.FullDashboard,
    }
    if kind not in dashboards:
        raise ValueError(
            f"unknown display {kind!r}; use 'progress', 'compact', 'detailed' or 'full'"
        )
    return dashboards[kind]()


__all__ = [
    "BaseDashboard",
    "BuiltinDisplay",
    "CompactDashboard",
    "DetailedDashboard",
    "FullDashboard",
    "ProgressDisplay",
    "make_builtin_display",
]
