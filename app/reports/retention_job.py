"""The daily retention job: purge what is older than the retention, keep the rollups.

Theory of operation:
- ``RetentionJob.start`` / ``stop`` are what a leader gate runs (``app.ha``): only the
  lease holder runs the job; a new leader starts it again.  It runs ``first_delay_s``
  after start, then every day at ``run_at`` (in the reports' time zone).
- ``run_once(now)`` with ``cutoff = now - retention_days`` (``outcomes.retention_days``,
  730 by default): creates the state log's partitions for the months ahead; drops its
  monthly partitions that end at or before the cutoff (and deletes older rows left in
  its default partition); deletes calls and call events (``app.retention``), customer
  interactions and closed cases older than the cutoff in chunks of short transactions.
  The interval rollups (``interval_stats``, ``pause_stats``) are kept.
- Resumable: every step is idempotent and commits as it goes, so a run cut short (the
  process stopped, leadership lost) is finished by the next one.
- Archive first: ``python -m app.reports export --month YYYY-MM`` writes a month as CSV
  or COPY files before it is purged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import partitions
from app.retention import purge_expired

log = logging.getLogger(__name__)

_CHUNKED = {
    "interactions": "DELETE FROM interactions WHERE id IN"
    " (SELECT id FROM interactions WHERE at < :cutoff LIMIT :n)",
    "cases": "DELETE FROM cases WHERE id IN (SELECT id FROM cases"
    " WHERE status = 'closed' AND closed_at < :cutoff LIMIT :n)",
}


@dataclass(slots=True)
class RetentionRun:
    cutoff: datetime
    partitions_made: int = 0
    partitions_dropped: list[str] = field(default_factory=list)
    deleted: dict[str, int] = field(default_factory=dict)


class RetentionJob:
    """See the module docstring."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        retention_days: int,
        run_at: time = time(3, 0),
        timezone: str = "UTC",
        first_delay_s: float = 60.0,
        months_ahead: int = 3,
        chunk: int = 10_000,
    ) -> None:
        if retention_days < 1:
            raise ValueError("retention_days must be >= 1")
        self._sessionmaker = sessionmaker
        self.retention_days = retention_days
        self._run_at = run_at
        self._zone = ZoneInfo(timezone)
        self._first_delay = first_delay_s
        self._ahead = months_ahead
        self._chunk = chunk
        self._task: asyncio.Task[None] | None = None
        self.last: RetentionRun | None = None

    # --- what a leader gate runs ---------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="retention-job")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def next_run(self, now: datetime) -> datetime:
        local = now.astimezone(self._zone)
        at = datetime.combine(local.date(), self._run_at, self._zone)
        return at if at > local else at + timedelta(days=1)

    async def _loop(self) -> None:
        await asyncio.sleep(self._first_delay)
        while True:
            try:
                await self.run_once(datetime.now(UTC))
            except Exception:  # logged; the next day's run resumes where this one stopped
                log.exception("retention run failed")
            now = datetime.now(UTC)
            await asyncio.sleep((self.next_run(now) - now).total_seconds())

    # --- one run ---------------------------------------------------------------------------

    async def run_once(self, now: datetime) -> RetentionRun:
        cutoff = now - timedelta(days=self.retention_days)
        run = RetentionRun(cutoff)
        this_month = date(now.year, now.month, 1)
        async with self._sessionmaker() as session, session.begin():
            run.partitions_made = await partitions.ensure_months(
                session, "agent_state_log", "at", this_month, self._ahead + 1
            )
        async with self._sessionmaker() as session, session.begin():
            run.partitions_dropped = await partitions.drop_months_before(
                session, "agent_state_log", cutoff
            )
        run.deleted["agent_state_log_default"] = await self._chunked(
            "DELETE FROM agent_state_log_default WHERE ctid IN"
            " (SELECT ctid FROM agent_state_log_default WHERE at < :cutoff LIMIT :n)",
            cutoff,
        )
        report = await purge_expired(
            self._sessionmaker, now=now, retention_days=self.retention_days, chunk=self._chunk
        )
        run.deleted["calls"] = report.calls
        run.deleted["call_events"] = report.call_events
        for name, sql in _CHUNKED.items():
            run.deleted[name] = await self._chunked(sql, cutoff)
        self.last = run
        log.info(
            "retention: cutoff %s, %d partitions made, dropped %s, deleted %s",
            cutoff.isoformat(),
            run.partitions_made,
            run.partitions_dropped,
            run.deleted,
        )
        return run

    async def _chunked(self, sql: str, cutoff: datetime) -> int:
        total = 0
        while True:
            async with self._sessionmaker() as session, session.begin():
                result = await session.execute(sa.text(sql), {"cutoff": cutoff, "n": self._chunk})
            deleted = int(result.rowcount)  # type: ignore[attr-defined]
            total += deleted
            if deleted < self._chunk:
                return total
