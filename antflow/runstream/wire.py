"""The attach protocol's messages: newline-delimited JSON, the run stream's records plus a
few messages of its own.

A viewer connects and sends `Hello` (protocol version, token, snapshot interval). The
server answers `Welcome` (the scopes the token grants), then the run so far: the
`Header`, every `PipelineStarted`, the `History` of the last minutes, a `Snapshot` of
each pipeline and the `Failures` so far, so a late viewer sees the whole run's state and
how it got there. Then it streams, per viewer: snapshots
at the viewer's interval (they double as heartbeat), `Events` batches, error records, log
lines and controls. A viewer that falls behind gets a `Gap` and a fresh snapshot.

Requests (`ItemRequest`, `StackRequest`, `CommandRequest`) carry an id; each gets one
`Reply` with that id. A bad token, a wrong version, a line over `MAX_LINE` bytes or
nested too deep closes the connection; nothing else happens. Nothing
received is ever unpickled or evaluated: every line is decoded into one of the types
below, or refused.
"""

from __future__ import annotations

from typing import Final

import msgspec

from antflow.runstream.jsonlines import encode_line
from antflow.runstream.records import (
    AwaitStack,
    Command,
    ErrorRecord,
    Event,
    ItemDetail,
    ItemKey,
    Record,
    Snapshot,
)

PROTOCOL: Final = 1
"""The protocol version a `Hello` names; a server refuses others."""
MAX_LINE: Final = 64 * 1024
"""Longest line a server accepts from a viewer (requests are small)."""
MAX_CLIENT: Final = 80
"""Characters of a viewer's own description (`Hello.client`) kept."""

READ: Final = "read"
CONTROL: Final = "control"


class _Message(msgspec.Struct, frozen=True, tag_field="record"):
    """Base of the protocol's own messages (tagged like records, so one decoder reads
    everything a server sends)."""


class Hello(_Message, frozen=True, tag="hello"):
    """The viewer's first line."""

    version: int
    token: str
    interval: float = 0.25
    """Seconds between the snapshots the viewer wants."""
    client: str = ""
    """What the viewer is (``antflow-tui attach``), for the job to say who stopped it;
    as the viewer says, so only shown, never trusted."""


class Welcome(_Message, frozen=True, tag="welcome"):
    scopes: tuple[str, ...]
    """``read``, and ``control`` when the token allows commands."""
    pid: int
    script: str | None = None


class Refused(_Message, frozen=True, tag="refused"):
    """Sent just before the server closes the connection."""

    reason: str


class Events(_Message, frozen=True, tag="events"):
    """Events since the last batch (the newest the server keeps), and how many were not
    kept for this viewer."""

    events: tuple[Event, ...]
    dropped: int = 0


class Failures(_Message, frozen=True, tag="failures"):
    """Every item failed in a pipeline right now: sent when a viewer joins, and again
    (at most once a second) while events are dropped, since a viewer follows the failed
    items from events."""

    pipeline: int
    failures: tuple[ErrorRecord, ...]
    """Tracebacks left out (an `ItemRequest` has them): a big set stays small."""
    part: int = 0
    """A big set comes in parts, numbered from 0; a viewer replaces its set when the
    last part has come."""
    last: bool = True


class History(_Message, frozen=True, tag="history"):
    """Snapshots of the last minutes, oldest first, for a late viewer's trends
    (throughput and queue sparklines, how long a queue has been full): sent when a viewer
    joins, before the snapshots of now. Workers and latency lists are left out."""

    snapshots: tuple[Snapshot, ...]


class ItemRequest(_Message, frozen=True, tag="item"):
    id: int
    pipeline: int
    item: ItemKey


class StackRequest(_Message, frozen=True, tag="stack"):
    id: int
    pipeline: int
    worker: str


class CommandRequest(_Message, frozen=True, tag="command"):
    id: int
    command: Command


class Reply(_Message, frozen=True, tag="reply"):
    id: int
    detail: ItemDetail | None = None
    stack: AwaitStack | None = None
    result: str | None = None
    """A command's notice."""
    error: str | None = None
    """Why the request was not carried out."""


Request = ItemRequest | StackRequest | CommandRequest
FromViewer = Hello | Request
FromServer = Record | Welcome | Refused | Events | Failures | History | Reply

encode = msgspec.json.Encoder().encode
_decode_from_viewer = msgspec.json.Decoder(FromViewer).decode
_decode_from_server = msgspec.json.Decoder(FromServer).decode


def decode_from_viewer(data: bytes) -> FromViewer:
    """A viewer's line as its message.

    Raises:
        msgspec.DecodeError: not one of the messages, nested past the recursion limit
            included (msgspec's decoder bounds its depth by it, and its typed decode
            never goes deeper than the messages do: only an unknown field's value is
            walked through, and at worst that raises RecursionError, cleanly).
    """
    try:
        return _decode_from_viewer(data)
    except RecursionError:
        raise msgspec.DecodeError("nested too deep") from None


def decode_from_server(data: bytes) -> FromServer:
    """A server's line as its message.

    Raises:
        msgspec.DecodeError: not one of the messages (a line nested too deep included).
    """
    try:
        return _decode_from_server(data)
    except RecursionError:
        raise msgspec.DecodeError("nested too deep") from None


def line(message: msgspec.Struct) -> bytes:
    """One message as a line (text JSON cannot hold is escaped, see `jsonlines`)."""
    return encode_line(message, encode)
