"""Drive a DashboardProtocol: on_start, on_update every interval (and once at the end),
on_finish. A dashboard that raises is logged and never stops the pipeline."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import Counter
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from antflow.pipeline import Pipeline
    from antflow.types import DashboardProtocol, ErrorSummary, PipelineResult

logger = logging.getLogger("antflow.dashboard")

_LOGGED_FAILURES: Final = 3


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
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                if asyncio.current_task().cancelling():  # type: ignore[union-attr]
                    raise
            self._task = None
        # The last frame, so even a run shorter than the interval is seen once.
        await self._call("on_update", pipeline.get_dashboard_snapshot())
        await self._call("on_finish", results, summary)

    async def _poll(self, pipeline: Pipeline) -> None:
        while True:
            await self._call("on_update", pipeline.get_dashboard_snapshot())
            await asyncio.sleep(self.interval)

    async def _call(self, method: str, *args: Any) -> None:
        try:
            result = getattr(self.display, method)(*args)
            if inspect.isawaitable(result):
                await result
        except Exception:
            self._failures[method] += 1
            if self._failures[method] <= _LOGGED_FAILURES:
                logger.exception(
                    "dashboard %s.%s raised; the pipeline carries on",
                    type(self.display).__name__,
                    method,
                )
