"""The agent state log: batched, idempotent under replays, monthly partitions (real
PostgreSQL), and every state change of a live agent lands in it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import pytest_asyncio
import sqlalchemy as sa

from app import partitions
from app.agentlog.writer import AgentStateWriter
from app.db import Database, open_database
from routing.commands import AgentState, AgentStateChanged, CallQueued

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC).timestamp()


@pytest_asyncio.fixture(loop_scope="session")
async def db(fresh_database_settings: Any) -> AsyncIterator[Database]:
    database = await open_database(await fresh_database_settings(), migrate=False)
    yield database
    await database.close()


async def rows(db: Database, sql: str, **params: Any) -> list[Any]:
    async with db.engine.connect() as conn:
        return list((await conn.execute(sa.text(sql), params)).all())


def changes(agent: str, t0: float) -> list[AgentStateChanged]:
    s = AgentState
    return [
        AgentStateChanged(agent, s.PAUSED, t0, reason="login", previous=s.LOGGED_OUT),
        AgentStateChanged(agent, s.READY, t0 + 10, previous=s.PAUSED),
        AgentStateChanged(agent, s.RESERVED, t0 + 20, call_id="pbx/1", previous=s.READY),
        AgentStateChanged(agent, s.ON_CALL, t0 + 22, call_id="pbx/1", previous=s.RESERVED),
        AgentStateChanged(agent, s.WRAP_UP, t0 + 80, call_id="pbx/1", previous=s.ON_CALL),
        AgentStateChanged(agent, s.PAUSED, t0 + 90, reason="lunch", previous=s.WRAP_UP),
        AgentStateChanged(agent, s.LOGGED_OUT, t0 + 900, previous=s.PAUSED),
    ]


async def test_every_state_change_is_logged_once_even_when_replayed(db: Database) -> None:
    async with AgentStateWriter.running(db.sessionmaker, batch_size=3) as writer:
        for cmd in changes("1001", T0):
            writer.notify(cmd, cmd.at)
        writer.notify(CallQueued("pbx/1", "1", T0), T0)  # not a state change: ignored
        writer.notify(AgentStateChanged("x1", AgentState.READY, T0), T0)  # not an agents.id
        await writer.flushed()
        for cmd in changes("1001", T0):  # a replay (e.g. a spill or a retried batch)
            writer.notify(cmd, cmd.at)
        await writer.flushed()
        assert writer.stats["written"] == 14 and writer.stats["rejected"] == 0
    got = await rows(
        db,
        "SELECT state, previous, reason, call_id, tableoid::regclass::text"
        " FROM agent_state_log WHERE agent_id = 1001 ORDER BY at",
    )
    assert [(r[0], r[1], r[2], r[3]) for r in got] == [
        ("paused", "logged_out", "login", None),
        ("ready", "paused", None, None),
        ("reserved", "ready", None, "pbx/1"),
        ("on_call", "reserved", None, "pbx/1"),
        ("wrap_up", "on_call", None, "pbx/1"),
        ("paused", "wrap_up", "lunch", None),
        ("logged_out", "paused", None, None),
    ]
    assert {r[4] for r in got} == {"agent_state_log_2026_12"}  # its month's partition


async def test_close_writes_what_is_left(db: Database) -> None:
    writer = AgentStateWriter(db.sessionmaker, flush_interval_s=60.0)
    await writer.start()
    for cmd in changes("1002", T0):
        writer.notify(cmd, cmd.at)
    await writer.close()
    assert len(await rows(db, "SELECT 1 FROM agent_state_log WHERE agent_id = 1002")) == 7


async def test_partitions_ahead_and_rows_moved_out_of_the_default(db: Database) -> None:
    """A row of a month without a partition waits in the default partition; creating the
    month moves it there; dropping old months removes whole partitions."""
    old = datetime(2020, 5, 17, 8, 0, tzinfo=UTC).timestamp()
    async with AgentStateWriter.running(db.sessionmaker) as writer:
        for cmd in changes("1003", old):
            writer.notify(cmd, cmd.at)
    where = "SELECT DISTINCT tableoid::regclass::text FROM agent_state_log WHERE agent_id = 1003"
    assert await rows(db, where) == [("agent_state_log_default",)]
    async with db.engine.begin() as conn:
        made = await partitions.ensure_months(conn, "agent_state_log", "at", date(2020, 4, 1), 3)
        assert made == 3
        again = await partitions.ensure_months(conn, "agent_state_log", "at", date(2020, 4, 1), 3)
        assert again == 0
    assert await rows(db, where) == [("agent_state_log_2020_05",)]
    async with db.engine.begin() as conn:
        dropped = await partitions.drop_months_before(
            conn, "agent_state_log", datetime(2020, 6, 1, tzinfo=UTC)
        )
    assert dropped == ["agent_state_log_2020_04", "agent_state_log_2020_05"]
    assert await rows(db, where) == []
    async with db.engine.connect() as conn:
        months = await partitions.months(conn, "agent_state_log")
    assert date(2020, 6, 1) in months and date(2026, 12, 1) in months
