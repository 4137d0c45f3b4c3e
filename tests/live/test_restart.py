"""Restart of the service: nothing lost, no agent stuck (end to end, real PostgreSQL,
the AMI simulator on loopback kept running while the service stops and starts again).

Each restart test runs its own service twice on one database; the blind-transfer test
uses the module's shared ``service``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest_asyncio
import sqlalchemy as sa

from app import models
from app.db import Database, open_database
from app.settings import Settings
from cti.simulator import AsteriskSimulator, DeviceProfile, SimUser
from cti.wire import AmiParser, encode
from routing.commands import HangupCall
from tests.live.conftest import (
    PLAIN_PHONE,
    SIM_SECRET,
    SIM_USER,
    VIP_PHONE,
    Service,
    populate,
    service_settings,
    start_service,
)
from tests.polling import wait_for

Fresh = tuple[Settings, list[AsteriskSimulator], Database]
RESTART_QUEUE = 4  # long ring timeout: an offer rings across the restart
RESTART_DNIS = "5004"


async def add_restart_queue(settings: Settings) -> None:
    async with open_database(settings.database, migrate=False) as db, db.sessionmaker() as s:
        s.add(models.Queue(id=RESTART_QUEUE, name="restart", ring_timeout_s=30.0, wrapup_s=0.5))
        await s.flush()
        s.add(models.QueueDnis(dnis=RESTART_DNIS, queue_id=RESTART_QUEUE))
        for aid in range(1001, 1011):
            s.add(models.AgentQueue(agent_id=aid, queue_id=RESTART_QUEUE))
        await s.commit()


@pytest_asyncio.fixture(loop_scope="session")
async def fresh(
    fresh_database_settings: Callable[[], Awaitable[Any]], tmp_path: Path
) -> AsyncIterator[Fresh]:
    db_settings = await fresh_database_settings()
    async with open_database(db_settings, migrate=False) as db:
        await populate(db)
    settings = service_settings(db_settings, tmp_path / "spill", "restart")
    await add_restart_queue(settings)
    sim = AsteriskSimulator(name="pbx9", users={SIM_USER: SimUser(SIM_SECRET)}, seed=9)
    await sim.start()
    try:
        async with open_database(db_settings, migrate=False) as db:
            yield settings, [sim], db
    finally:
        await sim.close()


async def login(svc: Service, agent_id: str, *, ready: bool = True) -> None:
    async with svc.client("agent", agent_id) as c:
        r = await c.post(f"/api/v1/agents/{agent_id}/login", json={})
        assert r.status_code == 200, r.text
        if ready:
            r = await c.post(f"/api/v1/agents/{agent_id}/ready")
            assert r.status_code == 200, r.text


async def state_of(svc: Service, agent_id: str) -> dict[str, Any]:
    return await svc.agent_state(agent_id)


async def wait_state(svc: Service, agent_id: str, state: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        view = await state_of(svc, agent_id)
        return view if view["state"] == state else None

    found: dict[str, Any] = await wait_for(check, what=f"agent {agent_id} {state}")
    return found


async def outcome(svc: Service, call_id: str, **expect: Any) -> models.Call:
    async def check() -> models.Call | None:
        row = await svc.call_row(call_id)
        if row is None or any(getattr(row, k) != v for k, v in expect.items()):
            return None
        return row

    found: models.Call = await wait_for(check, what=f"outcome of {call_id} with {expect}")
    return found


async def rows_for(db: Database, call_ids: list[str]) -> dict[str, int]:
    async with db.sessionmaker() as s:
        rows = await s.execute(
            sa.select(models.Call.call_id, sa.func.count())
            .where(models.Call.call_id.in_(call_ids))
            .group_by(models.Call.call_id)
        )
        return {str(cid): int(n) for cid, n in rows.all()}


async def live_rows(db: Database) -> dict[str, models.LiveCall]:
    async with db.sessionmaker() as s:
        return {c.call_id: c for c in (await s.scalars(sa.select(models.LiveCall))).all()}


async def sessions(db: Database) -> dict[str, models.AgentSession]:
    async with db.sessionmaker() as s:
        rows = (await s.scalars(sa.select(models.AgentSession))).all()
        return {r.agent_id: r for r in rows}


async def test_restart_keeps_agents_and_adopts_waiting_ringing_and_connected_calls(
    fresh: Fresh,
) -> None:
    settings, (sim,), db = fresh
    talker, ringer, pauser, helper = "1001", "1002", "1003", "1004"
    sim.set_device(f"PJSIP/{talker}", DeviceProfile(ring_s=0.2, talk_s=600.0))
    sim.set_device(f"PJSIP/{ringer}", DeviceProfile(answer_prob=0.0))  # rings 30 s
    sim.set_device(f"PJSIP/{helper}", DeviceProfile(ring_s=0.2, talk_s=0.5))

    svc = await start_service(settings, [sim], state_interval_s=0.05)
    await login(svc, talker)
    connected_uid = sim.place_call(dnis=RESTART_DNIS, caller_num=VIP_PHONE)
    connected = f"{sim.name}/{connected_uid}"
    before = await wait_state(svc, talker, "on_call")
    assert before["call_id"] == connected
    await login(svc, ringer)
    ringing_uid = sim.place_call(dnis=RESTART_DNIS, caller_num=PLAIN_PHONE)
    ringing = f"{sim.name}/{ringing_uid}"
    assert (await wait_state(svc, ringer, "reserved"))["call_id"] == ringing
    await login(svc, pauser, ready=False)
    async with svc.client("agent", pauser) as c:
        r = await c.post(f"/api/v1/agents/{pauser}/pause", json={"reason": "lunch"})
        assert r.status_code == 200, r.text
    waiting_uid = sim.place_call(dnis=RESTART_DNIS, caller_num="13700137000")
    waiting = f"{sim.name}/{waiting_uid}"
    cc = svc.callcenter
    await wait_for(
        lambda: (v := cc.engine.call(waiting)) is not None and v.state == "waiting",
        what="third call waiting",
    )
    waiting_arrived = cc.live_calls()["waiting"][str(RESTART_QUEUE)][0]["arrived_at"]
    answered_at = cc.engine.call(connected).answered_at

    await svc.stop()  # clean stop while calls wait, ring and talk
    live = await live_rows(db)
    assert {c: r.state for c, r in live.items()} == {
        connected: "connected",
        ringing: "offered",
        waiting: "waiting",
    }
    saved = await sessions(db)
    assert (saved[talker].state, saved[talker].call_id) == ("on_call", connected)
    assert (saved[pauser].state, saved[pauser].reason) == ("paused", "lunch")
    assert await rows_for(db, [connected, ringing, waiting]) == {}  # still in progress

    svc = await start_service(settings, [sim], state_interval_s=0.05)
    try:
        cc = svc.callcenter
        view = await wait_state(svc, talker, "on_call")
        assert view["call_id"] == connected
        view = await wait_state(svc, ringer, "reserved")  # the ringing offer was kept
        assert view["call_id"] == ringing
        view = await state_of(svc, pauser)
        assert (view["state"], view["reason"]) == ("paused", "lunch")
        adopted = cc.engine.call(waiting)
        assert adopted is not None and adopted.state == "waiting"
        assert abs(adopted.arrived_at - waiting_arrived) < 0.01  # the original arrival
        assert abs(cc.engine.call(connected).answered_at - answered_at) < 0.001

        # The waiting caller is routed to the next free agent, its wait counted from
        # its first arrival (before the restart).
        await login(svc, helper)
        row = await outcome(svc, waiting, result="answered")
        assert row.answered_by == int(helper)
        assert abs(row.arrived_at.timestamp() - waiting_arrived) < 0.01
        assert row.wait_s is not None and row.answered_at is not None
        assert row.wait_s >= row.answered_at.timestamp() - waiting_arrived - 0.01

        # The caller ringing the kept offer gives up: an abandon, the agent is free.
        cc.link.execute(HangupCall(ringing))
        row = await outcome(svc, ringing)
        assert row.result in ("abandoned", "short_abandoned")
        assert row.agents_offered == [int(ringer)]
        await wait_state(svc, ringer, "ready")

        # The connected call ends: one answered row, the agent wraps up, then READY.
        cc.link.execute(HangupCall(connected))
        row = await outcome(svc, connected, result="answered")
        assert row.answered_by == int(talker) and row.vip is True
        assert row.answered_at is not None
        assert abs(row.answered_at.timestamp() - answered_at) < 0.01
        assert row.talk_s is not None and row.talk_s > 0
        await wait_state(svc, talker, "ready")

        async def wrapped() -> bool:  # it went through wrap-up (0.5 s in this queue)
            stored = await svc.call_row(connected)
            return stored is not None and stored.wrapup_ended_at is not None

        await wait_for(wrapped, what="wrap-up recorded")

        # Every simulator call ended with exactly one calls row; nothing left in progress.
        await wait_for(
            lambda: all(sim.calls[u].result for u in (connected_uid, ringing_uid, waiting_uid)),
            what="simulator calls ended",
        )
        assert await rows_for(db, [connected, ringing, waiting]) == {
            connected: 1,
            ringing: 1,
            waiting: 1,
        }
        await wait_for(lambda: _no_live_rows(db), what="live_calls emptied")
        assert cc.counters["adopted_calls"] == 3
    finally:
        await svc.stop()


async def _no_live_rows(db: Database) -> bool:
    return not await live_rows(db)


def _hang_up_in_asterisk(sim: AsteriskSimulator, uniqueid: str) -> None:
    chan = next(c for c in sim.all_channels() if c.uniqueid == uniqueid)
    sim.action_hangup(chan, 16)


async def test_calls_that_ended_while_down_end_once(
    fresh: Fresh,
) -> None:
    settings, (sim,), db = fresh
    talker = "1005"
    sim.set_device(f"PJSIP/{talker}", DeviceProfile(ring_s=0.2, talk_s=600.0))
    svc = await start_service(settings, [sim], state_interval_s=0.05)
    await login(svc, talker)
    talk_uid = sim.place_call(dnis=RESTART_DNIS, caller_num=PLAIN_PHONE)
    talking = f"{sim.name}/{talk_uid}"
    await wait_state(svc, talker, "on_call")
    wait_uid = sim.place_call(dnis=RESTART_DNIS, caller_num="13700137001")
    waiting = f"{sim.name}/{wait_uid}"
    cc = svc.callcenter
    await wait_for(lambda: cc.engine.call(waiting) is not None, what="second call waiting")
    await svc.stop()

    # Both callers hang up while nobody watches.
    _hang_up_in_asterisk(sim, talk_uid)
    _hang_up_in_asterisk(sim, wait_uid)

    svc = await start_service(settings, [sim], state_interval_s=0.05)
    try:
        row = await outcome(svc, talking)
        assert (row.result, row.reason) == ("answered", "ended-while-down")
        assert row.answered_by == int(talker) and row.answered_at is not None
        row = await outcome(svc, waiting)
        assert (row.result, row.reason) == ("failed", "ended-while-down")
        assert row.answered_by is None
        # The agent who was talking is not stuck: ready (it asked for nothing else).
        await wait_state(svc, talker, "ready")
        assert await rows_for(db, [talking, waiting]) == {talking: 1, waiting: 1}
        await wait_for(lambda: _no_live_rows(db), what="live_calls emptied")
        assert svc.callcenter.counters["ended_while_down"] == 2
    finally:
        await svc.stop()
    # A third start finds nothing left to end: still exactly one row each.
    svc = await start_service(settings, [sim], state_interval_s=0.05)
    try:
        assert svc.callcenter.counters["ended_while_down"] == 0
        assert await rows_for(db, [talking, waiting]) == {talking: 1, waiting: 1}
        # The wallboard's figures of today are rebuilt from the calls table, not zero.
        board = svc.callcenter.wallboard.state(svc.callcenter.clock())
        today = board["overall"]["windows"]["today"]
        assert (today["offered"], today["answered"], today["failed"]) == (2, 1, 1)
    finally:
        await svc.stop()


async def ami_action(sim: AsteriskSimulator, fields: dict[str, str]) -> dict[str, str]:
    """One action on a fresh AMI session (what an agent's softphone transfer does)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    parser = AmiParser(expect_banner=True)
    try:
        writer.write(
            encode({"Action": "Login", "Username": SIM_USER, "Secret": SIM_SECRET, "ActionID": "l"})
            + encode({**fields, "ActionID": "a"})
        )
        await writer.drain()
        while True:
            data = await asyncio.wait_for(reader.read(65536), 5)
            assert data, "AMI session closed"
            for msg in parser.feed(data):
                if msg.kind == "response" and msg.get("ActionID") == "a":
                    return msg.as_dict()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def test_blind_transfer_ends_answered_transferred_and_agent_wraps_up(
    service: Service, agents: Any
) -> None:
    (a,) = agents(1)
    sim = service.sims[0]
    sim.set_device(f"PJSIP/{a}", DeviceProfile(ring_s=0.2, talk_s=600.0))
    await login(service, a)
    uid = sim.place_call(dnis="5002", caller_num=PLAIN_PHONE)  # queue 3: 60 s wrap-up
    call_id = f"{sim.name}/{uid}"
    await wait_state(service, a, "on_call")
    leg = next(c for c in sim.channels() if c.role == "agent" and c.linkedid == uid and c.bridge_id)
    resp = await ami_action(
        sim,
        {
            "Action": "BlindTransfer",
            "Channel": leg.name,
            "Context": "acd-transfer",
            "Exten": "2000",
        },
    )
    assert resp["Response"] == "Success", resp
    row = await outcome(service, call_id, result="answered")
    assert row.reason == "transferred" and row.answered_by == int(a)
    view = await wait_state(service, a, "wrap_up")
    assert view["call_id"] == call_id
    assert call_id not in service.callcenter.state.calls  # left ACD control: nothing more to do
