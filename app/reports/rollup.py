"""Keeps ``interval_stats`` current while the service runs, off the routing path.

Theory of operation:
- ``notify(cmd, now)`` (a listener of the live runtime, never awaits) marks the
  15-minute intervals a notification changes *dirty*: a call's arrival interval when it
  ends or its wrap-up ends, an offer's interval, and every interval an agent's previous
  state spanned when its state changes.  Each 15-minute boundary also marks the interval
  that just closed (state time of agents whose state did not change in it).
- One task recomputes dirty intervals whose last mark is at least ``settle_s`` old (the
  outcome and state-log writers flush first), or that stayed dirty ``min_gap_s`` (an
  interval that is marked all the time, the current one at peak), but one interval at
  most once per ``min_gap_s``: at 20,000 seats a peak interval takes seconds of database
  time to recompute (``bench/reports_bench.py``).  One transaction per interval
  (``app.reports.compute``): a recompute replaces the interval's rows, so doing it again
  (a replay, a restart, a second process) gives the same rows.
- At start it recomputes from the newest stored interval (at most ``catch_up`` back)
  to now: what ended while the service was down is counted.  Anything older, or rows
  that reached the database late (spilled outcomes), are recomputed by
  ``python -m app.reports rebuild --from --to``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.reports.compute import INTERVAL, interval_of, recompute_interval
from app.writer import Flusher, is_transient
from routing.commands import (
    AgentStateChanged,
    CallEnded,
    CallOffered,
    Command,
    WrapUpEnded,
)

log = logging.getLogger(__name__)

_STEP = 900.0  # seconds per interval


def _key(t: float) -> float:
    return t - t % _STEP


class RollupMaintainer:
    """See the module docstring."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        short_abandon_s: float = 5.0,
        default_sl_s: float = 15.0,
        settle_s: float = 3.0,
        tick_s: float = 2.0,
        min_gap_s: float = 30.0,
        catch_up: timedelta = timedelta(days=1),
        timezone: str = "UTC",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._short = short_abandon_s
        self._sl = default_sl_s
        self._settle = settle_s
        self._min_gap = min_gap_s
        self._computed: dict[float, float] = {}  # interval start -> last recomputed at
        self._first: dict[float, float] = {}  # dirty interval -> first marked since computed
        self._tick = tick_s
        self._catch_up = catch_up
        self._timezone = timezone
        self._clock = clock
        self._dirty: dict[float, float] = {}  # interval start (epoch) -> last marked
        self._call_interval: dict[str, float] = {}  # answered call -> arrival interval
        self._agent_since: dict[str, float] = {}  # agent -> its last change
        self._boundary = _key(clock())
        self._flusher = Flusher("rollup-maintainer")
        self.recomputed = 0

    # --- the routing side ------------------------------------------------------------

    def _mark(self, start: float, now: float) -> None:
        k = _key(start)
        self._dirty[k] = now
        self._first.setdefault(k, now)

    def notify(self, cmd: Command, now: float) -> None:
        if isinstance(cmd, CallEnded):
            rec = cmd.record
            self._mark(rec.arrived_at, now)
            if rec.answered_by is not None:
                self._call_interval[rec.call_id] = _key(rec.arrived_at)
                if len(self._call_interval) > 200_000:  # a wrap-up end that never came
                    self._call_interval.pop(next(iter(self._call_interval)))
        elif isinstance(cmd, WrapUpEnded) and cmd.call_id is not None:
            start = self._call_interval.pop(cmd.call_id, None)
            if start is not None:
                self._mark(start, now)
        elif isinstance(cmd, CallOffered):
            self._mark(cmd.at, now)
        elif isinstance(cmd, AgentStateChanged):
            since = self._agent_since.get(cmd.agent_id, cmd.at)
            k = _key(min(since, cmd.at))
            while k <= cmd.at:
                self._mark(k, now)
                k += _STEP
            self._agent_since[cmd.agent_id] = cmd.at

    # --- the task ----------------------------------------------------------------------

    async def start(self) -> None:
        self._flusher.start(self._run())

    async def close(self) -> None:
        await self._flusher.stop()

    async def _run(self) -> None:
        try:
            await self.catch_up()
        except Exception:  # reports must not take the service down: logged, retried by rebuild
            log.exception("rollup catch-up failed")
        failures = 0
        while True:
            await self._flusher.wait(self._tick)
            try:
                await self.step()
                failures = 0
            except Exception as exc:
                if not is_transient(exc):
                    log.exception("rollup recompute failed")
                failures += 1
                await asyncio.sleep(min(30.0, 0.5 * 2**failures))

    async def catch_up(self) -> int:
        now = self._clock()
        async with self._sessionmaker() as session:
            newest = await session.scalar(sa.text("SELECT max(interval_start) FROM interval_stats"))
        earliest = now - self._catch_up.total_seconds()
        start = earliest if newest is None else max(earliest, newest.timestamp() - _STEP)
        return await self.rebuild(
            datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(now, UTC)
        )

    async def step(self) -> int:
        """Recompute the settled dirty intervals; returns how many."""
        now = self._clock()
        boundary = _key(now)
        if boundary > self._boundary:
            self._mark(self._boundary, now)  # settles like any other mark
            self._boundary = boundary
        gap = self._min_gap
        due = sorted(
            k
            for k, marked in self._dirty.items()
            if (now - marked >= self._settle or now - self._first[k] >= gap)
            and now - self._computed.get(k, now - gap) >= gap
        )
        for k in due:
            marked = self._dirty[k]
            await self._recompute(datetime.fromtimestamp(k, UTC), now)
            self._computed[k] = now
            if self._dirty.get(k) == marked:  # not marked again meanwhile
                del self._dirty[k]
                self._first.pop(k, None)
            else:
                self._first[k] = now
        for k in [k for k in self._computed if k < now - 2 * 86400]:
            del self._computed[k]
        return len(due)

    async def rebuild(self, start: datetime, end: datetime) -> int:
        """Recompute every interval overlapping ``[start, end)``."""
        now = self._clock()
        k = interval_of(start)
        n = 0
        while k < end:
            await self._recompute(k, now)
            k += INTERVAL
            n += 1
        return n

    async def _recompute(self, start: datetime, now: float) -> None:
        async with self._sessionmaker() as session, session.begin():
            await recompute_interval(
                session,
                start,
                now=datetime.fromtimestamp(now, UTC),
                short_abandon_s=self._short,
                default_sl_s=self._sl,
                timezone=self._timezone,
            )
        self.recomputed += 1
