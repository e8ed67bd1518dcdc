"""EngineBridge: the app's one door to the live engine.

It attaches to every pipeline that starts (through `antflow.observe`), drives a
DashboardProtocol adapter that stores the latest snapshot, and opens a bounded tail on the
pipeline's tracker. Screens read plain data from it (snapshots, events, failures, item
stories, await stacks) and send controls through it (pause, resume, retry, stop), which
it passes to the engine's public methods. It never touches a widget.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from antflow import StatusTracker
from antflow.exceptions import PipelineError
from antflow_tui.stacks import AwaitStack, await_stack
from antflow_tui.story import ItemStory, attempt_error_views

if TYPE_CHECKING:
    from collections.abc import Sequence

    from antflow import Pipeline
    from antflow.tail import EventTail
    from antflow.types import (
        DashboardSnapshot,
        ErrorSummary,
        FailedItem,
        PipelineResult,
        StatusEvent,
        TaskEvent,
    )


STOP_GRACE_SECONDS: Final = 3.0
"""How long a quit lets running items finish before cancelling them."""
FRAME_EVENTS: Final = 120
"""Most events one frame takes into the log. A person reads far fewer; past this the
log shows how many it skipped, and building events for all of them would cost the run."""


@dataclass(slots=True)
class _Attached:
    """One pipeline the app is watching."""

    pipeline: Pipeline
    tracker: StatusTracker
    tail: EventTail
    snapshot: DashboardSnapshot | None = None


class _Adapter:
    """The DashboardProtocol side: store the latest snapshot, mark the bridge dirty."""

    def __init__(self, bridge: EngineBridge, attached: _Attached) -> None:
        self._bridge = bridge
        self._attached = attached

    def on_start(self, pipeline: Pipeline, total_items: int) -> None:
        self._bridge.dirty = True

    def on_update(self, snapshot: DashboardSnapshot) -> None:
        self._attached.snapshot = snapshot
        self._bridge.dirty = True

    def on_finish(self, results: list[PipelineResult], summary: ErrorSummary) -> None:
        self._bridge.dirty = True


class EngineBridge:
    """Collects what the engine reports and forwards what the user asks for.

    Args:
        history: Completed items whose histories a tracker the app creates keeps.
        log_lines: Capacity of the event tail (the event log keeps as many lines).
        interval: Seconds between snapshots.
        start_paused: Pause every pipeline as it starts.
        stop_grace: Seconds a stop lets running items finish before cancelling them.
    """

    def __init__(
        self,
        *,
        history: int = 10_000,
        log_lines: int = 5_000,
        interval: float = 0.25,
        start_paused: bool = False,
        stop_grace: float = STOP_GRACE_SECONDS,
    ) -> None:
        self.history = history
        self.log_lines = log_lines
        self.interval = interval
        self.paused = start_paused
        self.stop_grace = stop_grace
        self.attached: list[_Attached] = []
        self.dirty = True
        self.started_at = time.time()
        self.ended_at: float | None = None
        self.stopping = False
        self.stop_requested = False
        self._rejoins: set[asyncio.Task[None]] = set()
        self.notes: deque[tuple[float, str, bool]] = deque(maxlen=log_lines)
        """Lines the script printed or logged: (time, text, is_error)."""
        self._failure_cache: tuple[tuple[tuple[int, int], ...], list[FailedItem]] = ((), [])
        self._failure_counts: dict[str, int] = {}

    # ---------------------------------------------------------------- attaching

    def attach(self, pipeline: Pipeline) -> None:
        """Observer callback: called by `Pipeline.start()` for each pipeline."""
        for attached in self.attached:
            if attached.pipeline is pipeline:
                if self.paused:
                    pipeline.pause()
                return
        tracker = pipeline.status_tracker
        if tracker is None:
            tracker = StatusTracker(max_history_items=self.history)
            pipeline.status_tracker = tracker
        shared = next((a for a in self.attached if a.tracker is tracker), None)
        capacity = min(self.log_lines, FRAME_EVENTS)
        tail = shared.tail if shared is not None else tracker.open_tail(capacity)
        attached = _Attached(pipeline=pipeline, tracker=tracker, tail=tail)
        self.attached.append(attached)
        pipeline.add_monitor(_Adapter(self, attached), self.interval)
        if self.paused:
            pipeline.pause()
        self.dirty = True

    @property
    def current(self) -> _Attached | None:
        """The pipeline the screens show: the newest one."""
        return self.attached[-1] if self.attached else None

    # ---------------------------------------------------------------- plain data out

    def snapshot(self) -> DashboardSnapshot | None:
        current = self.current
        if current is None:
            return None
        # Between monitor polls, a fresh snapshot keeps the display in step with the tick.
        if current.pipeline.is_running:
            current.snapshot = current.pipeline.get_dashboard_snapshot()
        return current.snapshot

    def drain_events(self) -> tuple[list[StatusEvent | TaskEvent], int, int]:
        """New events of every attached tracker (each tail once): the events, how many were
        dropped, and how many were recorded in all (for an events-per-second rate)."""
        events: list[StatusEvent | TaskEvent] = []
        dropped = received = 0
        seen: set[int] = set()
        for attached in self.attached:
            if id(attached.tail) in seen:
                continue
            seen.add(id(attached.tail))
            batch = attached.tail.drain()
            events.extend(batch.events)
            dropped += batch.dropped
            received += batch.received
        return events, dropped, received

    def drain_notes(self) -> list[tuple[float, str, bool]]:
        notes = list(self.notes)
        self.notes.clear()
        return notes

    def note(self, text: str, *, error: bool = False) -> None:
        """A line the script printed or logged."""
        self.notes.append((time.time(), text, error))
        self.dirty = True

    def failures(self) -> Sequence[FailedItem]:
        """Failed items of every pipeline of the run, oldest first.

        Re-read only when some tracker's failures changed, so a frame costs nothing when
        nothing failed.
        """
        trackers = list({id(a.tracker): a.tracker for a in self.attached}.values())
        version = tuple((id(tracker), tracker.failure_changes) for tracker in trackers)
        cached_version, cached = self._failure_cache
        if version != cached_version:
            cached = [failure for tracker in trackers for failure in tracker.get_failed_items()]
            self._failure_cache = (version, cached)
            self._failure_counts = dict(Counter(f.error_type for f in cached))
        return cached

    def errors_by_type(self) -> dict[str, int]:
        """Failures of every pipeline of the run, by error type (as `failures()` lists)."""
        self.failures()
        return self._failure_counts

    def _owner(self, item_id: Any) -> _Attached | None:
        """The newest pipeline that knows the item (or the current one)."""
        for attached in reversed(self.attached):
            if attached.tracker.has_history(item_id) or attached.pipeline.locate(item_id):
                return attached
        return self.current

    def story(self, item_id: Any) -> ItemStory:
        """The item's whole history, errors, and where it is now."""
        owner = self._owner(item_id)
        if owner is None:
            return ItemStory(item_id, False, False, None, None, [], [], None, False)
        tracker = owner.tracker
        status = tracker.get_status(item_id)
        location = owner.pipeline.locate(item_id)
        known = tracker.has_history(item_id)
        timeline = tracker.get_timeline(item_id)
        evicted: bool | None = False
        if not known and tracker.evicted_items:
            fed = owner.pipeline.get_stats().items_fed
            # Items without an "id" key are numbered in feed order, so those are certain.
            sequential = isinstance(item_id, int) and not isinstance(item_id, bool)
            evicted = True if sequential and 0 <= item_id < fed else None
        return ItemStory(
            item_id=item_id,
            known=known,
            evicted=evicted,
            status=None if status is None else status.status,
            stage=None if status is None else status.stage,
            timeline=timeline,
            errors=attempt_error_views(
                timeline, [(e.exception, e.traceback) for e in tracker.get_errors(item_id)]
            ),
            location=location,
            retryable=location is not None and location.state == "failed",
            unfinished=location is None and item_id in owner.pipeline.get_unfinished_items(),
        )

    def resolve_item_id(self, text: str) -> Any:
        """The item id a typed text most likely means: an int if the run knows it as one."""
        current = self.current
        candidates: list[Any] = [text]
        with contextlib.suppress(ValueError):
            candidates.insert(0, int(text))
        if current is not None:
            for candidate in candidates:
                if current.tracker.has_history(candidate) or current.pipeline.locate(candidate):
                    return candidate
        return candidates[0]

    def worker_stack(self, worker: str) -> AwaitStack | None:
        current = self.current
        if current is None:
            return None
        task = current.pipeline.get_worker_tasks().get(worker)
        return None if task is None else await_stack(task)

    def running(self) -> bool:
        return any(a.pipeline.is_running for a in self.attached)

    # ---------------------------------------------------------------- controls in

    def _holder(self, stage: str | None, worker: str | None) -> _Attached | None:
        """The newest pipeline that has this stage or worker (the current one if neither)."""
        for attached in reversed(self.attached):
            names = attached.pipeline.get_worker_names()
            if (stage is not None and stage in names) or (
                worker is not None and any(worker in members for members in names.values())
            ):
                return attached
        return self.current if stage is None and worker is None else None

    def set_paused(
        self, paused: bool, *, stage: str | None = None, worker: str | None = None
    ) -> None:
        """Pause or resume the run (every pipeline), one stage, or one worker."""
        if stage is None and worker is None:
            self.paused = paused
            for attached in self.attached:
                # Resume even a finished pipeline: a retry restarts it, and must not start
                # it held by an old pause.
                (attached.pipeline.pause if paused else attached.pipeline.resume)()
        else:
            holder = self._holder(stage, worker)
            if holder is not None:
                change = holder.pipeline.pause if paused else holder.pipeline.resume
                change(stage=stage, worker=worker)
        self.dirty = True

    def is_paused(self, *, stage: str | None = None, worker: str | None = None) -> bool:
        if stage is None and worker is None:
            return self.paused
        holder = self._holder(stage, worker)
        return holder is not None and holder.pipeline.is_paused(stage=stage, worker=worker)

    async def retry(self, item_ids: Sequence[Any]) -> int:
        """Feed failed items back where they failed, in whichever pipeline failed them; a
        pipeline that had finished is started again for them.

        Returns:
            How many items were retried.
        """
        if self.stop_requested:
            return 0
        count = 0
        for attached in self.attached:
            pipeline = attached.pipeline
            failed = set(pipeline.failed_item_ids())
            wanted = [item_id for item_id in item_ids if item_id in failed]
            if not wanted:
                continue
            restart = not pipeline.is_running
            if restart:
                await pipeline.start()
            try:
                for item_id in wanted:
                    pipeline.retry(item_id)
                    count += 1
            except PipelineError:
                continue  # the pipeline was finishing this very moment; try again after
            if restart:
                self.ended_at = None
                rejoin = asyncio.get_running_loop().create_task(self._rejoin(pipeline))
                self._rejoins.add(rejoin)
                rejoin.add_done_callback(self._rejoins.discard)
        self.dirty = True
        return count

    async def _rejoin(self, pipeline: Pipeline) -> None:
        try:
            await pipeline.join()
        except PipelineError:
            return
        if not self.running():
            self.ended_at = time.time()
            self.dirty = True

    async def stop(self, *, force: bool = False) -> None:
        """Shut every running pipeline down: gracefully (running items get a short grace
        period), or at once with `force`. What did not finish is listed as unfinished."""
        self.stop_requested = True
        self.stopping = True
        self.dirty = True
        running = [a.pipeline for a in self.attached if a.pipeline.is_running]
        await asyncio.gather(
            *(pipeline.shutdown(graceful=not force, grace=self.stop_grace) for pipeline in running),
            return_exceptions=True,
        )
        self.stopping = False
        self.dirty = True
