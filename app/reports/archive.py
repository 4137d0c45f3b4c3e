"""Export a month of the records retention will purge, for archiving, with COPY.

``export_month`` writes one file per table for the calendar month (UTC) of ``month``:
``calls``, ``call_events`` and ``agent_state_log``, as CSV with a header
(``fmt="csv"``) or PostgreSQL's COPY text format (``fmt="copy"``, loadable with
``COPY <table> FROM``).  Files are written under a temporary name and renamed when
complete: a file with the final name is a whole month.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncEngine

TABLES = {
    "calls": "arrived_at",
    "call_events": "at",
    "agent_state_log": "at",
}


def month_bounds(month: date) -> tuple[datetime, datetime]:
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    end = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


async def export_month(
    engine: AsyncEngine, month: date, directory: Path, *, fmt: Literal["csv", "copy"] = "csv"
) -> dict[str, int]:
    """Write the month's rows of every table in ``TABLES``; returns rows per table."""
    start, end = month_bounds(month)
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    suffix = "csv" if fmt == "csv" else "copy"
    async with engine.connect() as conn:
        raw: Any = (await conn.get_raw_connection()).driver_connection
        for table, column in TABLES.items():
            final = directory / f"{table}-{month:%Y-%m}.{suffix}"
            partial = final.with_name(final.name + ".partial")
            query = (
                f"SELECT * FROM {table} WHERE {column} >= $1 AND {column} < $2"  # noqa: S608
                f" ORDER BY {column}"
            )
            options: dict[str, Any] = {"format": "csv", "header": True} if fmt == "csv" else {}
            status = await raw.copy_from_query(query, start, end, output=str(partial), **options)
            os.replace(partial, final)
            counts[table] = int(str(status).split()[-1])
    return counts
