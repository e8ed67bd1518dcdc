"""The main screen's widgets; each gets plain rows from `antflow_tui.present`."""
