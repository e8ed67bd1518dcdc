"""Jobs: run the script's pipeline (or its main()) on the app's event loop.

Either way the pipeline starts inside `antflow.observe(...)`, so the live source attaches to
it the same way, and the script's built-in dashboards stay quiet while the app owns the
screen.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from antflow import FeedStoppedError, observe
from antflow.refeed import check_stages, feed_export
from antflow_tui.export import NotFed

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from antflow import Pipeline
    from antflow.refeed import RefeedPlan


@dataclass(slots=True)
class PipelineJob:
    """Feed `items` into `pipeline` and wait for them (or, with `refeed`, feed the items
    of an earlier export back where they were instead)."""

    title: str
    pipeline: Pipeline
    items: Any
    known_total: int | None
    refeed: RefeedPlan | None = None
    """From ``--retry-from``: what to feed instead of `items` (once fed: what was fed,
    what was not and why, what a stop left)."""
    _fed_before: int | None = field(default=None, init=False)
    _refed: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if self.refeed is not None:
            self.refeed = check_stages(self.refeed, self.pipeline)
            self.known_total = len(self.refeed.items)

    async def run(self) -> None:
        await self.pipeline.start()
        self._fed_before = self._taken()
        # As Pipeline.run(): a shutdown (the app's stop, or the script's own from inside)
        # ends the feeding; join() then waits for the stop to finish.
        with contextlib.suppress(FeedStoppedError):
            if self.refeed is not None:
                self.refeed = await feed_export(self.pipeline, self.refeed)
                self._refed = True
            elif isinstance(self.items, AsyncIterable):
                await self.pipeline.feed_async(self.items)
            else:
                await self.pipeline.feed(self.items)
        await self.pipeline.join()

    def _taken(self) -> int:
        """Items taken from `items` so far: fed, or (a resumed run, issue 20) counted
        done earlier without being fed, each in its place in the feed order."""
        stats = self.pipeline.get_stats()
        return stats.items_fed + stats.items_done_earlier

    def not_fed(self) -> Iterator[NotFed]:
        """The items the job did not get to feed (the run was stopped first), when it can
        tell: its items are a sequence, or come from an export."""
        before = self._fed_before or 0
        fed = self._taken() - before if self._fed_before is not None else 0
        if self.refeed is not None:
            # Once fed, the plan says what a stop left; before (or cut short), the items
            # past those fed.
            left = self.refeed.not_fed if self._refed else self.refeed.items[fed:]
            for item in left:
                as_fed = {"id": item.item_id, "value": item.value}
                yield NotFed(item.item_id, item.stage, item.value, as_fed)
            return
        if not isinstance(self.items, Sequence) or isinstance(self.items, str | bytes):
            return
        for position in range(fed, len(self.items)):
            item = self.items[position]
            if isinstance(item, dict) and "id" in item:
                yield NotFed(item["id"], None, item.get("value", item), item)
            else:
                yield NotFed(before + position, None, item, item)


@dataclass(slots=True)
class MainJob:
    """Run the script's own ``async def main()``."""

    title: str
    main: Callable[[], Any]
    known_total: int | None = None
    exit_code: int | str | None = None
    """What the script passed to ``sys.exit()``, once it has (None: it has not)."""
    exited: bool = False
    """The script called ``sys.exit()``."""

    async def run(self) -> None:
        try:
            await self.main()
        except SystemExit as exit_:
            # Raised through the event loop, it would end the app, not just the script.
            self.exited = True
            code = exit_.code
            self.exit_code = 0 if code is None else code if isinstance(code, int | str) else 1

    def not_fed(self) -> Iterator[NotFed]:
        return iter(())


Job = PipelineJob | MainJob


def start_job(job: Job, on_pipeline_start: Callable[[Pipeline], None]) -> asyncio.Task[None]:
    """Run the job in a task that tells `on_pipeline_start` of every pipeline it starts."""
    with observe(on_pipeline_start, suppress_displays=True):
        # The task copies the context now, observer included, and keeps it.
        return asyncio.get_running_loop().create_task(job.run(), name="antflow-tui job")
