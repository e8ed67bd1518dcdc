"""antflow-tui: watch an antflow pipeline run, live, in the terminal."""

from antflow import __version__

__all__ = ["__version__"]
