"""``antflow-tui compare A B``: two runs side by side, item by item (the command, what it
names, the app, and the comparison as text)."""
