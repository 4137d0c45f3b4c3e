"""Live routing state kept across restarts: agent sessions and calls in progress.

Invariants:
- Nothing here runs on the routing path.  The call center only *marks* what changed
  (an agent id, a call id: a set insertion, no I/O); one flusher task owned by the store
  writes the marked items every ``interval_s`` in one transaction, reading their state
  *at flush time* through the row callbacks.  So any number of changes of one agent or
  call between two flushes cost one row write (latest state wins), and a failed flush is
  simply retried later with fresher state.
- A call's ``live_calls`` row exists from its arrival until it ends (the call's callback
  returns ``None`` then: the row is deleted; its ``calls`` row comes from the outcome
  writer).  An agent's ``agent_sessions`` row always holds its latest state, logged out
  included.
- Writes are upserts / deletes by key: replaying a flush is harmless.  A flush cancelled
  mid-way (``close``) puts its marks back, so ``close`` writes them.
- ``close`` stops the flusher and writes whatever is marked: after a clean stop the
  tables hold exactly the agents' last states and the calls still in progress.
- With a ``fence`` (``app.fencing``: several service processes, one leader) every
  transaction ends by checking that this process still holds the lease it was started
  under (last, so the lease row's share lock is held only until the commit and never
  delays a renewal); a fenced flush writes nothing (its items stay marked, never written again by
  this process: the next leader rebuilds them from Asterisk and its own state).
- One row the database refuses for its data (e.g. a NUL in a caller name from the PBX)
  does not stop the others: a batch failing that way is written again row by row, each
  in a savepoint, and only the refused rows are dropped (logged with their key; the
  item's next change marks it again).  A transient failure (connection, server) still
  keeps every item marked for the next flush.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.fencing import Fenced, WriteFence
from app.models import AgentSession, Base, Call, CallEvent, LiveCall
from app.writer import SLICE_ROWS, Flusher, execute_in_slices, is_transient

logger = logging.getLogger(__name__)

RowOf = Callable[[str], dict[str, Any] | None]


def _epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


@dataclass(frozen=True, slots=True)
class SavedSession:
    """An agent session as the previous run left it (times in epoch seconds)."""

    agent_id: str
    device: str | None
    state: str
    reason: str | None
    since: float | None
    idle_since: float | None
    call_id: str | None
    pending: str | None
    until: float | None
    missed_in_row: int


@dataclass(frozen=True, slots=True)
class SavedCall:
    """A call in progress as the previous run left it (times in epoch seconds)."""

    call_id: str
    server: str
    uniqueid: str
    linkedid: str | None
    channel: str | None
    caller: str
    caller_name: str | None
    dnis: str | None
    queue_id: str
    state: str
    agent_id: str | None
    arrived_at: float
    queued_at: float | None
    first_offered_at: float | None
    answered_at: float | None
    agents_offered: tuple[str, ...]
    rona_count: int
    vip: bool
    entitled: bool


@dataclass(frozen=True, slots=True)
class SavedState:
    sessions: list[SavedSession]
    calls: list[SavedCall]  # still without a ``calls`` row
    already_ended: list[str]  # live rows whose call has its ``calls`` row (stale)
    # call id -> (answered at, agent) from ``call_events``, for saved calls: the event is
    # journaled when it happens, the live row only at the next flush (``best_known``).
    answered: dict[str, tuple[float, str | None]] = dataclasses.field(default_factory=dict)

    def best_known(self, call: SavedCall) -> SavedCall:
        """``call`` with its answer when only the events know it (killed before the live
        state store wrote it): such a call ended while down was answered, not failed."""
        known = self.answered.get(call.call_id)
        if known is None or call.answered_at is not None:
            return call
        at, agent_id = known
        agent_id = agent_id or call.agent_id
        offered = call.agents_offered
        if agent_id is not None and agent_id not in offered:
            offered = (*offered, agent_id)
        return dataclasses.replace(
            call,
            answered_at=at,
            agent_id=agent_id,
            state="connected",
            first_offered_at=call.first_offered_at or at,
            agents_offered=offered,
        )


_sessions = Base.metadata.tables["agent_sessions"]
_live = Base.metadata.tables["live_calls"]
_ins_sessions = pg_insert(_sessions)
_UPSERT_SESSIONS = _ins_sessions.on_conflict_do_update(
    index_elements=[_sessions.c.agent_id],
    set_={
        c.name: _ins_sessions.excluded[c.name] for c in _sessions.columns if c.name != "agent_id"
    },
)
_ins_live = pg_insert(_live)
_UPSERT_LIVE = _ins_live.on_conflict_do_update(
    index_elements=[_live.c.call_id],
    set_={c.name: _ins_live.excluded[c.name] for c in _live.columns if c.name != "call_id"},
)


class StateStore:
    """Coalescing writer of ``agent_sessions`` / ``live_calls`` (see the module docstring)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        interval_s: float = 0.5,
        close_timeout_s: float = 10.0,
        fence: WriteFence | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        self._sessionmaker = sessionmaker
        self.interval_s = interval_s
        self.close_timeout_s = close_timeout_s
        self._agents: set[str] = set()
        self._calls: set[str] = set()
        self._agent_row: RowOf | None = None
        self._call_row: RowOf | None = None
        self._flusher = Flusher("live-state-writer")
        self._closed = False
        self._fence = fence

    # --- reading the previous run's state --------------------------------------------------

    async def load(self) -> SavedState:
        async with self._sessionmaker() as session:
            sessions = (await session.scalars(sa.select(AgentSession))).all()
            calls = (await session.scalars(sa.select(LiveCall))).all()
            ended = set(
                (
                    await session.scalars(
                        sa.select(Call.call_id).where(Call.call_id.in_(sa.select(LiveCall.call_id)))
                    )
                ).all()
            )
            live_ids = [c.call_id for c in calls if c.call_id not in ended]
            orphans = await _orphans(session)
            answered = await _answered(session, live_ids + [o.call_id for o in orphans])
        return SavedState(
            sessions=[
                SavedSession(
                    agent_id=s.agent_id,
                    device=s.device,
                    state=str(s.state.value if hasattr(s.state, "value") else s.state),
                    reason=s.reason,
                    since=_epoch(s.since),
                    idle_since=_epoch(s.idle_since),
                    call_id=s.call_id,
                    pending=s.pending,
                    until=_epoch(s.until),
                    missed_in_row=s.missed_in_row,
                )
                for s in sessions
            ],
            calls=[
                SavedCall(
                    call_id=c.call_id,
                    server=c.server,
                    uniqueid=c.uniqueid,
                    linkedid=c.linkedid,
                    channel=c.channel,
                    caller=c.caller,
                    caller_name=c.caller_name,
                    dnis=c.dnis,
                    queue_id=c.queue_id,
                    state=c.state,
                    agent_id=c.agent_id,
                    arrived_at=c.arrived_at.timestamp(),
                    queued_at=_epoch(c.queued_at),
                    first_offered_at=_epoch(c.first_offered_at),
                    answered_at=_epoch(c.answered_at),
                    agents_offered=tuple(c.agents_offered),
                    rona_count=c.rona_count,
                    vip=c.vip,
                    entitled=c.entitled,
                )
                for c in calls
                if c.call_id not in ended
            ]
            + orphans,
            already_ended=sorted(ended),
            answered=answered,
        )

    # --- marking (the routing path: O(1), no I/O) ------------------------------------------

    def mark_agent(self, agent_id: str) -> None:
        self._agents.add(agent_id)

    def mark_call(self, call_id: str) -> None:
        self._calls.add(call_id)

    def mark_calls(self, call_ids: Iterable[str]) -> None:
        self._calls.update(call_ids)

    @property
    def marked(self) -> int:
        return len(self._agents) + len(self._calls)

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self, *, agent_row: RowOf, call_row: RowOf) -> None:
        """Start the flusher; ``agent_row(id)`` / ``call_row(id)`` give the row to write
        (``None`` for a call: delete its row)."""
        if self._flusher.started:
            raise RuntimeError("StateStore already started")
        self._agent_row = agent_row
        self._call_row = call_row
        self._flusher.start(self._run())

    async def close(self) -> None:
        """Stop the flusher and write what is marked (idempotent)."""
        if self._closed:
            return
        self._closed = True
        await self._flusher.stop()
        if self._agent_row is None:
            return
        try:
            async with asyncio.timeout(self.close_timeout_s):
                await self.flush()
        except Exception as exc:  # noqa: BLE001 — close() must finish
            # Broad on purpose: close() must finish; the loss is logged with its count.
            logger.error(
                "live state: final write failed (%s); %d items not saved",
                type(exc).__name__,
                self.marked,
            )

    async def _run(self) -> None:
        while True:
            await self._flusher.wait(self.interval_s)
            if not self.marked:
                continue
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 — retried next round
                # Broad on purpose: the items stay marked; the next round retries them.
                logger.warning(
                    "live state: write of %d items failed (%s); retried", self.marked, exc
                )

    async def flush(self) -> None:
        """Write every marked item now (one transaction); on failure they stay marked."""
        agent_row, call_row = self._agent_row, self._call_row
        if agent_row is None or call_row is None:
            raise RuntimeError("StateStore not started")
        agents, self._agents = self._agents, set()
        calls, self._calls = self._calls, set()
        if not agents and not calls:
            return
        try:
            now = datetime.now(UTC)
            sessions = []
            # Rows are read in slices that yield to the event loop (a flush of a few
            # hundred rows would otherwise stall routing for milliseconds).  A change
            # made meanwhile marks its item again: written by this flush or the next.
            for i, agent_id in enumerate(sorted(agents)):
                if i and not i % SLICE_ROWS:
                    await asyncio.sleep(0)
                row = agent_row(agent_id)
                if row is not None:
                    sessions.append({**row, "updated_at": now})
            upserts: list[dict[str, Any]] = []
            deletes: list[str] = []
            for i, call_id in enumerate(sorted(calls)):
                if i and not i % SLICE_ROWS:
                    await asyncio.sleep(0)
                row = call_row(call_id)
                if row is None:
                    deletes.append(call_id)
                else:
                    upserts.append({**row, "updated_at": now})
            try:
                async with self._sessionmaker() as session, session.begin():
                    if sessions:
                        await execute_in_slices(session, _UPSERT_SESSIONS, sessions)
                    if upserts:
                        await execute_in_slices(session, _UPSERT_LIVE, upserts)
                    if deletes:
                        await session.execute(_delete_live(deletes))
                    if self._fence is not None:  # last: its lock is held only to the commit
                        await self._fence(session)
            except Exception as exc:
                if is_transient(exc) or isinstance(exc, Fenced):
                    raise
                await self._write_row_by_row(sessions, upserts, deletes, exc)
        except BaseException:
            # Not written (or not known to be): mark again; rows are rebuilt next time.
            self._agents |= agents
            self._calls |= calls
            raise

    async def _write_row_by_row(
        self,
        sessions: list[dict[str, Any]],
        upserts: list[dict[str, Any]],
        deletes: list[str],
        cause: BaseException,
    ) -> None:
        """The batch failed for its data: write each row in a savepoint, skip the refused."""
        logger.warning(
            "live state: batch refused (%s); writing %d rows one by one",
            type(cause).__name__,
            len(sessions) + len(upserts),
        )
        async with self._sessionmaker() as session, session.begin():
            for statement, rows, key in (
                (_UPSERT_SESSIONS, sessions, "agent_id"),
                (_UPSERT_LIVE, upserts, "call_id"),
            ):
                for i, row in enumerate(rows):
                    if i and not i % SLICE_ROWS:
                        await asyncio.sleep(0)
                    try:
                        async with session.begin_nested():
                            await session.execute(statement, [row])
                    except Exception as exc:
                        if is_transient(exc):
                            raise
                        logger.error(
                            "live state: %s %s not saved, the database refuses its data (%s)",
                            key,
                            row[key],
                            type(exc).__name__,
                        )
            if deletes:
                await session.execute(_delete_live(deletes))
            if self._fence is not None:
                await self._fence(session)


# Calls queued this long before the newest event at most are looked for without a live
# row: a call's live row is written within one flush interval of its arrival, so only the
# last moments before a crash can leave a call named by its events alone.
ORPHAN_WINDOW = timedelta(minutes=10)


async def _orphans(session: AsyncSession) -> list[SavedCall]:
    """Calls whose arrival is in ``call_events`` (the queued event names the caller) but
    which have neither a ``calls`` nor a ``live_calls`` row: the process died before its
    live state was written.  Restored like saved calls (adopted, or ended while down)."""
    newest = await session.scalar(sa.select(sa.func.max(CallEvent.at)))
    if newest is None:
        return []
    ev = sa.orm.aliased(CallEvent)
    rows = (
        await session.execute(
            sa.select(ev.call_id, ev.at, ev.data)
            .where(
                ev.at > newest - ORPHAN_WINDOW,
                ev.kind == "queued",
                ev.data.has_key("caller"),
                ~sa.exists().where(Call.call_id == ev.call_id),
                ~sa.exists().where(LiveCall.call_id == ev.call_id),
            )
            .order_by(ev.at)
        )
    ).all()
    out: dict[str, SavedCall] = {}
    for call_id, at, data in rows:
        server, _, uniqueid = call_id.partition("/")
        if call_id in out or not uniqueid:
            continue
        queued_at = at.timestamp()
        arrived = data.get("arrived_at")
        out[call_id] = SavedCall(
            call_id=call_id,
            server=server,
            uniqueid=uniqueid,
            linkedid=None,
            channel=None,
            caller=str(data.get("caller") or ""),
            caller_name=None,
            dnis=data.get("dnis"),
            queue_id=str(data.get("queue_id") or ""),
            state="waiting",
            agent_id=None,
            arrived_at=float(arrived) if isinstance(arrived, int | float) else queued_at,
            queued_at=queued_at,
            first_offered_at=None,
            answered_at=None,
            agents_offered=(),
            rona_count=0,
            vip=bool(data.get("vip")),
            entitled=bool(data.get("entitled")),
        )
    if out:
        logger.warning("live state: %d calls known only from their events", len(out))
    return list(out.values())


async def _answered(
    session: AsyncSession, call_ids: list[str]
) -> dict[str, tuple[float, str | None]]:
    """The first ``answered`` event of each of ``call_ids``."""
    out: dict[str, tuple[float, str | None]] = {}
    for i in range(0, len(call_ids), 1000):
        rows = await session.execute(
            sa.select(CallEvent.call_id, CallEvent.at, CallEvent.agent_id)
            .where(CallEvent.call_id.in_(call_ids[i : i + 1000]), CallEvent.kind == "answered")
            .order_by(CallEvent.at)
        )
        for call_id, at, agent_id in rows:
            out.setdefault(call_id, (at.timestamp(), None if agent_id is None else str(agent_id)))
    return out


def _delete_live(call_ids: list[str]) -> sa.Delete:
    return sa.delete(_live).where(_live.c.call_id.in_(call_ids))
