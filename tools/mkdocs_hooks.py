"""MkDocs hooks (``hooks:`` in mkdocs.yml).

The picture of the app on the front pages is a snapshot test's SVG
(``tests/tui/test_snapshots.py``), added to the site as ``assets/app.svg`` when it is
built: the snapshot test fails when the screen changes until the SVG is updated, so the
picture is always the app as it is, and no copy of it is kept in ``docs/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from mkdocs.structure.files import File

if TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files

ROOT: Final = Path(__file__).resolve().parent.parent
PICTURE_SOURCE: Final = "snapshots/test_snapshots/test_main_screen_of_a_rate_limited_run.svg"
"""The snapshot shown as the app's picture, from the repository's root (the README
shows the same file)."""
PICTURE: Final = "assets/app.svg"
"""Where the site has it."""


def on_files(files: Files, config: MkDocsConfig, **_: Any) -> Files:
    """Add the snapshot to the site's files."""
    files.append(File.generated(config, PICTURE, abs_src_path=str(ROOT / PICTURE_SOURCE)))
    return files
