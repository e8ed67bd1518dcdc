"""BaseDashboard: the class to subclass for a dashboard that only needs to draw snapshots."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from antflow.pipeline import Pipeline
    from antflow.types import DashboardSnapshot, ErrorSummary, PipelineResult


class BaseDashboard(abc.ABC):
    """A `DashboardProtocol` whose updates all go to `render`.

    Override `render`; override `on_start` and `on_finish` when you need them. Subclasses
    need not call ``super().__init__()``: nothing here depends on it.

    Example:
        ```python
        class Percent(BaseDashboard):
            def render(self, snapshot):
                done = snapshot.pipeline_stats.items_processed
                print(f"{done}/{self.total_items}")

        await pipeline.run(items, custom_dashboard=Percent())
        ```
    """

    # A class attribute, so it exists even when a subclass's __init__ skips super().
    total_items: int | None = None
    """Items the run expects, as given to `on_start` (None before it)."""

    def on_start(self, pipeline: Pipeline, total_items: int) -> None:
        """Called once before the first item is fed; stores `total_items`.

        Args:
            pipeline: The pipeline about to run.
            total_items: Items the run will feed (0 when unknown).
        """
        self.total_items = total_items

    def on_update(self, snapshot: DashboardSnapshot) -> None:
        """Called every update interval and once at the end; calls `render`."""
        self.render(snapshot)

    # An optional hook, empty on purpose: making it abstract would force it on subclasses.
    def on_finish(self, results: list[PipelineResult], summary: ErrorSummary) -> None:  # noqa: B027
        """Called once, last; does nothing unless overridden.

        Args:
            results: The successful results (empty when the pipeline does not collect them).
            summary: The failures, grouped by error type and by stage.
        """

    @abc.abstractmethod
    def render(self, snapshot: DashboardSnapshot) -> None:
        """Draw `snapshot`.

        Args:
            snapshot: The pipeline's current state; frozen, so it may be kept.
        """
