"""Where the UI reads a run from: `base.RunSource` (what a source can do, said by its
type) and the frames it hands the app's one reducer, `state.RunState`.

- `antflow_tui.live`: the run this process starts (a script's pipelines, on our loop);
- `replay`: a recording (`antflow-tui replay FILE`), and `antflow_tui.attach`: a job
  served by another process. Both are transports of run records, which `frames`
  (RecordFrames) turns into frames; their exports are `seen`'s, of what the app has seen.
"""
