"""AppOptions: what the command line sets for the app (and for a run with no screen)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from antflow_tui.live.keeping import Keeping


@dataclass(frozen=True, slots=True)
class AppOptions:
    """What the command line can set."""

    interval: float = 0.25
    paused: bool = False
    log_lines: int = 5_000
    export: Path | None = None
    exit_when_done: bool = False
    history: int = 10_000
    keymap: Mapping[str, str] = field(default_factory=dict)
    """Binding id -> key(s), overriding the defaults (see `antflow_tui.keys`)."""
    stop_grace: float = 3.0
    """Seconds a stop lets running items finish before cancelling them."""
    own_terminal: bool = False
    """The app owns a real terminal (the command line): lead descriptors 1 and 2 into the
    event log, handle SIGTERM and SIGHUP, and let the watchdog end a blocked app."""
    watchdog_late: float | None = None
    """Seconds the event loop must not answer to count as blocked (None: the default)."""
    record: Path | None = None
    """Record the live run to this file (``--record``)."""
    record_values: bool = False
    """Record the items' values too, as reprs (``--record-values``)."""
    keeping: Keeping | None = None
    """Keep the run in the run history, and what it resumes (None: neither; the command
    line keeps every run unless ``--no-history``)."""
    budget_usd: float | None = None
    """The run's budget in US dollars (``--budget-usd``): it pauses before going over."""
    budget_tokens: int | None = None
    """The run's budget in tokens (``--budget-tokens``)."""
