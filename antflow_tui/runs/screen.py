"""RunsScreen: the runs kept in the run history, newest first, in an app of their own
(`RunsApp`, ``antflow-tui runs``).

`enter` replays the selected run, `r` resumes it (``antflow-tui SCRIPT --resume RUN``, after
asking), `d` deletes it (after asking), `/` filters by script, status or id, `m` marks two
runs and `c` compares them. Replaying and resuming leave the app with what to do
(`Replay`, `Launch`): the command line does it (and comes back to the list after a
replay). The list is read from the history's index every few seconds (one read, however
many runs) and drawn a screen's worth at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Final

from rich.text import Text
from textual.app import App
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from antflow.history import HistoryError
from antflow_tui.keys import bindings, key_for
from antflow_tui.palette import COMPONENT_CLASSES, Palette, palette_of, screen_palette
from antflow_tui.runs.actions import Launch, Refusal, compare_command, resume_command
from antflow_tui.runs.present import (
    detail_line,
    format_bytes,
    header_row,
    history_place,
    layout,
    matches,
    run_row,
    runs_summary,
    started_text,
)
from antflow_tui.safe_text import clean
from antflow_tui.screens.confirm import ConfirmScreen
from antflow_tui.widgets.row_list import RowList

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence
    from pathlib import Path, PurePath

    from textual.app import ComposeResult
    from textual.binding import BindingType

    from antflow.history import History, Run

REFRESH_SECONDS: Final = 2.0
"""How often the list is read again: running runs move, a dead one becomes crashed."""
MARKS: Final = 2
"""Runs marked at most (a comparison takes two)."""


@dataclass(frozen=True, slots=True)
class Replay:
    """Replay a run's recording (then come back to the list)."""

    path: Path
    run_id: str


RunsChoice = Replay | Launch
"""What the runs app leaves to the command line to do."""


@dataclass(slots=True)
class ListState:
    """What the list keeps while the user goes away and back (a replay): the app is
    made again after one."""

    filter_text: str = ""
    marked: tuple[str, ...] = ()
    """The ids of the runs marked to compare."""
    selected: str | None = None
    """The id of the run the cursor is on."""
    notice: str | None = None
    """Said once when the list opens (a replay that could not open)."""


class RunList(RowList):
    """The runs, one row each (only the rows on screen are drawn)."""

    BINDINGS: ClassVar[list[BindingType]] = bindings("run-list")

    class Moved(Message):
        """The cursor is on another row (the screen says which run it is on)."""

        def __init__(self, run_list: RunList) -> None:
            super().__init__()
            self.run_list = run_list

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, RunList.Moved)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.runs: Sequence[Run] = ()
        self.marked: tuple[str, ...] = ()

    def show(self, runs: Sequence[Run], marked: tuple[str, ...]) -> None:
        """Show `runs`, keeping the cursor on the run it was on (if still listed)."""
        chosen = self.selected
        self.runs = runs
        self.marked = marked
        if chosen is not None:
            for index, run in enumerate(runs):
                if run.id == chosen.id:
                    self.cursor = index
                    break
        self.set_count(len(runs))

    def watch_cursor(self, old: int, new: int) -> None:
        super().watch_cursor(old, new)
        self.post_message(self.Moved(self))

    @property
    def selected(self) -> Run | None:
        if not self.runs or self.cursor >= len(self.runs):
            return None
        return self.runs[self.cursor]

    def header(self, width: int) -> Text | None:
        return header_row(layout(width))

    def render_row(self, index: int, width: int) -> Text:
        run = self.runs[index]
        return run_row(
            run, layout(width), marked=run.id in self.marked, palette=screen_palette(self)
        )


class RunsScreen(Screen[None]):
    """The run history's list (see the module's docstring).

    Args:
        history: The history listed.
        state: The filter, the marks and the run selected (kept across a replay).
        commands: The commands antflow-tui has.
        prefix: How the resume and compare commands run antflow-tui (None: as this
            process was started).
    """

    BINDINGS: ClassVar[list[BindingType]] = bindings("runs")
    COMPONENT_CLASSES: ClassVar[set[str]] = set(COMPONENT_CLASSES)

    def __init__(
        self,
        history: History,
        state: ListState | None = None,
        *,
        commands: Collection[str] = (),
        prefix: Sequence[str] | None = None,
    ) -> None:
        super().__init__(id="runs")
        self.history = history
        self.state = state or ListState()
        self.commands = tuple(commands)
        self.prefix = prefix
        self.all_runs: list[Run] = []
        self.shown_runs: list[Run] = []
        self.problem: str | None = None
        """Why the history could not be read, if it could not."""
        self._palette: Palette | None = None

    @property
    def palette(self) -> Palette:
        """The data colours of the current theme."""
        if self._palette is None:
            self._palette = palette_of(self)
        return self._palette

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._palette = None

    def compose(self) -> ComposeResult:
        yield Static(id="runs-title", markup=False)
        yield RunList(id="runs-list")
        yield Static(id="runs-detail", markup=False)
        yield Input(id="runs-filter", placeholder="script, status or run id — enter applies")
        yield Footer()

    @property
    def filter_text(self) -> str:
        return self.state.filter_text

    @property
    def marked(self) -> tuple[str, ...]:
        return self.state.marked

    def on_mount(self) -> None:
        listing = self.query_one(RunList)
        listing.border_title = "Runs"
        # Read before the list is shown: showing it selects its first row.
        chosen = self.state.selected
        self.reload()
        for index, run in enumerate(self.shown_runs):
            if run.id == chosen:
                listing.cursor = index
        self._show_detail()
        listing.focus()
        if self.state.notice is not None:
            self._say(self.state.notice, error=True)
            self.state.notice = None
        self.set_interval(REFRESH_SECONDS, self.reload)

    # ---------------------------------------------------------------- the list

    def reload(self) -> None:
        """Read the history's index again (one read) and show what the filter keeps."""
        try:
            self.all_runs = self.history.runs()
            self.problem = None
        except HistoryError as error:
            self.all_runs = []
            self.problem = str(error)
        self._show()

    def _show(self) -> None:
        self.shown_runs = [run for run in self.all_runs if matches(run, self.filter_text)]
        listed = {run.id for run in self.all_runs}
        self.state.marked = tuple(run_id for run_id in self.marked if run_id in listed)
        self.query_one(RunList).show(self.shown_runs, self.marked)
        self._show_title()
        self._show_detail()

    def _show_title(self) -> None:
        title = Text(" antflow ", style="reverse bold")
        title.append("  runs  ", style="bold")
        title.append(clean(history_place(self.history.home), 120), style="dim")
        title.append("  ")
        title.append(runs_summary(self.all_runs, len(self.shown_runs)))
        if self.filter_text:
            title.append(f"  · filter: {clean(self.filter_text, 60)}", style="dim")
        if self.marked:
            title.append(f"  · {len(self.marked)} marked", style=self.palette("pipeline"))
        self.query_one("#runs-title", Static).update(title)

    def _show_detail(self) -> None:
        run = self.selected
        if run is not None:
            self.state.selected = run.id
        detail = self.query_one("#runs-detail", Static)
        if self.problem is not None:
            detail.update(Text(f" {clean(self.problem, 400)}", style=self.palette("log-error")))
        elif run is None:
            empty = "no run matches the filter" if self.all_runs else "no run is kept here yet"
            detail.update(Text(f" {empty}", style="dim"))
        else:
            detail.update(detail_line(run, palette=self.palette))

    @property
    def selected(self) -> Run | None:
        """The run under the cursor."""
        return self.query_one(RunList).selected

    def on_row_list_chosen(self, _message: RowList.Chosen) -> None:
        self.action_replay()

    def on_run_list_moved(self, _message: RunList.Moved) -> None:
        self._show_detail()

    # ---------------------------------------------------------------- actions

    def action_replay(self) -> None:
        run = self.selected
        if run is not None:
            self.app.exit(Replay(run.path, run.id))

    def action_resume(self) -> None:
        run = self.selected
        if run is None:
            return
        command = resume_command(run, prefix=self.prefix)
        if isinstance(command, Refusal):
            self._say(command.words)
            return
        question = (
            f"Resume run {run.id} of {clean(run.script or '?', 60)} ({run.status}, started "
            f"{started_text(run.started_at)})? Items it completed, and those of the runs it "
            f"resumed, are not run again."
        )
        later = [other.id for other in self.all_runs if other.resumed_from == run.id]
        if later:
            question += (
                f" Run {later[0]} resumed it already: resume that one instead, or what it "
                f"completed runs again."
            )
        question += f"\n\n{clean(command.shown, 300)}"

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self.app.exit(command)

        self.app.push_screen(ConfirmScreen(question, confirm="Resume"), answered)

    def action_delete(self) -> None:
        run = self.selected
        if run is None:
            return
        question = (
            f"Delete run {run.id} ({clean(run.script or '?', 60)}, {run.status}, started "
            f"{started_text(run.started_at)})? Its recording ({format_bytes(run.bytes)}) is "
            f"deleted for good."
        )
        resumers = [other.id for other in self.all_runs if other.resumed_from == run.id]
        if resumers:
            which = "it" if len(resumers) == 1 else "them"
            question += (
                f" Run {', '.join(resumers)} resumed it: resuming {which} again would run "
                f"the items only this run completed."
            )

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self._delete(run)

        self.app.push_screen(ConfirmScreen(question, confirm="Delete"), answered)

    def _delete(self, run: Run) -> None:
        try:
            self.history.delete(run.id)
        except HistoryError as error:
            self._say(str(error), error=True)
        else:
            self._say(f"Deleted run {run.id} ({format_bytes(run.bytes)}).")
        self.reload()

    def action_mark(self) -> None:
        run = self.selected
        if run is None:
            return
        if run.id in self.marked:
            self.state.marked = tuple(run_id for run_id in self.marked if run_id != run.id)
        else:
            self.state.marked = (*self.marked, run.id)[-MARKS:]
        self._show()

    def action_compare(self) -> None:
        by_id = {run.id: run for run in self.all_runs}
        chosen = [by_id[run_id] for run_id in self.marked if run_id in by_id]
        run = self.selected
        if len(chosen) == 1 and run is not None and run.id != chosen[0].id:
            chosen.append(run)
        if len(chosen) != MARKS:
            mark = key_for(self.app, "runs.mark")
            self._say(f"Mark two runs with {mark} to compare them (or one, and select the other).")
            return
        command = compare_command(chosen[0], chosen[1], commands=self.commands, prefix=self.prefix)
        if isinstance(command, Refusal):
            self._say(command.words)
            return
        self.app.exit(command)

    def action_filter(self) -> None:
        bar = self.query_one("#runs-filter", Input)
        bar.value = self.filter_text
        bar.add_class("-shown")
        bar.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.state.filter_text = event.value
        self._show()

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self._close_filter()

    def action_clear_filter(self) -> None:
        bar = self.query_one("#runs-filter", Input)
        if bar.has_focus or self.filter_text:
            self.state.filter_text = ""
            bar.value = ""
            self._show()
        self._close_filter()

    def _close_filter(self) -> None:
        self.query_one("#runs-filter", Input).remove_class("-shown")
        self.query_one(RunList).focus()

    def action_quit(self) -> None:
        self.app.exit(None)

    def _say(self, words: str, *, error: bool = False) -> None:
        self.notify(words, severity="error" if error else "warning", timeout=12, markup=False)


class RunsApp(App[RunsChoice | None]):
    """``antflow-tui runs``: the run history's list, alone in its app.

    Args:
        history: The history listed.
        state: The filter, the marks and the run selected (kept across a replay).
        commands: The commands antflow-tui has.
        keymap: Binding id -> key(s), overriding the defaults.
        prefix: How the resume and compare commands run antflow-tui.
    """

    TITLE = "antflow-tui runs"
    # The run app's styles (the data colours, the lists' cursor), and the list's own.
    CSS_PATH: ClassVar[list[str | PurePath]] = ["../styles/app.tcss", "../styles/runs.tcss"]

    def __init__(
        self,
        history: History,
        *,
        state: ListState | None = None,
        commands: Collection[str] = (),
        keymap: Mapping[str, str] | None = None,
        prefix: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.keymap_overrides = dict(keymap or {})
        self.runs_screen = RunsScreen(history, state, commands=commands, prefix=prefix)

    async def on_mount(self) -> None:
        if self.keymap_overrides:
            self.set_keymap(self.keymap_overrides)
        await self.push_screen(self.runs_screen)
