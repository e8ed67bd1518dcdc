"""RateMeter: a smoothed items-per-second from a counter sampled once per frame."""

from __future__ import annotations

from typing import Final

SMOOTHING_SECONDS: Final = 5.0
"""Time constant of the smoothing: rates follow changes over about this long."""


class RateMeter:
    """Exponentially smoothed rate of a growing count, with an injectable sample time."""

    def __init__(self, smoothing: float = SMOOTHING_SECONDS) -> None:
        self.smoothing = smoothing
        self.rate: float | None = None
        self._last: tuple[float, int] | None = None

    def update(self, count: int, now: float) -> float | None:
        """Sample `count` at time `now`; returns the smoothed rate (None until two samples)."""
        if self._last is None:
            self._last = (now, count)
            return self.rate
        then, before = self._last
        elapsed = now - then
        if elapsed <= 0:
            return self.rate
        instant = max(count - before, 0) / elapsed
        if self.rate is None:
            self.rate = instant
        else:
            weight = min(elapsed / self.smoothing, 1.0)
            self.rate += (instant - self.rate) * weight
        self._last = (now, count)
        return self.rate
