"""The live-state writer isolates a row the database refuses: the others are saved."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa

from app.db import Database, open_database
from app.live.persist import StateStore
from app.models import AgentSession, LiveCall

T0 = datetime(2026, 6, 15, 9, 0, tzinfo=UTC)


@pytest_asyncio.fixture(loop_scope="session")
async def db(fresh_database_settings: Any) -> AsyncIterator[Database]:
    database = await open_database(await fresh_database_settings(), migrate=False)
    yield database
    await database.close()


def session_row(
    agent_id: str, reason: str | None = None, device: str = "PJSIP/1"
) -> dict[str, Any]:
    return {
        "agent_id": agent_id,
        "device": device,
        "state": "paused",
        "reason": reason,
        "since": T0,
        "idle_since": None,
        "call_id": None,
        "pending": None,
        "until": None,
        "missed_in_row": 0,
    }


def call_row(call_id: str, caller_name: str | None = None) -> dict[str, Any]:
    return {
        "call_id": call_id,
        "server": "pbx1",
        "uniqueid": call_id.split("/")[1],
        "linkedid": None,
        "channel": None,
        "caller": "13800000000",
        "caller_name": caller_name,
        "dnis": "5000",
        "queue_id": "1",
        "state": "waiting",
        "agent_id": None,
        "arrived_at": T0,
        "queued_at": T0,
        "first_offered_at": None,
        "answered_at": None,
        "agents_offered": [],
        "rona_count": 0,
        "vip": False,
        "entitled": False,
    }


async def saved(db: Database) -> tuple[dict[str, str | None], set[str]]:
    async with db.sessionmaker() as s:
        sessions = {a.agent_id: a.reason for a in (await s.scalars(sa.select(AgentSession))).all()}
        calls = set((await s.scalars(sa.select(LiveCall.call_id))).all())
    return sessions, calls


async def test_one_nul_row_does_not_stop_the_batch(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    agents = {
        "1001": session_row("1001", "lunch"),
        "1002": session_row("1002", "bad\x00reason"),
        "1003": session_row("1003", device="PJSIP/10\x0003"),
        "1004": session_row("1004", "training"),
    }
    calls = {
        "pbx1/1.1": call_row("pbx1/1.1", "Zhang Wei"),
        "pbx1/2.1": call_row("pbx1/2.1", "Evil\x00Name"),
    }
    store = StateStore(db.sessionmaker, interval_s=60.0)
    store.start(agent_row=agents.get, call_row=calls.get)
    try:
        for agent_id in agents:
            store.mark_agent(agent_id)
        store.mark_calls(calls)
        await store.flush()  # does not raise
        sessions, live = await saved(db)
        assert sessions == {"1001": "lunch", "1004": "training"}
        assert live == {"pbx1/1.1"}
        assert store.marked == 0
        refused = [r.getMessage() for r in caplog.records if "not saved" in r.getMessage()]
        assert len(refused) == 3 and any("1002" in m for m in refused)

        # Later changes of every item are saved as usual, the fixed row included.
        agents["1002"] = session_row("1002", "fixed")
        agents["1001"] = session_row("1001", "meeting")
        store.mark_agent("1001")
        store.mark_agent("1002")
        await store.flush()
        sessions, _ = await saved(db)
        assert sessions["1001"] == "meeting" and sessions["1002"] == "fixed"
    finally:
        await store.close()
