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
from antflow.pending import PendingItem, pending_items
from antflow_tui.accounting import PipelineTally
from antflow_tui.inputs import FedInputs
from antflow_tui.records import RunFailure
from antflow_tui.stacks import AwaitStack, await_stack
from antflow_tui.story import ItemStory, attempt_error_views

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from antflow import Pipeline
    from antflow.tail import EventTail
    from antflow.types import (
        DashboardSnapshot,
        ErrorSummary,
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
    number: int
    """1 for the first pipeline the run started, 2 for the next..."""
    inputs: FedInputs
    snapshot: DashboardSnapshot | None = None
    stop_mark: int | None = None
    """Items already unfinished when the app stopped this pipeline: the script's own
    shutdown left those (None: the app never stopped it)."""
    pending: dict[Any, PendingItem] | None = None
    """What the pipeline held when the app stopped it: where each unfinished item was."""
    shared_tail: bool = False
    """Its tracker (and so its tail) also serves another pipeline of the run."""

    @property
    def name(self) -> str:
        return f"pipeline-{self.number}"

    def abandoned(self, unfinished: int) -> int:
        """Of `unfinished` (the pipeline's count now), those the script's own shutdown
        left (see `stop_mark`)."""
        return unfinished if self.stop_mark is None else min(self.stop_mark, unfinished)


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
        clock: Unix time for the lines the script prints (the app's clock).
    """

    def __init__(
        self,
        *,
        history: int = 10_000,
        log_lines: int = 5_000,
        interval: float = 0.25,
        start_paused: bool = False,
        stop_grace: float = STOP_GRACE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        self.history = history
        self.log_lines = log_lines
        self.interval = interval
        self.paused = start_paused
        self.stop_grace = stop_grace
        self.attached: list[_Attached] = []
        self.dirty = True
        self.started_at = clock()
        self.ended_at: float | None = None
        self.ends = 0
        """How many times the run has ended (a retry after the end starts it again)."""
        self.stopping = False
        self.stop_requested = False
        self._rejoins: set[asyncio.Task[None]] = set()
        self.notes: deque[tuple[float, str, bool]] = deque(maxlen=log_lines)
        """Lines the script printed or logged: (time, text, is_error)."""
        self._failure_cache: tuple[tuple[int, ...], list[RunFailure]] = ((), [])
        self._failure_counts: dict[str, int] = {}
        self._bounded: set[int] = set()

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
        else:
            self._bound_history(tracker)
        shared = next((a for a in self.attached if a.tracker is tracker), None)
        capacity = min(self.log_lines, FRAME_EVENTS)
        tail = shared.tail if shared is not None else tracker.open_tail(capacity)
        attached = _Attached(
            pipeline=pipeline,
            tracker=tracker,
            tail=tail,
            number=len(self.attached) + 1,
            inputs=FedInputs(pipeline),
        )
        if shared is not None:
            shared.shared_tail = attached.shared_tail = True
        self.attached.append(attached)
        pipeline.add_monitor(_Adapter(self, attached), self.interval)
        if self.paused:
            pipeline.pause()
        self.dirty = True

    def _bound_history(self, tracker: StatusTracker) -> None:
        """--history holds for a tracker the script made itself, unless it keeps less."""
        kept = tracker.max_history_items
        if kept is not None and kept <= self.history:
            return
        tracker.max_history_items = self.history
        if id(tracker) not in self._bounded:
            self._bounded.add(id(tracker))
            was = "all" if kept is None else f"{kept:,}"
            self.note(
                f"--history: the script's StatusTracker keeps the newest {self.history:,} "
                f"completed items' histories here (it kept {was}); failed and in-flight "
                "items are always kept."
            )

    def pipeline(self, number: int | None) -> _Attached | None:
        """The attached pipeline numbered `number` (None: the current one)."""
        if number is None:
            return self.current
        return self.attached[number - 1] if 0 < number <= len(self.attached) else None

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

    def drain_events(self) -> tuple[list[tuple[StatusEvent | TaskEvent, int | None]], int, int]:
        """New events of every attached tracker (each tail once), each with the number of
        its pipeline (None when a tracker serves several); how many events were dropped;
        and how many were recorded in all (for an events-per-second rate)."""
        events: list[tuple[StatusEvent | TaskEvent, int | None]] = []
        dropped = received = 0
        seen: set[int] = set()
        for attached in self.attached:
            if id(attached.tail) in seen:
                continue
            seen.add(id(attached.tail))
            batch = attached.tail.drain()
            number = None if attached.shared_tail else attached.number
            events.extend((event, number) for event in batch.events)
            dropped += batch.dropped
            received += batch.received
        return events, dropped, received

    def drain_notes(self) -> list[tuple[float, str, bool]]:
        # One line at a time: threads (descriptors 1 and 2) append meanwhile, and a
        # copy-then-clear would lose what arrived between the two.
        notes = self.notes
        drained = []
        while notes:
            drained.append(notes.popleft())
        return drained

    def note(self, text: str, *, error: bool = False) -> None:
        """A line the script printed or logged (from any thread)."""
        self.notes.append((self.clock(), text, error))
        self.dirty = True

    def failures(self) -> Sequence[RunFailure]:
        """Failed items of every pipeline of the run, oldest first, each with its pipeline.

        Re-read only when some tracker's failures changed, so a frame costs nothing when
        nothing failed.
        """
        trackers = list({id(a.tracker): a.tracker for a in self.attached}.values())
        version = (len(self.attached),)
        for tracker in trackers:
            version += (id(tracker), tracker.failure_changes)
        cached_version, cached = self._failure_cache
        if version != cached_version:
            cached = []
            for tracker in trackers:
                sharing = [a for a in self.attached if a.tracker is tracker]
                failed_in = {a.number: set(a.pipeline.failed_item_ids()) for a in sharing}
                for failure in tracker.get_failed_items():
                    # A tracker several pipelines share: the newest that failed the item.
                    owner = next(
                        (
                            a
                            for a in reversed(sharing)
                            if len(sharing) == 1 or failure.item_id in failed_in[a.number]
                        ),
                        sharing[-1],
                    )
                    cached.append(RunFailure(failure, owner.number))
            for attached in self.attached:
                attached.inputs.pin(f.item_id for f in cached if f.pipeline == attached.number)
            self._failure_cache = (version, cached)
            self._failure_counts = dict(Counter(f.error_type for f in cached))
        return cached

    def errors_by_type(self) -> dict[str, int]:
        """Failures of every pipeline of the run, by error type (as `failures()` lists)."""
        self.failures()
        return self._failure_counts

    def owner(self, item_id: Any) -> _Attached | None:
        """The newest pipeline that knows the item (or the current one)."""
        for attached in reversed(self.attached):
            if attached.tracker.has_history(item_id) or attached.pipeline.locate(item_id):
                return attached
        return self.current

    def pipelines_knowing(self, item_id: Any) -> list[int]:
        """The numbers of the pipelines that know the item."""
        return [
            a.number
            for a in self.attached
            if a.tracker.has_history(item_id) or a.pipeline.locate(item_id)
        ]

    def story(self, item_id: Any, pipeline: int | None = None) -> ItemStory:
        """The item's whole history, errors, and where it is now, in pipeline number
        `pipeline` (None: the newest pipeline that knows it)."""
        owner = self.owner(item_id) if pipeline is None else self.pipeline(pipeline)
        if owner is None:
            return ItemStory(item_id, False, False, None, None, [], [], None, False)
        tracker = owner.tracker
        status = tracker.get_status(item_id)
        location = owner.pipeline.locate(item_id)
        known = tracker.has_history(item_id)
        timeline = tracker.get_timeline(item_id)
        unfinished = abandoned = False
        if location is None:
            left = owner.pipeline.get_unfinished_items()
            position = next((n for n, left_id in enumerate(left) if left_id == item_id), None)
            unfinished = position is not None
            abandoned = position is not None and position < owner.abandoned(len(left))
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
            unfinished=unfinished and not abandoned,
            abandoned=abandoned,
            pipeline=owner.number,
            pipelines=len(self.attached),
            also_in=tuple(n for n in self.pipelines_knowing(item_id) if n != owner.number)
            if len(self.attached) > 1
            else (),
        )

    def resolve_item_id(self, text: str) -> Any:
        """The item id a typed text most likely means: an int if the run knows it as one."""
        candidates: list[Any] = [text]
        with contextlib.suppress(ValueError):
            candidates.insert(0, int(text))
        for candidate in candidates:
            if self.pipelines_knowing(candidate):
                return candidate
        return candidates[0]

    def worker_stack(self, worker: str) -> AwaitStack | None:
        holder = self._holder(None, worker)
        if holder is None:
            return None
        task = holder.pipeline.get_worker_tasks().get(worker)
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

    async def retry(self, items: Iterable[tuple[Any, int | None]]) -> int:
        """Feed failed items back where they failed; a pipeline that had finished is
        started again for them.

        Args:
            items: (item id, pipeline number) pairs; each item is retried in that
                pipeline only (a None number: the newest pipeline that failed it).

        Returns:
            How many items were retried.
        """
        if self.stop_requested:
            return 0
        by_pipeline: dict[int, list[Any]] = {}
        for item_id, number in items:
            if number is None:
                failed_in = [
                    a.number for a in self.attached if item_id in a.pipeline.failed_item_ids()
                ]
                if not failed_in:
                    continue
                number = failed_in[-1]
            by_pipeline.setdefault(number, []).append(item_id)
        count = 0
        for attached in self.attached:
            pipeline = attached.pipeline
            failed = set(pipeline.failed_item_ids())
            wanted = [i for i in by_pipeline.get(attached.number, ()) if i in failed]
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

    def mark_ended(self) -> None:
        """The run is over (again, after a retry): note when, and count it."""
        self.ended_at = self.clock()
        self.ends += 1
        self.dirty = True

    @staticmethod
    def mark_stop(attached: _Attached) -> None:
        """Before the app stops a pipeline: note what the script had left unfinished itself,
        and where everything in flight is (the shutdown keeps only their ids)."""
        if attached.stop_mark is None:
            attached.stop_mark = attached.pipeline.get_stats().items_unfinished
        if attached.pipeline.is_running:
            held = {p.item_id: p for p in pending_items(attached.pipeline)}
            attached.pending = {**(attached.pending or {}), **held}

    def tallies(self, snapshot: DashboardSnapshot | None = None) -> list[PipelineTally]:
        """Every pipeline's counts for `accounting.run_counts` (`snapshot`: the current
        pipeline's, if the caller just took it)."""
        tallies = []
        current = self.current
        for attached in self.attached:
            if attached is current and snapshot is not None:
                stats, total = snapshot.pipeline_stats, snapshot.total_items
            else:
                stats = attached.pipeline.get_stats()
                total = None if attached.snapshot is None else attached.snapshot.total_items
            tallies.append(
                PipelineTally(
                    stats,
                    attached.abandoned(stats.items_unfinished),
                    total,
                    running=attached.pipeline.is_running,
                    stopped_by_app=attached.stop_mark is not None,
                )
            )
        return tallies

    async def _rejoin(self, pipeline: Pipeline) -> None:
        try:
            await pipeline.join()
        except PipelineError:
            return
        if not self.running():
            self.mark_ended()

    async def stop(self, *, force: bool = False) -> None:
        """Shut every running pipeline down: gracefully (running items get a short grace
        period), or at once with `force`. What did not finish is listed as unfinished."""
        self.stop_requested = True
        self.stopping = True
        self.dirty = True
        for attached in self.attached:
            self.mark_stop(attached)
        running = [a.pipeline for a in self.attached if a.pipeline.is_running]
        await asyncio.gather(
            *(pipeline.shutdown(graceful=not force, grace=self.stop_grace) for pipeline in running),
            return_exceptions=True,
        )
        self.stopping = False
        self.dirty = True
