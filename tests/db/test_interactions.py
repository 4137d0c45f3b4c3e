"""Handled calls on the customer's record: one interaction per call (answered, abandoned,
overflowed), never duplicated by replays, wrap-ups carried over; the repeat-caller mark."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest_asyncio
import sqlalchemy as sa

from app.crm import RepeatWindows, lookup_caller
from app.customers.interactions import link_call
from app.db import Database, open_database
from app.models import Customer, CustomerPhone
from app.outcomes import CallOutcome, OutcomeWriter
from routing.commands import CallResult

T0 = datetime(2026, 6, 15, 9, 0, tzinfo=UTC)


@pytest_asyncio.fixture(loop_scope="session")
async def db(fresh_database_settings: Any) -> AsyncIterator[Database]:
    database = await open_database(await fresh_database_settings(), migrate=False)
    yield database
    await database.close()


def outcome(n: int, caller: str = "+86 138 0013 8000", **kw: Any) -> CallOutcome:
    arrived = T0 + timedelta(minutes=n)
    fields: dict[str, Any] = {
        "call_id": f"pbx1/{n}.1",
        "server": "pbx1",
        "uniqueid": f"{n}.1",
        "caller": caller,
        "result": CallResult.ANSWERED,
        "arrived_at": arrived,
        "answered_at": arrived + timedelta(seconds=5),
        "ended_at": arrived + timedelta(seconds=65),
        "queue_id": 1,
        "answered_by": 1001,
    }
    fields.update(kw)
    return CallOutcome(**fields)


async def _customer(db: Database, phone: str, name: str = "王芳") -> int:
    async with db.sessionmaker() as session, session.begin():
        c = Customer(name=name)
        session.add(c)
        await session.flush()
        session.add(CustomerPhone(phone=phone, customer_id=c.id))
        return c.id


async def _interactions(db: Database) -> list[Any]:
    async with db.engine.connect() as conn:
        q = sa.text(
            "SELECT call_id, customer_id, agent_id, result, queue_id, disposition_code, notes,"
            " channel FROM interactions ORDER BY call_id"
        )
        return list((await conn.execute(q)).all())


async def _write(db: Database, tmp_path: Path, *items: Any) -> None:
    w = OutcomeWriter(db.sessionmaker, spill_dir=tmp_path, flush_interval_s=0.02)
    await w.start()
    for item in items:
        if isinstance(item, CallOutcome):
            w.record_call(item)
        else:
            call_id, code, notes, ended = item
            w.record_wrapup(call_id, disposition_code=code, notes=notes, wrapup_ended_at=ended)
    await w.close()


async def test_answered_abandoned_and_overflowed_calls_are_contacts(
    db: Database, tmp_path: Path
) -> None:
    cid = await _customer(db, "13800138000")
    await _write(
        db,
        tmp_path,
        outcome(1),
        outcome(2, result=CallResult.ABANDONED, answered_by=None, answered_at=None),
        outcome(3, result=CallResult.OVERFLOWED, answered_by=None, answered_at=None),
        outcome(4, caller="13900000000"),  # nobody's number: no record to write on
        outcome(5, caller="anonymous"),
    )
    got = await _interactions(db)
    assert got == [
        ("pbx1/1.1", cid, 1001, "answered", 1, None, None, "phone"),
        ("pbx1/2.1", cid, None, "abandoned", 1, None, None, "phone"),
        ("pbx1/3.1", cid, None, "overflowed", 1, None, None, "phone"),
    ]
    # Replayed (a retried batch, a spill file, a restart): nothing is written twice,
    # and the wrap-up that comes later lands on the same interaction.
    await _write(
        db,
        tmp_path,
        outcome(1),
        outcome(2, result=CallResult.ABANDONED, answered_by=None, answered_at=None),
        ("pbx1/1.1", "resolved", "reset the router", T0 + timedelta(minutes=3)),
    )
    got = await _interactions(db)
    assert len(got) == 3
    assert got[0][5:7] == ("resolved", "reset the router")


async def test_linking_an_unknown_callers_number_writes_the_interaction(
    db: Database, tmp_path: Path
) -> None:
    await _write(db, tmp_path, outcome(7, caller="13700000007"))
    assert await _interactions(db) == []
    cid = await _customer(db, "13700000007", name="李雷")
    async with db.sessionmaker() as session, session.begin():
        await link_call(session, "pbx1/7.1", "13700000007")
    async with db.sessionmaker() as session, session.begin():
        await link_call(session, "pbx1/7.1", "13700000007")  # twice: still one
    got = await _interactions(db)
    assert [(r[0], r[1]) for r in got] == [("pbx1/7.1", cid)]


async def test_repeat_caller_mark_counts_contacts_in_both_windows(
    db: Database, tmp_path: Path
) -> None:
    await _customer(db, "13600000000")
    # Three calls today, one four days ago, one twenty days ago.
    now = T0 + timedelta(hours=2)
    calls = [
        outcome(10, caller="13600000000"),
        outcome(20, caller="13600000000", result=CallResult.ABANDONED, answered_by=None),
        outcome(30, caller="13600000000"),
        outcome(40, caller="13600000000", arrived_at=now - timedelta(days=4)),
        outcome(50, caller="13600000000", arrived_at=now - timedelta(days=20)),
    ]
    await _write(db, tmp_path, *calls)
    async with db.sessionmaker() as session:
        pop = await lookup_caller(session, "13600000000", today=date(2026, 6, 15), now=now)
        assert pop is not None and pop.repeat is not None
        assert (pop.repeat.contacts_short, pop.repeat.contacts_long) == (3, 4)
        assert pop.interactions[0].call_id == "pbx1/30.1"
        assert pop.interactions[0].result == "answered"
        wide = await lookup_caller(
            session,
            "13600000000",
            today=date(2026, 6, 15),
            now=now,
            windows=RepeatWindows(short_h=24 * 5, long_h=24 * 30),
        )
        assert wide is not None and wide.repeat is not None
        assert (wide.repeat.contacts_short, wide.repeat.contacts_long) == (4, 5)
