"""What a kept run stores for a resume: each completed item's result, and each item's
output of a durable stage, as JSON, in `Outcomes` lines of its recording.

A recorder asked to keep outcomes (`Recorder(..., outcomes=True)`, as the run history
does) registers one listener per pipeline (`Probe.on_completed`) and one per durable
stage (`Probe.on_stage_output`); without one, the engine pays one test per item. The
listener files the id and the value away (scalars as they are, anything else checked and
encoded as JSON at once, while it still is what the stage returned: the next stage may
change it in place); every flush turns what came into lines, written before the flush's
event batches.

A value is stored when JSON holds it as it is (dicts with string keys, lists, tuples as
lists, strings, finite numbers, booleans, None) and takes at most `VALUE_LIMIT` bytes as
JSON; any other is not stored, said once per stage in the log: a resume then counts the
item done earlier without returning its result, or runs a durable stage again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, cast

import msgspec

from antflow._safe import safe_repr
from antflow.runstream.filelines import Outcomes
from antflow.runstream.records import item_key

if TYPE_CHECKING:
    from collections.abc import Callable

    from antflow.pipeline import Pipeline
    from antflow.runstream.records import PipelineStarted

logger = logging.getLogger(__name__)

VALUE_LIMIT: Final = 1 << 20
"""Bytes one value may take as JSON (1 MiB); a longer one is not stored."""
LINE_VALUES: Final = 16_384
"""Most values on one line, as event batches."""
LINE_BYTES: Final = 8 << 20
"""A line is cut once its values take this many bytes (a reader takes lines up to
64 MB: `antflow.runstream.filelines.LINE_LIMIT`)."""
_SHORT: Final = VALUE_LIMIT // 4
"""Characters of a string stored without a look (UTF-8 takes at most 4 bytes each)."""
_PLAIN_ID_TYPES: Final = frozenset({int, str, bool, type(None)})
_NOT_JSON: Final = "JSON cannot hold it"


def json_value(value: Any) -> tuple[msgspec.Raw | None, str]:
    """(`value` as JSON, '') when JSON holds it within `VALUE_LIMIT` bytes, else (None,
    why not)."""
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
        data = text.encode()
    except (TypeError, ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
        return None, _NOT_JSON
    if len(data) > VALUE_LIMIT:
        limit = f"{VALUE_LIMIT >> 20} MiB" if VALUE_LIMIT >= 1 << 20 else f"{VALUE_LIMIT:,} bytes"
        return None, f"it takes more than {limit} as JSON"
    return msgspec.Raw(data), ""


@dataclass(slots=True)
class _Stored:
    """The values of one pipeline's completed items, or of one durable stage, not yet
    written."""

    pipeline: int
    stage: str | None
    ids: list[Any] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    """Scalars as they are, `msgspec.Raw` JSON, None where `unstored` says so."""
    unstored: list[int] = field(default_factory=list)
    size: int = 0
    """Bytes of values since the last cut."""
    cuts: list[int] = field(default_factory=list)
    """Where a line must end, so that none takes more than about `LINE_BYTES`."""
    warned: bool = False

    def add(self, item_id: Any, value: Any) -> None:
        """The listener: file `value` away (the per-item path: a few tests and appends)."""
        self.ids.append(item_id)
        kind = type(value)
        if kind is int or kind is bool or value is None:
            self.values.append(value)
            return
        if kind is str and len(value) <= _SHORT:
            self.values.append(value)
            self._grew(len(value))
            return
        if kind is float and value - value == 0:  # finite: JSON has no NaN
            self.values.append(value)
            return
        raw, why = json_value(value)
        if raw is None:
            self._not_stored(item_id, value, why)
            return
        self.values.append(raw)
        self._grew(len(raw))

    def _grew(self, size: int) -> None:
        self.size += size
        if self.size >= LINE_BYTES:
            self.cuts.append(len(self.values))
            self.size = 0

    def _not_stored(self, item_id: Any, value: Any, why: str) -> None:
        self.unstored.append(len(self.values))
        self.values.append(None)
        if self.warned:
            return
        self.warned = True
        what = f"a {type(value).__qualname__}"
        if self.stage is None:
            logger.warning(
                "the result of item %s (%s) is not stored for a resume: %s. A resume "
                "counts such items done earlier without returning their result (said "
                "once for pipeline %d).",
                safe_repr(item_id),
                what,
                why,
                self.pipeline,
            )
        else:
            logger.warning(
                "stage %r is durable, but its output for item %s (%s) is not stored: %s. "
                "A resume runs such items through %r again (said once).",
                self.stage,
                safe_repr(item_id),
                what,
                why,
                self.stage,
            )

    def drop(self, done: set[Any]) -> None:
        """Forget the values of the items in `done` (they completed: a resume needs no
        output of theirs)."""
        ids = self.ids
        if not ids or done.isdisjoint(ids):
            return
        kept = [index for index, item_id in enumerate(ids) if item_id not in done]
        gone = set(self.unstored)
        values = self.values
        self.ids = [ids[index] for index in kept]
        self.values = [values[index] for index in kept]
        self.unstored = [place for place, index in enumerate(kept) if index in gone]
        self.cuts, self.size = [], 0
        for place, value in enumerate(self.values):
            if type(value) is str or type(value) is msgspec.Raw:
                self.size += len(value)
                if self.size >= LINE_BYTES:
                    self.cuts.append(place + 1)
                    self.size = 0

    def lines(self, encode: Callable[[Any], bytes]) -> list[bytes]:
        """What came since the last call, as `Outcomes` lines."""
        if not self.ids:
            return []
        ids, values, unstored, cuts = self.ids, self.values, self.unstored, self.cuts
        self.ids, self.values, self.unstored, self.cuts, self.size = [], [], [], [], 0
        ends = sorted({*cuts, *range(LINE_VALUES, len(ids), LINE_VALUES), len(ids)})
        lines = []
        first = 0
        for end in ends:
            missing = [index - first for index in unstored if first <= index < end]
            lines.append(self._line(ids[first:end], values[first:end], missing, encode))
            first = end
        return lines

    def _line(
        self, ids: list[Any], values: list[Any], unstored: list[int], encode: Callable[[Any], bytes]
    ) -> bytes:
        if not set(map(type, ids)) <= _PLAIN_ID_TYPES:
            ids = [i if type(i) in _PLAIN_ID_TYPES else item_key(i) for i in ids]
        line = Outcomes(self.pipeline, self.stage, ids, cast("list[msgspec.Raw]", values), unstored)
        try:
            return bytes(encode(line)) + b"\n"
        except (ValueError, TypeError, OverflowError, RecursionError):
            pass
        # Something JSON cannot hold though its type can: an int of thousands of digits,
        # a string with a lone surrogate (a file name that did not decode). Each value is
        # checked alone, so it costs only itself; an id no JSON can hold is left out
        # (a resume could never match it: its item runs again).
        kept_ids: list[Any] = []
        kept: list[Any] = []
        missing: list[int] = []
        gone = set(unstored)
        for index, (item_id, value) in enumerate(zip(ids, values, strict=True)):
            key = item_key(item_id)
            if type(key) is str and not _encodes(key):
                continue
            stored: Any = value
            if index in gone:
                stored = None
            elif type(value) is int or type(value) is str:
                stored, _ = json_value(value)
            if stored is None and (index in gone or value is not None):
                missing.append(len(kept))
            kept_ids.append(key)
            kept.append(stored)
        return bytes(encode(Outcomes(self.pipeline, self.stage, kept_ids, kept, missing))) + b"\n"


def _encodes(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


class OutcomeKeeper:
    """Stores the outcomes of every pipeline a recorder follows (see the module)."""

    def __init__(self) -> None:
        self._stored: list[_Stored] = []
        self._durable: set[int] = set()
        """The pipelines with a durable stage."""
        self._detach: list[Callable[[], None]] = []
        self._encode = msgspec.json.Encoder(enc_hook=item_key).encode

    def follow(self, pipeline: Pipeline, started: PipelineStarted) -> None:
        """Store the results of `pipeline` (numbered as `started` says), and the outputs
        of its durable stages but the last (whose outputs are its results)."""
        probe = pipeline.probe
        results = _Stored(started.pipeline, None)
        self._stored.append(results)
        self._detach.append(probe.on_completed(results.add))
        for config in started.stages[:-1]:
            if config.durable:
                outputs = _Stored(started.pipeline, config.name)
                self._stored.append(outputs)
                self._durable.add(started.pipeline)
                self._detach.append(probe.on_stage_output(config.name, outputs.add))

    def lines(self) -> list[bytes]:
        """Every outcome since the last call, as lines. A durable stage's output is left
        out when its item completed since (its result is written in the same flush, and
        a resume needs no more of it): a run whose items pass through quickly stores
        each value once."""
        done: dict[int, set[Any]] = {}
        lines: list[bytes] = []
        for stored in self._stored:
            if stored.stage is None:
                if stored.pipeline in self._durable:
                    done[stored.pipeline] = set(stored.ids)
            else:
                stored.drop(done.get(stored.pipeline, set()))
            lines.extend(stored.lines(self._encode))
        return lines

    def close(self) -> None:
        """Stop listening (what was filed away is dropped: take `lines` first)."""
        for detach in self._detach:
            detach()
        self._detach.clear()
        self._stored.clear()
