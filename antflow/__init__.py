"""antflow: an asyncio pipeline engine.

Items flow through stages; each stage is a pool of workers running async tasks, with
retries, backpressure, priorities, a StatusTracker event stream and polling dashboards.
"""

from antflow.builder import PipelineBuilder
from antflow.context import set_task_progress, set_task_status
from antflow.exceptions import (
    AntFlowError,
    FeedStoppedError,
    PipelineError,
    PipelineStopped,
    StageValidationError,
    TaskFailedError,
)
from antflow.observe import observe
from antflow.pipeline import Pipeline
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
    WorkerMetrics,
    WorkerState,
    WorkerStatus,
)

__version__ = "0.1.0"


# ANTFLOW_RECORD=FILE records an unmodified script, ANTFLOW_SERVE=1 serves it to
# antflow-tui attach: see antflow.runstream.record and antflow.runstream.serve.
record_from_environment()
serve_from_environment()

__all__ = [
    "AntFlowError",
    "DashboardProtocol",
    "DashboardSnapshot",
    "ErrorSummary",
    "FailedItem",
    "FeedStoppedError",
    "ItemLocation",
    "Pipeline",
    "PipelineBuilder",
    "PipelineError",
    "PipelineResult",
    "PipelineStats",
    "PipelineStopped",
    "Stage",
    "StageInfo",
    "StageStats",
    "StageValidationError",
    "StatusEvent",
    "StatusTracker",
    "StatusType",
    "TaskEvent",
    "TaskEventType",
    "TaskFailedError",
    "WorkerMetrics",
    "WorkerState",
    "WorkerStatus",
    "__version__",
    "observe",
    "record",
    "serve",
    "set_task_progress",
    "set_task_status",
]
