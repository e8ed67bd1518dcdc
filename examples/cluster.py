"""CPU-heavy parsing on a Dask cluster of worker processes; antflow keeps control locally.

Fetch (async, I/O) downloads documents (simulated). Parse runs on Dask: it tokenises each
document, computes a MinHash signature, compresses and hashes it (pure-Python CPU work that
would freeze the event loop, and the app, if it ran there; see examples/_documents.py).
Store (async, I/O) writes a summary line per document. The example starts a `LocalCluster`
of two worker processes itself, and closes it at the end.

In the app, each Parse worker shows which Dask worker process runs its document, or that
it waits for one; the corrupt documents' `ParseError`, raised in a worker process, lands in
the error panel with the remote traceback.

    pip install -e '.[dask]'
    antflow-tui examples/cluster.py
    python examples/cluster.py

On a real cluster: ``Client("tcp://scheduler:8786", asynchronous=True)`` instead of the
`LocalCluster`, and ``await client.upload_file(_documents.__file__)`` so that its workers
can import the parsing code.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import tempfile
from pathlib import Path

from _documents import make_document, parse
from distributed import Client, LocalCluster

from antflow import Pipeline, Stage, set_task_status
from antflow.offload import on_dask

DOCUMENTS = 200
FOLDER = Path(tempfile.gettempdir()) / "antflow-examples"

items = [{"id": f"doc-{number:03d}", "value": number} for number in range(DOCUMENTS)]


async def fetch(number: int) -> dict[str, object]:
    """Download a document (simulated: a wait, then its text)."""
    set_task_status(f"downloading doc-{number:03d}")
    await asyncio.sleep(random.Random(number).uniform(0.05, 0.3))
    return {"number": number, "text": make_document(number)}


async def store(summary: dict[str, object]) -> int:
    """Append the summary to a JSON Lines file (in a thread: file I/O blocks)."""
    set_task_status(f"writing doc-{summary['number']:03d}")
    line = json.dumps(summary) + "\n"

    def append() -> None:
        with (FOLDER / "parsed.jsonl").open("a") as out:
            out.write(line)

    await asyncio.to_thread(append)
    return int(summary["pid"])  # type: ignore[call-overload]


async def main() -> None:
    FOLDER.mkdir(parents=True, exist_ok=True)
    (FOLDER / "parsed.jsonl").write_text("")
    async with (
        # Two worker processes of one thread each. They log to the terminal's descriptors
        # (the event log, under antflow-tui): critical lines only, as a failing document is
        # in the error panel already. A free port for the dashboard.
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            asynchronous=True,
            dashboard_address=":0",
            silence_logs=logging.CRITICAL,
        ) as cluster,
        Client(cluster, asynchronous=True) as client,
    ):
        pipeline = Pipeline(
            [
                Stage("Fetch", workers=4, tasks=[fetch]),
                # Twice as many workers as Dask threads: the next document is always
                # waiting on the cluster, and the stage's workers cap what is in flight.
                Stage(
                    "Parse",
                    workers=4,
                    tasks=[on_dask(client, parse)],
                    task_attempts=2,
                    task_wait_seconds=0.5,
                ),
                Stage("Store", workers=1, tasks=[store]),
            ]
        )
        results = await pipeline.run(items, progress=True)
    processes = {result.value for result in results}
    print(
        f"parsed {len(results)} of {len(items)} documents in {len(processes)} worker "
        f"processes; summaries in {FOLDER / 'parsed.jsonl'}"
    )


if __name__ == "__main__":
    asyncio.run(main())
