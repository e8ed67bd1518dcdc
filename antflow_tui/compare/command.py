"""``antflow-tui compare A B``: two runs side by side, item by item."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

import click

from antflow_tui.arguments import fail, keymap_option, say, writable_file
from antflow_tui.outcome import EXIT_OK, VIEWER_FAILED, viewer_exit_code

if TYPE_CHECKING:
    from antflow.runstream.compare import Comparison
    from antflow.runstream.fileformat import Recording

COMPARE_HELP = """Compare two runs: did a change help or hurt, and for which items?

A and B are runs of the history (last, last~1, a run id or its start) or recording
files (--record, antflow.record(), ANTFLOW_RECORD); A is before, B after.

\b
  antflow-tui compare last~1 last
  antflow-tui compare night.jsonl retry.jsonl --json > diff.json

It shows, side by side with the change: totals and throughput; each stage's
task time (p50, p95, max) and throughput; error groups that appeared, went away,
grew or shrank; items by id: fixed, newly failed, still failing (same or another
error), newly slow; what differed in how the runs were made (command line, stage
settings, the script's hash, antflow's version); tokens and cost. enter on an
item opens its story in both runs; w writes the newly failed items for
--retry-from.

With no terminal it prints the comparison as text; --json prints it as JSON
(docs/runs/compare.md lists the fields).

Exit status: 0; 1 when antflow-tui itself failed; 2 when A or B cannot be read.
"""

ITEMS_ALL: Final = "all"


def _items(_ctx: click.Context, param: click.Parameter, value: str) -> int | None:
    if value == ITEMS_ALL:
        return None
    try:
        count = int(value)
    except ValueError:
        raise click.BadParameter(f"a number or 'all', got {value!r}", param=param) from None
    if count < 0:
        raise click.BadParameter(f"must be 0 or more, got {count}", param=param)
    return count


@click.command(
    "compare", help=COMPARE_HELP, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@click.option(
    "--items",
    default="100",
    show_default=True,
    callback=_items,
    metavar="N|all",
    help="Items listed per change in --json and text (the counts are always whole).",
)
@click.option(
    "--slow",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    metavar="N",
    help="Newly slow items kept: those that took the most time more.",
)
@click.option(
    "--write-failed",
    type=click.Path(dir_okay=False, path_type=Path),
    callback=writable_file,
    metavar="FILE",
    help="Write B's newly failed items to FILE, as an export --retry-from reads.",
)
@click.option(
    "--keymap",
    default="",
    metavar="ID=KEY,...",
    help="Remap keys by binding id, e.g. 'compare.write=W'.",
)
def compare_command(
    a: str,
    b: str,
    as_json: bool,
    items: int | None,
    slow: int,
    write_failed: Path | None,
    keymap: str,
) -> None:
    from antflow.runstream.compare import compare
    from antflow_tui.compare.runs import CompareError, locate, read_both

    # The keymap module brings in Textual (~0.1 s): not read when no key is remapped.
    keys = keymap_option(keymap, frozenset()) if keymap else {}
    try:
        (recording_a, summary_a), (recording_b, summary_b) = read_both(
            locate(a, "A"), locate(b, "B")
        )
    except CompareError as error:
        fail(str(error))
    recordings: list[Recording] = [recording_a, recording_b]
    summaries = [summary_a, summary_b]
    comparison = compare(summaries[0], summaries[1], slow=slow)
    aside = as_json or not _terminal()
    if write_failed is not None:
        _write_failed(write_failed, comparison, recordings[1], err=aside)
    if as_json:
        from antflow.runstream.comparejson import encode_comparison

        sys.stdout.buffer.write(encode_comparison(comparison, items=items))
        sys.stdout.flush()
    elif not _terminal():
        _print_report(comparison, items)
    else:
        code = _run_app(comparison, recordings, keys)
        if code != EXIT_OK:
            say(f"antflow-tui: {VIEWER_FAILED}", err=True)
        sys.exit(code)
    for recording in recordings:
        recording.close()
    sys.exit(EXIT_OK)


def _terminal() -> bool:
    streams = (sys.__stdout__, sys.__stdin__)
    try:
        return all(stream is not None and stream.isatty() for stream in streams)
    except ValueError:
        return False


def _print_report(comparison: Comparison, items: int | None) -> None:
    from rich.console import Console

    from antflow_tui.compare.present import report

    width = int(os.environ.get("COLUMNS", "0") or 0) or 120
    console = Console(width=width, force_terminal=False, no_color=True, highlight=False)
    console.print(report(comparison, items=20 if items is None else items, width=width))


def _write_failed(path: Path, comparison: Comparison, b: Recording, *, err: bool) -> None:
    from antflow.runstream.retryfile import write_newly_failed

    try:
        written = write_newly_failed(path, comparison, b)
    except OSError as error:
        fail(f"cannot write {path}: {error.strerror or error}")
    from antflow_tui.compare.present import retry_file_lines

    for line in retry_file_lines(written):
        say(line, err=err)


def _run_app(comparison: Comparison, recordings: list[Recording], keys: dict[str, str]) -> int:
    from antflow_tui.compare.app import CompareApp

    app = CompareApp(comparison, recordings[0], recordings[1], keymap=keys)
    app.run()
    return viewer_exit_code(app.return_code)
