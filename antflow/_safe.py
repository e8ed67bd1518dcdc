"""Text of user objects that never raises: ``str()`` and ``repr()`` through one door.

Exceptions, item ids, values and status texts come from user code, and so do their
``__str__`` and ``__repr__``: one that raises must cost the object its text, never the
item (a failure the tracker cannot note hangs ``join()``), the recording or the screen.
Everything on antflow's side that turns a user object into text goes through here.

This module imports nothing, so the run-stream records (which import nothing from the
engine) can use it too.
"""

from __future__ import annotations

from typing import Any


def safe_str(obj: Any) -> str:
    """``str(obj)``, or a placeholder naming what went wrong when that raises:
    ``<ValueError: str() raised RuntimeError>``."""
    try:
        text = str(obj)
    except Exception as error:
        return f"<{_type_name(obj)}: str() raised {_type_name(error)}>"
    # A str subclass could carry its own broken methods into our formatting.
    return text if type(text) is str else str.__str__(text)


def safe_repr(obj: Any) -> str:
    """``repr(obj)``, or a placeholder as the default repr would write it, so two objects
    whose ``__repr__`` raises still read differently:
    ``<Key object at 0x7f...: repr() raised RuntimeError>``."""
    try:
        text = repr(obj)
    except Exception as error:
        return f"<{_type_name(obj)} object at {id(obj):#x}: repr() raised {_type_name(error)}>"
    return text if type(text) is str else str.__str__(text)


def _type_name(obj: Any) -> str:
    name = getattr(type(obj), "__name__", None)
    return name if isinstance(name, str) else "object"
