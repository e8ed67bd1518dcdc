"""Attaching to a run served by another process (``antflow-tui attach``), and watching
one in a browser (``antflow-tui web``).

The only UI package, with the live one, that imports the engine beyond its records: the
client of the attach protocol (`antflow.runstream.client`) and the discovery of served
runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from antflow_tui.attach.app import AttachApp
from antflow_tui.attach.source import AttachSource
from antflow_tui.attach.target import Target, TargetError, parse_target

if TYPE_CHECKING:
    from pathlib import Path

    from antflow_tui.app import AppOptions


def attach_app(
    target: Target,
    options: AppOptions | None = None,
    *,
    record: Path | None = None,
    retry_every: float = 1.0,
) -> AttachApp:
    """The app attached to `target` (the command line's and the tests' factory); connect
    its source (`AttachApp.attached`) before running it to fail early."""
    from antflow_tui.app import AppOptions

    options = options or AppOptions()
    source = AttachSource(target, interval=options.interval, record=record, retry_every=retry_every)
    return AttachApp(source, source, options)


__all__ = ["AttachApp", "AttachSource", "Target", "TargetError", "attach_app", "parse_target"]
