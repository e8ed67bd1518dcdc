"""Unit tests of antflow.runstream.stacks.await_stack on real tasks gated on asyncio.Events."""

from __future__ import annotations

import asyncio

from antflow.runstream.stacks import await_stack


async def outer(reached: asyncio.Event, gate: asyncio.Event) -> str:
    return await middle(reached, gate)


async def middle(reached: asyncio.Event, gate: asyncio.Event) -> str:
    result = await inner(reached, gate)
    return result


async def inner(reached: asyncio.Event, gate: asyncio.Event) -> str:
    reached.set()
    await gate.wait()
    return "done"


async def waits_for_task(started: asyncio.Event, other: asyncio.Task[str]) -> str:
    started.set()
    return await other


async def test_frames_outermost_first_with_functions_and_lines() -> None:
    reached, gate = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(outer(reached, gate))
    # `reached.set()` and `await gate.wait()` run in one step of the task, so once the
    # test wakes the task is suspended on the gate.
    await reached.wait()
    try:
        stack = await_stack(task)
    finally:
        gate.set()
    assert await task == "done"

    ours = [frame for frame in stack.frames if frame.filename == __file__]
    assert [frame.function for frame in ours] == ["outer", "middle", "inner"]
    assert [frame.line for frame in ours] == [
        "return await middle(reached, gate)",
        "result = await inner(reached, gate)",
        "await gate.wait()",
    ]
    assert stack.frames[: len(ours)] == tuple(ours)
    lines = [frame.lineno for frame in ours]
    assert lines == sorted(lines)
    assert all(frame.lineno > 0 for frame in ours)
    # Below ours: Event.wait itself, in asyncio, waiting on a future.
    assert stack.frames[-1].function == "Event.wait"
    assert stack.frames[-1].filename.endswith("locks.py")
    assert stack.awaiting == "a future"


async def test_a_task_awaiting_another_task_names_it() -> None:
    reached, gate, started = asyncio.Event(), asyncio.Event(), asyncio.Event()
    other = asyncio.create_task(inner(reached, gate), name="the-other-one")
    task = asyncio.create_task(waits_for_task(started, other))
    await reached.wait()
    await started.wait()
    try:
        stack = await_stack(task)
    finally:
        gate.set()
    assert await task == "done"
    assert [frame.function for frame in stack.frames] == ["waits_for_task"]
    assert stack.frames[0].line == "return await other"
    assert stack.awaiting == "task the-other-one"


async def test_a_finished_task_has_no_frames() -> None:
    task = asyncio.create_task(asyncio.sleep(0, result="x"))
    assert await task == "x"
    stack = await_stack(task)
    assert stack.frames == ()
    assert stack.awaiting == ""


async def test_a_task_not_started_yet_shows_only_its_coroutine() -> None:
    reached, gate = asyncio.Event(), asyncio.Event()
    gate.set()
    task = asyncio.create_task(outer(reached, gate))
    stack = await_stack(task)  # created, but the loop has not run it yet
    assert await task == "done"
    assert [frame.function for frame in stack.frames] == ["outer"]
    assert stack.awaiting == ""


async def test_a_deep_chain_is_cut() -> None:
    reached, gate = asyncio.Event(), asyncio.Event()

    async def dive(depth: int) -> None:
        if depth:
            await dive(depth - 1)
        else:
            reached.set()
            await gate.wait()

    task = asyncio.create_task(dive(200))
    await reached.wait()
    try:
        stack = await_stack(task)
    finally:
        gate.set()
    await task
    assert 0 < len(stack.frames) <= 64
    assert all(frame.function.endswith("dive") for frame in stack.frames)
