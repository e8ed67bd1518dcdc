"""Pace: how fast a run goes and when it will be done, from what its bottleneck can do.

Items finishing the whole run are a poor gauge early on (the pipeline is still filling:
the header said 4.88/s next to a stage at 13.2/s) and late (one item hung for 7 s while
the ETA said 204 ms). Instead each stage's capacity is its workers over its average task
time, known from its first finished items; the stage with the least capacity for the
run's items (after what earlier stages fail or skip) is the bottleneck, and the run goes
at its pace, unless items are fed slower than that. Every stage must still finish the
items not past it yet; the slowest of them to do so sets the ETA, and an item running
far past its stage's average counts as needing as long again as it has taken so far.

Pure functions of one snapshot (O(stages + workers)); the caller keeps the feed's rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from antflow_tui.present import stage_average, stage_views
from antflow_tui.rates import RateMeter

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from antflow.runstream.records import PipelineStarted, Snapshot
    from antflow_tui.present import StageView


@dataclass(frozen=True, slots=True)
class Pace:
    """A run's (or one pipeline's) speed and time left."""

    rate: float | None
    """Items of the run per second its bottleneck lets through (None: not known yet)."""
    eta: float | None
    """Seconds until every item has finished (None: not known yet)."""
    limit: str | None = None
    """What sets the pace: a stage's name, ``feed`` (items come slower than the stages
    could take them), or None."""


def pipeline_pace(
    views: Sequence[StageView],
    *,
    now: float,
    not_fed: int = 0,
    feed_rate: float | None = None,
    bottleneck: str | None = None,
) -> Pace:
    """The pace of one pipeline at a snapshot.

    Args:
        views: Its stages, in order.
        now: The snapshot's time (running items' ages are measured against it).
        not_fed: Items it will still be fed (its known total less those fed).
        feed_rate: Items fed per second lately (None: not known).
        bottleneck: The stage seen holding the run back (all busy, queue full or
            growing), if any: it sets the rate, whatever the capacities say.
    """
    reach = 1.0
    """Of the run's items, the share that gets to the stage at hand."""
    waiting = float(not_fed)
    """Items still to finish the stage at hand (those failing earlier left out)."""
    best: tuple[float, str] | None = None
    chosen: tuple[float, str] | None = None
    times: list[float] = []
    unknown = False
    for view in views:
        counts = view.counts
        waiting += counts.queued + counts.running
        hung = _hung(view, now)
        times.extend(hung)
        capacity = _capacity(view, len(hung))
        if capacity == 0:
            # Every worker hung: when the items behind them go is anyone's guess.
            unknown = unknown or waiting > len(hung)
        elif capacity is not None:
            times.append(waiting / capacity)
        if capacity is not None and reach > 0:
            own = (capacity / reach, view.name)
            best = own if best is None or own < best else best
            if view.name == bottleneck:
                chosen = own
        passed = _passing(view)
        reach *= passed
        waiting *= passed
    limit = chosen or best
    # A first stage with idle workers waits for its items: the feed is slower than the
    # stages. (With backpressure, a feed waiting for room goes at the stages' pace: the
    # items not fed yet are in the first stage's count of what it must still finish.)
    starved = bool(views) and views[0].busy < len(views[0].workers) and not views[0].counts.queued
    if not_fed and feed_rate and starved:
        times.append(not_fed / feed_rate)
        if limit is None or feed_rate < limit[0]:
            limit = (feed_rate, "feed")
    return Pace(
        rate=None if limit is None else limit[0],
        eta=max(times) if times and not unknown else None,
        limit=None if limit is None else limit[1],
    )


def run_pace(paces: Iterable[Pace]) -> Pace:
    """The run's pace from its running pipelines' (they run side by side: rates add up,
    the last to finish sets the ETA)."""
    paces = list(paces)
    rates = [pace.rate for pace in paces if pace.rate is not None]
    etas = [pace.eta for pace in paces if pace.eta is not None]
    if len(paces) == 1:
        return paces[0]
    return Pace(rate=sum(rates) if rates else None, eta=max(etas) if etas else None)


class PaceMeter:
    """The run's pace from one snapshot of each pipeline after another (it keeps how fast
    each is fed)."""

    def __init__(self) -> None:
        self._feeds: dict[int, RateMeter] = {}

    def pace(
        self,
        pipelines: Mapping[int, PipelineStarted],
        snapshots: Mapping[int, Snapshot],
        now: float,
        bottleneck: Callable[[int, Sequence[StageView]], str | None] | None = None,
    ) -> Pace | None:
        """The pace of the running pipelines (None: none runs).

        Args:
            bottleneck: The stage seen holding a pipeline back (by its number and
                stages), when the caller can tell.
        """
        paces = []
        for number, started in pipelines.items():
            snapshot = snapshots.get(number)
            if snapshot is None or not snapshot.running:
                continue
            views = stage_views(started, snapshot)
            meter = self._feeds.setdefault(number, RateMeter())
            paces.append(
                pipeline_pace(
                    views,
                    now=now,
                    not_fed=max(
                        (snapshot.total_items or 0) - snapshot.fed - snapshot.done_earlier, 0
                    ),
                    feed_rate=meter.update(snapshot.fed, snapshot.at),
                    bottleneck=None if bottleneck is None else bottleneck(number, views),
                )
            )
        return run_pace(paces) if paces else None


def _capacity(view: StageView, hung: int = 0) -> float | None:
    """Items per second the stage can finish: its workers over its average task time
    (those held by an item far past the average are not working for the rest)."""
    average = stage_average(view.counts)
    workers = len(view.workers)
    if not average or not workers:
        return None
    return max(workers - hung, 0) / average


def _passing(view: StageView) -> float:
    """The share of the items finishing the stage that go on to the next (1 until one
    has finished)."""
    counts = view.counts
    finished = counts.done + counts.failed + counts.skipped
    return counts.done / finished if finished else 1.0


def _hung(view: StageView, now: float) -> list[float]:
    """Seconds the stage's items running far past what it usually takes (twice its
    average, and twice its p95) may still take: as long again as they have taken (none
    is known to finish any sooner)."""
    average = stage_average(view.counts)
    if average is None:
        return []
    far = 2 * max(average, view.counts.p95 or 0.0)
    return [
        now - worker.since
        for worker in view.workers
        if worker.holding and worker.since is not None and now - worker.since > far
    ]
