"""FedInputs: what was fed into a pipeline, kept for the items an export may need it for.

The engine keeps only the value an item holds in its current stage. So that an export can
give each failed or unfinished item's original input, the app wraps the pipeline's public
`feed` and `feed_async` (which `run()` and `stream()` call too) and remembers what went in,
by item id: the newest items, enough to cover everything that can be in flight (the
stages' queues and workers), plus, for good, those that failed.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from antflow import Pipeline

MIN_KEPT: Final = 10_000
"""Newest inputs kept at least, whatever the pipeline's capacity."""


class FedInputs:
    """Remembers the inputs fed into one pipeline (see the module docstring).

    Args:
        pipeline: The pipeline; its `feed` and `feed_async` are wrapped.
    """

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        capacity = sum(stage.capacity + stage.workers for stage in pipeline.stages)
        # Twice what can be in flight: an item fails, or a stop catches it, long before
        # that many items are fed after it.
        self._keep = max(MIN_KEPT, 2 * capacity)
        self._recent: OrderedDict[Any, Any] = OrderedDict()
        self._pinned: dict[Any, Any] = {}
        self._next_id = 0
        self._wrap()

    def input_of(self, item_id: Any) -> tuple[bool, Any]:
        """(True, the item as it was fed), or (False, None) when it is not kept."""
        for store in (self._pinned, self._recent):
            try:
                return True, store[item_id]
            except (KeyError, TypeError):  # TypeError: an unhashable id
                continue
        return False, None

    def pin(self, item_ids: Iterable[Any]) -> None:
        """Keep these items' inputs for good (failed items: a retry may need them)."""
        for item_id in item_ids:
            try:
                if item_id in self._recent and item_id not in self._pinned:
                    self._pinned[item_id] = self._recent[item_id]
            except TypeError:
                continue

    def _remember(self, item: Any) -> None:
        # Mirrors the engine: a dict's "id" key, else the feed sequence number.
        item_id = item["id"] if isinstance(item, dict) and "id" in item else self._next_id
        self._next_id += 1
        recent = self._recent
        try:
            recent[item_id] = item
            recent.move_to_end(item_id)
        except TypeError:
            return
        if len(recent) > self._keep:
            recent.popitem(last=False)

    def _recording(self, items: Iterable[Any]) -> Iterator[Any]:
        # Read when the engine starts pulling items, after its own checks.
        self._next_id = self._pipeline.get_stats().items_fed
        for item in items:
            self._remember(item)
            yield item

    async def _recording_async(self, items: AsyncIterable[Any]) -> AsyncIterator[Any]:
        self._next_id = self._pipeline.get_stats().items_fed
        async for item in items:
            self._remember(item)
            yield item

    def _wrap(self) -> None:
        pipeline = self._pipeline
        feed, feed_async = pipeline.feed, pipeline.feed_async

        @functools.wraps(feed)
        async def recording_feed(items: Any, *args: Any, **kwargs: Any) -> None:
            if isinstance(items, Iterable):
                items = self._recording(items)
            # Anything else goes through as it is, for the engine to refuse in its words.
            await feed(items, *args, **kwargs)

        @functools.wraps(feed_async)
        async def recording_feed_async(items: Any, *args: Any, **kwargs: Any) -> None:
            if isinstance(items, AsyncIterable):
                items = self._recording_async(items)
            await feed_async(items, *args, **kwargs)

        pipeline.feed = recording_feed  # type: ignore[method-assign]
        pipeline.feed_async = recording_feed_async  # type: ignore[method-assign]
