"""The run stream: a run of pipelines as plain records, live, in a file, or on a socket.

- `records`: the record types (no engine imports; readers use them alone).
- `RunStream` (`stream`): the live producer. It attaches to pipelines, turns their state
  into records (snapshots, events, errors, failures, item details, await stacks) and
  carries out commands (pause, resume, retry, stop). The one place that touches live
  engine objects on behalf of a monitor.
- `Recorder` (`recorder`) and `antflow.record(...)`: a lossless tee of a run to a JSON
  Lines file; `Recording` (`fileformat`) reads one back, with seeking.
- `compaction`: a recording whose run ended, compacted in place (`compact`); `Recording`
  reads it as it was (`compactfile`).
"""

from __future__ import annotations

from antflow.runstream.records import (
    FORMAT,
    VERSION,
    AwaitStack,
    BudgetRow,
    Command,
    Control,
    End,
    ErrorRecord,
    Event,
    Gap,
    Header,
    ItemDetail,
    ItemKey,
    ItemUsage,
    LimitRow,
    LogLine,
    Pause,
    PipelineStarted,
    RaiseBudget,
    Record,
    ReprKey,
    Resume,
    Retry,
    SetConcurrency,
    Snapshot,
    StageConfig,
    StageLimits,
    StageRow,
    Stop,
    Usage,
    WorkerRow,
    added_usage,
    item_key,
)

__all__ = [
    "FORMAT",
    "VERSION",
    "AwaitStack",
    "BudgetRow",
    "Command",
    "Control",
    "End",
    "ErrorRecord",
    "Event",
    "Gap",
    "Header",
    "ItemDetail",
    "ItemKey",
    "ItemUsage",
    "LimitRow",
    "LogLine",
    "Pause",
    "PipelineStarted",
    "RaiseBudget",
    "Record",
    "ReprKey",
    "Resume",
    "Retry",
    "SetConcurrency",
    "Snapshot",
    "StageConfig",
    "StageLimits",
    "StageRow",
    "Stop",
    "Usage",
    "WorkerRow",
    "added_usage",
    "item_key",
]
