"""``antflow-tui runs``: the runs kept in the run history (issue 20), listed, replayed,
resumed, compared and deleted.

- `present`: pure functions from a kept run (`antflow.history.Run`) to its row, its
  detail line and its JSON object;
- `actions`: the commands a run leads to (resume it, compare two);
- `screen`: the list (`RunsScreen`) in its own app (`RunsApp`);
- `command`: the click command, its ``--json`` and ``--prune``.

Everything is read from the history's index, never from the runs' files: 1,000 runs
list in one read.
"""
