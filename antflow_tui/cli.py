"""The `antflow-tui` command."""

from __future__ import annotations

import click

from antflow import __version__


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="antflow-tui")
def main() -> None:
    """Watch an antflow pipeline run, live, in the terminal."""
