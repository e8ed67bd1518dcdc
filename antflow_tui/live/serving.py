"""``ANTFLOW_SERVE=1 antflow-tui SCRIPT``: the app serves the run it shows to viewers.

Left to the engine, ``ANTFLOW_SERVE`` would serve this process as ``antflow-tui``, with
none of what only the app knows (the total of the items it feeds, its stops). The app
takes it over instead: viewers see the script's name, its total and ETA, and a viewer's
stop is the app's own stop, named after the viewer in the summary.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

from antflow.runstream.serve import ENVIRONMENT_VARIABLE, RunServer, take_over_environment

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from antflow_tui.live.source import LiveSource


@contextlib.asynccontextmanager
async def served_if_asked(
    source: LiveSource, say: Callable[[str, bool], None]
) -> AsyncIterator[RunServer | None]:
    """Serve the run while the block runs, if ``ANTFLOW_SERVE`` asks (else yield None).

    Args:
        source: The app's run.
        say: Tells the user a line (an error when the second argument is True).
    """
    setting = take_over_environment()
    if setting is None:
        yield None
        return
    stream = source.served_stream()
    server = RunServer(stream, address=setting or None, execute=source.command_from_viewer)
    try:
        served = await server.start()
    except (OSError, ValueError) as error:
        stream.close()
        server.cleanup()
        say(
            f"{ENVIRONMENT_VARIABLE}={os.environ.get(ENVIRONMENT_VARIABLE, '')}: cannot "
            f"serve this run: {error}. The run goes on without it.",
            True,
        )
        yield None
        return
    say(
        f"Serving this run on {served.address}: watch it with antflow-tui attach {served.pid}",
        False,
    )
    try:
        yield server
    finally:
        await server.close()
        stream.close()
