"""Two recorded runs side by side: did a change help or hurt, and for which items.

`compare(a, b)` takes two runs read whole (`antflow.runstream.runsummary.summarise`) and
says, A before B:

1. `Comparison.totals`: the counts, the duration and the throughput, with the change;
2. `Comparison.stages`: each stage's task time (p50, p95, max) and throughput;
3. `Comparison.errors`: error groups (the app's ``c`` grouping) that appeared, went
   away, grew or shrank;
4. `Comparison.items`: items by id: fixed, newly failed, still failing (same or another
   error), newly slow (`antflow.runstream.itemdiff`);
5. `Comparison.made`: what differed in how the runs were made, differences only: the
   command line, the script's hash, antflow's version, the pipelines' stages and their
   settings (workers, attempts, waits, limits, timeouts, durable...);
6. `Comparison.usage`: tokens and cost per stage and in all (cost None where no task
   reported one).

Pure: no terminal, no UI; `antflow.runstream.comparejson` writes it as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from antflow.runstream.itemdiff import ItemChanges, diff_items

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from antflow.runstream.grouping import GroupKey
    from antflow.runstream.records import (
        PipelineStarted,
        PipelineTotals,
        Snapshot,
        StageConfig,
        StageRow,
        Usage,
    )
    from antflow.runstream.runsummary import RunSummary

Number = int | float
Trend = Literal["appeared", "gone", "grew", "shrank", "same"]
Presence = Literal["both", "a", "b"]


@dataclass(frozen=True, slots=True)
class Change:
    """One quantity in run A and in run B (None: not known in that run)."""

    name: str
    a: Number | None
    b: Number | None

    @property
    def change(self) -> Number | None:
        """B - A (None when either is unknown)."""
        if self.a is None or self.b is None:
            return None
        return self.b - self.a

    @property
    def ratio(self) -> float | None:
        """B / A (None when either is unknown, or A is 0)."""
        if self.a is None or self.b is None or self.a == 0:
            return None
        return self.b / self.a


@dataclass(frozen=True, slots=True)
class StageChange:
    """One stage in both runs (or in one of them)."""

    pipeline: int
    stage: str
    present: Presence
    """In both runs, or only in A or B (the pipelines differ)."""
    p50: Change
    p95: Change
    max: Change
    """Task time of its finished items, seconds (sampled, as the stage screen shows)."""
    throughput: Change
    """Items it finished (completed, failed or skipped) per second of the run."""
    done: Change
    failed: Change


@dataclass(frozen=True, slots=True)
class GroupChange:
    """One error group's failed items in each run."""

    type: str
    message: str
    """The message with what varies masked (``bad value <n>``)."""
    a: int
    b: int
    example: str
    """One of its messages as it was (B's when B has the group)."""

    @property
    def change(self) -> int:
        return self.b - self.a

    @property
    def trend(self) -> Trend:
        if not self.a:
            return "appeared"
        if not self.b:
            return "gone"
        if self.b > self.a:
            return "grew"
        return "shrank" if self.b < self.a else "same"


@dataclass(frozen=True, slots=True)
class Difference:
    """One way the runs were made differently."""

    setting: str
    """What differs: ``argv``, ``script``, ``script_sha256``, ``antflow``,
    ``record_values``, ``stages`` (of a pipeline), ``version``, or a stage's setting
    (``workers``, ``task_attempts``, ``task_timeout``...), or a rate limit's cap."""
    a: Any
    b: Any
    pipeline: int | None = None
    """The pipeline it is about (None: the run)."""
    stage: str | None = None
    """The stage it is about (None: the pipeline or the run)."""
    limit: str | None = None
    """The rate limit it is about (its name), for a cap."""


@dataclass(frozen=True, slots=True)
class StageUsage:
    """Tokens and cost one stage's tasks reported (`set_task_usage`), in each run."""

    pipeline: int
    stage: str
    input_tokens: Change
    output_tokens: Change
    cost: Change
    """None in a run where no task reported a cost (shown "—")."""
    model: tuple[str | None, str | None]
    """The model the latest report named, in A and in B."""


@dataclass(frozen=True, slots=True)
class Comparison:
    """Run A against run B (see the module docstring)."""

    a: RunSummary
    b: RunSummary
    totals: tuple[Change, ...]
    stages: tuple[StageChange, ...]
    errors: tuple[GroupChange, ...]
    """Every group with failed items in either run, biggest change first."""
    items: ItemChanges
    made: tuple[Difference, ...]
    usage: tuple[StageUsage, ...]
    """Stages whose tasks reported usage in either run."""
    usage_total: tuple[Change, Change, Change]
    """Input tokens, output tokens and cost, every stage added up."""
    notes: tuple[str, ...]
    """What to know before reading it: a run cut short or damaged, the same run twice,
    pipelines that differ."""
    same_run: bool = False


# ---------------------------------------------------------------------- building


def compare(a: RunSummary, b: RunSummary, *, slow: int = 20) -> Comparison:
    """Compare run A (before) with run B (after).

    Args:
        slow: How many newly slow items to keep (the most time added first).
    """
    return Comparison(
        a=a,
        b=b,
        totals=_totals(a, b),
        stages=_stages(a, b),
        errors=_errors(a, b),
        items=diff_items(a, b, slow=slow),
        made=_made(a, b),
        usage=_usage(a, b),
        usage_total=_usage_total(a, b),
        notes=_notes(a, b),
        same_run=_same_run(a, b),
    )


_COUNTS: Final = ("fed", "completed", "failed", "skipped", "unfinished", "done_earlier")


def _counts(run: RunSummary) -> dict[str, int]:
    """The run's counts: its end record's totals, else its latest snapshots."""
    rows: list[PipelineTotals] | list[Snapshot] = (
        list(run.end.totals) if run.end is not None else []
    )
    if not rows:
        rows = list(run.snapshots.values())
    return {
        "fed": sum(row.fed for row in rows),
        "completed": sum(row.processed for row in rows),
        "failed": sum(row.failed for row in rows),
        "skipped": sum(row.skipped for row in rows),
        "unfinished": sum(row.unfinished for row in rows),
        "done_earlier": sum(row.done_earlier for row in rows),
    }


def _throughput(done: int, run: RunSummary) -> float | None:
    duration = run.duration
    return done / duration if duration else None


def _totals(a: RunSummary, b: RunSummary) -> tuple[Change, ...]:
    counts_a, counts_b = _counts(a), _counts(b)
    found = [Change(name, counts_a[name], counts_b[name]) for name in _COUNTS]
    found.append(Change("duration_seconds", a.duration, b.duration))
    found.append(
        Change(
            "throughput_per_second",
            _throughput(counts_a["completed"], a),
            _throughput(counts_b["completed"], b),
        )
    )
    return tuple(found)


def _stage_rows(run: RunSummary, pipeline: int) -> dict[str, tuple[StageConfig, StageRow | None]]:
    started = run.pipelines.get(pipeline)
    if started is None:
        return {}
    snapshot = run.snapshots.get(pipeline)
    rows: Sequence[StageRow] = snapshot.stages if snapshot is not None else ()
    return {
        config.name: (config, rows[index] if index < len(rows) else None)
        for index, config in enumerate(started.stages)
    }


def _stage_names(a: RunSummary, b: RunSummary, pipeline: int) -> list[str]:
    """A's stages in order, then B's new ones."""
    names: dict[str, None] = {}
    for run in (a, b):
        started = run.pipelines.get(pipeline)
        for config in started.stages if started is not None else ():
            names.setdefault(config.name, None)
    return list(names)


def _stages(a: RunSummary, b: RunSummary) -> tuple[StageChange, ...]:
    found = []
    for pipeline in sorted(set(a.pipelines) | set(b.pipelines)):
        rows_a, rows_b = _stage_rows(a, pipeline), _stage_rows(b, pipeline)
        for name in _stage_names(a, b, pipeline):
            row_a = rows_a.get(name, (None, None))[1]
            row_b = rows_b.get(name, (None, None))[1]
            present: Presence = (
                "both" if name in rows_a and name in rows_b else "a" if name in rows_a else "b"
            )

            found.append(
                StageChange(
                    pipeline=pipeline,
                    stage=name,
                    present=present,
                    p50=_pair("p50", row_a, row_b, lambda row: row.p50),
                    p95=_pair("p95", row_a, row_b, lambda row: row.p95),
                    max=_pair("max", row_a, row_b, lambda row: row.max_seconds),
                    throughput=Change(
                        "throughput",
                        None if row_a is None else _throughput(_finished(row_a), a),
                        None if row_b is None else _throughput(_finished(row_b), b),
                    ),
                    done=_pair("done", row_a, row_b, lambda row: row.done),
                    failed=_pair("failed", row_a, row_b, lambda row: row.failed),
                )
            )
    return tuple(found)


def _pair(
    name: str,
    row_a: StageRow | None,
    row_b: StageRow | None,
    read: Callable[[StageRow], Number | None],
) -> Change:
    return Change(
        name, None if row_a is None else read(row_a), None if row_b is None else read(row_b)
    )


def _finished(row: StageRow) -> int:
    return row.done + row.failed + row.skipped


def _group_counts(run: RunSummary) -> dict[GroupKey, int]:
    """Failed items by their last error's group (items failed when the run ended)."""
    counts: dict[int, int] = {}
    for table in run.items.values():
        errors, status = table.errors, table.status
        data = status.tobytes()[: table.size]
        at = data.find(3)
        while at >= 0:
            group = run.errors.group_of(errors[at])
            if group is not None:
                counts[group] = counts.get(group, 0) + 1
            at = data.find(3, at + 1)
    return {run.errors.keys[group]: count for group, count in counts.items()}


def _errors(a: RunSummary, b: RunSummary) -> tuple[GroupChange, ...]:
    counts_a, counts_b = _group_counts(a), _group_counts(b)
    examples = {key: a.errors.example_of(key) or "" for key in counts_a}
    examples.update({key: b.errors.example_of(key) or "" for key in counts_b})
    found = [
        GroupChange(
            type=key[0],
            message=key[1],
            a=counts_a.get(key, 0),
            b=counts_b.get(key, 0),
            example=examples[key],
        )
        for key in {**counts_a, **counts_b}
    ]
    found.sort(key=lambda group: (-abs(group.change), -max(group.a, group.b), group.type))
    return tuple(found)


# ---------------------------------------------------------------------- how runs were made

_STAGE_SETTINGS: Final = (
    "retry",
    "task_attempts",
    "task_wait_seconds",
    "stage_attempts",
    "queue_capacity",
    "concurrency_limits",
    "has_skip_if",
    "no_retry_on",
    "durable",
)
"""`StageConfig` fields compared as they are (workers and tasks are compared apart)."""
_LIMIT_SETTINGS: Final = ("task_timeout", "limit", "adaptive")
"""`StageLimits` fields set by the script (the rest is what happened)."""
_CAPS: Final = ("per_second", "per_minute", "tokens_per_minute")


def _made(a: RunSummary, b: RunSummary) -> tuple[Difference, ...]:
    found: list[Difference] = []

    def differ(setting: str, value_a: Any, value_b: Any, **where: Any) -> None:
        if value_a != value_b:
            found.append(Difference(setting, value_a, value_b, **where))

    header_a, header_b = a.header, b.header
    differ("argv", list(header_a.argv), list(header_b.argv))
    differ("script", header_a.script, header_b.script)
    differ("script_sha256", a.script_sha256, b.script_sha256)
    differ("antflow", header_a.antflow, header_b.antflow)
    differ("record_values", header_a.values, header_b.values)
    for pipeline in sorted(set(a.pipelines) | set(b.pipelines)):
        started_a, started_b = a.pipelines.get(pipeline), b.pipelines.get(pipeline)
        if started_a is None or started_b is None:
            differ(
                "stages",
                _names(started_a),
                _names(started_b),
                pipeline=pipeline,
            )
            continue
        differ("name", started_a.name, started_b.name, pipeline=pipeline)
        differ("version", started_a.version, started_b.version, pipeline=pipeline)
        differ("stages", _names(started_a), _names(started_b), pipeline=pipeline)
        differ("total_items", started_a.total_items, started_b.total_items, pipeline=pipeline)
        rows_a, rows_b = _stage_rows(a, pipeline), _stage_rows(b, pipeline)
        for name, (config_a, row_a) in rows_a.items():
            if name not in rows_b:
                continue
            config_b, row_b = rows_b[name]
            where = {"pipeline": pipeline, "stage": name}
            differ("workers", len(config_a.workers), len(config_b.workers), **where)
            differ("tasks", list(config_a.tasks), list(config_b.tasks), **where)
            for setting in _STAGE_SETTINGS:
                differ(setting, _plain(config_a, setting), _plain(config_b, setting), **where)
            limits_a = None if row_a is None else row_a.limits
            limits_b = None if row_b is None else row_b.limits
            for setting in _LIMIT_SETTINGS:
                differ(
                    setting,
                    None if limits_a is None else getattr(limits_a, setting),
                    None if limits_b is None else getattr(limits_b, setting),
                    **where,
                )
        caps_a, caps_b = _caps(a.snapshots.get(pipeline)), _caps(b.snapshots.get(pipeline))
        for limit in {**caps_a, **caps_b}:
            for setting in _CAPS:
                differ(
                    setting,
                    caps_a.get(limit, {}).get(setting),
                    caps_b.get(limit, {}).get(setting),
                    pipeline=pipeline,
                    limit=limit,
                )
    return tuple(found)


def _names(started: PipelineStarted | None) -> list[str] | None:
    return None if started is None else [config.name for config in started.stages]


def _plain(config: StageConfig, setting: str) -> Any:
    value = getattr(config, setting)
    return list(value) if isinstance(value, tuple) else value


def _caps(snapshot: Snapshot | None) -> dict[str, dict[str, float | None]]:
    if snapshot is None:
        return {}
    return {row.name: {cap: getattr(row, cap) for cap in _CAPS} for row in snapshot.limits}


# ---------------------------------------------------------------------- usage


def _usage(a: RunSummary, b: RunSummary) -> tuple[StageUsage, ...]:
    found = []
    for pipeline in sorted(set(a.pipelines) | set(b.pipelines)):
        for name in _stage_names(a, b, pipeline):
            usage_a, usage_b = a.stage_usage(pipeline, name), b.stage_usage(pipeline, name)
            if usage_a is None and usage_b is None:
                continue
            found.append(
                StageUsage(
                    pipeline=pipeline,
                    stage=name,
                    input_tokens=_tokens("input_tokens", usage_a, usage_b),
                    output_tokens=_tokens("output_tokens", usage_a, usage_b),
                    cost=Change(
                        "cost",
                        None if usage_a is None else usage_a.cost,
                        None if usage_b is None else usage_b.cost,
                    ),
                    model=(
                        None if usage_a is None else usage_a.model,
                        None if usage_b is None else usage_b.model,
                    ),
                )
            )
    return tuple(found)


def _tokens(name: str, usage_a: Usage | None, usage_b: Usage | None) -> Change:
    return Change(
        name,
        0 if usage_a is None else getattr(usage_a, name),
        0 if usage_b is None else getattr(usage_b, name),
    )


def _usage_total(a: RunSummary, b: RunSummary) -> tuple[Change, Change, Change]:
    stages = _usage(a, b)

    def total(read: Callable[[StageUsage], Change], side: str) -> Number | None:
        values = [getattr(read(stage), side) for stage in stages]
        known = [value for value in values if value is not None]
        return sum(known) if known else None

    def both(name: str, read: Callable[[StageUsage], Change]) -> Change:
        value_a, value_b = total(read, "a"), total(read, "b")
        if name != "cost":
            value_a, value_b = value_a or 0, value_b or 0
        return Change(name, value_a, value_b)

    return (
        both("input_tokens", lambda stage: stage.input_tokens),
        both("output_tokens", lambda stage: stage.output_tokens),
        both("cost", lambda stage: stage.cost),
    )


# ---------------------------------------------------------------------- notes


def _same_run(a: RunSummary, b: RunSummary) -> bool:
    if a.run_id is not None and a.run_id == b.run_id:
        return True
    return (
        a.header.started_at == b.header.started_at
        and a.header.pid == b.header.pid
        and a.header.argv == b.header.argv
    )


def _notes(a: RunSummary, b: RunSummary) -> tuple[str, ...]:
    notes = []
    if _same_run(a, b):
        notes.append("A and B are the same run: nothing can differ.")
    for label, run in (("A", a), ("B", b)):
        if not run.complete:
            notes.append(
                f"{label} has no end: the run was cut short (killed, crashed) or is still "
                f"running; it is compared as far as it was recorded."
            )
        if run.damaged:
            notes.append(
                f"{label} is damaged: lines that could not be read were passed over; the "
                f"rest is compared."
            )
    if a.header.script != b.header.script:
        notes.append(
            f"The runs are of different scripts ({a.header.script or 'unknown'} and "
            f"{b.header.script or 'unknown'}): items are compared by id all the same."
        )
    for pipeline in sorted(set(a.pipelines) | set(b.pipelines)):
        names_a, names_b = _names(a.pipelines.get(pipeline)), _names(b.pipelines.get(pipeline))
        if names_a != names_b:
            notes.append(
                f"Pipeline {pipeline} differs: A has {_listed(names_a)}, B has "
                f"{_listed(names_b)}; its items are compared by id all the same."
            )
    return tuple(notes)


def _listed(names: list[str] | None) -> str:
    if names is None:
        return "no such pipeline"
    return "stages " + ", ".join(names) if names else "no stages"
