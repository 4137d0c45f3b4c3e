"""The rollup maintainer marks the intervals notifications change and recomputes them
once settled (real PostgreSQL, injected clock)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest_asyncio
import sqlalchemy as sa

from app import models
from app.db import Database, open_database
from app.reports.rollup import RollupMaintainer
from routing.commands import (
    AgentState,
    AgentStateChanged,
    CallEnded,
    CallRecord,
    CallResult,
    WrapUpEnded,
)

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC).timestamp()


@pytest_asyncio.fixture(loop_scope="session")
async def db(fresh_database_settings: Any) -> AsyncIterator[Database]:
    database = await open_database(await fresh_database_settings(), migrate=False)
    yield database
    await database.close()


async def stats(db: Database) -> list[tuple[Any, ...]]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            sa.text(
                "SELECT kind, entity_id, extract(epoch FROM interval_start)::bigint, offered,"
                " answered, login_s FROM interval_stats ORDER BY 3, 1, 2"
            )
        )
        return [tuple(r) for r in rows]


async def test_dirty_intervals_are_recomputed_once_settled(db: Database) -> None:
    now = [T0 + 1200.0]
    m = RollupMaintainer(db.sessionmaker, settle_s=3.0, min_gap_s=1.0, clock=lambda: now[0])
    rec = CallRecord(
        call_id="pbx/1",
        queue_id="1",
        caller="1",
        result=CallResult.ANSWERED,
        arrived_at=T0 + 60,
        ended_at=T0 + 1100,
        answered_at=T0 + 65,
        answered_by="1001",
    )
    async with db.engine.begin() as conn:
        await conn.execute(
            sa.insert(models.Agent), [{"id": 1001, "name": "a", "device": "PJSIP/1"}]
        )
        await conn.execute(
            sa.insert(models.Call),
            [
                {
                    "call_id": "pbx/1",
                    "server": "pbx",
                    "uniqueid": "1",
                    "caller": "1",
                    "queue_id": 1,
                    "arrived_at": datetime.fromtimestamp(T0 + 60, UTC),
                    "answered_at": datetime.fromtimestamp(T0 + 65, UTC),
                    "ended_at": datetime.fromtimestamp(T0 + 1100, UTC),
                    "answered_by": 1001,
                    "talk_s": 1035.0,
                    "result": "answered",
                }
            ],
        )
        await conn.execute(
            sa.text(
                "INSERT INTO agent_state_log (agent_id, at, state) VALUES (1001, :at, 'ready')"
            ),
            {"at": datetime.fromtimestamp(T0, UTC)},
        )
    m.notify(AgentStateChanged("1001", AgentState.READY, T0), now[0])
    m.notify(CallEnded(rec), now[0])
    assert await m.step() == 0  # not settled: the writers may still be flushing
    now[0] += 3.0
    assert await m.step() == 1  # the interval of T0 (the call's arrival and the state)
    assert await stats(db) == [
        ("agent", 1001, int(T0), 0, 1, 900.0),
        ("queue", 1, int(T0), 1, 1, 0.0),
    ]
    assert await m.step() == 0  # nothing dirty any more
    # The wrap-up end dirties the call's arrival interval again; a state change dirties
    # every interval since the agent's previous change.
    m.notify(WrapUpEnded("1001", "pbx/1", T0 + 1210), now[0])
    m.notify(AgentStateChanged("1001", AgentState.PAUSED, T0 + 1210, reason="lunch"), now[0])
    now[0] += 3.0
    assert await m.step() == 2  # T0 and T0 + 900
    # A 15-minute boundary passing dirties the interval that just closed.
    now[0] = T0 + 1800 + 1
    assert await m.step() == 0
    now[0] += 3.0
    assert await m.step() == 1
    assert ("agent", 1001, int(T0 + 900), 0, 0, 900.0) in await stats(db)


async def test_a_busy_interval_is_recomputed_at_most_once_per_gap(db: Database) -> None:
    """At peak the current interval is marked all the time: it never settles, yet it is
    recomputed, once per ``min_gap_s`` (a peak interval costs seconds of database time)."""
    now = [T0 + 100.0]
    m = RollupMaintainer(db.sessionmaker, settle_s=3.0, min_gap_s=30.0, clock=lambda: now[0])
    counts = []
    for _ in range(40):  # a state change every 2 s for 80 s, a step after each
        m.notify(AgentStateChanged("1001", AgentState.READY, now[0]), now[0])
        now[0] += 2.0
        counts.append(await m.step())
    assert sum(counts) == 2  # at 30 s and at 60 s after the first mark
    assert counts.index(1) == 14
