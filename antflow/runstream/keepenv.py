"""``ANTFLOW_HISTORY=1`` / ``ANTFLOW_RESUME=last`` for a plain ``python job.py``, read at
``import antflow``.

Only a look at the environment: the run history (SQLite, the recorder, the resume
reader) is imported when one of the variables is set, so a script that keeps no history
does not pay for it at import (about 20 ms).
"""

from __future__ import annotations

import os
from typing import Final

WATCHED: Final = ("ANTFLOW_HISTORY", "ANTFLOW_RESUME")


def history_from_environment() -> None:
    """Keep this process's run in the history, or resume one, if ``ANTFLOW_HISTORY`` or
    ``ANTFLOW_RESUME`` says so (see `antflow.runstream.keeping.keep_from_environment`)."""
    if not any(os.environ.get(name, "").strip() for name in WATCHED):
        return
    from antflow.runstream.keeping import keep_from_environment

    keep_from_environment()
