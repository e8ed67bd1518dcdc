"""Rate limits: the share of an API's limit a stage reaches, and the share of 429s.

Run by hand:  .venv/bin/python benchmarks/rate_limit.py [ITEMS]

In virtual time (tests/vtime.py: the event loop jumps to its next timer), so minutes of
calls take a second: against the in-process fake API of tests/fake_api.py, which allows
20 calls in any sliding second and answers 429 with ``Retry-After`` in whole seconds
(rounded up, as HTTP has it) or, in the second table, also ``retry-after-ms``. Each call
takes 0.3-0.6 s. For 10, 50 and 200 workers: the plain stage (429s recognised, fixed
waits), ``adaptive=True`` with no limit configured, and ``RateLimit(per_second=20)``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from antflow import Pipeline, RateLimit, Stage
from tests.fake_api import FakeApi
from tests.vtime import VirtualTime

LIMIT = 20


def measure(items: int, workers: int, exact: bool, **options: Any) -> tuple[float, float, int]:
    api = FakeApi(per_second=LIMIT, latency=(0.3, 0.6), retry_after_ms=exact)

    async def ask(value: int) -> int:
        result: int = await api.call(value)
        return result

    async def main() -> int:
        loop = asyncio.get_running_loop()
        pipeline = Pipeline([Stage("Ask", workers, [ask], **options)], clock=loop.time)
        await pipeline.run(range(items))
        return pipeline.get_stats().items_failed

    failed = VirtualTime().run(main())
    return api.throughput_share(), api.refused_share(), failed


def main() -> None:
    items = int(sys.argv[1]) if len(sys.argv) > 1 else 2_400
    setups: list[tuple[str, dict[str, Any]]] = [
        ("plain stage", {}),
        ("adaptive=True", {"adaptive": True}),
        ("RateLimit(20/s)", {"rate_limit": None}),
    ]
    for exact in (False, True):
        header = "Retry-After + retry-after-ms" if exact else "Retry-After in whole seconds"
        print(f"{items:,} calls, hidden limit {LIMIT}/s sliding window, {header} (virtual time)")
        print(f"  {'':18}{'workers':>8}{'of limit':>10}{'429s':>8}{'failed':>8}")
        for label, options in setups:
            for workers in (10, 50, 200):
                if "rate_limit" in options:
                    options = {"rate_limit": RateLimit(per_second=LIMIT)}
                share, refused, failed = measure(items, workers, exact, **options)
                print(f"  {label:18}{workers:>8}{share:>10.1%}{refused:>8.1%}{failed:>8}")
        print()


if __name__ == "__main__":
    main()
