"""Unit tests of antflow_tui.hosting.watchdog on a real event loop, blocked on purpose.

Blocking code here waits on a `threading.Event` the watchdog sets (it has sampled, it
called `emergency`): the loop is held exactly until the watchdog has acted, with no timed
sleep. The `wait(30)` bounds only turn a bug into a failure instead of a hang.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

from antflow_tui.hosting.watchdog import LoopStall, Watchdog

if TYPE_CHECKING:
    from collections.abc import Callable

BOUND = 30.0


async def spin(condition: Callable[[], bool], steps: int = 200_000) -> None:
    """Yield to the loop until `condition()` holds (the watchdog's answer arrives)."""
    for _ in range(steps):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("never happened")


def watchdog(**settings: object) -> tuple[Watchdog, list[LoopStall], list[str], list[str]]:
    stalls: list[LoopStall] = []
    reasons: list[str] = []
    hints: list[str] = []
    dog = Watchdog(
        asyncio.get_running_loop(),
        on_stall=stalls.append,
        describe=lambda name: f"worker of {name}" if name.startswith("antflow ") else "",
        emergency=settings.pop("emergency", reasons.append),  # type: ignore[arg-type]
        hint=hints.append,
        late=0.05,
        period=0.01,
        **settings,  # type: ignore[arg-type]
    )
    dog.start()
    return dog, stalls, reasons, hints


async def test_a_stall_is_reported_once_blaming_the_task_and_line_that_held_the_loop() -> None:
    dog, stalls, _reasons, _hints = watchdog()

    async def crunch() -> None:
        dog.sampled.wait(BOUND)  # the fault: code that does not await

    async def bystander() -> None:
        await asyncio.sleep(0)

    try:
        waiting = asyncio.get_running_loop().create_task(bystander(), name="antflow Fetch-W0")
        await asyncio.get_running_loop().create_task(crunch(), name="antflow Parse-W1")
        await waiting
        await spin(lambda: bool(stalls))
    finally:
        dog.stop()
    (stall,) = stalls
    assert stall.seconds >= 0.05
    assert stall.blame is not None
    assert stall.blame.task == "antflow Parse-W1"
    assert stall.blame.detail == "worker of antflow Parse-W1"
    assert stall.blame.where.startswith("test_watchdog.py:")
    assert stall.blame.where.endswith(" in crunch")
    assert stall.blame.describe() == f"worker of antflow Parse-W1, at {stall.blame.where}"


async def test_a_stall_in_no_code_of_the_script_is_not_reported() -> None:
    dog, stalls, _reasons, _hints = watchdog()
    try:
        # A plain callback in the standard library: no task, no line of the script.
        asyncio.get_running_loop().call_soon(dog.sampled.wait, BOUND)
        await asyncio.sleep(0)
        answered = dog.sampled.is_set()
        await spin(lambda: dog._sent is None)
    finally:
        dog.stop()
    assert answered
    assert stalls == []


async def test_two_stop_keys_while_the_loop_is_blocked_call_the_emergency() -> None:
    ended = threading.Event()
    reasons: list[str] = []

    def emergency(reason: str) -> None:
        reasons.append(reason)
        ended.set()

    dog, _stalls, _reasons, _hints = watchdog(emergency=emergency)
    try:
        dog.key_pressed("ctrl+c")
        dog.key_pressed("q")  # not the stop key
        dog.key_pressed("ctrl+c")
        ended.wait(BOUND)  # the loop is held until the watchdog acts
    finally:
        dog.stop()
    assert reasons == ["a second ctrl+c while the script blocked the event loop"]


async def test_one_stop_key_while_blocked_shows_the_hint_once() -> None:
    hinted = threading.Event()
    dog, _stalls, reasons, hints = watchdog()
    dog.hint = lambda text: (hints.append(text), hinted.set())  # type: ignore[assignment]

    async def crunch() -> None:
        dog.key_pressed("ctrl+c")
        hinted.wait(BOUND)
        dog.sampled.clear()
        dog.sampled.wait(BOUND)  # one more sample: no second hint

    try:
        await asyncio.get_running_loop().create_task(crunch(), name="antflow Parse-W0")
    finally:
        dog.stop()
    assert len(hints) == 1
    assert "worker of antflow Parse-W0" in hints[0]
    assert reasons == []


async def test_presses_the_loop_answered_do_not_add_up() -> None:
    dog, _stalls, reasons, _hints = watchdog()
    try:
        dog.key_pressed("ctrl+c")
        await spin(lambda: dog._presses == 0)  # the loop answered: that press was handled
        dog.key_pressed("ctrl+c")
        dog.sampled.wait(BOUND)
        dog.sampled.clear()
        dog.sampled.wait(BOUND)
    finally:
        dog.stop()
    assert reasons == []


async def test_a_signal_while_the_loop_is_blocked_calls_the_emergency_at_once() -> None:
    ended = threading.Event()
    reasons: list[str] = []

    def emergency(reason: str) -> None:
        reasons.append(reason)
        ended.set()

    dog, _stalls, _reasons, _hints = watchdog(emergency=emergency, signal_deadline=BOUND)
    try:
        dog.signalled("SIGTERM")
        ended.wait(BOUND)
    finally:
        dog.stop()
    assert reasons == ["SIGTERM (the event loop did not answer)"]


async def test_a_signal_the_app_does_not_finish_in_time_calls_the_emergency() -> None:
    ended = threading.Event()
    reasons: list[str] = []

    def emergency(reason: str) -> None:
        reasons.append(reason)
        ended.set()

    dog, _stalls, _reasons, _hints = watchdog(emergency=emergency, signal_deadline=0.05)
    try:
        dog.signalled("SIGHUP")
        await spin(ended.is_set, steps=5_000_000)  # the loop goes on answering meanwhile
    finally:
        dog.stop()
    assert reasons == ["SIGHUP"]


async def test_without_an_emergency_nothing_ends_the_app() -> None:
    dog, _stalls, _reasons, _hints = watchdog(emergency=None)
    try:
        dog.key_pressed("ctrl+c")
        dog.key_pressed("ctrl+c")
        dog.signalled("SIGTERM")
        dog.sampled.wait(BOUND)
        dog.sampled.clear()
        dog.sampled.wait(BOUND)
    finally:
        dog.stop()
