"""The escalation scheduler: one loop, run by the leader only (``start`` / ``stop`` for
the leader gate), that fires due clocks in batches off the routing path.

Each batch is one ``escalation.fire_due`` transaction; a full batch is followed at once
by the next, so a burst (100,000 clocks due in the same minute) drains as fast as the
database allows, and the loop sleeps ``interval_s`` only when nothing more is due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.cases import escalation, sla

log = logging.getLogger(__name__)

Notify = Callable[[Sequence[escalation.Fired]], None]


def _wall_clock() -> datetime:
    return datetime.now(UTC)


class EscalationScheduler:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        policy: sla.SlaPolicy,
        *,
        interval_s: float = 5.0,
        batch: int = 1000,
        clock: Callable[[], datetime] = _wall_clock,
        notify: Notify | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._policy = policy
        self._interval_s = interval_s
        self._batch = batch
        self._clock = clock
        self._notify = notify
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.fired = 0  # levels fired by this process (for tests and the bench)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        if not self.running:
            self._task = asyncio.create_task(self._run(), name="case-escalations")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def wake(self) -> None:
        """Look for due clocks now (a test moved its clock, a short SLA was created)."""
        self._wake.set()

    async def run_once(self) -> int:
        """Fire every clock due now, batch after batch; how many levels fired."""
        total = 0
        while True:
            async with self._sessionmaker() as session:
                fired = await escalation.fire_due(
                    session, now=self._clock(), policy=self._policy, limit=self._batch
                )
            total += len(fired)
            self.fired += len(fired)
            if fired and self._notify is not None:
                try:
                    self._notify(fired)
                except Exception:  # a listener's bug must not stop the clocks
                    log.exception("case escalation listener failed")
            if len(fired) < self._batch:
                return total

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database away: retry on the next tick
                log.exception("case escalation step failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval_s)
