"""MainScreen: header (and pipeline switcher), stage table, worker grid, error panel and
event log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Footer, Input, Static

from antflow_tui.filters import Filter, FilterError, parse_filter
from antflow_tui.formatting import plural
from antflow_tui.keys import bindings, key_for, needs
from antflow_tui.messages import (
    ConcurrencyRequested,
    ItemRequested,
    PauseRequested,
    RetryRequested,
    StageRequested,
    ViewChanged,
    WorkerRequested,
)
from antflow_tui.present import error_type_counts, worker_legend
from antflow_tui.safe_text import clean
from antflow_tui.screens.base import RunScreen
from antflow_tui.source.base import Can
from antflow_tui.source.state import short_type
from antflow_tui.view import ALL
from antflow_tui.widgets.error_panel import ErrorPanel
from antflow_tui.widgets.event_log import EventLog
from antflow_tui.widgets.limits_bar import LimitsBar
from antflow_tui.widgets.row_list import RowList
from antflow_tui.widgets.scrubber import Scrubber
from antflow_tui.widgets.stage_table import StageTable
from antflow_tui.widgets.summary_bar import SummaryBar
from antflow_tui.widgets.worker_grid import WorkerGrid

if TYPE_CHECKING:
    from collections.abc import Mapping

    from textual.app import ComposeResult
    from textual.binding import BindingType

    from antflow.runstream.records import ItemKey
    from antflow_tui.error_groups import ErrorGroup
    from antflow_tui.source.base import RunSource
    from antflow_tui.source.state import LogEntry, RunState
    from antflow_tui.view import MainView

PANELS: tuple[tuple[str, str], ...] = (
    ("stage-table", "Stages"),
    ("worker-grid", "Workers"),
    ("error-panel", "Errors"),
    ("event-log", "Events"),
)
SCRUBBER_KEYS: tuple[str, ...] = (
    "replay.play",
    "replay.back",
    "replay.forward",
    "replay.jump-back",
    "replay.jump-forward",
    "replay.slower",
    "replay.faster",
    "replay.seek",
)
FILTER_HINT = (
    "text, status:failed, stage:Fetch, item:42, error:Timeout, level:warning — enter applies, "
    "esc clears"
)


class MainScreen(RunScreen):
    """The run at a glance; every panel is keyboard driven.

    With several pipelines, `s` switches the stage table and the worker grid between
    them and an "all" view of their totals; the error panel and the event log always show
    every pipeline's.
    """

    BINDINGS: ClassVar[list[BindingType]] = bindings("main")
    NEEDS: ClassVar[Mapping[str, Can]] = {**RunScreen.NEEDS, **needs("main")}

    def __init__(self, source: RunSource, state: RunState, log_lines: int) -> None:
        super().__init__(source, state, id="main")
        self._log_lines = log_lines
        self._filter_target: str | None = None
        self._banner = ("", "")
        self._keys: dict[str, str] | None = None
        self._pipelines_shown = 0
        self._view: MainView | None = None
        """The frame the panels show: every count they show is read from it."""
        self.chosen: int | None = None
        """The pipeline the user switched to (`ALL`: every one; None: follow the newest)."""

    @property
    def shown(self) -> int:
        """The pipeline the stage table and the worker grid show (`ALL`: every one)."""
        if self.chosen is not None:
            return self.chosen
        return self.state.newest or 1

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "switch_pipeline":
            return len(self.state.pipelines) > 1
        if action == "view_line":
            return self._focused_panel() in ("error-panel", "event-log")
        return super().check_action(action, parameters)

    def compose(self) -> ComposeResult:
        yield SummaryBar(id="summary")
        yield Static(id="banner", markup=False)
        yield LimitsBar(id="limits")
        yield StageTable(id="stage-table")
        with Horizontal(id="middle"):
            yield WorkerGrid(id="worker-grid")
            yield ErrorPanel(id="error-panel")
        yield EventLog(self._log_lines, id="event-log")
        # Not selected on focus: the bar opens holding the current filter, to be edited
        # (a selection would be replaced by the first key typed).
        yield Input(id="filter-bar", placeholder=FILTER_HINT, select_on_focus=False)
        yield Scrubber(id="scrubber")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(EventLog).started = self.state.status.started_at if self.state.status else 0
        for panel_id, title in PANELS:
            self.query_one(f"#{panel_id}").border_title = title
        self.query_one(StageTable).focus()

    @property
    def header_width(self) -> int:
        """Cells the header's lines have (the screen's width less the bar's padding)."""
        bar = self.query_one(SummaryBar)
        return bar.content_region.width or self.size.width

    @property
    def event_log(self) -> EventLog:
        return self.query_one(EventLog)

    @property
    def error_panel(self) -> ErrorPanel:
        return self.query_one(ErrorPanel)

    # ---------------------------------------------------------------- frame

    def show(self, view: MainView, *, force: bool = False) -> None:
        """Bring every panel up to date with `view` (`force`: skip the busy-run throttles)."""
        self._view = view
        if view.pipelines != self._pipelines_shown:
            self._pipelines_shown = view.pipelines
            self.refresh_bindings()  # the switcher's key shows once there are two
        self.query_one(SummaryBar).show(view.header)
        self.query_one(LimitsBar).show(view.limit_lines)
        self.query_one(Scrubber).show(view.replay, view.now, self._scrubber_keys())
        table = self.query_one(StageTable)
        heading = "Pipeline" if view.shown == ALL else "Stage"
        table.show(view.stage_rows, force=force, heading=heading)
        _set_if_changed(
            table,
            "border_title",
            self._title("stage-table", "Pipelines" if view.shown == ALL else None),
        )
        hint = view.bottleneck_hint
        _set_if_changed(table, "border_subtitle", Text(f"◀ bottleneck: {hint}") if hint else "")
        grid = self.query_one(WorkerGrid)
        grid.show(view.worker_cells, view.stage_summaries, force=force)
        busy = sum(
            1 for cell in view.worker_cells if cell.look in ("busy", "waiting", "stuck", "pausing")
        )
        _set_if_changed(grid, "border_subtitle", f"{busy}/{len(view.worker_cells)} busy")
        title = self._title("worker-grid")
        legend = worker_legend((cell.look for cell in view.worker_cells), self.palette)
        if legend:
            title.append("  ")
            title.append_text(legend)
        _set_if_changed(grid, "border_title", title)
        panel = self.error_panel
        panel.started = view.started
        panel.show(view.failures, pipelines=view.pipelines, retried=view.retried)
        self._error_titles()

    def _error_titles(self) -> None:
        """The error panel's title (how many it shows, of how many; groups) and its footer
        (errors by type, of what it shows), from the frame the header shows too."""
        view = self._view
        if view is None:
            return
        panel = self.error_panel
        total = len(view.failures)
        shown = len(panel.shown_failures)
        narrowed = panel.filter is not None or panel.group is not None
        count = f"{shown:,} of {total:,}" if narrowed else f"{total:,}"
        base = f"Errors ({count})" if total else None
        # Attempts tried again fail no item, yet say what goes wrong (429s, resets): the
        # title counts them (from the snapshots: exact), the groups view lists them.
        retried = plural(view.retried_total, "retried attempt") if view.retried_total else ""
        if panel.view == "groups" and (total or retried):
            # "Error groups (2) of 5 of 39 failed" read badly: the narrowing says so apart.
            failed = f"{shown:,} failed, of {total:,}" if narrowed else f"{total:,} failed"
            base = f"Error groups ({len(panel.groups):,}) of {failed}"
            if retried:
                base += f" · {retried}"
        elif panel.group_retried:
            base = f"Retried attempts ({shown:,})"
        elif retried:
            base = f"{base or 'Errors'} · {retried} ({key_for(self.app, 'group-errors')} groups)"
        title = self._title("error-panel", base)
        if panel.group is not None:
            kind, pattern = panel.group
            title.append(f" · group {clean(short_type(kind), 30)}: {clean(pattern, 50)}")
        _set_if_changed(panel, "border_title", title)
        if panel.type_counts is not None:
            counts = error_type_counts(panel.type_counts, self.palette)
        else:
            counts = view.error_counts
        _set_if_changed(panel, "border_subtitle", counts.plain and counts)

    def _scrubber_keys(self) -> dict[str, str]:
        if self._keys is None:
            self._keys = {binding: key_for(self.app, binding) for binding in SCRUBBER_KEYS}
        return self._keys

    def add_log(self, entries: list[LogEntry], *, force: bool = False) -> None:
        self.event_log.add(entries, force=force)

    # ---------------------------------------------------------------- pipelines

    def action_switch_pipeline(self) -> None:
        """Show the next pipeline in the stage table and the worker grid: 1, 2, ..., all."""
        numbers = sorted(self.state.pipelines)
        if len(numbers) < 2:
            return
        order = [*numbers, ALL]
        current = self.shown
        self.chosen = order[(order.index(current) + 1) % len(order)] if current in order else ALL
        self._redraw()  # the switcher line under the header shows which is chosen

    def show_pipeline(self, number: int) -> None:
        self.chosen = number
        self._redraw()

    def _redraw(self) -> None:
        self.post_message(ViewChanged())

    def set_banner(self, text: str, variant: str) -> None:
        if (text, variant) == self._banner:
            return  # Static.update lays the screen out again: only when it changed.
        self._banner = (text, variant)
        banner = self.query_one("#banner", Static)
        banner.update(text)
        banner.set_class(bool(text), "-shown")
        for name in ("-paused", "-frozen", "-stopping", "-failed"):
            banner.set_class(name == f"-{variant}", name)

    def _title(self, panel_id: str, base: str | None = None) -> Text:
        """A panel's border title; a Text, so the filter the user typed is not markup."""
        title = Text(base or dict(PANELS)[panel_id])
        widget: Any = self.query_one(f"#{panel_id}")
        active: Filter | None = getattr(widget, "filter", None)
        if active is not None:
            title.append(f" · filter: {clean(active.source, 60)}")
        return title

    # ---------------------------------------------------------------- focus

    def _focused_panel(self) -> str | None:
        focused = self.focused
        while focused is not None:
            if focused.id in dict(PANELS):
                return focused.id
            focused = focused.parent if isinstance(focused.parent, Widget) else None
        return None

    def action_focus_panel(self, panel_id: str) -> None:
        self.query_one(f"#{panel_id}").focus()

    # ---------------------------------------------------------------- pause

    def action_toggle_pause(self) -> None:
        """Pause or resume the selected stage or worker (`p` is the whole run's)."""
        panel = self._focused_panel()
        shown = self.shown
        if panel == "stage-table" and shown != ALL:
            stage = self.query_one(StageTable).selected_stage
            if stage is not None:
                self.post_message(PauseRequested(shown, stage=stage))
                return
        elif panel == "worker-grid":
            cell = self.query_one(WorkerGrid).selected
            if cell is not None:
                self.post_message(PauseRequested(cell.pipeline, worker=cell.name))
                return
        run = key_for(self.app, "pause")
        self.notify(
            f"Select a stage (Stages) or a worker (Workers) to pause it; {run} pauses the run.",
            timeout=3,
            markup=False,
        )

    # ---------------------------------------------------------------- concurrency

    def action_concurrency(self, change: int) -> None:
        """One call fewer (-1) or more (1) at once in the selected stage (or the selected
        worker's)."""
        panel = self._focused_panel()
        shown = self.shown
        if panel == "stage-table" and shown != ALL:
            stage = self.query_one(StageTable).selected_stage
            if stage is not None:
                self.post_message(ConcurrencyRequested(shown, stage, change))
                return
        elif panel == "worker-grid":
            cell = self.query_one(WorkerGrid).selected
            if cell is not None:
                self.post_message(ConcurrencyRequested(cell.pipeline, cell.stage, change))
                return
        self.notify(
            "Select a stage (Stages) or one of its workers (Workers) to change how many "
            "calls it makes at once.",
            timeout=3,
            markup=False,
        )

    # ---------------------------------------------------------------- retry

    def _selected_item(self) -> tuple[ItemKey, int, bool]:
        """The item the focused panel points at, its pipeline's number (0: unknown), and
        whether there is one."""
        panel = self._focused_panel()
        if panel == "error-panel":
            errors = self.error_panel
            failure = errors.failure_at(errors.cursor)
            if failure is not None:
                return failure.item, failure.pipeline, True
            return None, 0, False
        if panel == "event-log":
            entry = self.event_log.entry_at(self.event_log.cursor)
            if entry is not None and entry.event is not None:
                return entry.event.item, entry.event.pipeline, True
        return None, 0, False

    def _retried_attempts(self) -> bool:
        """The error panel's selection is of attempts tried again, not of failed items:
        say there is nothing to retry."""
        panel = self.error_panel
        if self._focused_panel() != "error-panel":
            return False
        group = panel.group_at(panel.cursor)
        if not panel.group_retried and (group is None or not group.retried):
            return False
        self.notify(
            "These attempts were tried again already: no item failed for them.",
            timeout=3,
            markup=False,
        )
        return True

    def action_retry(self) -> None:
        """Retry the selected failed item where it failed, in its own pipeline (on a
        group: the group's items, after asking)."""
        if self._retried_attempts():
            return
        if self._focused_panel() == "error-panel" and self.error_panel.view == "groups":
            self.action_retry_all()
            return
        item, pipeline, found = self._selected_item()
        if not found:
            self.notify(
                "Select a failed item (in Errors or Events) to retry it.", timeout=3, markup=False
            )
            return
        if not pipeline:
            # An event of a tracker several pipelines share: the newest that failed it.
            pipeline = next(
                (f.pipeline for f in reversed(self.state.failures) if f.item == item),
                self.state.newest or 1,
            )
        self.post_message(RetryRequested(((pipeline, item),)))

    def action_retry_all(self) -> None:
        """Retry every failed item the error panel shows (its filter applies; on a group
        in the groups view, that group's items); asks first."""
        panel = self.error_panel
        if self._retried_attempts():
            return
        if self._focused_panel() == "error-panel" and panel.view == "groups":
            group = panel.group_at(panel.cursor)
            if group is None:
                self.notify("There are no failed items to retry.", timeout=3, markup=False)
                return
            self._confirm_retry(group.items, _group_words(group))
            return
        failures = panel.shown_failures
        if not failures:
            self.notify("There are no failed items to retry.", timeout=3, markup=False)
            return
        items = tuple((failure.pipeline, failure.item) for failure in failures)
        scope = " matching the filter" if panel.filter is not None else ""
        if panel.group is not None:
            scope = f" of the group {_group_key_words(panel.group)}{scope}"
        what = "the failed item" if len(items) == 1 else f"all {len(items):,} failed items"
        self._confirm_retry(items, f"{what}{scope}")

    def _confirm_retry(self, items: tuple[tuple[int, ItemKey], ...], what: str) -> None:
        from antflow_tui.screens.confirm import ConfirmScreen

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self.post_message(RetryRequested(items))

        self.app.push_screen(ConfirmScreen(f"Retry {what}?", confirm="Retry"), answered)

    # ---------------------------------------------------------------- groups and sorting

    def action_toggle_groups(self) -> None:
        """Show the error panel's failures as groups (by type and message), or as items."""
        panel = self.error_panel
        view = panel.toggle_groups()
        self._error_titles()
        panel.focus()
        if view == "groups":
            enter = "enter lists a group's items"
            retry = ""
            if self.source.can(Can.RETRY):
                retry = f", {key_for(self.app, 'retry-all')} retries it"
            self.notify(f"Errors grouped by type and message: {enter}{retry}.", timeout=3)

    def action_sort(self) -> None:
        """Sort the focused table (stages or errors) by its next column."""
        self._sort(reverse=False)

    def action_reverse_sort(self) -> None:
        """Sort the focused table the other way."""
        self._sort(reverse=True)

    def _sort(self, *, reverse: bool) -> None:
        panel = self._focused_panel()
        # The sorted column's heading shows the order (▼ ▲): no notice needed.
        sortable: StageTable | ErrorPanel
        if panel == "stage-table":
            sortable = self.query_one(StageTable)
        elif panel == "error-panel":
            sortable = self.error_panel
        else:
            self.notify("Sorting works in the Stages and Errors panels.", timeout=3, markup=False)
            return
        if reverse:
            sortable.reverse_sort()
        else:
            sortable.next_sort()

    # ---------------------------------------------------------------- filter

    def action_filter(self) -> None:
        """Open the filter bar for the focused panel (the event log by default)."""
        target = self._focused_panel() or "event-log"
        self._filter_target = target
        bar = self.query_one("#filter-bar", Input)
        widget: Any = self.query_one(f"#{target}")
        current: Filter | None = widget.filter
        bar.value = current.source if current is not None else ""
        bar.cursor_position = len(bar.value)
        bar.placeholder = f"filter {dict(PANELS)[target]}: {FILTER_HINT}"
        bar.add_class("-shown")
        bar.focus()

    @on(Input.Submitted, "#filter-bar")
    def _apply_filter(self, event: Input.Submitted) -> None:
        target = self._filter_target or "event-log"
        try:
            chosen = parse_filter(event.value)
        except FilterError as error:
            self.notify(str(error), severity="error", timeout=5, markup=False)
            return
        self._set_filter(target, chosen if not chosen.empty else None)
        self._close_filter_bar(target)

    def _set_filter(self, target: str, chosen: Filter | None) -> None:
        widget: Any = self.query_one(f"#{target}")
        widget.set_filter(chosen)
        _set_if_changed(widget, "border_title", self._title(target))
        self._redraw()

    def _close_filter_bar(self, target: str) -> None:
        bar = self.query_one("#filter-bar", Input)
        bar.remove_class("-shown")
        self.query_one(f"#{target}").focus()

    def action_clear_filter(self) -> None:
        """Escape: close the filter bar, leave an opened error group, or clear the focused
        panel's filter."""
        bar = self.query_one("#filter-bar", Input)
        if bar.has_class("-shown"):
            target = self._filter_target or "event-log"
            bar.value = ""
            self._set_filter(target, None)
            self._close_filter_bar(target)
            return
        panel = self._focused_panel()
        if panel == "error-panel" and self.error_panel.close_group():
            self._error_titles()
            return
        if panel is not None and getattr(self.query_one(f"#{panel}"), "filter", None):
            self._set_filter(panel, None)

    # ---------------------------------------------------------------- log

    def action_toggle_follow(self) -> None:
        following = self.event_log.toggle_follow()
        self.notify(
            "Following new events" if following else "Stopped following", timeout=2, markup=False
        )

    # ---------------------------------------------------------------- a line whole

    def action_view_line(self) -> None:
        """Show the selected log line or failure whole: the panels cut it to one row."""
        from antflow_tui.screens.line import LineScreen
        from antflow_tui.whole_line import whole_entry, whole_failure, whole_group

        panel = self._focused_panel()
        started = self.state.status.started_at if self.state.status else 0.0
        line = None
        if panel == "error-panel":
            errors = self.error_panel
            if errors.view == "groups":
                group = errors.group_at(errors.cursor)
                line = None if group is None else whole_group(group, self.palette)
            else:
                failure = errors.failure_at(errors.cursor)
                line = None if failure is None else whole_failure(failure, started, self.palette)
        elif panel == "event-log":
            entry = self.event_log.entry_at(self.event_log.cursor)
            line = None if entry is None else whole_entry(entry, started, self.palette)
        if line is None:
            self.notify("Select a line in Events or a row in Errors.", timeout=3, markup=False)
            return
        self.app.push_screen(LineScreen(line))

    # ---------------------------------------------------------------- drill down

    @on(StageTable.StageChosen)
    def _open_stage(self, event: StageTable.StageChosen) -> None:
        if self.shown == ALL:
            self.show_pipeline(event.pipeline)  # a row of the all-pipelines table
            return
        self.post_message(StageRequested(event.pipeline, event.stage))

    @on(WorkerGrid.WorkerChosen)
    def _open_worker(self, event: WorkerGrid.WorkerChosen) -> None:
        self.post_message(WorkerRequested(event.pipeline, event.worker))

    @on(RowList.Chosen, "#error-panel")
    def _open_failure(self, event: RowList.Chosen) -> None:
        panel = self.error_panel
        if panel.view == "groups":
            if panel.open_group(event.index) is not None:
                self._error_titles()
            return
        failure = panel.failure_at(event.index)
        if failure is not None:
            self.post_message(ItemRequested(failure.pipeline, failure.item))

    @on(RowList.Chosen, "#event-log")
    def _open_logged_item(self, event: RowList.Chosen) -> None:
        entry = self.event_log.entry_at(event.index)
        if entry is not None and entry.event is not None:
            self.post_message(ItemRequested(entry.event.pipeline, entry.event.item))


def _group_key_words(key: tuple[str, str]) -> str:
    kind, pattern = key
    return f"{short_type(kind)}: {pattern}"


def _group_words(group: ErrorGroup) -> str:
    """'the 34 failed items of ParseError: unexpected <n>'."""
    what = "the failed item" if group.count == 1 else f"the {group.count:,} failed items"
    return f"{what} of {_group_key_words(group.key)}"


def _set_if_changed(widget: Widget, name: str, value: Text | str) -> None:
    """Set a border title only when its text changes: each set repaints the widget.

    Titles that hold user data must be Text: a str is read as markup.
    """
    shown = getattr(widget, f"_shown_{name}", None)
    text = value.plain if hasattr(value, "plain") else str(value or "")
    if shown != text:
        setattr(widget, f"_shown_{name}", text)
        setattr(widget, name, value or "")
