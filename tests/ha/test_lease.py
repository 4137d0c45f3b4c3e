"""Leadership in one process against a real PostgreSQL: who leads, hand-over on release
and on expiry, fencing of a stalled holder and of one cut off from the database.

Several ``Leadership`` objects in one process stand for several service processes
(each has its own member name and its own lease connection); the two-process tests with
the AMI simulator are in ``tests/ha/test_failover.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from app.db import Database, open_database
from app.fencing import Fenced
from app.ha.leader import Leadership, lease_connection
from app.settings import DatabaseSettings, HaSettings
from tests.db.pgproxy import PgProxy
from tests.polling import wait_for

# Short but not tight: renewals every 0.2 s, 0.9 s of safety before the 1.5 s lease ends.
FAST = HaSettings(lease_ttl_s=1.5, renew_interval_s=0.2, margin_s=0.4, poll_interval_s=0.1)


@pytest_asyncio.fixture(loop_scope="session")
async def db_settings(fresh_database_settings: Any) -> DatabaseSettings:
    settings: DatabaseSettings = await fresh_database_settings()
    return settings


@pytest_asyncio.fixture(loop_scope="session")
async def db(db_settings: DatabaseSettings) -> AsyncIterator[Database]:
    database = await open_database(db_settings, migrate=False)
    yield database
    await database.close()


class Recorder:
    """The start / stop callbacks of one member, in order."""

    def __init__(self) -> None:
        self.log: list[str] = []

    def attach(self, member: Leadership) -> Leadership:
        async def start() -> None:
            self.log.append("start")

        async def stop() -> None:
            self.log.append("stop")

        member.register("work", start, stop)
        return member


def member(db: Database, name: str, settings: HaSettings = FAST, **kwargs: Any) -> Leadership:
    return Leadership(
        settings.model_copy(update={"member_name": name}), lease_connection(db), **kwargs
    )


async def takeovers(db: Database) -> list[dict[str, Any]]:
    async with db.sessionmaker() as s:
        rows = await s.execute(
            sa.text("SELECT token, holder, previous_holder, reason FROM ha_takeovers ORDER BY id")
        )
        return [dict(r) for r in rows.mappings()]


async def test_one_leads_and_a_release_hands_over_at_once(db: Database) -> None:
    a_work, b_work = Recorder(), Recorder()
    a = a_work.attach(member(db, "a"))
    b = b_work.attach(member(db, "b"))
    await a.start()
    assert a.leading and a.running and a_work.log == ["start"]
    await b.start()
    try:
        assert not b.leading and b_work.log == []
        await asyncio.sleep(FAST.lease_ttl_s)  # renewed meanwhile: still a's
        assert a.leading and not b.leading
        token = a.token
        await a.close()  # a clean stop: work stopped, then the lease released
        assert a_work.log == ["start", "stop"]
        await wait_for(lambda: b.running, timeout=30, what="b leads")
        assert b.token == (token or 0) + 1
        history = await takeovers(db)
        assert [(t["holder"], t["previous_holder"], t["reason"]) for t in history] == [
            ("a", None, "free"),
            ("b", "a", "released"),
        ]
    finally:
        await b.close()
        await a.close()


async def test_a_stalled_holder_is_fenced_and_its_writes_refused(db: Database) -> None:
    # a's clock stands still: its local check keeps saying yes, as a process that was
    # SIGSTOPped right after the check would.  The database must still refuse its write.
    frozen = [0.0]
    a = member(db, "stalled", clock=lambda: frozen[0])
    b = member(db, "next")
    await a.start()
    tenure = a.tenure()
    assert tenure.may_act()
    # The stall: a renews no more and its deadline timer never fires.
    await a._on_keeper(a._halt_loop())
    a._cancel_deadline()
    await b.start()
    try:
        await wait_for(lambda: b.leading, timeout=30, what="b takes the expired lease")
        assert tenure.may_act()  # a does not know yet...
        assert tenure.write_fence is not None
        async with db.sessionmaker() as session, session.begin():
            with pytest.raises(Fenced):
                await tenure.write_fence(session)  # ...but its write is refused
        await asyncio.sleep(0)  # the refused write fenced a
        assert not a.leading and not tenure.may_act()
        history = await takeovers(db)
        assert history[-1]["reason"] == "expired" and history[-1]["previous_holder"] == "stalled"
        # b's own writes pass.
        fence = b.tenure().write_fence
        assert fence is not None
        async with db.sessionmaker() as session, session.begin():
            await fence(session)
    finally:
        await b.close()
        await a.close()


async def test_the_monotonic_deadline_fences_a_resumed_holder(db: Database) -> None:
    # A pause longer than the lease (SIGSTOP, a GC pause): the first check after it says no.
    now = [1000.0]
    a = member(db, "paused", clock=lambda: now[0])
    await a.start()
    try:
        tenure = a.tenure()
        assert tenure.may_act()
        now[0] += FAST.lease_ttl_s - FAST.margin_s  # the safe deadline, to the tick
        assert not tenure.may_act()
        await wait_for(lambda: not a.leading, timeout=10, what="the failed check fences")
    finally:
        await a.close()


async def test_a_holder_cut_off_from_the_database_fences_itself(
    db: Database, db_settings: DatabaseSettings
) -> None:
    assert db_settings.url is not None
    proxy = PgProxy(make_url(db_settings.url.get_secret_value()))
    await proxy.start()
    proxied = await open_database(
        DatabaseSettings(url=SecretStr(proxy.url.render_as_string(hide_password=False))),
        migrate=False,
    )
    a_work = Recorder()
    a = a_work.attach(member(proxied, "cut"))
    b = member(db, "reachable")
    try:
        await a.start()
        assert a.leading
        await b.start()
        tenure = a.tenure()
        proxy.cut()
        await wait_for(lambda: not a.leading, timeout=30, what="a fences itself")
        assert not tenure.may_act() and a_work.log == ["start", "stop"]
        await wait_for(lambda: b.leading, timeout=30, what="b takes over")
        proxy.restore()
        await asyncio.sleep(FAST.lease_ttl_s)
        assert b.leading and not a.leading  # a came back as a standby
    finally:
        proxy.restore()
        await b.close()
        await a.close()
        await proxied.close()
        await proxy.close()


async def test_disabled_leads_without_a_lease() -> None:
    work = Recorder()
    alone = work.attach(Leadership(HaSettings(enabled=False), None))
    await alone.start()
    assert alone.leading and alone.running and alone.may_act()
    assert alone.tenure().write_fence is None
    await alone.close()
    assert work.log == ["start", "stop"] and not alone.leading


def test_renewal_must_come_before_the_deadline() -> None:
    with pytest.raises(ValueError, match="below lease_ttl_s"):
        HaSettings(lease_ttl_s=1.0, renew_interval_s=0.8, margin_s=0.3)
