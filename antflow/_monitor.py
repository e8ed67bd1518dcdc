"""Drive a DashboardProtocol: on_start, on_update every interval (and once at the end),
on_finish. A dashboard that raises is logged and never stops the pipeline."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import Counter
from typing import TYPE_CHECKING, Any, Final

from antflow._guard import must_propagate

if TYPE_CHECKING:
    from antflow.pipeline import Pipeline
    from antflow.types import DashboardProtocol, ErrorSummary, PipelineResult

logger = logging.getLogger("antflow.dashboard")

_LOGGED_FAILURES: Final = 3
_STOP_GRACE: Final = 1.0


class Monitor:
    """Polls a pipeline's snapshot into one dashboard while the pipeline runs."""

    def __init__(self, display: DashboardProtocol, interval: float) -> None:
        if not interval > 0:
            raise ValueError(f"dashboard update interval must be > 0 seconds, got {interval!r}")
        self.display = display
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._failures: Counter[str] = Counter()
        self.started = False

    async def start(self, pipeline: Pipeline, total_items: int) -> None:
        self.started = True
        await self._call("on_start", pipeline, total_items)
        self._task = asyncio.get_running_loop().create_task(
            self._poll(pipeline), name="antflow-dashboard"
        )

    async def stop(
        self, pipeline: Pipeline, results: list[PipelineResult], summary: ErrorSummary
    ) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # Bounded: a dashboard that swallows the cancel must not hold up the stop.
            await asyncio.wait([task], timeout=_STOP_GRACE)
        # The last frame, so even a run shorter than the interval is seen once.
        await self._call("on_update", pipeline.get_dashboard_snapshot())
        await self._call("on_finish", results, summary)

    def runs_in(self, task: asyncio.Task[Any]) -> bool:
        """True if `task` is this monitor's polling task."""
        return task is self._task

    async def _poll(self, pipeline: Pipeline) -> None:
        while True:
            await self._call("on_update", pipeline.get_dashboard_snapshot())
            await asyncio.sleep(self.interval)

    async def _call(self, method: str, *args: Any) -> None:
        try:
            result = getattr(self.display, method)(*args)
            if inspect.isawaitable(result):
                await result
        except BaseException as error:
            # A dashboard never stops the pipeline, whatever it raises (CancelledError
            # and GeneratorExit included), unless the caller is really being cancelled.
            if must_propagate(error):
                raise
            self._failures[method] += 1
            if self._failures[method] <= _LOGGED_FAILURES:
                logger.exception(
                    "dashboard %s.%s raised; the pipeline carries on",
                    type(self.display).__name__,
                    method,
                )
