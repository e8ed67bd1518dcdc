"""What the environment says about the run history: whether to keep it, and how much.

The decision whether a run is kept is the caller's: `history_setting` only says what
``ANTFLOW_HISTORY`` asks for, and `history_wanted` applies the rule the issue sets (the
app keeps runs by default, a plain library run only when asked).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from antflow.history.errors import HistorySettingError

if TYPE_CHECKING:
    from collections.abc import Mapping

HISTORY_VARIABLE: Final = "ANTFLOW_HISTORY"
"""``0`` keeps no history, ``1`` keeps it even for a plain ``python job.py`` run."""
HOME_VARIABLE: Final = "ANTFLOW_HOME"
"""The history's folder, instead of ``./.antflow``."""
KEEP_VARIABLE: Final = "ANTFLOW_HISTORY_KEEP"
"""How many runs retention keeps (default 100)."""
MAX_BYTES_VARIABLE: Final = "ANTFLOW_HISTORY_MAX_BYTES"
"""How many bytes of recordings retention keeps (default 2G): a number of bytes, or one
with a K, M, G or T suffix (powers of 1024)."""

DEFAULT_KEEP: Final = 100
DEFAULT_MAX_BYTES: Final = 2 << 30

HistorySetting = Literal["off", "on", "default"]
"""What ``ANTFLOW_HISTORY`` asks for: ``default`` when it is unset or empty."""

_OFF: Final = frozenset({"0", "false", "no", "off"})
_ON: Final = frozenset({"1", "true", "yes", "on"})
_SIZE: Final = re.compile(r"^\s*(\d+)\s*(?:([kmgt])(?:i?b)?|b)?\s*$", re.IGNORECASE | re.ASCII)
_UNITS: Final = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def history_setting(environ: Mapping[str, str] | None = None) -> HistorySetting:
    """What ``ANTFLOW_HISTORY`` asks for.

    Raises:
        HistorySettingError: it holds something other than 0/1 (or false/true, no/yes,
            off/on).
    """
    value = (os.environ if environ is None else environ).get(HISTORY_VARIABLE, "")
    word = value.strip().lower()
    if not word:
        return "default"
    if word in _OFF:
        return "off"
    if word in _ON:
        return "on"
    raise HistorySettingError(
        f"{HISTORY_VARIABLE}={value!r} means nothing: set it to 1 to keep the run history, "
        f"0 to keep none, or leave it unset"
    )


def history_wanted(setting: HistorySetting, *, by_default: bool) -> bool:
    """Whether a run is kept: as the setting says, else `by_default` (True for the app,
    False for a plain library run)."""
    if setting == "default":
        return by_default
    return setting == "on"


@dataclass(frozen=True, slots=True)
class Retention:
    """How much history is kept: the newest `keep` runs, as long as their recordings
    take at most `max_bytes`, whichever limit comes first."""

    keep: int = DEFAULT_KEEP
    """Runs kept at most (running runs and runs a kept run resumed are kept anyway)."""
    max_bytes: int = DEFAULT_MAX_BYTES
    """Bytes of recordings kept at most (the newest run is kept whatever its size)."""

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Retention:
        """The limits ``ANTFLOW_HISTORY_KEEP`` and ``ANTFLOW_HISTORY_MAX_BYTES`` set.

        Raises:
            HistorySettingError: one of them is not a number (of bytes).
        """
        env = os.environ if environ is None else environ
        keep = env.get(KEEP_VARIABLE, "").strip()
        size = env.get(MAX_BYTES_VARIABLE, "").strip()
        if keep and not (keep.isascii() and keep.isdigit()):
            raise HistorySettingError(
                f"{KEEP_VARIABLE}={keep!r} is not a number of runs: set it to one, such as 100"
            )
        return cls(
            keep=int(keep) if keep else DEFAULT_KEEP,
            max_bytes=parse_bytes(size, MAX_BYTES_VARIABLE) if size else DEFAULT_MAX_BYTES,
        )


def parse_bytes(text: str, name: str) -> int:
    """A size such as ``2000000``, ``500M`` or ``2G`` (powers of 1024), in bytes.

    Raises:
        HistorySettingError: `text` is not one (the message names `name`).
    """
    found = _SIZE.match(text)
    if found is None:
        raise HistorySettingError(
            f"{name}={text!r} is not a size: give bytes, or a number with K, M, G or T (such as 2G)"
        )
    return int(found.group(1)) * _UNITS[(found.group(2) or "").lower()]
