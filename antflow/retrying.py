"""Waits between attempts: `Backoff`, and what a rate-limit error (HTTP 429) asks for.

A rate-limit error is recognised by its HTTP status, the way httpx, openai and anthropic
raise them (``exc.response.status_code == 429`` or ``exc.status_code == 429``), or by a
type the stage names in ``rate_limit_on``. The wait it asks for is read from its
``retry_after`` attribute and from its response's headers (``retry-after-ms``, and
``Retry-After`` in seconds or as an HTTP date). Everything here reads objects from other
libraries, which may be anything: a value that makes no sense is ignored, never raised.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Final

RATE_LIMITED_STATUS: Final = 429
MAX_RETRY_AFTER: Final = 3600.0
"""Longest wait a server may ask for, in seconds; a longer (or negative, or unreadable)
one is ignored and the stage's backoff applies instead."""
_MAX_HEADERS: Final = 256
"""Headers looked through for a name, at most (a hostile response may hold millions)."""
_MAX_VALUE_LENGTH: Final = 64


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter between attempts of a task:
    ``Stage(..., backoff=Backoff(initial=1.0, multiplier=2.0, max_wait=60.0))``.

    Retry number ``n`` (1 for the first) waits ``initial * multiplier ** (n - 1)``
    seconds, at most `max_wait`; with `jitter`, a random wait between half that and all
    of it, so workers that failed together do not all retry at the same moment. A
    stage without one waits its fixed ``task_wait_seconds``.

    The same backoff spaces the retries of a rate-limited call whose server asked for no
    wait (a stage without one uses ``Backoff()``); a wait the server asked for is never
    shortened.

    Raises:
        ValueError: a number out of range (the message names it).
    """

    initial: float = 1.0
    """Seconds before the first retry."""
    multiplier: float = 2.0
    """How much each wait grows over the one before (1 keeps it fixed)."""
    max_wait: float = 60.0
    """The longest wait, in seconds."""
    jitter: bool = True
    """Draw each wait at random between half of it and all of it."""
    rng: random.Random | None = field(default=None, compare=False, repr=False)
    """Where the jitter comes from (tests pass a seeded ``random.Random``); None: the
    `random` module's."""

    def __post_init__(self) -> None:
        for name, low in (("initial", 0.0), ("multiplier", 1.0), ("max_wait", 0.0)):
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value) or value < low:
                raise ValueError(
                    f"Backoff: {name} must be a finite number >= {low:g}, got {value!r}"
                )
        if self.max_wait < self.initial:
            raise ValueError(
                f"Backoff: max_wait ({self.max_wait!r}) must not be below initial "
                f"({self.initial!r})"
            )

    def wait(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1 for the first)."""
        try:
            base = self.initial * self.multiplier ** max(retry - 1, 0)
        except OverflowError:
            base = self.max_wait
        base = min(base, self.max_wait)
        if not self.jitter:
            return base
        draw = (self.rng or random).random()
        return base * (0.5 + 0.5 * draw)


DEFAULT_BACKOFF: Final = Backoff()
"""Spaces rate-limited retries of a stage that has no `Backoff` of its own."""


def is_rate_limit_error(error: BaseException, types: tuple[type[BaseException], ...] = ()) -> bool:
    """True when `error` says the API is rate-limiting: HTTP 429 on the error or on its
    response, or one of `types`."""
    if types and isinstance(error, types):
        return True
    try:
        response = getattr(error, "response", None)
        status = getattr(response, "status_code", None) if response is not None else None
        if status is None:
            status = getattr(error, "status_code", None)
    except Exception:
        return False
    return type(status) is int and status == RATE_LIMITED_STATUS


def requested_wait(error: BaseException, now: Callable[[], float] = time.time) -> float | None:
    """The wait `error` asks for, in seconds, or None if it asks for none.

    The first readable one of: the ``retry-after-ms`` header (the exact wait, as openai
    sends it), the ``Retry-After`` header (seconds, or an HTTP date compared with `now`,
    Unix time), both read from ``error.response.headers`` or ``error.headers`` in any
    case, then ``error.retry_after`` (seconds, a `timedelta` or a header-style string).
    Values that are not numbers, are negative or are above `MAX_RETRY_AFTER` are
    skipped.
    """
    sources = _header_sources(error)
    candidates: list[tuple[Any, float, Callable[[], float] | None]] = [
        (_header(headers, "retry-after-ms"), 0.001, None) for headers in sources
    ]
    candidates.extend((_header(headers, "retry-after"), 1.0, now) for headers in sources)
    try:
        attribute = getattr(error, "retry_after", None)
    except Exception:
        attribute = None
    candidates.append((attribute, 1.0, now))
    for value, scale, clock in candidates:
        if value is None:
            continue
        wait = _seconds(value, scale, clock)
        if 0.0 <= wait <= MAX_RETRY_AFTER:
            return wait
    return None


def _header_sources(error: BaseException) -> list[Any]:
    sources = []
    for path in (("response", "headers"), ("headers",)):
        try:
            value: Any = error
            for name in path:
                value = getattr(value, name, None)
                if value is None:
                    break
        except Exception:
            continue
        if value is not None:
            sources.append(value)
    return sources


def _header(headers: Any, name: str) -> Any:
    """The value of header `name` (lower case) in a mapping or a list of pairs, or None."""
    try:
        if isinstance(headers, Mapping) or hasattr(headers, "get"):
            # httpx.Headers (and the clients built on it) match names in any case.
            value = headers.get(name)
            if value is not None:
                return value
        pairs: Iterable[Any] = headers.items() if hasattr(headers, "items") else headers
        for count, pair in enumerate(pairs):
            if count >= _MAX_HEADERS:
                break
            key, value = pair
            if isinstance(key, bytes):
                key = key.decode("latin-1")
            if isinstance(key, str) and key.strip().lower() == name:
                return value
    except Exception:
        return None
    return None


def _seconds(value: Any, scale: float, now: Callable[[], float] | None) -> float:
    """`value` as seconds (NaN when it cannot be read): a number times `scale`, a
    `timedelta`, or a string holding a number or (when `now` is given) an HTTP date."""
    nothing = math.nan
    try:
        if isinstance(value, timedelta):
            return value.total_seconds()
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if _is_number(value):
            number = float(value)
        elif isinstance(value, str):
            text = value.strip()
            if not text or len(text) > _MAX_VALUE_LENGTH:
                return nothing
            try:
                number = float(text)
            except ValueError:
                return _until_date(text, now) if now is not None else nothing
        else:
            return nothing
    except Exception:
        return nothing
    return number * scale if math.isfinite(number) else nothing


def _until_date(text: str, now: Callable[[], float]) -> float:
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return math.nan
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # HTTP dates are GMT
    try:
        return max(when.timestamp() - now(), 0.0)
    except (OverflowError, OSError, ValueError):
        return math.nan
