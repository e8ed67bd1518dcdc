"""The run's controls (pause, resume, retry, a stage's concurrency, raising the budget,
stopping an attached job), sent to the source as the screens ask for them; and what they
read from the run's state first, as pure functions of `RunState`: where a stage or a
worker is, whether that level is paused, what would hold a retried item, what
concurrency `-` and `+` ask for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from antflow.runstream.records import Pause, Resume, Retry, SetConcurrency, Stop
from antflow_tui.cost import run_budgets
from antflow_tui.gauges import next_concurrency
from antflow_tui.keys import key_for
from antflow_tui.present import holding_stages, stage_views
from antflow_tui.safe_text import clean

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from antflow.runstream.records import BudgetRow, ItemKey, RaiseBudget
    from antflow_tui.app import AntflowApp
    from antflow_tui.present import StageView
    from antflow_tui.source.state import RunState


def pipeline_with(state: RunState, *, stage: str | None = None, worker: str | None = None) -> int:
    """The newest pipeline that has this stage or worker."""
    for number in sorted(state.pipelines, reverse=True):
        for config in state.stage_configs(number):
            if config.name == stage or worker in config.workers:
                return number
    return state.newest or 1


def is_paused(state: RunState, pipeline: int | None, stage: str | None, worker: str | None) -> bool:
    """Whether that level is paused now (its own pause, not one above it)."""
    status = state.status
    if stage is None and worker is None:
        return status is not None and status.paused
    number = pipeline or pipeline_with(state, stage=stage, worker=worker)
    started = state.pipelines.get(number)
    snapshot = state.snapshots.get(number)
    if started is None or snapshot is None:
        return False
    for view in stage_views(started, snapshot):
        if stage is not None and view.name == stage:
            return view.counts.paused
        for name, row in zip(view.config.workers, view.workers, strict=False):
            if name == worker:
                return row.paused and not view.counts.paused and not snapshot.paused
    return False


def holding(
    state: RunState, pipeline: int, items: Sequence[ItemKey], *, run_key: str, stage_key: str
) -> str:
    """What pause would hold these items once retried, in words ('' when none does): a
    retry into a paused stage is otherwise silent, the item just waits there.

    Args:
        run_key: The key that resumes the run.
        stage_key: The key that resumes a selected stage.
    """
    status = state.status
    started = state.pipelines.get(pipeline)
    snapshot = state.snapshots.get(pipeline)
    them = "the item waits" if len(items) == 1 else "the items wait"
    if (status is not None and status.paused) or (snapshot is not None and snapshot.paused):
        return f"The run is paused: {them} until it resumes ({run_key})."
    if started is None or snapshot is None:
        return ""
    wanted = set(items)
    stages = {f.stage for f in state.failures_of(pipeline) if f.item in wanted}
    held = holding_stages(started, snapshot, stages)
    if not held:
        return ""
    names = ", ".join(clean(name, 30) for name in held)
    where = f"Stage {names} is" if len(held) == 1 else f"Stages {names} are"
    return f"{where} paused: {them} there ({stage_key} on it resumes it)."


def stage_view(state: RunState, pipeline: int, stage: str) -> StageView | None:
    """That stage of that pipeline at the latest snapshot."""
    started = state.pipelines.get(pipeline)
    snapshot = state.snapshots.get(pipeline)
    if started is None or snapshot is None:
        return None
    return next((view for view in stage_views(started, snapshot) if view.name == stage), None)


def concurrency_bound(stage: str, wanted: int, workers: int, *, pause_key: str) -> str:
    """Why `wanted` cannot be asked for, in words ('' when it can): a stage runs at
    least one call at a time, and at most one per worker."""
    name = clean(stage, 40)
    if wanted < 1:
        return f"{name} already makes 1 call at a time, the fewest ({pause_key} on it pauses it)."
    if wanted > workers:
        return (
            f"{name} may already make {workers:,} calls at once, one per worker: more "
            f"need more workers (Stage(workers=...))."
        )
    return ""


class Controls:
    """The run's controls, as the screens ask for them: sent to the source as commands,
    with the source's notice shown (and what would hold a retried item).

    Args:
        app: The app the screens are in.
    """

    def __init__(self, app: AntflowApp) -> None:
        self.app = app
        self._asked: dict[tuple[int, str], tuple[float, int]] = {}
        """(pipeline, stage) -> (the time of the snapshot it was read from, the
        concurrency last asked for): a second press before a new snapshot goes on from
        what the first asked, not again from the snapshot (an attached job's come a few
        times a second)."""

    async def pause(self, pipeline: int | None, stage: str | None, worker: str | None) -> None:
        """Pause or resume the run, one stage or one worker (at its own level), and say so."""
        app, state = self.app, self.app.state
        status = state.status
        if stage is None and worker is None:
            pipeline = None
            # A run started --paused resumes before anything runs.
            resuming = status is not None and status.paused
        else:
            resuming = False
        if not state.running and not resuming:
            ended = status is not None and status.ended
            notice = "The run has ended: nothing to pause." if ended else "Nothing runs yet."
            app.notify(notice, severity="warning", timeout=3, markup=False)
            return
        held = is_paused(state, pipeline, stage, worker)
        command = (Resume if held else Pause)(pipeline=pipeline, stage=stage, worker=worker)
        notice = await app.source.send(command)
        app.notify(notice, timeout=2, markup=False)
        app.redraw()

    async def retry(self, items: Iterable[tuple[int, ItemKey]]) -> list[str]:
        """Retry failed items where they failed, one retry per pipeline; shows (and
        returns) the notices."""
        app, state = self.app, self.app.state
        by_pipeline: dict[int, list[ItemKey]] = {}
        for pipeline, item in items:
            by_pipeline.setdefault(pipeline, []).append(item)
        notices = []
        holds = False
        run_key, stage_key = key_for(app, "pause"), key_for(app, "pause-selected")
        for pipeline, wanted in sorted(by_pipeline.items()):
            held = holding(state, pipeline, wanted, run_key=run_key, stage_key=stage_key)
            notice = await app.source.send(Retry(pipeline=pipeline, items=tuple(wanted)))
            if held and notice.startswith("Retrying"):
                notice = f"{notice}. {held}"
            else:
                held = ""
            if len(by_pipeline) > 1:
                notice = f"{state.pipeline_name(pipeline)}: {notice}"
            notices.append(notice)
            holds = holds or bool(held)
        # A hold is worth the time to read it: the items will not move until it is lifted.
        app.notify("\n".join(notices), timeout=8 if holds else 3, markup=False)
        app.redraw()
        return notices

    async def concurrency(self, pipeline: int, stage: str, change: int) -> None:
        """One call fewer (`change` -1) or more (1) at once in a stage, within 1 and its
        workers; at a bound, say so and send nothing."""
        app, state = self.app, self.app.state
        view = stage_view(state, pipeline, stage)
        snapshot = state.snapshots.get(pipeline)
        if view is None or snapshot is None:
            app.notify(f"No stage {clean(stage, 40)} in this run.", timeout=3, markup=False)
            return
        workers = len(view.config.workers)
        limits = view.counts.limits
        asked = self._asked.get((pipeline, stage))
        if asked is not None and asked[0] == snapshot.at:
            current = asked[1]
            wanted = current - 1 if change < 0 else current + 1
        else:
            wanted = next_concurrency(limits, workers, change)
        bound = concurrency_bound(stage, wanted, workers, pause_key=key_for(app, "pause-selected"))
        if bound:
            app.notify(bound, timeout=4, markup=False)
            return
        self._asked[(pipeline, stage)] = (snapshot.at, wanted)
        notice = await app.source.send(SetConcurrency(pipeline=pipeline, stage=stage, limit=wanted))
        app.notify(notice, timeout=3, markup=False)
        app.redraw()

    def budgets(self) -> list[BudgetRow]:
        """The run's budgets at the latest snapshots (none: nothing to raise)."""
        return run_budgets(self.app.state.snapshots.values())

    def ask_raise_budget(self) -> None:
        """`B`: ask how much to raise the budget by (or to), then raise it."""
        from antflow_tui.screens.budget import BudgetScreen

        app = self.app
        budgets = self.budgets()
        if not budgets:
            app.notify("The run has no budget to raise.", timeout=3, markup=False)
            return

        def answered(command: RaiseBudget | None) -> None:
            if command is not None:
                app.run_worker(self.raise_budget(command), exit_on_error=False)

        app.push_screen(BudgetScreen(budgets), answered)

    async def raise_budget(self, command: RaiseBudget) -> str:
        """Send a raise of the budget, and say what came of it."""
        notice = await self.app.source.send(command)
        self.app.notify(notice, timeout=5, markup=False)
        self.app.redraw()
        return notice

    def stop_job(self) -> None:
        """Stop an attached job's pipelines (the viewer stays attached); asks first."""
        from antflow_tui.screens.confirm import ConfirmScreen

        app = self.app
        status = app.state.status

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                app.run_worker(self._stop_job(), exit_on_error=False)

        question = (
            f"Stop the job {'' if status is None else status.title}? Its pipelines stop "
            f"gracefully: running items get {app.options.stop_grace:g}s to finish, then are "
            f"cancelled, and what did not finish is reported unfinished. (Quitting this "
            f"viewer, {key_for(app, 'quit')}, only detaches.)"
        )
        app.push_screen(ConfirmScreen(question, confirm="Stop the job"), answered)

    async def _stop_job(self) -> None:
        notice = await self.app.source.send(Stop())
        self.app.notify(notice, timeout=4, markup=False)
        self.app.redraw()
