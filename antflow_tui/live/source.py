"""LiveSource: the run this process starts, as a `RunSource`.

It runs the script's job (its pipeline over its items, or its `main()`) on the app's
event loop, attaches a `RunStream` to every pipeline that starts (through
`antflow.observe`), and turns the stream's records into frames. Pause, resume and stop go
to the stream as commands; a retry restarts a finished pipeline and watches it end. This
is the only UI module that touches a `Pipeline` or an exception; it never touches a
widget.

It keeps the run's status on one clock (`clock`): when the run started and ended, whether
a stop is under way, whether the script crashed; and what the app's accounting needs that
the engine cannot know: which unfinished items the script itself abandoned, and the
inputs fed (for exports and ``--retry-from``).
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final

import msgspec

from antflow.exceptions import FeedStoppedError, PipelineStopped, ResumeError
from antflow.pending import PendingItem, pending_items
from antflow.runstream.recorder import Recorder
from antflow.runstream.records import (
    ErrorRecord,
    Pause,
    RaiseBudget,
    Resume,
    Retry,
    SetConcurrency,
    Stop,
)
from antflow.runstream.stream import RunStream
from antflow_tui.accounting import RunCounts, run_counts
from antflow_tui.cost import run_usage, spend_words
from antflow_tui.live.export import export_run
from antflow_tui.live.loader import script_traceback
from antflow_tui.live.runner import MainJob, PipelineJob, start_job
from antflow_tui.outcome import RunOutcome
from antflow_tui.safe_text import item_label, value_repr
from antflow_tui.source.base import ANY_ITEM, FRAME_EVENTS, Can, Frame, RunSource, RunStatus

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from antflow import Pipeline, StatusTracker
    from antflow.budget import Budget, BudgetState
    from antflow.runstream.keeping import RunKeeper
    from antflow.runstream.records import (
        AwaitStack,
        Command,
        ItemDetail,
        ItemKey,
        Snapshot,
    )
    from antflow_tui.live.budgeting import RunBudget
    from antflow_tui.live.keeping import Keeping
    from antflow_tui.live.runner import Job
    from antflow_tui.source.state import RunState

STOP_GRACE_SECONDS: Final = 3.0
"""How long a quit lets running items finish before cancelling them."""


@dataclass(slots=True)
class Attached:
    """One pipeline the app is watching."""

    pipeline: Pipeline
    tracker: StatusTracker
    number: int
    """1 for the first pipeline the run started, 2 for the next..."""
    stopped: bool = False
    """The app stopped it (quit, ctrl+c, a signal) while it ran."""
    pending: dict[Any, PendingItem] | None = None
    """What the pipeline held when the app stopped it: where each unfinished item was."""

    @property
    def name(self) -> str:
        return f"pipeline-{self.number}"


class _LiveStream(RunStream):
    """The run stream, its snapshots completed with what only the app knows (a recorder
    of the stream writes them so too): whether the app stopped a pipeline, and the total
    of the items it feeds itself."""

    def __init__(self, decorate: Callable[[Snapshot], Snapshot], **settings: Any) -> None:
        super().__init__(**settings)
        self._decorate = decorate

    def snapshot(self, pipeline: int) -> Snapshot:
        return self._decorate(super().snapshot(pipeline))

    def snapshots(self) -> list[Snapshot]:
        return [self._decorate(snapshot) for snapshot in super().snapshots()]


class LiveSource(RunSource):
    """Runs `job` and serves it to the UI as frames of records.

    Args:
        job: What to run (see `antflow_tui.live.runner`).
        history: Completed items whose histories a tracker keeps (the app's, and a
            script's own unless it keeps fewer).
        log_lines: Most lines of the script's output held between frames.
        interval: Seconds between the engine's snapshots (they only mark frames dirty).
        start_paused: Pause every pipeline as it starts.
        stop_grace: Seconds a stop lets running items finish before cancelling them.
        clock: Unix time: the run's one clock (the engine's, in a test a fake one).
        record: Record the run to this file (``--record``), for ``antflow-tui replay``.
        record_values: Record the items' values too, as reprs (``--record-values``).
        keeping: Keep the run in the run history, and what it resumes (issue 20; None:
            keep nothing).
        warn_now: Says the history's one warning as it comes, besides the event log
            (a run with no screen: stderr); without it, the warning waits in
            `history_warning` for the end.
        budget: The run's budget (``--budget-usd``, ``--budget-tokens``), given to each
            pipeline that has none of its own as it starts.
    """

    CAN: ClassVar[frozenset[Can]] = frozenset(
        {Can.PAUSE, Can.RETRY, Can.CONCURRENCY, Can.BUDGET, Can.STOP, Can.STACKS, Can.VALUES}
    )

    def __init__(
        self,
        job: Job,
        *,
        history: int = 10_000,
        log_lines: int = 5_000,
        interval: float = 0.25,
        start_paused: bool = False,
        stop_grace: float = STOP_GRACE_SECONDS,
        clock: Callable[[], float] = time.time,
        record: Path | None = None,
        record_values: bool = False,
        keeping: Keeping | None = None,
        warn_now: Callable[[str], None] | None = None,
        budget: RunBudget | None = None,
    ) -> None:
        self.job = job
        self.budget = budget
        self.clock = clock
        self.history = history
        self.interval = interval
        self.paused = start_paused
        self.stop_grace = stop_grace
        # Values are read for item details only (see `item`), unless recorded: numbering
        # every error of a busy run with its value searches the pipeline's queues.
        self.stream = _LiveStream(
            self._decorate,
            values=record_values,
            history=history,
            event_capacity=min(log_lines, FRAME_EVENTS),
            inputs=True,
            stop_grace=stop_grace,
            argv=sys.argv,
            script=job.title,
            clock=clock,
        )
        self.recorder = None if record is None else Recorder(record, self.stream)
        self.history_warning: str | None = None
        """What the run history could not do (said once: the event log, then stderr)."""
        self.refused: str | None = None
        """Why a pipeline of the script refused the resume asked for (nothing ran)."""
        self._warn_now = warn_now
        self.keeper: RunKeeper | None = None
        """Keeps the run in the history, and applies the resume (None: neither)."""
        self.resumed: str | None = None
        """'resumed from 2026-12-05 06:41 · 2,000 done earlier', when resuming."""
        if keeping is not None:
            from antflow_tui.live.keeping import keeper_for

            self.keeper = keeper_for(self.stream, keeping, self._history_trouble)
            self.resumed = keeping.description
            if keeping.warning is not None:
                self._history_trouble(keeping.warning)
        self.attached: list[Attached] = []
        self.dirty = True
        self.started_at = clock()
        self.ended_at: float | None = None
        self.ends = 0
        """How many times the run has ended (a retry after the end starts it again)."""
        self.stopping = False
        self.stop_requested = False
        self.stopped_by: str | None = None
        """Who stopped the run from outside the app (a viewer), if anyone did."""
        self.crash: str | None = None
        """The script's traceback, if it raised."""
        self.budget_pause: str | None = None
        """Why the run was paused by its budget when the app stopped it (None: it was
        not): the items its calls waited with are unfinished, for a resume to run."""
        self.on_budget_paused: Callable[[BudgetState], None] | None = None
        """Called each time a budget of the run pauses it (headless says how to raise it)."""
        self._budgets_heard: list[Budget] = []
        self.job_task: asyncio.Task[None] | None = None
        self.on_end: Callable[[], None] | None = None
        """Called each time the run ends (the app exports, and may close)."""
        self._stopper: asyncio.Task[str] | None = None
        self._failures_read: dict[int, tuple[int, int]] = {}
        """Per pipeline, (its tracker's failure_changes, failed count) when last read."""
        self._bounded: set[int] = set()
        self._first_frame = True
        self.stream.on_ended.append(lambda _number: self.pipeline_finished())

    # ---------------------------------------------------------------- the job

    def start(self) -> None:
        """Start the job (on the running loop); the run's clock starts now."""
        self.started_at = self.clock()
        if self.resumed is not None:
            self.note(f"This run {self.resumed} (what they completed is not run again).")
        if self.recorder is not None:
            self.recorder.open()
        self.job_task = start_job(self.job, self.attach)
        self.job_task.add_done_callback(self._job_done)

    @property
    def run_active(self) -> bool:
        """The script's job still runs, or a pipeline does (retried items, for one)."""
        job_running = self.job_task is not None and not self.job_task.done()
        return job_running or self.running()

    def running(self) -> bool:
        return any(a.pipeline.is_running for a in self.attached)

    def _job_done(self, task: asyncio.Task[None]) -> None:
        error = None if task.cancelled() else task.exception()
        if isinstance(error, FeedStoppedError) and self.stop_requested:
            # The app's own stop ended the feeding: the rest is "not fed", not a crash.
            error = None
        if isinstance(error, ResumeError) and self.refused is not None:
            # A pipeline refused the resume at its start (it changed since): nothing ran
            # of it, and the message is the run's outcome, not a crash of the script.
            error = None
        if isinstance(error, PipelineStopped):
            # A stop reaches the script as an exception, as ctrl+c does: the app's own
            # (its run is accounted as stopped), or another monitor's (a viewer of a
            # server the script runs itself), which the summary names.
            if not self.stop_requested:
                self.stopped_by = self.stopped_by or error.by
            error = None
        if error is not None:
            self.crash = script_traceback(error)
            for line in self.crash.splitlines():
                self.note(line, error=True)
        ended_early = self.crash is not None or (isinstance(self.job, MainJob) and self.job.exited)
        if ended_early and self.running() and not self.stop_requested:
            # As under plain python, where the script's end ends its pipelines: what they
            # still hold is unfinished.
            how = "raised" if self.crash is not None else "called sys.exit()"
            self.note(
                f"The script {how} while a pipeline was running: stopping it; items not "
                "finished are reported as unfinished.",
                error=True,
            )
            self._start_stop(force=False)
            return
        if self.stopping:
            return  # the app's stop ends the run once the pipelines have stopped
        self._run_over()

    def _run_over(self) -> None:
        """The run is over (again, after a retry): note when, count it, tell the app."""
        self.ended_at = self.clock()
        self.ends += 1
        self.dirty = True
        self._lift_pauses()
        if self.recorder is not None:
            self.recorder.flush(snapshot=True)
        if self.on_end is not None:
            self.on_end()

    def _lift_pauses(self) -> None:
        """Pauses end with the run: a banner saying "Paused" over a finished run, and a
        retry after the end held in a stage paused long ago, told of nothing that holds."""
        lifted: list[str] = []
        if self.paused:
            self.paused = False
            lifted.append("the whole run")
        several = len(self.attached) > 1
        for attached in self.attached:
            pipeline = attached.pipeline
            where = f" of {attached.name}" if several else ""
            if pipeline.is_paused():
                pipeline.resume()
                if "the whole run" not in lifted:
                    lifted.append(attached.name)
            for stage, workers in pipeline.get_worker_names().items():
                if pipeline.is_paused(stage=stage):
                    pipeline.resume(stage=stage)
                    lifted.append(f"stage {stage}{where}")
                for worker in workers:
                    if pipeline.is_paused(worker=worker):
                        pipeline.resume(worker=worker)
                        lifted.append(f"worker {worker}{where}")
        if lifted:
            self.note(f"The run has ended: its pauses end with it ({', '.join(lifted)}).")

    # ---------------------------------------------------------------- attaching

    def attach(self, pipeline: Pipeline) -> None:
        """Observer callback: called by `Pipeline.start()` for each pipeline.

        Raises:
            ResumeError: the pipeline changed since the run this one resumes (its start
                is refused: nothing runs).
        """
        for attached in self.attached:
            if attached.pipeline is pipeline:
                if self.paused:
                    pipeline.pause()
                return
        if self.budget is not None:
            told = self.budget.apply(pipeline, f"pipeline-{len(self.attached) + 1}")
            if told is not None:
                self.note(told)
        budget = pipeline.budget
        if budget is not None and not any(budget is heard for heard in self._budgets_heard):
            self._budgets_heard.append(budget)
            budget.on_paused(self._budget_paused)
        tracker = pipeline.status_tracker
        if tracker is not None:
            self._bound_history(tracker)
        if self.keeper is not None:
            # Before any item moves: the resume's plan applies from its first feed.
            try:
                self.keeper.attach(pipeline)
            except ResumeError as refused:
                self.refused = str(refused)
                self.note(f"Cannot resume: {refused}", error=True)
                raise
        started = self.stream.attach(pipeline)
        tracker = pipeline.status_tracker
        assert tracker is not None  # the stream gave it one
        self.attached.append(
            Attached(
                pipeline=pipeline,
                tracker=tracker,
                number=started.pipeline,
            )
        )
        if self.paused:
            pipeline.pause()
        self.dirty = True

    def served_stream(self) -> RunStream:
        """Another stream of this run, for a server of its own (``ANTFLOW_SERVE=1
        antflow-tui SCRIPT``): the same pipelines, script name, totals and stops as the
        app's, with cursors of its own (the app's frames and the viewers each read every
        event). Close it after the server."""
        served = _LiveStream(
            self._decorate,
            history=self.history,
            follow_events=False,
            stop_grace=self.stop_grace,
            argv=sys.argv,
            script=self.job.title,
            clock=self.clock,
        )
        for attached in self.attached:
            served.attach(attached.pipeline)

        def follow(pipeline: Pipeline, _started: object) -> None:
            served.attach(pipeline)

        self.stream.on_attach.append(follow)
        return served

    def _bound_history(self, tracker: StatusTracker) -> None:
        """--item-history holds for a tracker the script made itself, unless it keeps less."""
        kept = tracker.max_history_items
        if kept is not None and kept <= self.history:
            return
        tracker.max_history_items = self.history
        if id(tracker) not in self._bounded:
            self._bounded.add(id(tracker))
            was = "all" if kept is None else f"{kept:,}"
            self.note(
                f"--item-history: the script's StatusTracker keeps the newest {self.history:,} "
                f"completed items' histories here (it kept {was}); failed and in-flight "
                "items are always kept."
            )

    def pipeline(self, number: int) -> Attached | None:
        return self.attached[number - 1] if 0 < number <= len(self.attached) else None

    @property
    def current(self) -> Attached | None:
        """The newest pipeline."""
        return self.attached[-1] if self.attached else None

    # ---------------------------------------------------------------- frames

    def status(self) -> RunStatus:
        return RunStatus(
            resumed=self.resumed or "",
            title=self.job.title,
            now=self.clock(),
            started_at=self.started_at,
            ended_at=self.ended_at,
            ends=self.ends,
            active=self.run_active,
            paused=self.paused,
            stop_requested=self.stop_requested,
            stopping=self.stopping,
            crashed=self.crash is not None,
            known_total=self.job.known_total,
        )

    def snapshot(self, attached: Attached) -> Snapshot:
        """The pipeline's snapshot now (see `_decorate`)."""
        return self.stream.snapshot(attached.number)

    def _decorate(self, snapshot: Snapshot) -> Snapshot:
        """A stream snapshot with what only the app knows: whether it stopped the pipeline,
        and how many items it feeds it itself."""
        attached = self.pipeline(snapshot.pipeline)
        if attached is None:
            return snapshot
        total = snapshot.total_items
        job = self.job
        if total is None and isinstance(job, PipelineJob) and attached.pipeline is job.pipeline:
            total = job.known_total
        stopped = attached.stopped or snapshot.stopped
        # The app's own stream knows which unfinished items its stops left (a second
        # stream, a server's, would count them all as abandoned by the script).
        abandoned = self.stream.abandoned(snapshot.pipeline)
        return msgspec.structs.replace(
            snapshot, stopped=stopped, total_items=total, abandoned=abandoned
        )

    def next_frame(self, now: float) -> Frame | None:
        running = self.running()
        moved = self._first_frame or self.dirty or running
        if not moved and self.ended_at is not None:
            return None  # the run is over and nothing moved: the last frame stands
        self._first_frame = False
        self.dirty = False
        snapshots = {a.number: self.snapshot(a) for a in self.attached}
        events, dropped = self.stream.events()
        failures = self._changed_failures()
        return Frame(
            status=self.status(),
            pipelines=tuple(self.stream.pipelines()),
            snapshots=snapshots,
            events=tuple(events),
            dropped=dropped,
            errors=tuple(self.stream.take_errors()),
            failures=failures,
            logs=tuple(self.stream.take_logs()),
        )

    def _changed_failures(self) -> dict[int, tuple[ErrorRecord, ...]] | None:
        """The failures of each pipeline whose failures changed since the last frame (read
        only then: a run with many failures would otherwise pay for them every frame)."""
        changed: dict[int, tuple[ErrorRecord, ...]] = {}
        for attached in self.attached:
            version = (attached.tracker.failure_changes, attached.pipeline.get_stats().items_failed)
            if self._failures_read.get(attached.number) == version:
                continue
            self._failures_read[attached.number] = version
            failures = self.stream.failures(attached.number)
            changed[attached.number] = tuple(failures)
        return changed or None

    def note(self, text: str, *, error: bool = False, stream: str | None = None) -> None:
        """A line the script printed or logged, or a note of ours (from any thread; a
        recording gets it too). `stream`: a logging level name, for a logged line."""
        self.stream.log(text, stream or ("err" if error else "out"))
        self.dirty = True

    # ---------------------------------------------------------------- pulls

    async def item(self, pipeline: int, item: ItemKey) -> ItemDetail:
        if pipeline == ANY_ITEM:
            knowing = self.knowing(item)
            newest = self.current
            pipeline = knowing[-1] if knowing else (1 if newest is None else newest.number)
        detail = self.stream.item(pipeline, item)
        attached = self.pipeline(pipeline)
        if attached is None:
            return detail
        item_id = self.live_id(attached, item)
        location = detail.location
        if location is not None:
            # The value as the item holds it now, at length (the screen cuts it).
            where = attached.pipeline.locate(item_id)
            if where is not None:
                location = msgspec.structs.replace(
                    location, value=value_repr(where.value, long=True)
                )
        abandoned = False
        if detail.status == "unfinished":
            left = attached.pipeline.get_unfinished_items()
            position = next((n for n, left_id in enumerate(left) if left_id == item_id), None)
            abandoned = position is not None and position < self.snapshot(attached).abandoned
        also_in = tuple(n for n in self.knowing(item) if n != pipeline)
        return msgspec.structs.replace(
            detail, location=location, abandoned=abandoned, also_in=also_in
        )

    def knowing(self, item: ItemKey) -> list[int]:
        """The numbers of the pipelines that know an item with this id."""
        numbers = []
        for attached in self.attached:
            item_id = self.live_id(attached, item)
            try:
                known = attached.tracker.has_history(item_id)
            except TypeError:  # an unhashable id: never known
                continue
            if known or attached.pipeline.locate(item_id) is not None:
                numbers.append(attached.number)
        return numbers

    def live_id(self, attached: Attached, item: ItemKey) -> Any:
        """The live id an item key stands for (the run stream's one mapping)."""
        return self.stream.live_id(attached.number, item)

    async def worker_stack(self, pipeline: int, worker: str) -> AwaitStack | None:
        return self.stream.worker_stack(pipeline, worker)

    # ---------------------------------------------------------------- controls

    async def send(self, command: Command) -> str:
        if isinstance(command, Pause | Resume):
            whole_run = command.pipeline is None and command.stage is None
            if whole_run and command.worker is None:
                # Pipelines that start later are held too.
                self.paused = isinstance(command, Pause)
            notice = await self.stream.execute(command)
        elif isinstance(command, Retry):
            notice = await self._retry(command)
        elif isinstance(command, SetConcurrency | RaiseBudget):
            notice = await self.stream.execute(command)
        elif isinstance(command, Stop):
            await self.stop(force=command.force)
            notice = "Stopped the run"
        else:
            raise TypeError(f"unknown command {command!r}")
        self.dirty = True
        return notice

    async def _retry(self, command: Retry) -> str:
        """Feed failed items back where they failed, in their own pipeline (the stream
        starts a finished pipeline again for them: the run goes on until it ends)."""
        if self.stop_requested:
            return "The run was stopped; nothing can be retried."
        attached = self.pipeline(command.pipeline)
        was_running = attached is not None and attached.pipeline.is_running
        notice = await self.stream.execute(command)
        if attached is not None and not was_running and attached.pipeline.is_running:
            self.ended_at = None
        return notice

    def pipeline_finished(self) -> None:
        """A pipeline's run ended (the stream's `on_ended`): once nothing runs any more
        after a retry restarted the run, it is over again."""
        self.dirty = True
        asyncio.get_running_loop().call_soon(self._over_again)

    def _over_again(self) -> None:
        if self.ends and self.ended_at is None and not self.run_active:
            self._run_over()

    @staticmethod
    def mark_stop(attached: Attached) -> None:
        """Before the app stops a pipeline: note that it did, and where everything in
        flight is (the shutdown keeps only their ids; an export gives their stage)."""
        if attached.pipeline.is_running:
            attached.stopped = True
            held = {p.item_id: p for p in pending_items(attached.pipeline)}
            attached.pending = {**(attached.pending or {}), **held}

    def _start_stop(self, *, force: bool) -> None:
        self._stopper = asyncio.get_running_loop().create_task(self._stop_then_end(force))

    async def _stop_then_end(self, force: bool) -> str:
        await self.stop(force=force)
        return ""

    async def command_from_viewer(self, command: Command, by: str) -> str:
        """A command from a viewer of this run (``antflow-tui attach``): a stop is the
        app's own, named after the viewer in the summary; the rest as from the app."""
        if isinstance(command, Stop):
            await self.stop(force=command.force, by=by)
            return self.stream.stop_notice(command.force)
        return await self.send(command)

    def _budget_paused(self, state: BudgetState) -> None:
        self.dirty = True
        if self.on_budget_paused is not None:
            self.on_budget_paused(state)

    def paused_by_budget(self) -> str | None:
        """Why a pipeline running is paused by its budget now (None: none is)."""
        for attached in self.attached:
            state = attached.pipeline.probe.budget()
            if attached.pipeline.is_running and state is not None and state.paused:
                return state.reason or "its budget is spent"
        return None

    async def stop(self, *, force: bool = False, by: str | None = None) -> None:
        """Shut every running pipeline down: gracefully (running items get a short grace
        period), or at once with `force`; then end the script's job. What did not finish
        is listed as unfinished. `by`: a viewer that asked for it (the app: None)."""
        if by is not None and not self.stop_requested:
            self.stopped_by = by
        self.stop_requested = True
        self.stopping = True
        self.dirty = True
        self.budget_pause = self.budget_pause or self.paused_by_budget()
        for attached in self.attached:
            self.mark_stop(attached)
        await self.stream.execute(Stop(force=force), by=by or "antflow-tui")
        self.stopping = False
        self.dirty = True
        task = self.job_task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self.ended_at is None and not self.run_active:
            self._run_over()

    # ---------------------------------------------------------------- results

    def counts(self, *, in_flight_unfinished: bool = False) -> RunCounts:
        """Where every item of the run stands now, from fresh snapshots (safe from the
        watchdog's thread while the loop is blocked)."""
        return run_counts(
            [self.snapshot(a) for a in list(self.attached)],
            known_total=self.job.known_total,
            in_flight_unfinished=in_flight_unfinished,
        )

    def export(
        self, path: Path, seen: RunState | None = None, *, in_flight_unfinished: bool = False
    ) -> int:
        """The whole run, from the engine (`seen` is not needed: the engine knows more)."""
        over = self.ended_at is not None or in_flight_unfinished
        attached = list(self.attached)
        return export_run(
            path,
            self.stream,
            attached,
            [self.snapshot(one).abandoned for one in attached],
            self.counts(in_flight_unfinished=in_flight_unfinished),
            script=self.job.title,
            not_fed=self.job.not_fed() if over else (),
            in_flight_unfinished=in_flight_unfinished,
        )

    def outcome(
        self,
        app_error: str | None = None,
        *,
        in_flight_unfinished: bool = False,
        stopped_by: str | None = None,
    ) -> RunOutcome:
        """How the run ended (call after it has)."""
        script_exit = self.job.exit_code if isinstance(self.job, MainJob) else None
        return RunOutcome(
            counts=self.counts(in_flight_unfinished=in_flight_unfinished),
            elapsed=(self.ended_at or self.clock()) - self.started_at,
            crash=self.crash,
            app_error=app_error,
            script_exit=script_exit,
            stopped_by=stopped_by or self.stopped_by,
            resumed=self.resumed,
            refused=self.refused,
            history_warning=self.history_warning,
            spend=spend_words(run_usage(self.stream.snapshots())),
            budget_pause=self.budget_pause,
        )

    def mark_closed(self) -> None:
        """The app has closed: the run ends now, if it had not (and so does a recording)."""
        if self.ended_at is None:
            self.ended_at = self.clock()
        reason = "error" if self.crash else "stopped" if self.stop_requested else "finished"
        if self.recorder is not None:
            self.recorder.close(reason)
            self.recorder = None
        keeper = self.keeper
        if keeper is not None:
            self.keeper = None
            keeper.close(reason)  # its recorder compacts the file on a thread once closed

    def describe_task(self, name: str) -> str:
        """What the run knows of an asyncio task (called from the watchdog thread)."""
        if name == "antflow-tui job":
            return "the script's main()" if isinstance(self.job, MainJob) else "feeding items"
        worker = name.removeprefix("antflow ")
        if worker == name:
            return ""
        for attached in list(self.attached):
            state = attached.pipeline.get_worker_states().get(worker)
            if state is not None:
                if state.current_item_id is None:
                    return f"worker {worker}"
                return f"worker {worker} on item {item_label(state.current_item_id, 40)}"
        return ""

    # ---------------------------------------------------------------- the history

    def _history_trouble(self, text: str) -> None:
        """The run history's one warning (the keeper says it at most once)."""
        if self.history_warning is not None:
            return
        self.history_warning = text
        self.note(text, error=True)
        if self._warn_now is not None:
            self._warn_now(text)
