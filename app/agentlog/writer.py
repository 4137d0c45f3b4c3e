"""Agent state changes to ``agent_state_log``, batched off the routing path.

Theory of operation (the outcome writer's pattern, ``app.outcomes``, reduced):
- ``notify(cmd, now)`` is a listener of the live runtime's notifications: it keeps
  ``AgentStateChanged`` only, turns it into a row and appends it to an in-memory
  backlog; it never awaits and never raises into routing.
- One flusher task (``app.writer.Flusher``) writes the backlog ``batch_size`` rows at a
  time every ``flush_interval_s`` (sooner when a batch is full), one transaction per
  batch, ``INSERT ... ON CONFLICT DO NOTHING`` on ``(agent_id, at, state)``: a batch
  retried after a lost acknowledgement, or a replayed one, writes nothing twice.
- Rows leave memory only after their commit.  A transient failure (database away)
  keeps the batch and retries with capped backoff; a batch refused for its data is
  written row by row and a row PostgreSQL refuses on its own is logged and dropped.
- The backlog is bounded (``max_pending``): past it new rows are dropped and
  counted (``stats["dropped"]``, an ERROR line per episode): memory must not grow
  without bound while PostgreSQL is down for hours.  ``close`` flushes what it can
  within ``close_timeout_s``.
- Agent ids that are not numbers (never the case for ``agents.id``) are skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.agentlog.models import AgentStateLog
from app.writer import Flusher, execute_in_slices, is_transient
from cti.ami import backoff_delay
from routing.commands import AgentStateChanged, Command

log = logging.getLogger(__name__)

_INSERT = pg_insert(AgentStateLog).on_conflict_do_nothing(
    index_elements=["agent_id", "at", "state"]
)


def state_row(cmd: AgentStateChanged) -> dict[str, Any] | None:
    """The log row of one state change (``None``: not a numeric agent id)."""
    if not cmd.agent_id.isdigit():
        return None
    return {
        "agent_id": int(cmd.agent_id),
        "at": datetime.fromtimestamp(cmd.at, UTC),
        "state": cmd.state.value,
        "previous": cmd.previous.value if cmd.previous is not None else None,
        "reason": cmd.reason,
        "call_id": cmd.call_id,
    }


class AgentStateWriter:
    """The agent state log's writer (see the module docstring)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        batch_size: int = 500,
        flush_interval_s: float = 0.2,
        max_pending: int = 500_000,
        close_timeout_s: float = 5.0,
        backoff_initial_s: float = 0.05,
        backoff_max_s: float = 5.0,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._batch_size = batch_size
        self._interval = flush_interval_s
        self._max_pending = max_pending
        self._close_timeout = close_timeout_s
        self._backoff = (backoff_initial_s, backoff_max_s)
        self._backlog: deque[dict[str, Any]] = deque()
        self._flusher = Flusher("agent-state-writer")
        self._closing = False
        self._idle = asyncio.Event()
        self._idle.set()
        self.stats = {"written": 0, "dropped": 0, "rejected": 0}

    @classmethod
    @asynccontextmanager
    async def running(
        cls, sessionmaker: async_sessionmaker[AsyncSession], **kw: Any
    ) -> AsyncIterator[AgentStateWriter]:
        writer = cls(sessionmaker, **kw)
        await writer.start()
        try:
            yield writer
        finally:
            await writer.close()

    @property
    def pending(self) -> int:
        return len(self._backlog)

    # --- the routing side: never awaits ------------------------------------------------

    def notify(self, cmd: Command, now: float) -> None:
        """The live runtime's listener: keep the agent state changes."""
        if isinstance(cmd, AgentStateChanged):
            row = state_row(cmd)
            if row is not None:
                self.record(row)

    def record(self, row: dict[str, Any]) -> None:
        if len(self._backlog) >= self._max_pending:
            # The new row is refused, never a queued one: the flusher's batch is the head.
            if not self.stats["dropped"]:
                log.error("agent state log backlog full (%d rows): dropping", self._max_pending)
            self.stats["dropped"] += 1
            return
        self._backlog.append(row)
        self._idle.clear()
        if len(self._backlog) >= self._batch_size:
            self._flusher.wake()

    # --- the flusher --------------------------------------------------------------------

    async def start(self) -> None:
        self._flusher.start(self._run())

    async def close(self) -> None:
        self._closing = True
        self._flusher.wake()
        try:
            await self._flusher.stop(self._close_timeout)
        except TimeoutError:
            log.error("agent state log: %d rows not written at close", len(self._backlog))

    async def flushed(self, timeout_s: float = 10.0) -> None:
        """Wait until every row recorded so far is written (tests, maintenance)."""
        self._flusher.wake()
        await asyncio.wait_for(self._idle.wait(), timeout_s)

    async def _run(self) -> None:
        failures = 0
        while True:
            if not self._closing:
                await self._flusher.wait(self._interval)
            try:
                while self._backlog:
                    await self._write_batch()
                failures = 0
                self._idle.set()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                failures += 1
                log.warning("agent state log: write failed (%s), retrying", exc)
                await asyncio.sleep(backoff_delay(failures, *self._backoff))
                continue
            if self._closing:
                return

    async def _write_batch(self) -> None:
        batch = [self._backlog[i] for i in range(min(self._batch_size, len(self._backlog)))]
        try:
            async with self._sessionmaker() as session, session.begin():
                await execute_in_slices(session, _INSERT, batch)
        except Exception as exc:
            if is_transient(exc):
                raise
            await self._write_one_by_one(batch)
        for _ in batch:
            self._backlog.popleft()
        self.stats["written"] += len(batch)

    async def _write_one_by_one(self, batch: list[dict[str, Any]]) -> None:
        for row in batch:
            try:
                async with self._sessionmaker() as session, session.begin():
                    await session.execute(_INSERT, [row])
            except Exception as exc:
                if is_transient(exc):
                    raise
                self.stats["rejected"] += 1
                log.error("agent state log: row refused (%s): %r", exc, row)
