"""User objects whose ``__str__`` or ``__repr__`` raise: one failure, never a hang.

Regression tests for issue 18, points 8 and 9: `antflow._safe` is the one door every
``str()``/``repr()`` of a user object goes through.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import pytest

import antflow
from antflow import Pipeline, Stage, StatusTracker
from antflow._safe import safe_repr, safe_str
from antflow.context import set_task_status
from antflow.exceptions import TaskFailedError
from antflow.runstream import ReprKey, item_key
from antflow.runstream.convert import error_message, value_repr
from antflow.runstream.fileformat import Recording
from tests.engine.helpers import no_wait

if TYPE_CHECKING:
    from pathlib import Path


class Unprintable(ValueError):
    """An exception whose message cannot be read."""

    def __str__(self) -> str:
        raise RuntimeError("str of the error")


class BadNotes(ValueError):
    """An exception whose traceback cannot be formatted either."""

    def __str__(self) -> str:
        raise RuntimeError("str of the error")

    @property
    def __notes__(self) -> list[str]:
        raise RuntimeError("notes")


class Key:
    """A hashable id whose repr raises."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __hash__(self) -> int:
        return hash(self.n)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Key) and other.n == self.n

    def __repr__(self) -> str:
        raise RuntimeError("repr of the id")


def test_safe_str_and_repr_name_what_raised() -> None:
    assert safe_str(Unprintable()) == "<Unprintable: str() raised RuntimeError>"
    text = safe_repr(Key(1))
    assert text.startswith("<Key object at 0x")
    assert text.endswith(": repr() raised RuntimeError>")
    # Two objects whose repr raises still read differently (they are different ids).
    assert safe_repr(Key(1)) != safe_repr(Key(2)) or Key(1) is Key(2)
    assert safe_str("plain") == "plain"
    assert safe_repr((1, "a")) == "(1, 'a')"


def test_a_str_subclass_returned_by_str_becomes_a_plain_str() -> None:
    class Loud(str):
        def __len__(self) -> int:
            raise RuntimeError

    class Holder:
        def __str__(self) -> str:
            return Loud("text")

    text = safe_str(Holder())
    assert type(text) is str
    assert text == "text"


async def fail_some(x: int) -> int:
    if x == 3:
        raise Unprintable()
    if x == 5:
        raise BadNotes()
    return x


# Issue 18.8: an exception whose __str__ raises hung run() for ever with a tracker (the
# item was never counted) and made run() raise the __str__'s error without one.
@pytest.mark.parametrize("with_tracker", [True, False])
async def test_an_exception_whose_str_raises_is_one_failure_with_a_placeholder(
    with_tracker: bool,
) -> None:
    tracker = StatusTracker() if with_tracker else None
    pipeline = Pipeline(
        [Stage("S", 2, [fail_some], task_attempts=2)], status_tracker=tracker, sleep=no_wait
    )
    results = await asyncio.wait_for(pipeline.run(range(8)), 10)
    assert sorted(r.id for r in results) == [0, 1, 2, 4, 6, 7]
    assert sorted(pipeline.failed_item_ids()) == [3, 5]
    summary = pipeline.get_error_summary()
    messages = {f.item_id: f.error for f in summary.failed_items}
    assert messages == {
        3: "<Unprintable: str() raised RuntimeError>",
        5: "<BadNotes: str() raised RuntimeError>",
    }
    if tracker is not None:
        (error,) = tracker.get_errors(5)[-1:]
        assert "BadNotes" in error.traceback


# Issue 18.8: listeners and callbacks get the placeholder too (their events carry the
# message), and the recording's error record.
async def test_events_and_the_recording_carry_the_placeholder_message(tmp_path: Path) -> None:
    seen: list[str] = []
    tracker = StatusTracker(on_status_change=lambda e: seen.append(e.metadata.get("error", "")))
    pipeline = Pipeline([Stage("S", 1, [fail_some], task_attempts=1)], status_tracker=tracker)
    path = tmp_path / "run.jsonl"
    async with antflow.record(path):
        await asyncio.wait_for(pipeline.run([3]), 10)
    await tracker._drain()
    assert "<Unprintable: str() raised RuntimeError>" in seen
    with Recording.open(path) as recording:
        detail = recording.item(1, 0)
    assert [e.message for e in detail.errors] == ["<Unprintable: str() raised RuntimeError>"]
    assert error_message(Unprintable()) == "<Unprintable: str() raised RuntimeError>"


def test_texts_built_from_user_objects_never_raise() -> None:
    assert "repr() raised RuntimeError" in str(TaskFailedError("t", Unprintable(Key(1))))
    key = item_key(Key(1))
    assert isinstance(key, ReprKey)
    assert key.repr.endswith("repr() raised RuntimeError>")
    assert value_repr(Key(1)).startswith("<Key ")
    set_task_status(Unprintable())  # outside a worker: nothing, and nothing raised


async def test_a_task_status_whose_str_raises_is_shown_as_a_placeholder() -> None:
    shown: list[Any] = []

    async def task(x: int) -> int:
        set_task_status(Unprintable())
        shown.append(pipeline.get_worker_states()["S-W0"].current_task)
        return x

    pipeline = Pipeline([Stage("S", 1, [task])])
    await pipeline.run([1])
    assert shown == ["<Unprintable: str() raised RuntimeError>"]


async def test_a_listener_whose_repr_raises_is_detached_with_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Listener:
        def __call__(self, event: Any) -> None:
            raise ValueError("listener")

        def __repr__(self) -> str:
            raise RuntimeError("repr of the listener")

    tracker = StatusTracker()
    tracker.add_listener(Listener())
    pipeline = Pipeline([Stage("S", 1, [fail_some])], status_tracker=tracker)
    with caplog.at_level(logging.ERROR):
        await pipeline.run([1])
    (record,) = [r for r in caplog.records if "listener" in r.getMessage()]
    assert "repr() raised RuntimeError" in record.getMessage()


# Issue 18.9: one id whose repr raises emptied the recording (every flush failed): now it
# costs nothing, written under a placeholder key.
async def test_an_id_whose_repr_raises_costs_the_recording_nothing(tmp_path: Path) -> None:
    items: list[Any] = [{"id": i, "value": i} for i in range(2_000)]
    items[500] = {"id": Key(500), "value": 500}
    pipeline = Pipeline([Stage("S", 4, [fail_some], task_attempts=1)])
    path = tmp_path / "run.jsonl"
    async with antflow.record(path):
        await asyncio.wait_for(pipeline.run(items), 30)
    with Recording.open(path) as recording:
        assert recording.complete
        completed = [r.item for r in recording.records() if getattr(r, "kind", None) == "completed"]
    assert len(completed) == 1_998
    (placeholder,) = [i for i in completed if isinstance(i, ReprKey)]
    assert placeholder.repr.endswith("repr() raised RuntimeError>")
