"""The run antflow-tui runs itself, served to viewers (``ANTFLOW_SERVE=1 antflow-tui
SCRIPT``), and stops that come from outside the app: a viewer's, another monitor's."""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING

import pytest

from antflow.runstream import Snapshot, Stop, discovery
from antflow.runstream import serve as serving
from antflow.runstream.client import Viewer
from antflow_tui.demo import GatedRun
from antflow_tui.live.runner import MainJob, PipelineJob
from antflow_tui.live.serving import served_if_asked
from antflow_tui.live.source import LiveSource
from tests.tui.apps import ITEMS, until

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """ANTFLOW_SERVE=1 as set when antflow was imported: its environment serving is on,
    for the app to take over (the calls to stop it are listed)."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("ANTFLOW_SERVE", "1")
    stopped: list[str] = []
    monkeypatch.setattr(
        serving, "_stop_serving_from_environment", lambda: stopped.append("stopped")
    )
    return stopped


def source_of(run: GatedRun) -> LiveSource:
    job = PipelineJob("flaky.py", run.pipeline, run.items, len(run.items))
    return LiveSource(job, clock=run.clock, stop_grace=0.0)


async def first(viewer: Viewer, kind: type, condition: object = None) -> object:
    async with asyncio.timeout(20):
        while True:
            message = await viewer.receive()
            assert message is not None, "the connection closed"
            if isinstance(message, kind) and (condition is None or condition(message)):  # type: ignore[operator]
                return message


# Issue 17.9: `ANTFLOW_SERVE=1 antflow-tui flaky.py` published the script as
# `antflow-tui` and lost its total (no bar, no ETA): the app serves its own run.
async def test_the_app_serves_its_run_as_the_script_with_its_total(asked: list[str]) -> None:
    run = GatedRun(list(ITEMS))
    source = source_of(run)
    said: list[tuple[str, bool]] = []
    async with served_if_asked(source, lambda text, error: said.append((text, error))) as server:
        assert server is not None
        assert asked == ["stopped"]  # the engine's own serving of this process is off
        assert server.served is not None
        assert said == [
            (
                f"Serving this run on {server.address}: watch it with antflow-tui attach "
                f"{os.getpid()}",
                False,
            )
        ]
        assert discovery.find(os.getpid()) == server.served
        assert server.served.script == "flaky.py"
        source.start()
        viewer = await Viewer.connect(server.address, server.served.read_token)
        assert viewer.welcome.script == "flaky.py"
        snapshot = await first(viewer, Snapshot, lambda s: s.running)
        assert isinstance(snapshot, Snapshot)
        assert snapshot.total_items == len(ITEMS)
        await viewer.close()
        await source.stop(force=True)
    assert discovery.running() == []


# Issue 17.2: a viewer's stop of the app's run is the app's own stop (accounted as such,
# never a script crash), and the summary names the viewer.
async def test_a_viewers_stop_of_the_apps_run_is_its_own_stop(asked: list[str]) -> None:
    run = GatedRun(list(ITEMS))
    source = source_of(run)
    async with served_if_asked(source, lambda text, error: None) as server:
        assert server is not None
        assert server.served is not None
        assert server.served.control_token is not None
        source.start()
        await until(lambda: source.current is not None)
        viewer = await Viewer.connect(
            server.address, server.served.control_token, client="antflow-tui attach"
        )
        assert await viewer.send(Stop(force=True)) == "Stopped the run at once"
        await until(lambda: source.ended_at is not None)
        # The viewer sees what the app does: items the stop left unfinished, none that
        # the script abandoned itself.
        last = await first(viewer, Snapshot, lambda s: s.stopped and not s.running)
        assert isinstance(last, Snapshot)
        assert last.abandoned == 0
        await viewer.close()
    outcome = source.outcome()
    assert outcome.crash is None
    assert source.stop_requested
    who = f"a viewer (antflow-tui attach, pid {os.getpid()})"
    assert outcome.stopped_by == who
    assert outcome.exit_code == 1
    assert f"stopped by {who}" in outcome.summary()
    assert outcome.unfinished == len(ITEMS)


async def test_a_serve_that_cannot_start_is_said_and_the_run_goes_on(
    asked: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTFLOW_SERVE", "tcp://0.0.0.0:0")
    source = source_of(GatedRun(list(ITEMS)))
    said: list[tuple[str, bool]] = []
    async with served_if_asked(source, lambda text, error: said.append((text, error))) as server:
        assert server is None
    ((text, error),) = said
    assert error
    assert text.startswith("ANTFLOW_SERVE=tcp://0.0.0.0:0: cannot serve this run: refusing")
    assert text.endswith("The run goes on without it.")


async def test_without_antflow_serve_nothing_is_served(tmp_path: Path) -> None:
    source = source_of(GatedRun(list(ITEMS)))
    async with served_if_asked(source, lambda text, error: None) as server:
        assert server is None


# Issue 17.2: the stop now reaches the script's run() as PipelineStopped; the app's own
# stop must still not read as the script raising (exit 2 and a traceback).
async def test_the_apps_own_stop_of_a_scripts_main_is_not_a_crash() -> None:
    run = GatedRun(list(ITEMS))

    async def main() -> None:
        await run.pipeline.run(run.items)

    source = LiveSource(MainJob("main.py", main), clock=run.clock, stop_grace=0.0)
    source.start()
    await until(lambda: source.current is not None)
    await source.stop(force=True)
    outcome = source.outcome()
    assert outcome.crash is None
    assert outcome.stopped_by is None
    assert outcome.unfinished == len(ITEMS)
    assert outcome.exit_code == 1


# Issue 17.2: another monitor's stop (a server the script runs itself) ends the script's
# main() with PipelineStopped: a stop named in the summary, not a crash.
async def test_another_monitors_stop_is_a_stop_named_in_the_summary() -> None:
    run = GatedRun(list(ITEMS))

    async def main() -> None:
        await run.pipeline.run(run.items)

    source = LiveSource(MainJob("main.py", main), clock=run.clock, stop_grace=0.0)
    source.start()
    await until(lambda: source.current is not None)
    await run.pipeline.shutdown(graceful=False, by="a viewer (pid 4242)")
    await until(lambda: source.ended_at is not None)
    outcome = source.outcome()
    assert outcome.crash is None
    assert outcome.stopped_by == "a viewer (pid 4242)"
    assert outcome.exit_code == 1
