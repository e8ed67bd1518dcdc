"""Resuming a kept run: what the runs of a chain completed, and what a resumed pipeline
does with each item fed.

A run kept in the history (`antflow.keep_history`) stores, as it goes, the id and the
result of each item that completes and the output of each item that passes a durable
stage (`antflow.Stage(durable=True)`), in its recording's outcomes lines. A resume reads
those lines from the run it resumes and from every run that one resumed (its chain):

- an item whose id completed in any of them is **done earlier**: not run again, its
  stored result returned by `run()`/`stream()` (in its JSON form: tuples come back as
  lists, dict keys as strings);
- an item that passed a stage marked durable (in this run) is fed into the stage after
  the last such stage, with that stage's stored output;
- every other item (failed, unfinished, or never fed) runs from the first stage.

Items are matched by id, never by value: an explicit ``{"id": ...}``, or the automatic
number of its place in the feed order, which is right only when the script feeds the
same items in the same order (a resume warns when the item count differs). Ids are
compared as recordings write them (`antflow.runstream.records.item_key`): JSON scalars
as they are, anything else (a tuple) by its repr.

What is on disk is what a resume trusts: a run killed at any moment loses at most the
outcomes of its last flush (half a second), so an item runs again only if it was in
flight at the kill or completed in that last half second.

A pipeline is resumed only by one of the same fingerprint (its stage names, task names
and `Pipeline(version=...)`); otherwise the start is refused (`ResumeError`) with what
differs, unless `accept_changes` says to go on.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import msgspec

from antflow.exceptions import PipelineError, ResumeError
from antflow.history.errors import HistoryUnavailable, RunNotFound
from antflow.runstream.fileformat import Recording, RecordingError
from antflow.runstream.records import item_key

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from antflow.history import History, Run
    from antflow.pipeline import Pipeline
    from antflow.runstream.filelines import Outcomes
    from antflow.runstream.records import PipelineStarted

logger = logging.getLogger(__name__)

ACCEPT_HINT: Final = (
    "pass accept_changes=True (ANTFLOW_RESUME_ACCEPT_CHANGES=1) to resume it anyway, or "
    "run it afresh without resuming"
)
"""How a refusal tells the user to go on anyway (the app says its own option)."""
_PLAIN_KEY_TYPES: Final = frozenset({int, str, bool, type(None)})
_decode = msgspec.json.decode


# ---------------------------------------------------------------------- fingerprints


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What a pipeline must keep for a resume to trust its earlier runs: its stages'
    names and task names, in order, and its version."""

    stages: tuple[tuple[str, tuple[str, ...]], ...]
    version: str | int | None = None

    @classmethod
    def of(cls, pipeline: Pipeline) -> Fingerprint:
        """A live pipeline's fingerprint."""
        return cls(
            tuple((stage.name, stage.task_names) for stage in pipeline.stages),
            pipeline.version,
        )

    @classmethod
    def of_started(cls, started: PipelineStarted) -> Fingerprint:
        """A recorded pipeline's fingerprint."""
        return cls(tuple((s.name, tuple(s.tasks)) for s in started.stages), started.version)

    @classmethod
    def parse(cls, text: str | None) -> Fingerprint | None:
        """A fingerprint from its `text` (None: none, or damaged)."""
        if text is None:
            return None
        try:
            raw = json.loads(text)
            stages = tuple((str(name), tuple(map(str, tasks))) for name, tasks in raw["stages"])
            version = raw.get("version")
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
            return None
        if isinstance(version, bool) or not isinstance(version, str | int | None):
            return None
        return cls(stages, version)

    @property
    def text(self) -> str:
        """The fingerprint as the history keeps it: compact JSON, so a refusal can say
        what changed, not only that something did."""
        stages = [[name, list(tasks)] for name, tasks in self.stages]
        return json.dumps({"stages": stages, "version": self.version}, separators=(",", ":"))


def changes(before: Fingerprint, now: Fingerprint) -> list[str]:
    """What differs from `before` to `now`, one change each, in words."""
    said: list[str] = []
    old = [name for name, _ in before.stages]
    new = [name for name, _ in now.stages]
    removed = [name for name in old if name not in new]
    added = [name for name in new if name not in old]
    renamed: dict[str, str] = {}
    for name in list(removed):
        place = old.index(name)
        if place < len(new) and new[place] in added:
            renamed[name] = new[place]
            removed.remove(name)
            added.remove(new[place])
    said.extend(f"stage {name!r} renamed {to!r}" for name, to in renamed.items())
    said.extend(f"stage {name!r} removed" for name in removed)
    said.extend(f"stage {name!r} added" for name in added)
    kept_old = [renamed.get(name, name) for name in old if name not in removed]
    kept_new = [name for name in new if name not in added]
    if kept_old != kept_new:
        said.append(f"stages reordered: {', '.join(kept_old)} → {', '.join(kept_new)}")
    tasks_before = {renamed.get(name, name): tasks for name, tasks in before.stages}
    for name, tasks in now.stages:
        earlier = tasks_before.get(name)
        if earlier is None or earlier == tasks:
            continue
        if len(earlier) == len(tasks):
            said.extend(
                f"task {a!r} of stage {name!r} renamed {b!r}"
                for a, b in zip(earlier, tasks, strict=True)
                if a != b
            )
        else:
            said.append(f"stage {name!r}'s tasks {_listed(earlier)} → {_listed(tasks)}")
    if before.version != now.version:
        said.append(f"version {before.version!r} → {now.version!r}")
    return said


def _listed(names: Sequence[str]) -> str:
    return "[" + ", ".join(names) + "]"


# ---------------------------------------------------------------------- a pipeline's plan


@dataclass(slots=True)
class Resumed:
    """What a resume does with one item fed (`PipelinePlan.route`). Not frozen: one is
    made per item fed, and a frozen dataclass costs three times as much to make."""

    stage: int | None
    """None: done earlier, not run; else the index of the stage it enters."""
    value: Any
    """The value it enters `stage` with; done earlier, its stored result still as JSON
    (`msgspec.Raw`: `result` decodes it once it is asked for), or None."""
    stored: bool
    """Whether `value` holds something (done earlier items only: one whose result was
    not stored is counted, but returns nothing)."""


class PipelinePlan:
    """What a resume does with each item fed into one pipeline (`Pipeline.resume_from`).

    Args:
        stages: The pipeline's stage names, in order.
        durable: The indexes of the stages it resumes after, with each one's stored
            outputs by item key (a stage whose outputs a resume uses: marked durable,
            not the last).
        done: The results of the items completed earlier, by item key (None: not
            stored).
        expected_items: Items the run resumed was given (None: unknown).
        total_items: Items this run was given (None: unknown).
    """

    def __init__(
        self,
        stages: Sequence[str],
        durable: Sequence[tuple[int, dict[Any, msgspec.Raw]]],
        done: dict[Any, msgspec.Raw | None],
        *,
        expected_items: int | None = None,
        total_items: int | None = None,
    ) -> None:
        self.stages = tuple(stages)
        # The last durable stage first: an item resumes after the furthest it passed.
        self._durable = sorted(durable, key=lambda pair: -pair[0])
        self._done = done
        self.expected_items = expected_items
        self.total_items = total_items
        self._warned_count = False

    @property
    def done_earlier(self) -> int:
        """Items the earlier runs completed (counted done earlier when fed)."""
        return len(self._done)

    def check_stages(self, names: Sequence[str]) -> None:
        """Refuse a pipeline of other stages than the plan was made for.

        Raises:
            PipelineError: the stage names differ.
        """
        if tuple(names) != self.stages:
            raise PipelineError(
                f"this resume plan was made for the stages {', '.join(self.stages)}, not "
                f"{', '.join(names)}"
            )

    def route(self, item_id: Any, *, automatic: bool = False) -> Resumed | None:
        """What to do with the item fed under `item_id` (None: run it from the first
        stage, as any item).

        Args:
            item_id: Its id.
            automatic: The id is the item's number in the feed order (it had none of
                its own): warn, once, when the number of items differs from the run
                resumed.
        """
        if automatic and not self._warned_count:
            self._warn_count()
        key = item_id if type(item_id) in _PLAIN_KEY_TYPES else item_key(item_id)
        try:
            done = self._done.get(key, _ABSENT)
        except TypeError:  # an unhashable id: the engine refuses it
            return None
        if done is not _ABSENT:
            return _NO_RESULT if done is None else Resumed(None, done, stored=True)
        for index, outputs in self._durable:
            raw = outputs.get(key)
            if raw is None:
                continue
            try:
                return Resumed(index + 1, _decode(raw), stored=True)
            except (msgspec.DecodeError, RecursionError, ValueError):
                continue
        return None

    @staticmethod
    def result(raw: Any) -> tuple[bool, Any]:
        """(True, the result) a done earlier item's `Resumed.value` holds, or (False,
        None) when it cannot be read (a damaged file)."""
        try:
            return True, _decode(raw)
        except (msgspec.DecodeError, RecursionError, ValueError, TypeError):
            return False, None

    def _warn_count(self) -> None:
        self._warned_count = True
        before, now = self.expected_items, self.total_items
        if before is None or now is None or before == now:
            return
        logger.warning(
            "this run has %s items where the run it resumes had %s: items without an id of "
            "their own are matched by their place in the feed order, so if the items or "
            "their order changed, the wrong ones count as done earlier. Give each item an "
            '"id" ({"id": ..., "value": ...}) to match them by id.',
            f"{now:,}",
            f"{before:,}",
        )


# ---------------------------------------------------------------------- a chain's plan


@dataclass(slots=True)
class _Kept:
    """What the chain stored of one pipeline (by its number in each run)."""

    done: dict[Any, msgspec.Raw | None] = field(default_factory=dict)
    outputs: dict[str, dict[Any, msgspec.Raw]] = field(default_factory=dict)
    """Per stage name, each item's latest stored output."""


class ResumePlan:
    """What a chain of kept runs completed, pipeline by pipeline (by the order they
    started in each run), ready to be applied to the pipelines of a resumed run.

    Args:
        chain: The run resumed, then every run it resumed, newest first.
        kept: Per pipeline number, what the chain stored.
        started: Per pipeline number, how the run resumed started it.
        notes: What the reading found worth saying (a damaged file, a run deleted).
    """

    def __init__(
        self,
        chain: Sequence[Run],
        kept: dict[int, _Kept],
        started: dict[int, PipelineStarted],
        notes: Sequence[str] = (),
    ) -> None:
        self.chain = tuple(chain)
        self.run = chain[0]
        """The run resumed."""
        self._kept = kept
        self._started = started
        self.notes = tuple(notes)
        """What the reading found worth saying (already logged)."""

    @property
    def done_earlier(self) -> int:
        """Items the chain completed, over every pipeline."""
        return sum(len(kept.done) for kept in self._kept.values())

    @property
    def description(self) -> str:
        """One line for a header: ``resumed from 2026-12-05 06:41 · 2,000 done earlier``."""
        start = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.run.started_at))
        return f"resumed from {start} · {self.done_earlier:,} done earlier"

    def fingerprint(self, number: int) -> Fingerprint | None:
        """How pipeline `number` of the run resumed was made (None: it had none such)."""
        started = self._started.get(number)
        return None if started is None else Fingerprint.of_started(started)

    def for_pipeline(
        self,
        number: int,
        pipeline: Pipeline,
        *,
        accept_changes: bool = False,
        hint: str = ACCEPT_HINT,
    ) -> PipelinePlan | None:
        """The plan for the `number`-th pipeline this run starts (None: the run resumed
        started no such pipeline, so every item is new).

        Args:
            number: Its place among the pipelines the run started (from 1).
            pipeline: It, about to start (its `total_items` known when `run()` starts it).
            accept_changes: Go on when its fingerprint differs from the one resumed.
            hint: How a refusal says to go on anyway.

        Raises:
            ResumeError: the fingerprint differs and `accept_changes` is False.
        """
        before = self.fingerprint(number)
        if before is None:
            return None
        now = Fingerprint.of(pipeline)
        differences = changes(before, now)
        if differences and not accept_changes:
            raise ResumeError(
                f"cannot resume run {self.run.id} ({self.run.script or 'unknown script'}): "
                f"the pipeline changed since ({'; '.join(differences)}), so what the earlier "
                f"runs stored may not fit it: {hint}",
                tuple(differences),
            )
        kept = self._kept.get(number, _Kept())
        names = [stage.name for stage in pipeline.stages]
        durable = [
            (index, kept.outputs[stage.name])
            for index, stage in enumerate(pipeline.stages[:-1])
            if stage.durable and stage.name in kept.outputs
        ]
        started = self._started[number]
        return PipelinePlan(
            names,
            durable,
            kept.done,
            expected_items=started.total_items,
            total_items=pipeline.probe.total_items,
        )


# ---------------------------------------------------------------------- reading


def read_plan(chain: Sequence[Run]) -> ResumePlan:
    """The plan of a chain of runs (newest first, as `History.chain` gives it), from
    their recordings. A run whose file cannot be read adds nothing (its items run
    again), and says so in the log.

    Raises:
        ResumeError: `chain` is empty.
    """
    if not chain:
        raise ResumeError("there is no run to resume")
    notes: list[str] = []
    kept: dict[int, _Kept] = {}
    started: dict[int, PipelineStarted] = {}
    oldest = chain[-1]
    if oldest.resumed_from is not None:
        notes.append(
            f"run {oldest.id} resumed run {oldest.resumed_from}, which is no longer kept: "
            f"the items only that run completed run again"
        )
    for position, run in enumerate(reversed(chain)):
        newest = position == len(chain) - 1
        try:
            recording = Recording.open(run.path)
        except RecordingError as error:
            if run.bytes or newest:
                notes.append(f"run {run.id} cannot be read ({error}): its items run again")
            continue
        with recording:
            if newest:
                started = {p.pipeline: p for p in recording.pipelines()}
            _take(recording.outcomes(), kept)
            if recording.damaged:
                notes.append(
                    f"run {run.id}'s recording {os.path.basename(run.path)} is damaged: "
                    f"the items whose outcome was in a damaged line run again"
                )
    for note in notes:
        logger.warning("resume: %s", note)
    return ResumePlan(chain, kept, started, notes)


def _take(lines: Iterable[Outcomes], kept: dict[int, _Kept]) -> None:
    """File each outcomes line away (older runs first: a newer output wins)."""
    for line in lines:
        pipeline = kept.setdefault(line.pipeline, _Kept())
        ids: list[Any] = line.ids
        if not set(map(type, ids)) <= _PLAIN_KEY_TYPES:
            ids = [_file_key(item) for item in ids]
        values: list[msgspec.Raw | None] = list(line.values)
        for index in line.unstored:
            values[index] = None  # written as null
        if line.stage is None:
            done = pipeline.done
            if line.unstored:
                # A result stored by one run is not lost to another that did not store it.
                for key, value in zip(ids, values, strict=True):
                    if value is not None or key not in done:
                        done[key] = value
            else:
                done.update(zip(ids, values, strict=True))
        else:
            outputs = pipeline.outputs.setdefault(line.stage, {})
            if line.unstored:
                outputs.update(
                    (key, value)
                    for key, value in zip(ids, values, strict=True)
                    if value is not None
                )
            else:
                outputs.update(zip(ids, line.values, strict=True))


def _file_key(item: Any) -> Any:
    """An id as read back, as `item_key` gives it for the live id: an array (a tuple id
    as another writer may put it) as the tuple's repr key, as the recorder writes it."""
    return item_key(_tuple(item)) if type(item) is list else item


def _tuple(item: Any) -> Any:
    return tuple(_tuple(part) for part in item) if type(item) is list else item


def plan_for(
    history: History, script: str | os.PathLike[str] | None, reference: str
) -> tuple[ResumePlan, str]:
    """The plan for resuming the run `reference` names, and a line describing it
    (``resumed from 2026-12-05 06:41 · 2,000 done earlier``): what the app's header says.

    Args:
        history: The history that keeps the runs.
        script: The script being run (``last`` means its newest run).
        reference: ``last``, ``last~N``, a run id or the start of one.

    Raises:
        ResumeError: no kept run matches, the history cannot be read, or the run is
            still running; the message says what the history holds.
    """
    try:
        run = history.resolve(reference, script)
        chain = history.chain(run.id)
    except RunNotFound as error:
        raise ResumeError(f"cannot resume: {error}") from None
    except HistoryUnavailable as error:
        raise ResumeError(f"cannot resume: {error}") from None
    if run.status == "running":
        raise ResumeError(
            f"cannot resume run {run.id}: it is still running (process {run.pid}), and "
            f"resuming it would run its items twice; stop it first, or wait for it to end"
        )
    plan = read_plan(chain)
    return plan, plan.description


_ABSENT: Final[Any] = object()
_NO_RESULT: Final = Resumed(None, None, stored=False)


__all__ = [
    "ACCEPT_HINT",
    "Fingerprint",
    "PipelinePlan",
    "ResumePlan",
    "Resumed",
    "changes",
    "plan_for",
    "read_plan",
]
