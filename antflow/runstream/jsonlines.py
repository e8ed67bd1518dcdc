"""One JSON line for a record, whatever text it holds.

JSON (and msgspec) cannot hold a lone surrogate, which Python strings carry for bytes
that did not decode (file names through ``os.fsdecode``, ``surrogateescape``). Such
text is written escaped (``\\udce9``) rather than losing the line, or the recording, or
a viewer's connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from collections.abc import Callable

_encode = msgspec.json.Encoder().encode


def encode_line(value: Any, encode: Callable[[Any], bytes] | None = None) -> bytes:
    """`value` as JSON plus a newline."""
    try:
        return bytes((encode or _encode)(value)) + b"\n"
    except UnicodeEncodeError:
        plain = msgspec.to_builtins(value, enc_hook=repr)
        return bytes(_encode(_escape_surrogates(plain))) + b"\n"


def _escape_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list | tuple):
        return [_escape_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_escape_surrogates(k): _escape_surrogates(v) for k, v in value.items()}
    return value
