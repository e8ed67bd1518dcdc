"""Plain records the bridge hands the screens about a run of several pipelines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from antflow.types import FailedItem


@dataclass(frozen=True, slots=True)
class RunFailure:
    """A failed item and the pipeline it failed in (1 for the first the run started)."""

    failure: FailedItem
    pipeline: int

    @property
    def item_id(self) -> Any:
        return self.failure.item_id

    @property
    def stage(self) -> str:
        return self.failure.stage

    @property
    def error_type(self) -> str:
        return self.failure.error_type

    @property
    def error(self) -> str:
        return self.failure.error

    @property
    def attempts(self) -> int:
        return self.failure.attempts

    @property
    def timestamp(self) -> float:
        return self.failure.timestamp
