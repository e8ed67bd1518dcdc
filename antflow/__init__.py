"""antflow: an asyncio pipeline engine.

Items flow through stages; each stage is a pool of workers running async tasks, with
retries, backpressure, priorities, a StatusTracker event stream and polling dashboards.
"""

from typing import TYPE_CHECKING, Any

from antflow.budget import Budget, BudgetState
from antflow.builder import PipelineBuilder
from antflow.context import set_task_progress, set_task_status, set_task_usage
from antflow.exceptions import (
    AntFlowError,
    FeedStoppedError,
    PipelineError,
    PipelineStopped,
    PriceFileError,
    RateLimitExceededError,
    ResumeError,
    StageValidationError,
    TaskFailedError,
    TaskTimeoutError,
)
from antflow.lifecycle import PipelineState
from antflow.limits import LimitSnapshot, StageLimitState
from antflow.observe import observe
from antflow.pipeline import Pipeline
from antflow.prices import ModelPrice, Prices, load_prices, use_prices
from antflow.ratelimit import RateLimit, RateLimitState
from antflow.retrying import Backoff
from antflow.runstream.keepenv import history_from_environment
from antflow.runstream.record import record, record_from_environment
from antflow.runstream.serve import serve, serve_from_environment
from antflow.stage import Stage
from antflow.tracker import StatusTracker
from antflow.types import (
    DashboardProtocol,
    DashboardSnapshot,
    ErrorSummary,
    FailedItem,
    ItemLocation,
    PipelineResult,
    PipelineStats,
    StageInfo,
    StageStats,
    StatusEvent,
    StatusType,
    TaskEvent,
    TaskEventType,
    TaskUsage,
    WorkerMetrics,
    WorkerState,
    WorkerStatus,
)
from antflow.usage import set_task_usage_from

if TYPE_CHECKING:
    from antflow.runstream.keeping import keep_history

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # The run history is imported when first used: `import antflow` need not pay for
    # SQLite and the resume reader (about 20 ms) in a script that keeps no history.
    if name == "keep_history":
        from antflow.runstream.keeping import keep_history

        return keep_history
    raise AttributeError(f"module 'antflow' has no attribute {name!r}")


# ANTFLOW_RECORD=FILE records an unmodified script, ANTFLOW_SERVE=1 serves it to
# antflow-tui attach, ANTFLOW_HISTORY=1 keeps it in the run history and ANTFLOW_RESUME=last
# resumes its last run: see antflow.runstream.record, .serve and .keeping.
record_from_environment()
serve_from_environment()
history_from_environment()

__all__ = [
    "AntFlowError",
    "Backoff",
    "Budget",
    "BudgetState",
    "DashboardProtocol",
    "DashboardSnapshot",
    "ErrorSummary",
    "FailedItem",
    "FeedStoppedError",
    "ItemLocation",
    "LimitSnapshot",
    "ModelPrice",
    "Pipeline",
    "PipelineBuilder",
    "PipelineError",
    "PipelineResult",
    "PipelineState",
    "PipelineStats",
    "PipelineStopped",
    "PriceFileError",
    "Prices",
    "RateLimit",
    "RateLimitExceededError",
    "RateLimitState",
    "ResumeError",
    "Stage",
    "StageInfo",
    "StageLimitState",
    "StageStats",
    "StageValidationError",
    "StatusEvent",
    "StatusTracker",
    "StatusType",
    "TaskEvent",
    "TaskEventType",
    "TaskFailedError",
    "TaskTimeoutError",
    "TaskUsage",
    "WorkerMetrics",
    "WorkerState",
    "WorkerStatus",
    "__version__",
    "keep_history",
    "load_prices",
    "observe",
    "record",
    "serve",
    "set_task_progress",
    "set_task_status",
    "set_task_usage",
    "set_task_usage_from",
    "use_prices",
]
