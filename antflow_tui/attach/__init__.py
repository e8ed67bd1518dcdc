"""Attaching to a run served by another process (``antflow-tui attach``), and watching
one in a browser (``antflow-tui web``).

The only UI package, with the live one, that imports the engine beyond its records: the
client of the attach protocol (`antflow.runstream.client`) and the discovery of served
runs.
"""

from __future__ import annotations

from antflow_tui.attach.source import AttachSource
from antflow_tui.attach.target import Target, TargetError, parse_target

__all__ = ["AttachSource", "Target", "TargetError", "parse_target"]
