"""The main screen's banner: the one line that says why the run is not simply running
(stopping, paused, frozen, the script crashed, the loop held, the connection dropped)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from antflow_tui.budgets import budget_banner

if TYPE_CHECKING:
    from collections.abc import Callable

    from antflow_tui.source.base import RunStatus
    from antflow_tui.view import MainView

Banner = tuple[str, str]
"""(text, variant): the variant is the banner's class (``-paused``); ('', '') hides it."""


def frozen_banner(key: Callable[[str], str]) -> Banner:
    """While the display is frozen (`key`: the key bound to a binding id, now)."""
    return f"Display frozen: the run goes on ({key('freeze')} to unfreeze)", "frozen"


def run_banner(
    view: MainView,
    status: RunStatus | None,
    *,
    can_pause: bool,
    key: Callable[[str], str],
    stalled: str = "",
    can_raise: bool = False,
) -> Banner:
    """The banner for this frame.

    Args:
        can_pause: The source can pause (else a pause is as recorded).
        can_raise: The source can raise the run's budget (else a pause by its budget is
            as recorded, or for a viewer with the control token to lift).
        key: The key bound to a binding id, now.
        stalled: What the watchdog says of the loop lately held ('' when it was not).
    """
    if status is not None and status.notice:
        return status.notice, "paused"
    if view.state == "stopping":
        return f"Stopping: letting running items finish… ({key('stop')} again to force)", (
            "stopping"
        )
    if view.spend is not None:
        raise_key = key("raise-budget") if can_raise else None
        by_budget = budget_banner(view.spend.budgets, raise_key=raise_key)
        if by_budget:
            return by_budget, "paused"
    paused = view.held
    if paused and (view.state == "pausing" or view.settling):
        return f"Pausing {paused}… running items finish first", "paused"
    if paused == "the whole run":
        if not can_pause:
            return "Paused: the whole run (as recorded)", "paused"
        return f"Paused: the whole run ({key('pause')} to resume)", "paused"
    if paused:
        if not can_pause:
            return f"Paused: {paused} (as recorded)", "paused"
        return f"Paused: {paused} ({key('pause-selected')} on it to resume)", "paused"
    if status is not None and status.crashed:
        return "The script raised an exception; see the event log", "failed"
    if stalled:
        return stalled, "failed"
    return "", ""
