"""MkDocs hooks (``hooks:`` in mkdocs.yml).

The pictures of the app are snapshot tests' SVGs (``tests/tui/test_snapshots.py`` and
friends), added to the site under ``assets/`` when it is built (`PICTURES`): a snapshot
test fails when its screen changes until the SVG is updated, so a picture is always the
app as it is, and no copy of one is kept in ``docs/``.
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
PICTURES: Final = {
    PICTURE: PICTURE_SOURCE,
    "assets/runs.svg": "snapshots/test_runs_screen/test_runs_screen_snapshot.svg",
    "assets/compare.svg": "snapshots/test_compare_snapshots/test_compare_screen_160x48.svg",
    "assets/budget-paused.svg": (
        "snapshots/test_snapshots/test_main_screen_of_a_run_paused_by_its_budget_80x24.svg"
    ),
}
"""Every picture of the site (where the site has it: its snapshot, from the root)."""


def on_files(files: Files, config: MkDocsConfig, **_: Any) -> Files:
    """Add the snapshots to the site's files."""
    for place, source in PICTURES.items():
        files.append(File.generated(config, place, abs_src_path=str(ROOT / source)))
    return files
