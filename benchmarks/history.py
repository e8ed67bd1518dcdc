"""What the run history costs: listing runs, keeping one, rebuilding a lost index.

Run by hand:  .venv/bin/python benchmarks/history.py [N]

1. N runs (default 1,000) begun and finished through `History` (each writes its row
   twice and creates its recording file): the cost per run.
2. Listing the N runs, newest first, from a fresh `History` (what ``antflow-tui runs``
   does). Target (issue 20): <= 1 s for 1,000 runs.
3. The index deleted, and rebuilt from N small recordings (header and end record).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import msgspec

import antflow
from antflow.history import Counts, History
from antflow.runstream.filelines import encode_record
from antflow.runstream.records import FORMAT, VERSION, End, Header, PipelineTotals


def recording(path: Path, fields: dict[str, object], started_at: float) -> None:
    header = Header(
        format=FORMAT, version=VERSION, antflow=antflow.__version__, started_at=started_at
    )
    raw = msgspec.json.decode(encode_record(header))
    raw["history"] = fields
    end = End(
        at=started_at + 1,
        reason="finished",
        totals=(PipelineTotals(pipeline=1, fed=10, processed=10, failed=0, unfinished=0),),
    )
    path.write_bytes(json.dumps(raw).encode() + b"\n" + encode_record(end))


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder) / "history"
        history = History(home)
        began = time.perf_counter()
        for n in range(runs):
            handle = history.begin("job.py", ["job.py", str(n)], "fp")
            recording(handle.path, handle.header_fields(), handle.run.started_at)
            handle.finish("finished", Counts(fed=10, done=10))
        kept = time.perf_counter() - began
        print(f"begin + finish: {kept / runs * 1e3:.2f} ms a run ({runs:,} runs)")

        times = []
        for _ in range(5):
            began = time.perf_counter()
            listed = History(home).runs()
            times.append(time.perf_counter() - began)
            assert len(listed) == runs
        print(
            f"list {runs:,} runs: median {statistics.median(times) * 1e3:.1f} ms, "
            f"worst {max(times) * 1e3:.1f} ms (target <= 1,000 ms)"
        )

        (home / "index.db").unlink()
        began = time.perf_counter()
        assert len(History(home).runs()) == runs
        print(f"rebuild a lost index from {runs:,} recordings: {time.perf_counter() - began:.2f} s")


if __name__ == "__main__":
    main()
