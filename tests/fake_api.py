"""In-process fake APIs with a hidden rate limit, answering 429 the way httpx raises it.

`FakeApi` allows `per_second` calls in any sliding one-second window and, optionally,
`tokens_per_minute` tokens in any sliding minute; a call over either is refused at once
with `TooManyRequests`, an exception shaped like ``httpx.HTTPStatusError`` (its
``.response.status_code`` is 429 and ``.response.headers["retry-after"]`` says when a
slot frees up, in whole seconds, as HTTP's Retry-After does; ``retry_after_ms=True``
adds the exact wait as ``retry-after-ms``). An accepted call takes `latency` seconds.
Time is the running loop's (virtual under `tests.vtime`).

Every call is logged, so tests can check what the API saw: throughput, the share of
429s, retries made before the wait they were given, and tokens in every window.

`FakeLLM` answers like a chat API: OpenAI-shaped completions (the dated model name, a
``usage`` with prompt, completion and cached tokens) after a random latency, behind a
`FakeApi` limit when given one; it logs each call started and answered.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal


class FakeResponse:
    """The part of ``httpx.Response`` rate-limit handling reads."""

    def __init__(self, status_code: int, headers: dict[str, str]) -> None:
        self.status_code = status_code
        self.headers = headers


class TooManyRequests(Exception):
    """Shaped like ``httpx.HTTPStatusError`` for a 429 (no httpx import needed)."""

    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__("Client error '429 Too Many Requests'")
        self.response = FakeResponse(429, headers)


Answer = Literal["ok", "429", "error", "hang"]
"""What a scripted call does: answer, refuse with a 429, fail, or never return."""


async def act_out(answer: Answer, value: int) -> None:
    """Do what `answer` says, after 0.1 s of the call's own (the property tests' fake
    call): return for ``ok``, raise a 429 (Retry-After 1 s) or a ValueError, or hang."""
    await asyncio.sleep(0.1)
    if answer == "429":
        raise TooManyRequests({"retry-after": "1"})
    if answer == "error":
        raise ValueError(f"item {value}")
    if answer == "hang":
        await asyncio.Event().wait()


@dataclass(frozen=True, slots=True)
class Call:
    """One call the API received."""

    key: Any
    """The item it was for."""
    at: float
    """When it arrived."""
    accepted: bool
    """False: answered 429."""
    retry_after: float = 0.0
    """For a 429: the seconds its Retry-After header asked for."""
    tokens: int = 0
    """For an accepted call: the tokens it used."""


@dataclass
class FakeApi:
    """An API with a hidden limit (see the module docstring)."""

    per_second: int | None = None
    tokens_per_minute: int | None = None
    latency: tuple[float, float] = (0.3, 0.6)
    """An accepted call takes a uniform random time in this range."""
    retry_after_ms: bool = False
    seed: int = 0
    calls: list[Call] = field(default_factory=list)
    _accepted: deque[float] = field(default_factory=deque)
    _tokens: deque[tuple[float, int]] = field(default_factory=deque)
    _token_sum: int = 0
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    async def call(self, key: Any, tokens: int = 0) -> Any:
        """Serve one call for `key` that uses `tokens` tokens, or raise 429."""
        now = asyncio.get_running_loop().time()
        wait = self._refusal(now, tokens)
        if wait is not None:
            # Retry-After holds whole seconds (rounded up); retry-after-ms the exact wait.
            headers = {"retry-after": str(math.ceil(wait))}
            if self.retry_after_ms:
                headers["retry-after-ms"] = str(math.ceil(wait * 1000))
            else:
                wait = float(math.ceil(wait))
            self.calls.append(Call(key, now, accepted=False, retry_after=wait))
            raise TooManyRequests(headers)
        self.calls.append(Call(key, now, accepted=True, tokens=tokens))
        self._accepted.append(now)
        if self.tokens_per_minute is not None:
            self._tokens.append((now, tokens))
            self._token_sum += tokens
        await asyncio.sleep(self._rng.uniform(*self.latency))
        return key

    def _refusal(self, now: float, tokens: int) -> float | None:
        """Seconds until the call would fit, or None if it fits now."""
        accepted = self._accepted
        while accepted and accepted[0] <= now - 1.0:
            accepted.popleft()
        held = self._tokens
        while held and held[0][0] <= now - 60.0:
            self._token_sum -= held.popleft()[1]
        waits = []
        if self.per_second is not None and len(accepted) >= self.per_second:
            waits.append(accepted[-self.per_second] + 1.0 - now)
        if self.tokens_per_minute is not None and self._token_sum + tokens > self.tokens_per_minute:
            total = self._token_sum
            for at, used in held:
                total -= used
                if total + tokens <= self.tokens_per_minute:
                    waits.append(at + 60.0 - now)
                    break
        return max(waits) if waits else None

    # ------------------------------------------------------------------ what it saw

    @property
    def accepted(self) -> list[Call]:
        return [call for call in self.calls if call.accepted]

    def refused_share(self) -> float:
        """The share of calls answered 429."""
        return (len(self.calls) - len(self.accepted)) / max(len(self.calls), 1)

    def throughput_share(self) -> float:
        """Accepted calls per second over the run, as a share of `per_second`."""
        accepted = self.accepted
        assert self.per_second is not None
        assert len(accepted) > 1
        span = accepted[-1].at - self.calls[0].at
        return (len(accepted) - 1) / span / self.per_second

    def early_retries(self) -> list[tuple[Any, float, float]]:
        """(key, refused at, retried at) for each retry made before its Retry-After."""
        early = []
        last_refusal: dict[Any, Call] = {}
        for call in self.calls:
            refused = last_refusal.get(call.key)
            if refused is not None and call.at < refused.at + refused.retry_after - 1e-9:
                early.append((call.key, refused.at, call.at))
            if call.accepted:
                last_refusal.pop(call.key, None)
            else:
                last_refusal[call.key] = call
        return early

    def max_tokens_in_a_minute(self) -> int:
        """The most tokens accepted calls used within any 60 s window."""
        accepted = [(call.at, call.tokens) for call in self.accepted]
        best = total = 0
        start = 0
        for at, used in accepted:
            total += used
            while accepted[start][0] <= at - 60.0:
                total -= accepted[start][1]
                start += 1
            best = max(best, total)
        return best

    def max_calls_in_a_second(self) -> int:
        """The most calls accepted within any one-second window."""
        times = [call.at for call in self.accepted]
        best = start = 0
        for end, at in enumerate(times):
            while times[start] <= at - 1.0:
                start += 1
            best = max(best, end - start + 1)
        return best


# ---------------------------------------------------------------------- a fake LLM


class FakeDetails:
    """``usage.prompt_tokens_details`` of an OpenAI chat completion."""

    def __init__(self, cached_tokens: int) -> None:
        self.cached_tokens = cached_tokens


class FakeUsage:
    """``usage`` of an OpenAI chat completion (the SDK's ``CompletionUsage``)."""

    def __init__(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> None:
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.total_tokens = prompt_tokens + completion_tokens
        self.prompt_tokens_details = FakeDetails(cached_tokens)


class FakeCompletion:
    """An OpenAI chat completion as the SDK returns it: the dated model name, a usage."""

    def __init__(self, model: str, usage: FakeUsage, text: str) -> None:
        self.model = model
        self.usage = usage
        self.text = text


@dataclass
class FakeLLM:
    """A chat API answering with OpenAI-shaped completions, in the loop's time.

    A call on `key` with a prompt of `prompt_tokens` answers between `answer` tokens
    (never more than the request's `max_tokens`) after a latency in `latency`;
    `cached_share` of the prompt is read from the cache. Given a `FakeApi` as `limit`,
    calls over its hidden limit are answered 429 first.
    """

    model: str = "fake-mini-2024-07-18"
    """The name answers carry (dated, as OpenAI's are)."""
    latency: tuple[float, float] = (0.5, 2.0)
    answer: tuple[int, int] = (50, 400)
    cached_share: float = 0.0
    limit: FakeApi | None = None
    seed: int = 0
    answered: list[tuple[Any, int, int]] = field(default_factory=list)
    """(key, prompt tokens, answer tokens) of each call answered, in order."""
    started: list[tuple[Any, int]] = field(default_factory=list)
    """(key, calls answered by then) of each call accepted, in order."""
    running: int = 0
    """Calls being answered now."""
    most_running: int = 0
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    async def create(self, key: Any, prompt_tokens: int, max_tokens: int) -> FakeCompletion:
        """Answer one request, or raise `TooManyRequests` over the hidden limit."""
        if self.limit is not None:
            await self.limit.call(key, prompt_tokens + max_tokens)
        self.started.append((key, len(self.answered)))
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await asyncio.sleep(self._rng.uniform(*self.latency))
        finally:
            self.running -= 1
        answer = min(self._rng.randint(*self.answer), max_tokens)
        cached = int(prompt_tokens * self.cached_share)
        self.answered.append((key, prompt_tokens, answer))
        return FakeCompletion(self.model, FakeUsage(prompt_tokens, answer, cached), f"re {key}")

    def calls_per_key(self) -> dict[Any, int]:
        """How many times each key was answered."""
        counts: dict[Any, int] = {}
        for key, _, _ in self.answered:
            counts[key] = counts.get(key, 0) + 1
        return counts
