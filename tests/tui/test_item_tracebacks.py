"""Pilot tests of the item screen's tracebacks: the user's frames marked, library frames
folded and unfolded, the traceback copied, the editor opened at the user's frame."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from antflow.runstream.records import ErrorRecord, ItemDetail
from antflow_tui.app import AntflowApp, make_app
from antflow_tui.options import AppOptions
from antflow_tui.screens.item import ItemScreen
from tests.tui.apps import text_of, until
from tests.tui.recorded import RecordedSource
from tests.tui.test_tracebacks import READ_TIMEOUT, STDLIB, VENV

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

    from antflow.runstream.records import ItemKey

SIZE = (120, 48)
ITEM = "page-7"


def failing_at(script: Path) -> str:
    """A traceback through `script` (a file that exists), line 3, then httpx."""
    return (
        "Traceback (most recent call last):\n"
        f'  File "{script}", line 3, in fetch\n'
        "    response = await client.get(url)\n"
        + "".join(
            f'  File "{VENV}/httpx/_client.py", line {1700 + n}, in send\n    return x\n'
            for n in range(5)
        )
        + f'  File "{STDLIB}/contextlib.py", line 158, in __exit__\n    self.gen.throw(v)\n'
        + "httpx.ReadTimeout: [red]timed out[/red]\n"
    )


class OneItem(RecordedSource):
    """A recording's run, where item `ITEM` failed with the tracebacks given."""

    def __init__(self, *tracebacks: str) -> None:
        super().__init__("mid_run")
        self.errors = tuple(
            ErrorRecord(
                number=100 + attempt,
                pipeline=1,
                at=0.0,
                item=ITEM,
                stage="Fetch",
                task="fetch",
                attempt=attempt,
                type="httpx.ReadTimeout",
                message="timed out",
                traceback=traceback,
            )
            for attempt, traceback in enumerate(tracebacks, start=1)
        )

    async def item(self, pipeline: int, item: ItemKey) -> ItemDetail:
        if item != ITEM:
            return await super().item(pipeline, item)
        return ItemDetail(
            pipeline=1, item=ITEM, known=True, status="failed", stage="Fetch", errors=self.errors
        )


async def opened(app: AntflowApp, pilot: Any) -> ItemScreen:
    await until(lambda: app.state.status is not None)
    app.open_item(ITEM)
    await until(lambda: isinstance(app.screen, ItemScreen) and app.screen.detail is not None)
    await pilot.pause()
    assert isinstance(app.screen, ItemScreen)
    return app.screen


def shown(screen: ItemScreen) -> str:
    return text_of(screen.query_one("#item-tracebacks"))


def footer(app: AntflowApp) -> set[str]:
    return {active.binding.description for active in app.screen.active_bindings.values()}


# Issue 17.10: tracebacks were one grey colour: a ReadTimeout is ~40 lines of httpcore and
# anyio before scrape.py", line 64.
async def test_library_frames_fold_and_enter_unfolds_them() -> None:
    app = make_app(OneItem(READ_TIMEOUT), AppOptions(interval=0.05))
    async with app.run_test(size=SIZE) as pilot:
        screen = await opened(app, pilot)
        text = shown(screen)
        assert '› File "/home/ana/project/scrape.py", line 64, in fetch' in text
        assert "… 12 frames in httpcore, anyio, contextlib (⏎: all frames)" in text
        assert "http11.py" not in text
        assert "All frames" in footer(app)
        await pilot.press("enter")
        await until(lambda: "http11.py" in shown(screen))
        assert "frames in" not in shown(screen)
        await pilot.press("enter")
        await until(lambda: "http11.py" not in shown(screen))


async def test_the_users_frame_is_styled_apart_from_library_frames() -> None:
    app = make_app(OneItem(READ_TIMEOUT), AppOptions(interval=0.05))
    async with app.run_test(size=SIZE) as pilot:
        screen = await opened(app, pilot)
        await pilot.press("enter")
        await until(lambda: "http11.py" in shown(screen))
        body = screen.query_one("#item-tracebacks").content.renderables[1]  # type: ignore[attr-defined]
        lines = list(body.split("\n"))
        own = next(line for line in lines if "scrape.py" in line.plain)
        library = next(line for line in lines if "http11.py" in line.plain)
        assert own.get_style_at_offset(app.console, 3) != library.get_style_at_offset(
            app.console, 3
        )


async def test_c_copies_the_last_traceback_as_it_was_written(tmp_path: Path) -> None:
    script = tmp_path / "scrape.py"
    script.write_text("# the user's script\n")
    first, last = READ_TIMEOUT, failing_at(script)
    app = make_app(OneItem(first, last), AppOptions(interval=0.05))
    copied: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        await opened(app, pilot)
        app.copy_to_clipboard = copied.append  # type: ignore[method-assign]
        await pilot.press("c")
        await pilot.pause()
    assert copied == [last]


async def test_o_opens_the_editor_at_the_users_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "scrape.py"
    script.write_text("import httpx\n\nresponse = await client.get(url)\n")
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", "code --wait")
    app = make_app(OneItem(READ_TIMEOUT, failing_at(script)), AppOptions(interval=0.05))
    launched: list[list[str]] = []

    async def launch(command: list[str]) -> int:
        launched.append(command)
        return 0

    async with app.run_test(size=SIZE) as pilot:
        screen = await opened(app, pilot)
        screen.launch = launch
        await pilot.press("o")
        await until(lambda: bool(launched))
    assert launched == [["code", "--wait", "+3", str(script)]]


async def test_without_editor_variables_vi_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "job.py"
    script.write_text("x\n")
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.delenv("EDITOR", raising=False)
    app = make_app(OneItem(failing_at(script)), AppOptions(interval=0.05))
    launched: list[list[str]] = []

    async def launch(command: list[str]) -> int:
        launched.append(command)
        return 0

    async with app.run_test(size=SIZE) as pilot:
        screen = await opened(app, pilot)
        screen.launch = launch
        await pilot.press("o")
        await until(lambda: bool(launched))
    assert launched == [["vi", "+3", str(script)]]


async def test_a_frame_not_on_this_machine_is_not_opened() -> None:
    # READ_TIMEOUT's scrape.py (under /home/ana) is not here: a recording from elsewhere.
    app = make_app(OneItem(READ_TIMEOUT), AppOptions(interval=0.05))
    launched: list[list[str]] = []

    async def launch(command: list[str]) -> int:
        launched.append(command)
        return 0

    async with app.run_test(size=SIZE) as pilot:
        screen = await opened(app, pilot)
        screen.launch = launch
        await pilot.press("o")
        await until(lambda: bool(app._notifications))
        await pilot.pause()
    assert launched == []
    said = [notification.message for notification in app._notifications]
    assert any("is not on this machine" in message for message in said), said
