"""What abusing a served job's socket costs the job: its memory and its throughput.

Run by hand:  .venv/bin/python benchmarks/serve_abuse.py [--seconds S] [--root CHECKOUT]

A job (another process) serves its run on ``tcp://127.0.0.1:0`` and, for S seconds,
feeds items with tuple ids through 2 stages x 8 workers; each task opens a file (so a job
short of descriptors shows as failed items) and every tenth item fails. Its soft limit
of open files is 1,024, as on most machines. Meanwhile this process attacks the socket
from loopback, one way per row:

- ``none``: nobody connects (the reference).
- ``pre-auth flood``: up to 3,000 connections at once that never say hello, reopened as
  the job closes them.
- ``unread requests``: a viewer with the read token, once the run has gone 2 s, sends
  4,000 requests for failed items by their repr key and never reads an answer.
- ``slow viewers``: 64 viewers with the read token, each reading 4 KB a second.
- ``deep nesting``: 200 connections whose first line is nested 1,000 deep.

Each row gives the job's peak RSS, its throughput, how many items failed for another
reason than the planted one (a descriptor the job could not get), and the tracebacks in
its stderr. ``--root`` runs the job on another checkout of antflow (the code before a
change, say), with this interpreter's dependencies.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

JOB = """
import asyncio, json, os, resource, sys, time
import antflow
from antflow import Pipeline, Stage, StatusTracker, serve

resource.setrlimit(resource.RLIMIT_NOFILE, (1024, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
SECONDS = float(sys.argv[1])
planted = 0
starved = 0


async def read_file(item):
    global starved
    try:
        with open(os.devnull, "rb"):
            pass
    except OSError:
        starved += 1
        raise
    return item


async def check(item):
    global planted
    if item % 10 == 0:
        planted += 1
        raise ValueError(f"planted failure {item}")
    return item


async def main():
    async with serve("tcp://127.0.0.1:0") as server:
        ready = {"address": server.address, "token": server.served.read_token,
                 "antflow": os.path.dirname(antflow.__file__)}
        print(json.dumps(ready), flush=True)
        # The attack has begun (read off the loop: the server serves meanwhile).
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        pipeline = Pipeline(
            [Stage("Read", 8, [read_file], task_attempts=1),
             Stage("Check", 8, [check], task_attempts=1)],
            collect_results=False,
            status_tracker=StatusTracker(max_history_items=10_000),
        )
        await pipeline.start()
        began = time.perf_counter()
        n = 0
        while time.perf_counter() - began < SECONDS:
            await pipeline.feed([{"id": ("item", n + k), "value": n + k} for k in range(500)])
            n += 500
        await pipeline.join()
        elapsed = time.perf_counter() - began
        stats = pipeline.get_stats()
    print(json.dumps({
        "items": n,
        "completed": stats.items_processed,
        "failed": stats.items_failed,
        "starved": starved,
        "elapsed": elapsed,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }), flush=True)


asyncio.run(main())
"""


def hello(token: str) -> bytes:
    return json.dumps({"record": "hello", "version": 1, "token": token}).encode() + b"\n"


async def connect(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(host, port)


async def pre_auth_flood(host: str, port: int, token: str, stop: asyncio.Event) -> None:
    held: set[socket.socket] = set()
    loop = asyncio.get_running_loop()

    async def one() -> None:
        while not stop.is_set():
            sock = socket.socket()
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, (host, port))
            except OSError:
                sock.close()
                await asyncio.sleep(0.05)
                continue
            held.add(sock)
            with contextlib.suppress(OSError):
                await loop.sock_recv(sock, 1)  # returns when the job closes it
            held.discard(sock)
            sock.close()
            await asyncio.sleep(0.01)

    tasks = [asyncio.create_task(one()) for _ in range(3000)]
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for sock in held:
        sock.close()


async def unread_requests(host: str, port: int, token: str, stop: asyncio.Event) -> None:
    _, writer = await connect(host, port)
    writer.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    writer.write(hello(token))
    await asyncio.sleep(2.5)  # 0.5 s before the run, 2 s into it: failures to ask about
    for n in range(4000):
        key = {"repr": f"('item', {10 * n})"}  # every tenth item failed: long answers
        request = {"record": "item", "id": n, "pipeline": 1, "item": key}
        writer.write(json.dumps(request).encode() + b"\n")
        with contextlib.suppress(asyncio.TimeoutError):
            # A viewer that sends and never reads: its own buffer may fill; it stops there.
            await asyncio.wait_for(writer.drain(), 0.5)
    await stop.wait()
    writer.transport.abort()


async def slow_viewers(host: str, port: int, token: str, stop: asyncio.Event) -> None:
    async def one() -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            await loop.sock_connect(sock, (host, port))
            await loop.sock_sendall(sock, hello(token))
            while not stop.is_set():
                if not await loop.sock_recv(sock, 4096):
                    return
                await asyncio.sleep(1.0)
        except OSError:
            return
        finally:
            sock.close()

    tasks = [asyncio.create_task(one()) for _ in range(64)]
    await stop.wait()
    await asyncio.gather(*tasks, return_exceptions=True)


async def deep_nesting(host: str, port: int, token: str, stop: asyncio.Event) -> None:
    line = b'{"record":"hello","x":' + b"[" * 1000 + b"]" * 1000 + b"}\n"
    for _ in range(200):
        with contextlib.suppress(OSError):
            reader, writer = await connect(host, port)
            writer.write(line)
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                await asyncio.wait_for(reader.read(), 5)
            writer.close()
    await stop.wait()


async def nothing(host: str, port: int, token: str, stop: asyncio.Event) -> None:
    await stop.wait()


ABUSES = {
    "none": nothing,
    "pre-auth flood": pre_auth_flood,
    "unread requests": unread_requests,
    "slow viewers": slow_viewers,
    "deep nesting": deep_nesting,
}


async def one_round(name: str, seconds: float, root: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(root), "XDG_RUNTIME_DIR": tempfile.mkdtemp()}
    env.pop("ANTFLOW_SERVE", None)
    job = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        JOB,
        str(seconds),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        # The job's folder first on its path ('' for python -c): the checkout under test.
        cwd=root,
    )
    assert job.stdout is not None
    assert job.stdin is not None
    assert job.stderr is not None
    # Its stderr is read as it comes: a job whose stderr pipe filled would block on it.
    errors = asyncio.create_task(job.stderr.read())
    ready = json.loads(await job.stdout.readline())
    assert Path(ready["antflow"]).parent == root, ready["antflow"]
    host, _, port = ready["address"].removeprefix("tcp://").rpartition(":")
    stop = asyncio.Event()
    attack = asyncio.create_task(ABUSES[name](host.strip("[]"), int(port), ready["token"], stop))
    await asyncio.sleep(0.5)  # the attack gets going before the run starts
    job.stdin.write(b"go\n")
    await job.stdin.drain()
    began = time.perf_counter()
    out = await job.stdout.readline()
    wall = time.perf_counter() - began
    stop.set()
    await asyncio.gather(attack, return_exceptions=True)
    err = (await errors).decode(errors="replace")
    await job.wait()
    if not out:
        return {"crashed": 1.0, "wall": wall, "tracebacks": float(err.count("Traceback"))}
    result: dict[str, float] = json.loads(out)
    result["tracebacks"] = float(err.count("Traceback"))
    result["log_lines"] = float(len(err.splitlines()))
    if err and "--verbose" in sys.argv:
        print(f"  {name}: the job's stderr began with:\n    " + "\n    ".join(err.splitlines()[:3]))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="the job's feeding time")
    parser.add_argument("--root", type=Path, default=ROOT, help="the antflow checkout to run")
    parser.add_argument("--only", choices=list(ABUSES), action="append", help="one abuse")
    parser.add_argument("--verbose", action="store_true", help="show the job's first log lines")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(f"job: antflow from {args.root}, {args.seconds:g} s of feeding per row")
    print(
        f"{'abuse':<16} {'peak RSS':>9} {'items/s':>9} {'items':>8} {'starved':>8} "
        f"{'tracebacks':>10} {'stderr lines':>12}"
    )
    for name in args.only or list(ABUSES):
        result = asyncio.run(one_round(name, args.seconds, args.root.resolve()))
        if "crashed" in result:
            print(f"{name:<16} the job crashed (tracebacks {result['tracebacks']:.0f})")
            continue
        rate = (result["completed"] + result["failed"]) / result["elapsed"]
        print(
            f"{name:<16} {result['peak_rss_mb']:>6.0f} MB {rate:>9,.0f} {result['items']:>8,.0f} "
            f"{result['starved']:>8,.0f} {result['tracebacks']:>10,.0f} "
            f"{result['log_lines']:>12,.0f}"
        )


if __name__ == "__main__":
    main()
