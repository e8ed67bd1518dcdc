"""FedInputs: what was fed into a pipeline, kept for the items an export may need it for.

The engine keeps only the value an item holds in its current stage. So that an export can
give each failed or unfinished item's original input, the app wraps the pipeline's public
`feed` and `feed_async` (which `run()` and `stream()` call too) and remembers what went in:

- a sequence (a list, a range; what `run()` and `stream()` feed) costs nothing per item:
  the sequence itself is kept, with the number its first item got, and searched only when
  an export asks;
- items from an iterator (a generator, `feed_async`) are kept one by one, the newest ones
  (enough to cover everything that can be in flight), plus, for good, those that failed.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Sequence
from itertools import islice
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from antflow import Pipeline

MIN_KEPT: Final = 10_000
"""Newest inputs from iterators kept at least, whatever the pipeline's capacity."""


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
        # Insertion ordered, oldest first; trimmed in batches (a plain dict costs a third
        # of an OrderedDict's move-and-pop per item, measured on no-op runs).
        self._recent: dict[Any, Any] = {}
        self._pinned: dict[Any, Any] = {}
        self._sequences: list[tuple[int, Sequence[Any]]] = []
        """(number of the first item, the sequence) for each sequence fed, oldest first."""
        self._wrap()

    def input_of(self, item_id: Any) -> tuple[bool, Any]:
        """(True, the item as it was fed), or (False, None) when it is not kept."""
        try:
            found = self.inputs_of([item_id])
            return (True, found[item_id]) if item_id in found else (False, None)
        except TypeError:  # an unhashable id is never kept
            return False, None

    def inputs_of(self, item_ids: Iterable[Any]) -> dict[Any, Any]:
        """The items as they were fed, by id, for those of `item_ids` that are kept (one
        pass over the sequences fed, however many ids are asked for)."""
        found: dict[Any, Any] = {}
        wanted: set[Any] = set()
        for item_id in item_ids:
            try:
                if item_id in self._pinned:
                    found[item_id] = self._pinned[item_id]
                elif item_id in self._recent:
                    found[item_id] = self._recent[item_id]
                else:
                    wanted.add(item_id)
            except TypeError:  # an unhashable id is never kept
                continue
        if wanted and self._sequences:
            self._search_sequences(wanted, found)
        return found

    def _search_sequences(self, wanted: set[Any], found: dict[Any, Any]) -> None:
        # Newest first: an id given again later belongs to the later item.
        for first, items in reversed(self._sequences):
            for item_id in [i for i in wanted if isinstance(i, int) and not isinstance(i, bool)]:
                position = item_id - first
                if 0 <= position < len(items):
                    item = items[position]
                    if not (isinstance(item, dict) and "id" in item):
                        found[item_id] = item
                        wanted.discard(item_id)
        if not wanted:
            return
        for _first, items in reversed(self._sequences):
            for item in items:
                if isinstance(item, dict) and "id" in item:
                    try:
                        if item["id"] in wanted:
                            found[item["id"]] = item
                            wanted.discard(item["id"])
                    except TypeError:
                        continue
            if not wanted:
                return

    def pin(self, item_ids: Iterable[Any]) -> None:
        """Keep these items' inputs for good (failed items: a retry may need them)."""
        for item_id in item_ids:
            try:
                if item_id in self._recent and item_id not in self._pinned:
                    self._pinned[item_id] = self._recent[item_id]
            except TypeError:
                continue

    def _trim(self) -> None:
        """Drop all but the newest `_keep` inputs."""
        recent = self._recent
        self._recent = dict(islice(recent.items(), len(recent) - self._keep, None))

    def _recording(self, items: Iterable[Any]) -> Iterator[Any]:
        # Mirrors the engine: a dict's "id" key, else the feed sequence number, read when
        # the engine starts pulling items (after its own checks).
        next_id = self._pipeline.get_stats().items_fed
        limit = 2 * self._keep
        for item in items:
            item_id = item["id"] if isinstance(item, dict) and "id" in item else next_id
            next_id += 1
            try:  # noqa: SIM105 - per item, a try costs nothing; suppress() does
                self._recent[item_id] = item
            except TypeError:  # an unhashable id: not kept
                pass
            if len(self._recent) > limit:
                self._trim()
            yield item

    async def _recording_async(self, items: AsyncIterable[Any]) -> AsyncIterator[Any]:
        next_id = self._pipeline.get_stats().items_fed
        limit = 2 * self._keep
        async for item in items:
            item_id = item["id"] if isinstance(item, dict) and "id" in item else next_id
            next_id += 1
            try:  # noqa: SIM105 - per item, a try costs nothing; suppress() does
                self._recent[item_id] = item
            except TypeError:  # an unhashable id: not kept
                pass
            if len(self._recent) > limit:
                self._trim()
            yield item

    def _wrap(self) -> None:
        pipeline = self._pipeline
        feed, feed_async = pipeline.feed, pipeline.feed_async

        @functools.wraps(feed)
        async def recording_feed(items: Any, *args: Any, **kwargs: Any) -> None:
            if isinstance(items, Sequence) and not isinstance(items, str | bytes):
                self._sequences.append((pipeline.get_stats().items_fed, items))
            elif isinstance(items, Iterable):
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
