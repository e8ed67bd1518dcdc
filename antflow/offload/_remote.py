"""Errors that cannot make the trip back from another process, carried as text.

An exception raised in a pool's process or a Dask worker is pickled there and unpickled
here. A common pattern breaks the second half: ``__init__(self, status, body)`` passing one
message to ``super().__init__`` pickles fine but cannot be rebuilt, which breaks a whole
`ProcessPoolExecutor` (and Dask sends back a bare ``Exception(repr(error))``). The other
side checks the round trip first and sends a `RemoteError` instead: the type's module and
name, its message and the traceback as text. Here it becomes an instance of a subclass
named like the original type, so error groups and exports read the user's type.

Kept to the standard library: a pool's processes import this module to run calls.
"""

from __future__ import annotations

import pickle
import traceback
from typing import Any, Final

_NO_TEXT: Final = "<the error's str() raised>"
_types: dict[tuple[str, str], type[RemoteError]] = {}


class RemoteError(Exception):
    """An error raised elsewhere that could not be sent back as itself (it cannot be
    unpickled), carried as its type's name, its message and its traceback text.

    Each instance belongs to a subclass whose ``__module__`` and ``__qualname__`` are the
    original type's (``api.HttpError``), so it groups and exports under that name. It is
    not an instance of the original type: ``except HttpError`` and ``no_retry_on`` do not
    match it.
    """

    __module__ = "antflow.offload"

    def __init__(self, message: str, *, module: str, qualname: str, traceback_text: str = ""):
        super().__init__(message)
        self.message = message
        """What ``str()`` of the original error said."""
        self.remote_module = module
        """The original type's module."""
        self.remote_qualname = qualname
        """The original type's qualified name."""
        self.traceback_text = traceback_text
        """The original traceback, formatted where it was raised."""

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            rebuild,
            (self.remote_module, self.remote_qualname, self.message, self.traceback_text),
        )


def remote_error_type(module: str, qualname: str) -> type[RemoteError]:
    """The `RemoteError` subclass that shows as ``module.qualname`` (one per name)."""
    key = (module, qualname)
    kind = _types.get(key)
    if kind is None:
        name = qualname.rpartition(".")[2] or "RemoteError"
        kind = type(name, (RemoteError,), {"__module__": module, "__qualname__": qualname})
        _types[key] = kind
    return kind


def rebuild(module: str, qualname: str, message: str, traceback_text: str) -> RemoteError:
    """A `RemoteError` of the subclass named like the original (what unpickling calls)."""
    kind = remote_error_type(module, qualname)
    return kind(message, module=module, qualname=qualname, traceback_text=traceback_text)


def carried(error: BaseException, traceback_text: str) -> RemoteError:
    """`error` as a `RemoteError` of its type's name, message and traceback."""
    kind = type(error)
    try:
        message = str(error)
    except Exception:
        message = _NO_TEXT
    return rebuild(kind.__module__, kind.__qualname__, message, traceback_text)


def round_trips(error: BaseException) -> bool:
    """Whether `error` survives pickling and unpickling (what sending it back takes)."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:  # RecursionError included
        return False
    return True


def call_in_process(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run ``fn(*args, **kwargs)`` in a pool's process; an error that could not be rebuilt
    on the other side is raised as a `RemoteError` instead."""
    try:
        return fn(*args, **kwargs)
    except Exception as error:
        if round_trips(error):
            raise
        raise carried(error, traceback.format_exc()) from None
