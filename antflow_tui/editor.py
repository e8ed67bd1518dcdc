"""Opening the user's editor at a line of a file, from the app (the item screen's frames).

The editor is ``$VISUAL``, else ``$EDITOR``, else ``vi`` (as git chooses), given
``+LINE FILE``, which vi, vim, nvim, nano, emacs, micro and kakoune all read. It runs in the
app's terminal while the app is suspended, as a subprocess the event loop waits for: the
run goes on meanwhile.
"""

from __future__ import annotations

import asyncio
import shlex
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from textual.app import App


class EditorError(ValueError):
    """The editor cannot be run; the message says why."""


def editor_command(path: str, line: int, environ: Mapping[str, str]) -> list[str]:
    """The command that opens `path` at `line` in the user's editor.

    Raises:
        EditorError: $VISUAL or $EDITOR cannot be split into words.
    """
    chosen = environ.get("VISUAL") or environ.get("EDITOR") or "vi"
    try:
        words = shlex.split(chosen)
    except ValueError as error:
        raise EditorError(f"$VISUAL/$EDITOR {chosen!r} cannot be read: {error}") from None
    if not words:
        words = ["vi"]
    # A file named like an option would be read as one.
    target = f"./{path}" if path.startswith(("-", "+")) else path
    return [*words, f"+{max(line, 1)}", target]


async def run_suspended(app: App[object], command: list[str]) -> int:
    """Run `command` in the terminal with the app suspended; its exit status.

    Raises:
        textual.app.SuspendNotSupported: no terminal to give it (a browser tab).
        OSError: the command cannot be started (no such editor).
    """
    terminal = getattr(app, "terminal", None)
    # With the app owning the terminal, descriptors 1 and 2 lead into the event log.
    output = terminal.fileno() if terminal is not None else None
    # No painting while the editor has the screen: the loop (and the run) goes on.
    with app.batch_update(), app.suspend():
        process = await asyncio.create_subprocess_exec(*command, stdout=output, stderr=output)
        return await process.wait()
