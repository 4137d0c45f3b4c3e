"""End to end: an Asterisk server that goes away must not spin the router or punish agents.

The load test's failure: with a server's AMI link down, every waiting call of it was
offered, failed at once, re-queued and offered to the next ready agent, thousands of
times, each failure charged to an agent.  Here a simulator drops its connections while
offers are in flight and keeps refusing the login for a while; agents go ready meanwhile.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from app import models
from cti.simulator import DeviceProfile, SimUser
from tests.live.conftest import PLAIN_PHONE, SIM_SECRET, SIM_USER, Service, inbox_barrier
from tests.polling import wait_for


async def _post(svc: Service, agent_id: str, action: str) -> str:
    async with svc.client("agent", agent_id) as c:
        r = await c.post(f"/api/v1/agents/{agent_id}/{action}", json={})
        assert r.status_code == 200, r.text
        state: str = r.json()["state"]
        return state


def _connected(svc: Service, name: str) -> bool:
    return any(s.get("name") == name and s.get("connected") for s in svc.callcenter.server_status())


async def _rows(svc: Service, call_ids: list[str]) -> list[Any]:
    async with svc.db.sessionmaker() as s:
        rows = await s.scalars(sa.select(models.Call).where(models.Call.call_id.in_(call_ids)))
        return list(rows)


async def test_outage_suspends_calls_no_misses_and_all_routed_after_resync(
    service: Service, agents: Any
) -> None:
    cc = service.callcenter
    sim = service.sims[0]
    ids = agents(12)
    for a in ids:
        sim.set_device(f"PJSIP/{a}", DeviceProfile(ring_s=0.3, talk_s=3.0))
        assert await _post(service, a, "login") == "paused"

    # Six callers wait (every agent is paused).
    call_ids = [
        f"{sim.name}/{sim.place_call(dnis='5000', caller_num=PLAIN_PHONE)}" for _ in range(6)
    ]

    def all_waiting() -> bool:
        views = [cc.engine.call(c) for c in call_ids]
        return all(v is not None and v.state == "waiting" for v in views)

    await wait_for(all_waiting, what="six calls waiting")

    sim.users[SIM_USER] = SimUser("not-the-secret")  # the server stays away until allowed
    try:
        # Two agents go ready: two offers are written; the connection drops under them.
        for a in ids[:2]:
            await _post(service, a, "ready")
        offers_at_drop = cc.counters["offers"]
        assert offers_at_drop >= 2
        sim.drop_connections()
        await wait_for(lambda: not _connected(service, sim.name), what="pbx1 down")

        # Every other agent goes ready while the server is away: nothing may be offered
        # (before the fix: a hot loop of failed offers, each a miss, agents auto-paused).
        for a in ids[2:]:
            assert await _post(service, a, "ready") == "ready"
        # Each ready was handled at once (an offer is decided and written in the same
        # step); the failure reports such offers would have produced are queued on the
        # driver's inbox before this barrier, and a re-offer would have counted.
        await inbox_barrier(service.callcenter)
        assert cc.counters["offers"] == offers_at_drop
        for c in call_ids:
            view = cc.engine.call(c)
            assert view is not None and view.suspended, view
            assert view.state == "waiting" or view.agent_id in ids[:2], view
        for a in ids:
            view = cc.engine.agent(a)
            assert view is not None and view.missed_in_row == 0, view
            assert view.state in ("ready", "reserved"), view
    finally:
        sim.users[SIM_USER] = SimUser(SIM_SECRET)

    await wait_for(lambda: _connected(service, sim.name), timeout=60.0, what="pbx1 back")

    # After the resync every call is routed, answered once, and no agent paid for it.
    async def all_ended() -> list[Any] | None:
        rows = await _rows(service, call_ids)
        return rows if len(rows) == len(call_ids) else None

    rows = await wait_for(all_ended, timeout=60.0, what="six outcome rows")
    assert sorted(r.call_id for r in rows) == sorted(call_ids)  # exactly one row each
    for row in rows:
        assert row.result == "answered", (row.call_id, row.result, row.reason)
        assert row.rona_count == 0
        assert row.answered_by in {int(a) for a in ids}
    # Bounded: each call offered about once (an in-flight offer may be made again).
    assert cc.counters["offers"] - offers_at_drop <= 2 * len(call_ids)
    assert cc.counters["suspended_calls"] >= len(call_ids)
    for a in ids:
        view = cc.engine.agent(a)
        assert view is not None and view.missed_in_row == 0, view
        assert view.state != "paused", view
