"""Damaged recordings, made on purpose: the mutations of the replay fuzz test.

`mutate(data, rng)` returns a copy of a recording's bytes with one kind of damage a disk,
a careless edit or an attacker can do (cut, flipped bytes, lines dropped, repeated,
swapped or blank, numbers made huge or negative, values of the wrong type, deep nesting,
an event batch's times cut to a length that is not a multiple of 8, the end record's
offsets moved). `exercise(path)` opens such a file and reads it the ways a replay does:
the reader and the replay source, seeks, windows, stories. The fuzz test asserts that it
raises nothing but `RecordingError`.

Everything is driven by a `random.Random`, so a case is reproduced from its seed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from typing import TYPE_CHECKING, Any, Final

import msgspec

from antflow.runstream.fileformat import Recording, RecordingError
from antflow.runstream.records import Event
from antflow_tui.source.replay import ReplaySource

if TYPE_CHECKING:
    import random
    from collections.abc import Callable
    from pathlib import Path

_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_ODD_NUMBERS: Final = (
    b"-1",
    b"0",
    b"-0.0",
    b"1e308",
    b"-1e308",
    b"1e400",
    b"18446744073709551616",
    b"9223372036854775807",
    b"-9223372036854775809",
    b"99999999999999999999999999999999999999",
    b"4294967295",
    b"1.5",
    b"7",
)
_ODD_VALUES: Final[tuple[Any, ...]] = (
    None,
    True,
    "",
    "x",
    [],
    {},
    [1, 2],
    {"repr": 5},
    {"record": "snapshot"},
    -1,
    2**70,
    1e300,
    0.5,
)


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def flip_bytes(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def drop_line(data: bytes, rng: random.Random) -> bytes:
    lines = _lines(data)
    del lines[rng.randrange(1, len(lines))]
    return b"".join(lines)


def duplicate_line(data: bytes, rng: random.Random) -> bytes:
    lines = _lines(data)
    at = rng.randrange(1, len(lines))
    lines.insert(at, lines[at])
    return b"".join(lines)


def swap_lines(data: bytes, rng: random.Random) -> bytes:
    lines = _lines(data)
    a, b = rng.randrange(1, len(lines)), rng.randrange(1, len(lines))
    lines[a], lines[b] = lines[b], lines[a]
    return b"".join(lines)


def blank_line(data: bytes, rng: random.Random) -> bytes:
    lines = _lines(data)
    lines.insert(rng.randrange(1, len(lines) + 1), rng.choice([b"\n", b"\r\n", b"   \n"]))
    return b"".join(lines)


def odd_number(data: bytes, rng: random.Random) -> bytes:
    """One number somewhere (offsets, times, counts, codes, ids) made huge, negative..."""
    numbers = list(_NUMBER.finditer(data))
    if not numbers:
        return data
    found = rng.choice(numbers)
    return data[: found.start()] + rng.choice(_ODD_NUMBERS) + data[found.end() :]


def _nodes(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, inner in value.items():
            found.extend(_nodes(inner, (*path, key)))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found.extend(_nodes(inner, (*path, index)))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    value[path[0]] = _replace(value[path[0]], path[1:], new)
    return value


def _json_edit(data: bytes, rng: random.Random, new: Callable[[Any], Any]) -> bytes:
    lines = _lines(data)
    at = rng.randrange(len(lines))
    try:
        value = json.loads(lines[at])
    except ValueError:
        return data
    path = rng.choice(_nodes(value))
    lines[at] = json.dumps(_replace(value, path, new(value)), separators=(",", ":")).encode()
    lines[at] += b"\n"
    return b"".join(lines)


def swap_type(data: bytes, rng: random.Random) -> bytes:
    """One value of one line (the header too) replaced by a value of another type."""
    return _json_edit(data, rng, lambda _: rng.choice(_ODD_VALUES))


def deep_nesting(data: bytes, rng: random.Random) -> bytes:
    """One value replaced by an array nested thousands deep."""
    depth = rng.choice([100, 1_000, 20_000])
    nested = "[" * depth + "]" * depth
    marker = "@@nested@@"
    edited = _json_edit(data, rng, lambda _: marker)
    return edited.replace(json.dumps(marker).encode(), nested.encode(), 1)


def odd_times(data: bytes, rng: random.Random) -> bytes:
    """An event batch whose times column is not a whole number of float64s (or not
    base64, or empty); a packed one whose words are cut, not MessagePack, not a whole
    number of records, or hold a time, a code or an id no recorder writes."""
    lines = _lines(data)
    batches = [n for n, line in enumerate(lines) if line.startswith((b'["E"', b'["R"'))]
    if not batches:
        return data
    at = rng.choice(batches)
    try:
        batch = json.loads(lines[at])
        raw = base64.b64decode(batch[2] if batch[0] == "R" else batch[4])
    except (ValueError, TypeError, IndexError, KeyError):
        return data  # an earlier mutation broke it already
    if batch[0] == "R":
        batch[2] = rng.choice(_odd_words(raw, rng))
    else:
        batch[4] = rng.choice(
            [
                base64.b64encode(raw[: max(len(raw) - rng.randint(1, 7), 0)]).decode(),
                base64.b64encode(raw + b"\x00" * rng.randint(1, 7)).decode(),
                "",
                "not base64!",
                base64.b64encode(b"\xff" * 8 * (len(batch[2]) + 1)).decode(),
            ]
        )
    lines[at] = json.dumps(batch, separators=(",", ":")).encode() + b"\n"
    return b"".join(lines)


def _odd_words(raw: bytes, rng: random.Random) -> list[str]:
    """Damaged words for a packed batch (base64 of MessagePack)."""
    try:
        words = msgspec.msgpack.decode(raw)
    except msgspec.DecodeError:
        words = [1, 2, 3.0]
    if not isinstance(words, list) or not words:
        words = [1, 2, 3.0]
    spot = 3 * rng.randrange(max(len(words) // 3, 1))
    odd: list[Any] = []
    for slot, value in (
        (2, float("nan")),
        (2, float("inf")),
        (2, "soon"),
        (1, -5),
        (1, 2.5),
        (1, True),
        (0, {"repr": 5}),
        (0, [[{}]]),
        (0, float("nan")),
    ):
        changed = list(words)
        if spot + slot < len(changed):
            changed[spot + slot] = value
        odd.append(base64.b64encode(msgspec.msgpack.encode(changed)).decode())
    return [
        *odd,
        base64.b64encode(raw[: max(len(raw) - rng.randint(1, 9), 0)]).decode(),
        base64.b64encode(raw + b"\xc1" * rng.randint(1, 3)).decode(),
        base64.b64encode(msgspec.msgpack.encode(words[:-1])).decode(),
        "",
        "not base64!",
    ]


def odd_index(data: bytes, rng: random.Random) -> bytes:
    """The end record's offsets (seek index, checkpoints, names) moved, reversed, made
    negative or past the file."""
    lines = _lines(data)
    try:
        end = json.loads(lines[-1])
    except ValueError:
        return data
    if not isinstance(end, dict) or end.get("record") != "end":
        return data
    size = len(data)
    how = rng.choice(["shift", "negative", "past", "reverse", "zero", "time"])
    for field in ("index", "checkpoints"):
        entries = end.get(field, [])
        if how == "reverse":
            entries.reverse()
        for entry in entries:
            if how == "shift":
                entry[1] += rng.randint(-40, 40)
            elif how == "negative":
                entry[1] = -rng.randint(1, 10_000)
            elif how == "past":
                entry[1] = size + rng.randint(0, 10_000)
            elif how == "zero":
                entry[1] = 0
            elif how == "time":
                entry[0] = rng.choice([-1e300, 1e300, 0.0, entry[0] + 1e6])
    names = end.get("names", [])
    if how == "shift":
        end["names"] = [offset + rng.randint(-40, 40) for offset in names]
    elif how in ("negative", "past", "zero"):
        end["names"] = [{"negative": -5, "past": size + 9, "zero": 0}[how] for _ in names]
    lines[-1] = json.dumps(end, separators=(",", ":")).encode() + b"\n"
    return b"".join(lines)


MUTATIONS: Final[dict[str, Callable[[bytes, random.Random], bytes]]] = {
    "truncate": truncate,
    "flip": flip_bytes,
    "drop": drop_line,
    "duplicate": duplicate_line,
    "swap": swap_lines,
    "blank": blank_line,
    "number": odd_number,
    "type": swap_type,
    "nesting": deep_nesting,
    "times": odd_times,
    "index": odd_index,
}


def mutate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One or two mutations of `data`: (their names, the damaged bytes)."""
    names = [rng.choice(list(MUTATIONS))]
    if rng.random() < 0.25:
        names.append(rng.choice(list(MUTATIONS)))
    for name in names:
        if data.count(b"\n") > 1:
            data = MUTATIONS[name](data, rng)
    return "+".join(names), data


def exercise(path: Path) -> str:
    """Read the recording at `path` every way a replay does. Returns "refused" when it
    is refused with a `RecordingError`, "read" otherwise; anything else it raises is a
    crash."""
    try:
        opened = Recording.open(path)
    except RecordingError:
        return "refused"
    with opened:
        start, end = opened.started_at, opened.ended_at
        moments = [start - 1.0, start, (start + end) / 2, end, end + 1.0]
        opened.pipelines()
        seen: list[Event] = []
        for record in opened.records():
            if isinstance(record, Event) and len(seen) < 3:
                seen.append(record)
        for at in moments:
            opened.seek(at)
            opened.window(at - 1.0, at, 50)
            opened.newest_before(at, 50)
            opened.idle_since(at)
        opened.snapshots(start - 1.0, end + 1.0, every=0.5)
        for event in seen:
            opened.item(event.pipeline, event.item)
        # What a comparison and a resume read: the run whole, and its outcomes lines.
        for _ in opened.scan(("batch", "error", "snapshot", "usage", "failures")):
            pass
        for _ in opened.outcomes():
            pass
        _replay(opened, moments, seen)
    return "read"


def _replay(opened: Recording, moments: list[float], seen: list[Event]) -> None:
    """What `antflow-tui replay` does with it: frames while playing, jumps, stories."""
    source = ReplaySource(opened, name=str(opened.path), playing=True, speed=4.0)
    now = 0.0
    source.next_frame(now)
    for _ in range(6):
        now += 0.5
        source.next_frame(now)
    for at in reversed(moments):
        source.seek(at)
        source.next_frame(now)
    source.set_speed(1_000.0)
    source.play(True)
    source.next_frame(now + 1.0)
    for event in seen:
        asyncio.run(source.item(event.pipeline, event.item))
        asyncio.run(source.item(0, event.item))
