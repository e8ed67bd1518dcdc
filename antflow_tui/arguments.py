"""What every command checks of its arguments, and how it fails: one message naming what
was wrong, exit 2, never a traceback."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TYPE_CHECKING, NoReturn

import click

from antflow_tui.outcome import EXIT_SCRIPT_ERROR

if TYPE_CHECKING:
    from collections.abc import Collection
    from pathlib import Path

    from antflow_tui.source.base import Can


def fail(message: str) -> NoReturn:
    """Say what is wrong, as ``antflow-tui: ...`` on stderr, and exit 2."""
    click.echo(f"antflow-tui: {message}", err=True)
    sys.exit(EXIT_SCRIPT_ERROR)


def say(text: str, *, err: bool = False) -> None:
    """Print, unless the terminal has gone (a SIGHUP): the export still holds it all."""
    with contextlib.suppress(OSError):
        click.echo(text, err=err)


def positive(_ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """A click callback: the value, if any, is greater than 0."""
    if value is not None and not value > 0:
        raise click.BadParameter(f"must be greater than 0, got {value}", param=param)
    return value


def writable_file(_ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """A click callback: the file can be written where it is named (its folder exists and
    is writable)."""
    if value is None:
        return None
    folder = value.expanduser().resolve().parent
    if not folder.is_dir():
        raise click.BadParameter(f"folder {folder} does not exist", param=param)
    if not os.access(folder, os.W_OK):
        raise click.BadParameter(f"folder {folder} is not writable", param=param)
    return value


def is_stdout(path: Path) -> bool:
    """Whether `path` is where standard output goes (`/dev/stdout`, or its file)."""
    try:
        return os.path.samestat(os.stat(path), os.fstat(sys.stdout.fileno()))
    except (OSError, ValueError):
        return False


def keymap_option(text: str, can: Collection[Can]) -> dict[str, str]:
    """--keymap's value, read for a run whose source can do `can` at most (its type's
    `RunSource.CAN`); a usage error naming --keymap when it cannot be used."""
    from antflow_tui.keymap import KeymapError, parse_keymap

    try:
        return parse_keymap(text, can)
    except KeymapError as error:
        raise click.BadParameter(str(error), param_hint="--keymap") from None
