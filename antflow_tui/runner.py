"""Jobs: run the script's pipeline (or its main()) on the app's event loop.

Either way the pipeline starts inside `antflow.observe(...)`, so the bridge attaches to
it the same way, and the script's built-in dashboards stay quiet while the app owns the
screen.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from antflow import observe

if TYPE_CHECKING:
    from collections.abc import Callable

    from antflow import Pipeline


@dataclass(slots=True)
class PipelineJob:
    """Feed `items` into `pipeline` and wait for them."""

    title: str
    pipeline: Pipeline
    items: Any
    known_total: int | None

    async def run(self) -> None:
        await self.pipeline.start()
        if isinstance(self.items, AsyncIterable):
            await self.pipeline.feed_async(self.items)
        else:
            await self.pipeline.feed(self.items)
        await self.pipeline.join()


@dataclass(slots=True)
class MainJob:
    """Run the script's own ``async def main()``."""

    title: str
    main: Callable[[], Any]
    known_total: int | None = None

    async def run(self) -> None:
        await self.main()


Job = PipelineJob | MainJob


def start_job(job: Job, on_pipeline_start: Callable[[Pipeline], None]) -> asyncio.Task[None]:
    """Run the job in a task that tells `on_pipeline_start` of every pipeline it starts."""
    with observe(on_pipeline_start, suppress_displays=True):
        # The task copies the context now, observer included, and keeps it.
        return asyncio.get_running_loop().create_task(job.run(), name="antflow-tui job")
