"""The live-state writer's fence (``app.fencing``, several service processes): checked
last in each transaction, and a fenced flush writes nothing and keeps its items."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database, open_database
from app.fencing import Fenced
from app.live.persist import StateStore
from app.models import AgentSession
from tests.db.test_persist_bad_row import saved, session_row


@pytest_asyncio.fixture(loop_scope="session")
async def db(fresh_database_settings: Any) -> AsyncIterator[Database]:
    database = await open_database(await fresh_database_settings(), migrate=False)
    yield database
    await database.close()


async def test_the_fence_runs_last_and_a_refusal_writes_nothing(db: Database) -> None:
    seen: list[int] = []
    refuse = [False]

    async def fence(session: AsyncSession) -> None:
        # Last in the transaction: the rows are written (its lock is held to the commit
        # only, never across a long write that would delay the lease's renewal).
        seen.append(
            int(await session.scalar(sa.select(sa.func.count()).select_from(AgentSession)) or 0)
        )
        if refuse[0]:
            raise Fenced("the lease moved on")

    agents = {"2001": session_row("2001", "lunch"), "2002": session_row("2002", "training")}
    store = StateStore(db.sessionmaker, interval_s=60.0, fence=fence)
    store.start(agent_row=agents.get, call_row=lambda _call_id: None)
    try:
        store.mark_agent("2001")
        await store.flush()
        assert seen == [1]
        refuse[0] = True
        store.mark_agent("2002")
        with pytest.raises(Fenced):
            await store.flush()
        sessions, _ = await saved(db)
        assert sessions == {"2001": "lunch"}  # the fenced write left nothing behind
        assert store.marked == 1  # and was not retried row by row
    finally:
        refuse[0] = False
        await store.close()
