"""`python -m antflow_tui` runs the same command as `antflow-tui`."""

from antflow_tui.cli import main

if __name__ == "__main__":
    main()
