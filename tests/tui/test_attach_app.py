"""The app attached to a run served in this process: the same screen as the live app over
the same run, keys that detach instead of stopping, a stop that asks first, and the
banner of a dropped connection."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from antflow.runstream.serve import RunServer
from antflow_tui.app import AntflowApp, make_app
from antflow_tui.attach import AttachSource, Target
from antflow_tui.demo import GatedRun
from antflow_tui.live.source import _LiveStream
from antflow_tui.options import AppOptions
from antflow_tui.screens.confirm import ConfirmScreen
from tests.tui.apps import ITEMS, finish, gated_app, live, until

if TYPE_CHECKING:
    from pathlib import Path

SIZE = (120, 36)
LIMIT = 20.0


@pytest.fixture(autouse=True)
def private_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    return tmp_path


async def served(run: GatedRun, app: AntflowApp, address: str) -> RunServer:
    """Serve `run` as the live app sees it: a second stream over the same pipeline, its
    snapshots completed as the live source completes its own."""
    source = live(app)
    stream = _LiveStream(
        source._decorate,
        script="demo.py",
        clock=run.clock,
        history=1_000,
        follow_events=False,
        stop_grace=0.0,
    )
    stream.attach(run.pipeline)
    server = RunServer(stream, address=address, token="secret")
    await server.start()
    return server


def attached_app(address: str, **options: Any) -> AntflowApp:
    source = AttachSource(Target(address=address, token="secret"), interval=0.05)
    settings = {"interval": 0.05, "stop_grace": 0.0, **options}
    return make_app(source, AppOptions(**settings))


def _shown(failure: Any) -> tuple[Any, ...]:
    """What the screens show of a failure (an attached one also names its task)."""
    return (failure.pipeline, failure.item, failure.stage, failure.type, failure.message)


def source_of(app: AntflowApp) -> AttachSource:
    assert isinstance(app.source, AttachSource)
    return app.source


@dataclass
class Watched:
    """A gated run in the live app, served on a socket, and an app attached to it."""

    run: GatedRun
    app: AntflowApp
    server: RunServer
    attached: AntflowApp
    source: AttachSource


async def watched(tmp_path: Path) -> Watched:
    address = f"unix:{tmp_path}/job.sock"
    run = GatedRun(ITEMS)
    app = gated_app(run)
    server = await served(run, app, address)
    attached = attached_app(address)
    source = source_of(attached)
    await source.connect()
    return Watched(run, app, server, attached, source)


async def until_same(live_app: AntflowApp, attached: AntflowApp) -> None:
    """Until the attached app holds what the live one does (waiting on what arrives)."""
    source = source_of(attached)

    def same() -> bool:
        live_app.redraw()
        attached.redraw()
        mine, theirs = attached.state, live_app.state
        return (
            theirs.status is not None
            and mine.status is not None
            and mine.snapshots == theirs.snapshots
            and [_shown(f) for f in mine.failures] == [_shown(f) for f in theirs.failures]
            and mine.status.ended == theirs.status.ended
            and len(attached._main.event_log.entries) == len(live_app._main.event_log.entries)  # type: ignore[union-attr]
        )

    try:
        async with asyncio.timeout(LIMIT):
            while not same():
                source.changed.clear()
                await source.changed.wait()
    except TimeoutError:
        mine, theirs = attached.state, live_app.state
        raise AssertionError(
            f"attached {mine.status} {mine.snapshots} {len(mine.failures)}"
            f" {len(attached._main.event_log.entries)}\n"  # type: ignore[union-attr]
            f"live {theirs.status} {theirs.snapshots} {len(theirs.failures)}"
            f" {len(live_app._main.event_log.entries)}"  # type: ignore[union-attr]
        ) from None


async def test_the_attached_screen_is_the_live_one(tmp_path: Path) -> None:
    w = await watched(tmp_path)
    run, app, server, attached = w.run, w.app, w.server, w.attached
    async with app.run_test(size=SIZE) as pilot, attached.run_test(size=SIZE) as seen:
        await finish(app, run, failing={"Fetch": 2, "Parse": 5})
        await until_same(app, attached)
        # Trends are each viewer's own history of the snapshots it saw, at its own
        # interval: the one part of the screen that may differ. Compared without them.
        for viewer in (app, attached):
            viewer.redraw()  # takes what arrived since: no frame may bring trends after
            viewer.state.history.reset()
            viewer.redraw()
        await pilot.pause()
        await seen.pause()
        live_svg = app.export_screenshot()
        attached_svg = attached.export_screenshot()
        (tmp_path / "live.svg").write_text(live_svg)
        (tmp_path / "attached.svg").write_text(attached_svg)
        assert attached_svg == live_svg
    await source_of(attached).close()
    await server.close()


async def test_quitting_detaches_and_the_stop_key_asks_first(tmp_path: Path) -> None:
    w = await watched(tmp_path)
    run, app, server, attached, source = w.run, w.app, w.server, w.attached, w.source
    async with app.run_test(size=SIZE), attached.run_test(size=SIZE) as seen:
        await until(lambda: live(app).current is not None)
        await until_same(app, attached)
        assert attached.check_action("stop_job", ())
        await seen.press("X")
        await until(lambda: isinstance(attached.screen, ConfirmScreen))
        await seen.press("n")
        await until(lambda: not isinstance(attached.screen, ConfirmScreen))
        assert run.pipeline.is_running
        await seen.press("X")
        await until(lambda: isinstance(attached.screen, ConfirmScreen))
        await seen.press("y")
        async with asyncio.timeout(LIMIT):
            while run.pipeline.is_running or attached.state.running:
                source.changed.clear()
                attached.redraw()
                await source.changed.wait()
        # ctrl+c (and q) leave the job alone: they detach.
        await seen.press("ctrl+c")
        await until(lambda: not attached.is_running)
    await source.close()
    await server.close()


async def test_a_read_only_viewer_has_no_control_keys(tmp_path: Path) -> None:
    address = f"unix:{tmp_path}/job.sock"
    run = GatedRun(ITEMS)
    app = gated_app(run)
    server = await served(run, app, address)
    assert server.served is not None
    source = AttachSource(Target(address=address, token=server.served.read_token))
    attached = make_app(source, AppOptions(interval=0.05))
    await source.connect()
    async with app.run_test(size=SIZE), attached.run_test(size=SIZE) as seen:
        await until(lambda: live(app).current is not None)
        await until_same(app, attached)
        assert not attached.check_action("stop_job", ())
        main = attached.screen
        assert not main.check_action("toggle_pause", ())
        assert not main.check_action("retry", ())
        await seen.press("X")
        await seen.pause()
        assert not isinstance(attached.screen, ConfirmScreen)
    await source.close()
    await server.close()


async def test_the_banner_says_disconnected_and_the_state_stays(tmp_path: Path) -> None:
    w = await watched(tmp_path)
    run, app, server, attached, source = w.run, w.app, w.server, w.attached, w.source
    async with app.run_test(size=SIZE), attached.run_test(size=SIZE) as seen:
        await until(lambda: live(app).current is not None)
        await until_same(app, attached)
        before = dict(attached.state.snapshots)
        await server.close()
        async with asyncio.timeout(LIMIT):
            while source.connected:
                source.changed.clear()
                await source.changed.wait()
        attached.redraw()
        await seen.pause()
        banner = attached._main.query_one("#banner")  # type: ignore[union-attr]
        assert "Disconnected from demo.py" in str(banner.render())
        assert attached.state.snapshots == before
        assert not attached.check_action("stop_job", ())
    await source.close()
    for gate in run.gates.values():
        if not gate.done():
            gate.cancel()


async def test_export_in_a_browser_downloads_through_the_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    from pathlib import Path as RealPath

    w = await watched(tmp_path)
    run, app, server, attached = w.run, w.app, w.server, w.attached
    delivered: dict[str, Any] = {}

    def deliver(path: Any, **settings: Any) -> str:
        delivered["lines"] = RealPath(path).read_text().splitlines()
        delivered.update(settings)
        return "key"

    monkeypatch.setattr(AntflowApp, "is_web", property(lambda _self: True))
    monkeypatch.setattr(attached, "deliver_binary", deliver)
    async with app.run_test(size=SIZE), attached.run_test(size=SIZE) as seen:
        await finish(app, run, failing={"Fetch": 2})
        await until_same(app, attached)
        await seen.press("e")
        await until(lambda: "lines" in delivered)
        assert not isinstance(attached.screen, ConfirmScreen)
    header, *items = (json.loads(line) for line in delivered["lines"])
    assert header["antflow_export"] == 1
    assert [(item["id"], item["status"]) for item in items] == [("page-2", "failed")]
    assert delivered["save_filename"].endswith(".jsonl")
    assert not list(RealPath.cwd().glob("antflow-export-*.jsonl"))
    await source_of(attached).close()
    await server.close()


# Issue 17.1: the job's end (here, the connection dropping) came while a drill-down screen
# was open; back on the main screen, the banner never said "Disconnected".
async def test_the_main_screen_shows_a_disconnection_that_came_under_a_drill_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from antflow_tui.screens.stage import StageScreen

    w = await watched(tmp_path)
    run, app, server, attached, source = w.run, w.app, w.server, w.attached, w.source
    async with app.run_test(size=SIZE), attached.run_test(size=SIZE) as seen:
        await until(lambda: live(app).current is not None)
        await until_same(app, attached)
        main = attached.screen
        await seen.press("1", "enter")
        assert isinstance(attached.screen, StageScreen)
        # The job is not found again: nothing moves after the disconnection's one frame.
        monkeypatch.setattr(Target, "locate", lambda _target: None)
        await server.close()
        async with asyncio.timeout(LIMIT):
            while source.connected:
                source.changed.clear()
                await source.changed.wait()
        attached.tick()  # the frame timer: the disconnection is drawn under the stage
        assert not source.dirty
        await seen.press("escape")
        await seen.pause()
        assert attached.screen is main
        banner = main.query_one("#banner")
        assert "Disconnected from demo.py" in str(banner.render())
    await source.close()
    for gate in run.gates.values():
        if not gate.done():
            gate.cancel()
