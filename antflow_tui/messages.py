"""Messages screens post up to the app: controls (the app turns them into `send`s), where
to go (the app's navigation opens the screen), and frames to draw."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from antflow.runstream.records import ItemKey


class PauseRequested(Message):
    """Pause or resume (whichever undoes the present state) the run, a stage or a worker.

    Args:
        pipeline: The pipeline of the stage or worker (None: the whole run).
    """

    def __init__(
        self, pipeline: int | None = None, stage: str | None = None, worker: str | None = None
    ) -> None:
        super().__init__()
        self.pipeline = pipeline
        self.stage = stage
        self.worker = worker


class ConcurrencyRequested(Message):
    """Change how many calls a stage makes at once: `change` -1 for fewer, 1 for more."""

    def __init__(self, pipeline: int, stage: str, change: int) -> None:
        super().__init__()
        self.pipeline = pipeline
        self.stage = stage
        self.change = change


class RetryRequested(Message):
    """Retry failed items, each in its own pipeline: (pipeline number, item) pairs."""

    def __init__(self, items: tuple[tuple[int, ItemKey], ...]) -> None:
        super().__init__()
        self.items = items


class ItemRequested(Message):
    """Open an item's screen (`pipeline` `ANY_ITEM`: the newest pipeline that knows it)."""

    def __init__(self, pipeline: int, item: ItemKey) -> None:
        super().__init__()
        self.pipeline = pipeline
        self.item = item


class StageRequested(Message):
    """Open a stage's screen."""

    def __init__(self, pipeline: int, stage: str) -> None:
        super().__init__()
        self.pipeline = pipeline
        self.stage = stage


class WorkerRequested(Message):
    """Open a worker's screen."""

    def __init__(self, pipeline: int, worker: str) -> None:
        super().__init__()
        self.pipeline = pipeline
        self.worker = worker


class ViewChanged(Message):
    """What the screen shows changed (a filter, the pipeline shown): draw a frame now."""


class PaletteChanged(Message):
    """The theme changed the screen's data colours: draw the frame again."""


class ScreenUncovered(Message):
    """A screen of the run is on top again (or for the first time): draw it from the run's
    state now. Frames that came while it was covered were drawn on the screen above it,
    and a run that has ended sends no more frames."""
