"""PipelineBuilder: a thin fluent layer over Pipeline and Stage."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from antflow.exceptions import PipelineError
from antflow.pipeline import Pipeline
from antflow.stage import Stage, TaskFunc

if TYPE_CHECKING:
    from collections.abc import Iterable

    from antflow.tracker import StatusTracker
    from antflow.types import PipelineResult


class PipelineBuilder:
    """Build a Pipeline step by step::

    results = await (
        Pipeline.create()
        .add("Fetch", fetch, workers=10, retries=3)
        .add("Save", save, workers=2, retry_policy="per_stage")
        .with_tracker(tracker)
        .run(urls)
    )
    """

    def __init__(self) -> None:
        self._stages: list[Stage] = []
        self._tracker: StatusTracker | None = None
        self._collect_results = True

    def add(
        self,
        name: str,
        *tasks: TaskFunc,
        workers: int = 1,
        retries: int = 3,
        retry_policy: str = "per_task",
        **stage_options: Any,
    ) -> PipelineBuilder:
        """Add a stage running `tasks` in order.

        Args:
            name: The stage's name.
            *tasks: Its async task functions.
            workers: Its worker count.
            retries: Attempts per task (``per_task``) or per stage (``per_stage``).
            retry_policy: ``per_task`` or ``per_stage``.
            **stage_options: Any other `Stage` field (``skip_if``, ``on_success``, ...).
        """
        if not tasks:
            raise PipelineError(f"add({name!r}) needs at least one task function")
        self._stages.append(
            Stage(
                name=name,
                workers=workers,
                tasks=list(tasks),
                retry=retry_policy,
                task_attempts=retries,
                stage_attempts=retries,
                **stage_options,
            )
        )
        return self

    def with_tracker(self, tracker: StatusTracker) -> PipelineBuilder:
        """Attach a StatusTracker."""
        self._tracker = tracker
        return self

    def collect_results(self, collect: bool = True) -> PipelineBuilder:
        """Whether the pipeline keeps results (default True)."""
        self._collect_results = collect
        return self

    def build(self) -> Pipeline:
        """The Pipeline (stages are validated here)."""
        return Pipeline(
            self._stages, collect_results=self._collect_results, status_tracker=self._tracker
        )

    async def run(self, items: Iterable[Any], **run_options: Any) -> list[PipelineResult]:
        """Build the pipeline and `run` it over `items` (options as `Pipeline.run`)."""
        return await self.build().run(items, **run_options)
