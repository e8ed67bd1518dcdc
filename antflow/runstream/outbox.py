"""What one viewer of a served run may make the job hold, and how often it may ask.

A viewer that reads slowly (or not at all) must cost the job a bounded amount, whatever
it does: lines waiting for it are bounded in bytes (a busy job's events line is hundreds
of kilobytes, so a bound in lines means nothing), the bytes waiting for all viewers
together are bounded too, answers to its requests are bounded (the server reads its next
request only once they are sent), and its requests are paced. A viewer over a bound
is not refused: it falls behind and gets a gap and the state afresh (lines), or is
answered later (requests).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

QUEUE_BYTES: Final = 2 * 1024 * 1024
"""Bytes of lines one viewer may have waiting before it is resynchronised."""
TOTAL_BYTES: Final = 16 * 1024 * 1024
"""Bytes of lines all viewers together may have waiting: past it, a viewer that already
has lines waiting falls behind (one that reads keeps up)."""
REPLY_BYTES: Final = 1024 * 1024
"""Bytes of answers one viewer may have waiting before its next request is read."""
REQUESTS_PER_SECOND: Final = 50.0
"""Requests one viewer may make per second, on average..."""
REQUEST_BURST: Final = 100
"""...and at once (asking every pipeline of a run for one item is one request each)."""


class Budget:
    """Bytes waiting for every viewer together, and how many they may be.

    Args:
        limit: The most (None: `TOTAL_BYTES`).
    """

    def __init__(self, limit: int | None = None) -> None:
        self.limit = TOTAL_BYTES if limit is None else limit
        self.used = 0


class Outbox:
    """Lines and answers waiting to be written to one viewer.

    Answers come first and are never dropped (the viewer waits for each); then the lines
    of a resynchronisation (the run's state, made when it is written); then the stream's
    lines, which are bounded and dropped whole when the viewer falls behind.

    Args:
        budget: Shared by every viewer of the server.
        limit: Bytes of lines this viewer may have waiting (None: `QUEUE_BYTES`).
        reply_limit: Bytes of answers it may have waiting before `room_for_answers`
            holds its next request back (None: `REPLY_BYTES`).
    """

    def __init__(
        self, budget: Budget, *, limit: int | None = None, reply_limit: int | None = None
    ) -> None:
        self.budget = budget
        self.limit = QUEUE_BYTES if limit is None else limit
        self.reply_limit = REPLY_BYTES if reply_limit is None else reply_limit
        self.lines: deque[bytes] = deque()
        self.size = 0
        """Bytes of `lines`."""
        self.answers: deque[bytes] = deque()
        self.answer_size = 0
        self.state: deque[bytes] = deque()
        """The lines of a resynchronisation being written (made from the run's state
        when its turn comes, so they are not counted against the bounds)."""
        self.ready = asyncio.Event()
        """Set when something was added (the viewer's writer waits on it)."""
        self._room = asyncio.Event()
        self._room.set()

    def offer(self, line: bytes) -> bool:
        """Queue a line; False when it does not fit (the viewer has fallen behind). A
        line always fits when none is waiting, so a viewer that reads gets every one."""
        size = len(line)
        if self.lines and (
            self.size + size > self.limit or self.budget.used + size > self.budget.limit
        ):
            return False
        self.lines.append(line)
        self.size += size
        self.budget.used += size
        self.ready.set()
        return True

    def answer(self, line: bytes) -> None:
        """Queue an answer (never dropped)."""
        self.answers.append(line)
        self.answer_size += len(line)
        if self.answer_size >= self.reply_limit:
            self._room.clear()
        self.ready.set()

    async def room_for_answers(self) -> None:
        """Return once the answers waiting are under the bound."""
        await self._room.wait()

    def resynchronise(self, lines: Iterable[bytes]) -> int:
        """Replace the lines waiting by the state's; returns how many were dropped."""
        dropped = self.drop()
        self.state = deque(lines)
        self.ready.set()
        return dropped

    def take(self) -> bytes | None:
        """The next thing to write (None: nothing waits)."""
        if self.answers:
            line = self.answers.popleft()
            self.answer_size -= len(line)
            if self.answer_size < self.reply_limit:
                self._room.set()
            return line
        if self.state:
            return self.state.popleft()
        if self.lines:
            line = self.lines.popleft()
            self.size -= len(line)
            self.budget.used -= len(line)
            return line
        return None

    def drop(self) -> int:
        """Forget the lines waiting (not the answers); returns how many there were."""
        dropped = len(self.lines)
        self.lines.clear()
        self.budget.used -= self.size
        self.size = 0
        return dropped

    def close(self) -> None:
        """The viewer has gone: release everything it held."""
        self.drop()
        self.state.clear()
        self.answers.clear()
        self.answer_size = 0
        self._room.set()


class RequestPace:
    """A token bucket: `rate` requests a second on average, `burst` at once.

    Args:
        clock: Monotonic seconds.
    """

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        rate: float = REQUESTS_PER_SECOND,
        burst: int = REQUEST_BURST,
    ) -> None:
        self._clock = clock
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._at = clock()

    def wait(self) -> float:
        """Take a request's token: 0, or the seconds to wait before answering it."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate
