"""Where the UI reads a run from: the `RunSource` protocol (`base`) and its sources.

- `antflow_tui.live`: the run this process starts (a script's pipelines, on our loop);
- `antflow_tui.source.replay`: a recording (`antflow-tui replay FILE`).
"""
