"""Pilot tests of the command palette (ctrl+p): every command the screen's keys offer,
once each, with its key, and choosing one does what its key does."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.command import CommandList, CommandPalette

from antflow_tui.screens.item import ItemScreen
from antflow_tui.screens.main import MainScreen
from antflow_tui.widgets.error_panel import ErrorPanel
from tests.tui.apps import until
from tests.tui.recorded import recorded_app, replay_app

if TYPE_CHECKING:
    from textual.screen import Screen

    from antflow_tui.app import AntflowApp

SIZE = (120, 36)
TEXTUALS = {"Theme", "Screenshot", "Maximize", "Minimize"}
"""Textual's own commands, beside ours."""


async def drawn(app: AntflowApp, pilot: Any) -> None:
    await until(lambda: app.state.status is not None)
    app.redraw()
    await pilot.pause()


def offered(screen: Screen[object]) -> dict[str, set[str]]:
    """What `screen`'s keys offer, from its active bindings: title -> keys (each action
    where it runs once)."""
    found: dict[tuple[int, str], tuple[str, set[str]]] = {}
    for key, active in screen.active_bindings.items():
        binding = active.binding
        if binding.id and active.enabled and binding.action != "command_palette":
            title = binding.tooltip or binding.description
            found.setdefault((id(active.node), binding.action), (title, set()))[1].add(key)
    return dict(found.values())


async def palette_lines(app: AntflowApp, pilot: Any) -> list[tuple[str, str]]:
    """Open the palette; every command it lists, as (its first line, its help)."""
    expected = len(offered(app.screen))
    await pilot.press("ctrl+p")
    assert isinstance(app.screen, CommandPalette)
    listed = app.screen.query_one(CommandList)
    # The palette gathers its commands in a worker and shows them in batches.
    for _ in range(200):
        if listed.option_count >= expected:
            break
        await pilot.pause(0.01)
    await pilot.pause(0.05)
    lines = []
    for index in range(listed.option_count):
        first, _, help_line = str(listed.get_option_at_index(index).prompt).partition("\n")
        lines.append((first, help_line))
    return lines


def title_and_keys(line: str) -> tuple[str, str]:
    title, _, keys = line.partition("  ")
    return title, keys


# Issue 17.7: ctrl+p lacked group errors, sort, retry selected, switch pipeline and focus a
# panel, and listed "Keys" twice.
async def test_the_palette_lists_every_key_of_the_main_screen_once_with_its_key() -> None:
    app = recorded_app("two_pipelines")
    async with app.run_test(size=SIZE) as pilot:
        await drawn(app, pilot)
        assert isinstance(app.screen, MainScreen)
        keys = offered(app.screen)
        lines = await palette_lines(app, pilot)
    shown = [title_and_keys(first) for first, _ in lines]
    titles = [title for title, _ in shown]
    assert len(titles) == len(set(titles)), titles
    ours = {title: listed for title, listed in shown if title not in TEXTUALS}
    assert set(ours) == set(keys)
    for title, listed in ours.items():
        assert listed, f"{title} has no key shown"
        assert len(listed.split()) == len(keys[title]), (title, listed, keys[title])
    for wanted in (
        "Group errors",
        "Sort",
        "Reverse sort",
        "Retry the selected failed item",
        "Retry all",
        "Switch pipeline",
        "Focus Stages",
        "Focus Events",
        "Pause or resume the run",
        "Pause or resume the selected stage or worker",
        "Help",
        "Quit",
    ):
        assert wanted in ours, wanted
    assert ours["Group errors"] == "c"
    assert ours["Switch pipeline"] == "s"
    assert "Keys" not in titles
    textual_at = [index for index, title in enumerate(titles) if title in TEXTUALS]
    assert textual_at
    assert min(textual_at) == len(titles) - len(textual_at)  # ours first
    assert titles[: min(textual_at)] == sorted(titles[: min(textual_at)])
    helps = dict((title_and_keys(first)[0], help_line) for first, help_line in lines)
    assert "group failures by type and message" in helps["Group errors"]


async def test_choosing_a_command_does_what_its_key_does() -> None:
    app = recorded_app("mid_run")
    async with app.run_test(size=SIZE) as pilot:
        await drawn(app, pilot)
        panel = app.screen.query_one(ErrorPanel)
        assert panel.view != "groups"
        await pilot.press("ctrl+p")
        await pilot.press(*"group errors")
        await until(lambda: app.screen.query_one(CommandList).option_count > 0)
        await pilot.pause(0.05)
        await pilot.press("enter")
        await until(lambda: isinstance(app.screen, MainScreen) and panel.view == "groups")


async def test_a_remapped_key_shows_in_the_palette() -> None:
    app = recorded_app("mid_run", keymap={"pause": "x"})
    async with app.run_test(size=SIZE) as pilot:
        await drawn(app, pilot)
        lines = await palette_lines(app, pilot)
    assert "Pause or resume the run  x" in [first for first, _ in lines]


async def test_a_drill_down_screen_lists_its_own_keys_and_the_apps() -> None:
    app = recorded_app("mid_run")
    async with app.run_test(size=SIZE) as pilot:
        await drawn(app, pilot)
        app.open_item("page-2")
        await until(lambda: isinstance(app.screen, ItemScreen) and app.screen.detail is not None)
        await pilot.pause()
        keys = offered(app.screen)
        lines = await palette_lines(app, pilot)
    titles = {title_and_keys(first)[0] for first, _ in lines} - TEXTUALS
    assert titles == set(keys)
    assert {"Back", "Retry", "Quit", "Help", "Copy the traceback"} <= titles
    assert "Group errors" not in titles  # a key of the main screen, not of this one


async def test_a_replay_lists_its_scrubber_and_no_live_control() -> None:
    app = replay_app("failures", at=8.0)
    async with app.run_test(size=SIZE) as pilot:
        await drawn(app, pilot)
        lines = await palette_lines(app, pilot)
    titles = {title_and_keys(first)[0] for first, _ in lines}
    assert {"Play/pause", "Seek to a time", "Slower", "Faster"} <= titles
    assert not {"Pause", "Retry the selected failed item", "Retry all"} & titles
