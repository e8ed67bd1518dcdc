"""Watchdog: a thread that notices when the event loop stops answering, and what held it.

A script's code that does not await (`time.sleep`, a busy loop, a slow C call) freezes
everything on the loop, the app included: no frame is drawn and no key is handled. The
watchdog pings the loop every `period` seconds from its own thread. While a ping goes
unanswered it samples what the loop's thread is running (its asyncio task and the
script's line), so that:

- when the loop answers again, `on_stall` gets the stall and the code that held it
  (the task that was running, not one that merely waited through it), once per stall;
- when the stop key is pressed twice (or a SIGTERM/SIGHUP arrives) while the loop cannot
  answer, `emergency(reason)` is called from this thread: the app gives the terminal
  back, writes what it has, and exits. A first press gets `hint` (the loop cannot show
  anything itself).
"""

from __future__ import annotations

import asyncio
import os
import sys
import sysconfig
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType

PERIOD: Final = 0.1
"""Seconds between pings."""
LATE: Final = 0.5
"""A ping unanswered this long means the loop is blocked."""
SIGNAL_GRACE: Final = 5.0
"""Seconds past the stop's own grace a signal gives the app to end by itself."""


@dataclass(frozen=True, slots=True)
class Blame:
    """What the loop's thread was running while the loop did not answer."""

    task: str
    """The asyncio task's name ('' when a plain callback ran)."""
    where: str
    """The script's innermost line: 'stall.py:10 in parse' ('' when none was found)."""
    detail: str = ""
    """What the app knows of the task: 'worker Parse-W1 on item 5' ('' when nothing)."""

    def describe(self) -> str:
        """'worker Parse-W1 on item 5, at stall.py:10 in parse'."""
        who = self.detail or (f"task {self.task}" if self.task else "")
        where = f"at {self.where}" if self.where else ""
        return ", ".join(part for part in (who, where) if part)


@dataclass(frozen=True, slots=True)
class LoopStall:
    """One stretch of time the loop did not answer."""

    seconds: float
    blame: Blame | None
    """The code seen most often while it lasted, if any was the script's."""


def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    keys = ("stdlib", "platstdlib", "purelib", "platlib", "scripts")
    roots = {paths.get(key, "") for key in keys}
    here = Path(__file__).resolve().parent
    roots |= {str(here), str(here.parent / "antflow")}
    return tuple(root.rstrip(os.sep) + os.sep for root in roots if root)


class Watchdog:
    """Pings `loop` from a thread (see the module docstring).

    Args:
        loop: The event loop to watch (the app's).
        on_stall: Called on the loop when it answers after a stall blamed on the script.
        describe: Called from the watchdog thread with a task's name; says what the app
            knows of it ('worker Parse-W1 on item 5'), or '' to leave it to the line.
        emergency: Called from the watchdog thread to end the app without the loop;
            None: never (the stop key and signals are then the loop's business only).
        hint: Called from the watchdog thread on a first stop-key press the loop cannot
            handle.
        stop_keys: The keys bound to "stop" (ctrl+c unless remapped).
        period: Seconds between pings.
        late: Seconds a ping must wait to count as a stall.
        signal_deadline: Seconds a signal gives the app to end by itself.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        on_stall: Callable[[LoopStall], None],
        describe: Callable[[str], str] = lambda _task: "",
        emergency: Callable[[str], None] | None = None,
        hint: Callable[[str], None] | None = None,
        stop_keys: tuple[str, ...] = ("ctrl+c",),
        period: float = PERIOD,
        late: float = LATE,
        signal_deadline: float = SIGNAL_GRACE,
    ) -> None:
        self.loop = loop
        self.on_stall = on_stall
        self.describe = describe
        self.emergency = emergency
        self.hint = hint
        self.stop_keys = stop_keys
        self.period = period
        self.late = late
        self.signal_deadline = signal_deadline
        self.sampled = threading.Event()
        """Set after each sample of a blocked loop (tests wait on it)."""
        self._loop_thread = threading.get_ident()
        self._lock = threading.Lock()
        self._sent: float | None = None
        self._samples: Counter[Blame] = Counter()
        self._presses = 0
        self._hinted = False
        self._signal: tuple[str, float] | None = None
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._run, name="antflow-tui watchdog", daemon=True)
        self._roots = _library_roots()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (the app is closing); returns once the thread has ended."""
        self._finished.set()
        if self._thread.is_alive() and self._thread.ident != threading.get_ident():
            self._thread.join()

    # ---------------------------------------------------------------- told by others

    def key_pressed(self, key: str) -> None:
        """The driver's input thread read `key` (it reaches the loop only if it answers)."""
        if key in self.stop_keys:
            with self._lock:
                self._presses += 1

    def signalled(self, name: str) -> None:
        """A signal asked the app to stop (called from the signal handler)."""
        if self._signal is None:
            self._signal = (name, time.monotonic())

    # ---------------------------------------------------------------- the thread

    def _run(self) -> None:
        while not self._finished.wait(self.period):
            now = time.monotonic()
            sent = self._sent
            blocked = sent is not None and now - sent >= self.late
            if sent is None:
                self._sent = now
                try:
                    self.loop.call_soon_threadsafe(self._answered)
                except RuntimeError:
                    return  # the loop has closed
            elif blocked:
                self._sample()
            self._act(now, blocked=blocked)

    def _act(self, now: float, *, blocked: bool) -> None:
        emergency = self.emergency
        if emergency is None:
            return
        signal = self._signal
        if signal is not None and (blocked or now - signal[1] >= self.signal_deadline):
            self._finished.set()
            emergency(f"{signal[0]} (the event loop did not answer)" if blocked else signal[0])
            return
        with self._lock:
            presses, hinted = self._presses, self._hinted
            if blocked and presses == 1:
                self._hinted = True
        if blocked and presses >= 2:
            self._finished.set()
            emergency("a second ctrl+c while the script blocked the event loop")
        elif blocked and presses == 1 and not hinted and self.hint is not None:
            blame = self.blame
            self.hint("" if blame is None else blame.describe())

    def _answered(self) -> None:
        """On the loop: the ping came back."""
        sent = self._sent
        with self._lock:
            samples, self._samples = self._samples, Counter()
            self._presses = 0
            self._hinted = False
        self._sent = None
        if sent is None:
            return
        waited = time.monotonic() - sent
        if waited >= self.late and samples:
            blame = samples.most_common(1)[0][0]
            if blame.where or blame.detail:
                self.on_stall(LoopStall(waited, blame))

    @property
    def blame(self) -> Blame | None:
        """What has held the loop most often in the stall going on now, if any."""
        with self._lock:
            return self._samples.most_common(1)[0][0] if self._samples else None

    def _sample(self) -> None:
        frame = sys._current_frames().get(self._loop_thread)
        task = asyncio.current_task(self.loop)
        name = "" if task is None else task.get_name()
        blame = Blame(name, self._script_line(frame), self.describe(name) if name else "")
        with self._lock:
            self._samples[blame] += 1
        self.sampled.set()

    def _script_line(self, frame: FrameType | None) -> str:
        """The innermost frame outside the standard library, installed packages, antflow
        and antflow-tui: the script's own line."""
        while frame is not None:
            filename = frame.f_code.co_filename
            if not filename.startswith(self._roots) and not filename.startswith("<frozen"):
                return f"{Path(filename).name}:{frame.f_lineno} in {frame.f_code.co_name}"
            frame = frame.f_back
        return ""
