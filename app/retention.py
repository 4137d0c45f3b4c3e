"""Retention: service records are kept two years (``RETENTION_DAYS``), then purged."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import Base

log = logging.getLogger("app.outcomes")

RETENTION_DAYS = 730  # service records are archived two years, then purged

_calls = Base.metadata.tables["calls"]
_events = Base.metadata.tables["call_events"]


@dataclass(frozen=True, slots=True)
class PurgeReport:
    cutoff: datetime
    calls: int
    call_events: int


async def purge_expired(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    now: datetime,
    retention_days: int = RETENTION_DAYS,
    chunk: int = 10_000,
) -> PurgeReport:
    """Delete calls and call events older than ``retention_days`` (two years by default).

    Deletes in chunks of ``chunk`` rows, one short transaction each, so the outcome
    writer is never blocked for long.  (Once ``call_events`` is partitioned by month,
    dropping old partitions replaces the event half of this.)
    """
    if retention_days < 1:
        raise ValueError("retention_days must be >= 1")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    cutoff = now - timedelta(days=retention_days)
    counts = {}
    for table, key, time_col in (
        (_calls, (_calls.c.id,), _calls.c.arrived_at),
        (
            _events,
            (_events.c.at, _events.c.id),
            _events.c.at,
        ),
    ):
        total = 0
        while True:
            victims = sa.select(*key).where(time_col < cutoff).limit(chunk)
            stmt = sa.delete(table).where(sa.tuple_(*key).in_(victims))
            async with sessionmaker() as session, session.begin():
                result = await session.execute(stmt)
            deleted = int(result.rowcount)  # type: ignore[attr-defined]
            total += deleted
            if deleted < chunk:
                break
        counts[table.name] = total
    log.info(
        "purged %d calls and %d call events older than %s",
        counts["calls"],
        counts["call_events"],
        cutoff.isoformat(),
    )
    return PurgeReport(cutoff, counts["calls"], counts["call_events"])
