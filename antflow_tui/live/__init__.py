"""The live run: a script's pipelines run in this process and shown as they go.

The only part of the UI that touches the engine's live objects (`Pipeline`, the
tracker, exceptions): `source.LiveSource` serves the rest of the app plain records.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from antflow_tui.app import AntflowApp, make_app
from antflow_tui.hosting.host import ScriptHost
from antflow_tui.live.budgeting import run_budget
from antflow_tui.live.source import LiveSource
from antflow_tui.options import AppOptions

if TYPE_CHECKING:
    from collections.abc import Callable

    from antflow_tui.live.runner import Job


def live_app(
    job: Job, options: AppOptions | None = None, *, clock: Callable[[], float] = time.time
) -> AntflowApp:
    """The app running `job` live, hosting its script (the command line's and the tests'
    factory), on `clock` (a test's fake one), recording it when the options ask
    (``--record``), kept in the run history when they say so (``options.keeping``)."""
    options = options or AppOptions()
    source = LiveSource(
        job,
        history=options.history,
        log_lines=options.log_lines,
        interval=options.interval,
        start_paused=options.paused,
        stop_grace=options.stop_grace,
        clock=clock,
        record=options.record,
        record_values=options.record_values,
        keeping=options.keeping,
        budget=run_budget(options),
    )
    return make_app(source, options, ScriptHost(source, options))


__all__ = ["LiveSource", "live_app"]
