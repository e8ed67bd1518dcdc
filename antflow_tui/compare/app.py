"""CompareApp: the comparison of two runs on screen, and each item's story in both."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, ClassVar, Final

from textual.app import App

from antflow.runstream.retryfile import write_newly_failed
from antflow_tui.compare.item_screen import CompareItemScreen
from antflow_tui.compare.present import retry_file_lines
from antflow_tui.compare.screen import WRITE_GROUP, CompareScreen

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from antflow.runstream.compare import Comparison
    from antflow.runstream.fileformat import Recording
    from antflow.runstream.itemdiff import ItemChange
    from antflow.runstream.records import ItemDetail


WRITE_INLINE_BELOW: Final = 4 << 20
"""Bytes of B's recording under which `w` writes on the UI thread (~0.03 s to read)."""


class CompareApp(App[None]):
    """Run A against run B (`CompareScreen`); enter opens an item in both
    (`CompareItemScreen`).

    Args:
        comparison: The comparison shown.
        a: Run A's recording (item stories are read from it).
        b: Run B's recording.
        keymap: Binding id -> keys (``--keymap``).
        write_inline_below: B's recording size (bytes) under which `w` writes on the UI
            thread (reading it again is then quick); a larger one is written by a thread.
    """

    TITLE = "antflow-tui compare"
    CSS_PATH: ClassVar[Any] = ["../styles/app.tcss", "../styles/compare.tcss"]

    def __init__(
        self,
        comparison: Comparison,
        a: Recording,
        b: Recording,
        *,
        keymap: Mapping[str, str] | None = None,
        write_inline_below: int = WRITE_INLINE_BELOW,
    ) -> None:
        super().__init__()
        try:
            self._write_in_thread = os.stat(b.path).st_size >= write_inline_below
        except OSError:
            self._write_in_thread = True
        self.comparison = comparison
        self.recordings = {"a": a, "b": b}
        self.keymap_overrides = dict(keymap or {})
        # One story is read at a time: a recording's reads move one file position.
        self._reading = threading.Lock()

    def on_mount(self) -> None:
        if self.keymap_overrides:
            self.set_keymap(self.keymap_overrides)
        self.push_screen(
            CompareScreen(
                self.comparison,
                open_item=self.open_item,
                write_failed=self.write_failed,
                write_in_thread=self._write_in_thread,
            )
        )

    async def action_quit(self) -> None:
        """Quit, once a file of newly failed items being written is whole."""
        writing = [worker for worker in self.workers if worker.group == WRITE_GROUP]
        if any(worker.is_running for worker in writing):
            self.notify("Finishing the file being written…", timeout=4, markup=False)
        await self.workers.wait_for_complete(writing)
        self.exit()

    def open_item(self, change: ItemChange) -> None:
        """Open an item's story in both runs."""

        def read(side: str) -> ItemDetail | None:
            if (change.a if side == "a" else change.b).status == "absent":
                return None
            with self._reading:
                return self.recordings[side].item(change.pipeline, change.item)

        runs = (self.comparison.a, self.comparison.b)
        self.push_screen(CompareItemScreen(change, runs, read))

    def write_failed(self, path: Path) -> list[str]:
        """Write the newly failed items to `path`; the lines saying what it holds."""
        with self._reading:
            written = write_newly_failed(path, self.comparison, self.recordings["b"])
        return retry_file_lines(written)
