"""What monitors read about a pipeline's limits: `LimitSnapshot`, from
`Pipeline.get_limit_snapshot()`.

Built in O(limits + stages) from counters the engine keeps as calls come and go: a
monitor may call it on every frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from antflow._runtime import StageRuntime
    from antflow.ratelimit import RateLimit, RateLimitState
    from antflow.types import TaskUsage


@dataclass(frozen=True, slots=True)
class StageLimitState:
    """One stage's concurrency, rate-limit answers, timeouts and usage."""

    stage: str
    """The stage."""
    concurrency: int
    """Calls the stage lets run at once right now (its workers when nothing limits it)."""
    max_concurrency: int
    """The highest `concurrency` may go: its workers, or what `set_concurrency` set."""
    adaptive: bool
    """Whether `concurrency` adapts to rate-limit answers (``Stage(adaptive=True)``)."""
    in_flight: int
    """Calls of the stage that hold a concurrency slot right now (0 when none limits it)."""
    rate_limited_retries: int
    """Calls answered with a rate limit and tried again (they use up no attempt)."""
    timeouts: int
    """Attempts cut by the stage's `task_timeout`."""
    rate_limited_last_minute: int
    """Rate-limit answers in the last minute on this stage's cool-down (its RateLimit's,
    which other stages share, when it has one)."""
    cooldown_remaining: float
    """Seconds before the stage's calls may start again after a rate-limit answer."""
    limit: str | None
    """The name of the stage's `RateLimit`, if any."""
    task_timeout: float | None
    """The stage's `task_timeout`, if any."""
    usage: TaskUsage | None
    """What the stage's tasks reported with `set_task_usage`, added up."""


@dataclass(frozen=True, slots=True)
class LimitSnapshot:
    """Every `RateLimit` the pipeline's stages use, and every stage, as of `timestamp`."""

    limits: tuple[RateLimitState, ...]
    """One per distinct RateLimit, in the order stages first use them."""
    stages: tuple[StageLimitState, ...]
    """One per stage, in pipeline order."""
    timestamp: float
    """When it was taken (as `DashboardSnapshot.timestamp`)."""


def limit_snapshot(runtimes: Sequence[StageRuntime], timestamp: float) -> LimitSnapshot:
    """The snapshot of `runtimes`, stamped `timestamp`."""
    return LimitSnapshot(
        limits=rate_limit_states(runtimes),
        stages=tuple(
            throttled_stage_state(runtime) or _unthrottled(runtime) for runtime in runtimes
        ),
        timestamp=timestamp,
    )


def rate_limit_states(runtimes: Sequence[StageRuntime]) -> tuple[RateLimitState, ...]:
    """Every distinct `RateLimit` of these stages, in the order they first use it, with
    the names of the stages using it."""
    users: dict[int, tuple[RateLimit, list[str]]] = {}
    for runtime in runtimes:
        throttle = runtime.throttle
        limit = None if throttle is None else throttle.limit
        if limit is not None:
            users.setdefault(id(limit), (limit, []))[1].append(runtime.name)
    return tuple(limit.state(tuple(names)) for limit, names in users.values())


def throttled_stage_state(runtime: StageRuntime) -> StageLimitState | None:
    """The stage's concurrency, rate-limit answers and timeouts; None for a stage that
    has none of them (no timeout, rate limit or adaptive concurrency, no concurrency set
    by hand, never answered with a rate limit): it costs a monitor one test."""
    throttle = runtime.throttle
    if throttle is None:
        return None
    workers = len(runtime.workers)
    limit = throttle.limit
    gate = throttle.gate
    cooldown = throttle.current_cooldown()
    return StageLimitState(
        stage=runtime.name,
        concurrency=workers if gate is None else gate.concurrency,
        max_concurrency=workers if gate is None else gate.maximum,
        adaptive=gate is not None and gate.adaptive,
        in_flight=0 if gate is None else gate.in_flight,
        rate_limited_retries=throttle.rate_limited_retries,
        timeouts=throttle.timeouts,
        rate_limited_last_minute=0 if cooldown is None else cooldown.hits_last_minute(),
        cooldown_remaining=0.0 if cooldown is None else cooldown.remaining(),
        limit=None if limit is None else limit.name,
        task_timeout=throttle.timeout,
        usage=runtime.usage,
    )


def _unthrottled(runtime: StageRuntime) -> StageLimitState:
    workers = len(runtime.workers)
    return StageLimitState(
        stage=runtime.name,
        concurrency=workers,
        max_concurrency=workers,
        adaptive=False,
        in_flight=0,
        rate_limited_retries=0,
        timeouts=0,
        rate_limited_last_minute=0,
        cooldown_remaining=0.0,
        limit=None,
        task_timeout=None,
        usage=runtime.usage,
    )
