"""Build the app around a `GatedRun` and drive it to known moments."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from antflow_tui.live import live_app
from antflow_tui.live.runner import PipelineJob
from antflow_tui.live.source import LiveSource
from antflow_tui.options import AppOptions

if TYPE_CHECKING:
    from collections.abc import Callable

    from antflow.types import PipelineStats
    from antflow_tui.app import AntflowApp
    from antflow_tui.demo import GatedRun
    from antflow_tui.hosting.host import ScriptHost

ITEMS = [{"id": f"page-{n}", "value": n} for n in range(8)]


def gated_app(run: GatedRun, *, title: str = "demo.py", **options: Any) -> AntflowApp:
    """The app over `run`'s pipeline, on the run's fake clock."""
    job = PipelineJob(title, run.pipeline, run.items, len(run.items))
    # No grace on stops: the gated tasks never finish by themselves.
    settings = {"interval": 0.05, "stop_grace": 0.0, **options}
    return live_app(job, AppOptions(**settings), clock=run.clock)


async def until(condition: Callable[[], bool], steps: int = 5_000) -> None:
    """Yield to the loop until `condition()` holds (a bounded number of times)."""
    for _ in range(steps):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the app never reached the expected state")


def live(app: AntflowApp) -> LiveSource:
    """The app's live source (the tests look into the engine through it)."""
    assert isinstance(app.source, LiveSource)
    return app.source


def stats(app: AntflowApp) -> PipelineStats:
    """The newest pipeline's counts, read from the engine now."""
    current = live(app).current
    assert current is not None
    return current.pipeline.get_stats()


def busy(app: AntflowApp, worker: str) -> bool:
    current = live(app).current
    return current is not None and current.pipeline.get_worker_states()[worker].status == "busy"


def settled_counts(app: AntflowApp) -> tuple[int, int, int]:
    if live(app).current is None:
        return (0, 0, 0)
    counts = stats(app)
    return counts.items_processed, counts.items_failed, counts.items_in_flight


async def mid_run(app: AntflowApp, run: GatedRun) -> None:
    """Drive `run` to the moment the mid-run snapshots show.

    page-0 is through every stage; page-1 waits in Save; page-2 failed in Fetch (twice);
    page-3 is parsing; page-4, page-5 and page-6 are fetching; page-7 is queued.
    """
    await until(lambda: live(app).current is not None and busy(app, "Fetch-W2"))
    run.fail("Fetch", 2, "HTTP 500 from https://example.test/page-2 [red]boom[/red]")
    run.release("Fetch", 0, 1, 2, 3)
    await until(lambda: stats(app).items_failed == 1)
    run.release("Parse", 0, 1)
    run.release("Save", 0)
    await until(lambda: settled_counts(app)[0] == 1 and busy(app, "Save-W0"))
    await until(lambda: busy(app, "Parse-W0") or busy(app, "Parse-W1"))
    await until(lambda: all(busy(app, f"Fetch-W{n}") for n in range(3)))
    app.redraw()


async def finish(app: AntflowApp, run: GatedRun, failing: dict[str, Any] | None = None) -> None:
    """Let every item through (those in `failing` fail at that stage) and wait for the end."""
    await until(lambda: app.source.current is not None)
    for stage, value in (failing or {}).items():
        run.fail(stage, value, f"{stage} refused item {value}")
    for stage in ("Fetch", "Parse", "Save"):
        run.release(stage, *range(len(run.items)))
    # The end is recorded by the job task's done-callback, a loop turn after it finishes.
    await until(lambda: app.source.ended_at is not None)
    app.redraw()


def text_of(widget: Any, width: int = 160) -> str:
    """What a Static-like widget shows, as plain text (its content rendered by Rich)."""
    import io

    from rich.console import Console

    if hasattr(widget, "text"):
        return str(widget.text)
    content = widget.content
    if isinstance(content, str):
        return content
    out = io.StringIO()
    Console(width=width, file=out, force_terminal=False, color_system=None).print(content)
    return out.getvalue()


def toasts(app: Any) -> list[str]:
    """The notices the app has shown (still on screen), oldest first."""
    return [notification.message for notification in app._notifications]


def hosted(app: AntflowApp) -> ScriptHost:
    """The host of the app's script (a live app's)."""
    assert app.host is not None
    return app.host
