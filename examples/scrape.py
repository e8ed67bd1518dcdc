"""Scrape a website: Fetch → Parse → Save, with real HTTP, retries and real failures.

The website is generated on loopback by examples/_site.py (no internet needed): some
pages are slow, some answer 500 (once, or always), some send broken HTML and a few hang.

    antflow-tui examples/scrape.py       # watch it live
    python examples/scrape.py            # the same run, with antflow's Rich dashboard

Pages land in a SQLite database in the system's temp folder (printed at the end).
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _site import Site

from antflow import Pipeline, Stage, StatusTracker, set_task_status

PAGES = 300
FETCH_TIMEOUT = 3.0
DATABASE = Path(tempfile.gettempdir()) / "antflow-examples" / "scrape.db"

site = Site()
items = [f"{site.url}/page/{number}" for number in range(PAGES)]

_client: httpx.AsyncClient | None = None
_database: sqlite3.Connection | None = None


def client() -> httpx.AsyncClient:
    global _client
    if _client is None:
        _client = httpx.AsyncClient(timeout=FETCH_TIMEOUT)
    return _client


def database() -> sqlite3.Connection:
    global _database
    if _database is None:
        DATABASE.parent.mkdir(parents=True, exist_ok=True)
        _database = sqlite3.connect(DATABASE)
        _database.execute("DROP TABLE IF EXISTS pages")
        _database.execute("CREATE TABLE pages (url TEXT PRIMARY KEY, title TEXT, links INTEGER)")
    return _database


class ParseError(ValueError):
    """The page's HTML is not what a page should look like."""


async def fetch(url: str) -> tuple[str, str]:
    """Download one page; HTTP errors and timeouts raise, and antflow retries them."""
    set_task_status(f"GET {url.rsplit('/', 2)[-2]}/{url.rsplit('/', 1)[-1]}")
    response = await client().get(url)
    response.raise_for_status()
    set_task_status(f"read {len(response.content):,} bytes")
    return url, response.text


async def parse(page: tuple[str, str]) -> dict[str, object]:
    """Pull out the title and count the links."""
    url, html = page
    set_task_status(f"parsing {len(html):,} chars")
    await asyncio.sleep(0.01)  # stands in for real parsing work
    title = re.search(r"<title>(.*?)</title>", html, re.S)
    if title is None or "</html>" not in html:
        raise ParseError(f"malformed HTML at {url}: no closed <title> or </html>")
    return {"url": url, "title": title.group(1), "links": html.count("<a ")}


async def save(record: dict[str, object]) -> str:
    """Store the page in SQLite."""
    db = database()
    db.execute(
        "INSERT OR REPLACE INTO pages VALUES (?, ?, ?)",
        (record["url"], record["title"], record["links"]),
    )
    db.commit()
    return str(record["url"])


pipeline = Pipeline(
    [
        Stage("Fetch", workers=8, tasks=[fetch], task_attempts=3, task_wait_seconds=0.5),
        Stage("Parse", workers=2, tasks=[parse], task_attempts=1),
        Stage("Save", workers=1, tasks=[save]),
    ],
    status_tracker=StatusTracker(),
)


async def main() -> None:
    results = await pipeline.run(items, dashboard="detailed")
    print(f"saved {len(results)} of {len(items)} pages to {DATABASE}")
    print(pipeline.get_error_summary())
    await client().aclose()


if __name__ == "__main__":
    asyncio.run(main())
