"""An ETL job written as `async def main()`: it builds and runs its own pipelines.

antflow-tui runs main() as it is and attaches to each pipeline the moment it starts: first
Extract → Transform → Load over rows streamed from a CSV file, then a small Report
pipeline. Some rows are invalid and fail validation; the rest land in SQLite.

    antflow-tui examples/etl_main.py
    python examples/etl_main.py          # with antflow's progress bar
"""

from __future__ import annotations

import asyncio
import csv
import random
import sqlite3
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from antflow import Pipeline, Stage, set_task_status

ROWS = 2_000
FOLDER = Path(tempfile.gettempdir()) / "antflow-examples"


class ValidationError(ValueError):
    """A row breaks a rule of the target table."""


def write_source_csv(path: Path) -> None:
    rng = random.Random(7)
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["order_id", "customer", "amount", "currency"])
        for number in range(ROWS):
            amount = f"{rng.uniform(-5, 500):.2f}" if number % 97 else "not-a-number"
            currency = rng.choice(["EUR", "USD", "GBP", "usd"])
            writer.writerow([f"o-{number:05d}", f"c-{rng.randrange(300)}", amount, currency])


async def read_rows(path: Path) -> AsyncIterator[dict[str, object]]:
    """Stream the CSV, one row at a time (the pipeline pulls as it has room)."""
    with path.open(newline="") as source:
        for row in csv.DictReader(source):
            await asyncio.sleep(0)
            yield {"id": row["order_id"], "value": row}


async def extract(row: dict[str, str]) -> dict[str, str]:
    await asyncio.sleep(random.uniform(0.001, 0.01))
    return row


async def transform(row: dict[str, str]) -> tuple[str, str, float, str]:
    try:
        amount = float(row["amount"])
    except ValueError:
        raise ValidationError(f"amount {row['amount']!r} is not a number") from None
    if amount < 0:
        raise ValidationError(f"amount {amount} is negative")
    await asyncio.sleep(random.uniform(0.002, 0.02))
    return row["order_id"], row["customer"], amount, row["currency"].upper()


class Loader:
    """Writes rows into SQLite in small batches."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path)
        self.db.execute("DROP TABLE IF EXISTS orders")
        self.db.execute("CREATE TABLE orders (id TEXT, customer TEXT, amount REAL, cur TEXT)")
        self.pending: list[tuple[str, str, float, str]] = []

    async def load(self, record: tuple[str, str, float, str]) -> str:
        self.pending.append(record)
        set_task_status(f"{len(self.pending)} rows buffered")
        if len(self.pending) >= 50:
            self.flush()
        await asyncio.sleep(0.005)
        return record[0]

    def flush(self) -> None:
        self.db.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", self.pending)
        self.db.commit()
        self.pending.clear()


async def main() -> None:
    FOLDER.mkdir(parents=True, exist_ok=True)
    source = FOLDER / "orders.csv"
    write_source_csv(source)
    loader = Loader(FOLDER / "orders.db")

    etl = Pipeline(
        [
            Stage("Extract", workers=4, tasks=[extract]),
            Stage("Transform", workers=4, tasks=[transform], task_attempts=1),
            Stage("Load", workers=1, tasks=[loader.load]),
        ]
    )
    await etl.start()
    await etl.feed_async(read_rows(source))
    await etl.join()
    loader.flush()
    print(
        f"loaded {etl.get_stats().items_processed} orders, {etl.get_stats().items_failed} invalid"
    )

    async def total_for(currency: str) -> tuple[str, float]:
        set_task_status(f"summing {currency}")
        await asyncio.sleep(0.5)
        (total,) = loader.db.execute(
            "SELECT COALESCE(SUM(amount), 0) FROM orders WHERE cur = ?", (currency,)
        ).fetchone()
        return currency, round(total, 2)

    report = Pipeline([Stage("Report", workers=2, tasks=[total_for])])
    for result in await report.run(["EUR", "USD", "GBP"], progress=True):
        print(f"{result.value[0]}: {result.value[1]:,.2f}")


if __name__ == "__main__":
    asyncio.run(main())
