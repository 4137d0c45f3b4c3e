"""An agent logs in on a device it may use, by id, never by free text; a supervisor
logging an agent in obeys the same rule; what the PBX is told to dial (the simulator's
record of the AMI offer) is the registered device."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from app import models
from cti.simulator import DeviceProfile
from tests.api.test_devices_api import HOSTILE
from tests.live.conftest import PLAIN_PHONE, Service
from tests.live.test_calls import call_id_of, outcome


async def _register(service: Service, endpoint: str, agent_id: str | None, **extra: Any) -> int:
    async with service.client("admin") as c:
        r = await c.post(
            "/api/v1/devices",
            json={
                "technology": "PJSIP",
                "endpoint": endpoint,
                "agent_id": int(agent_id) if agent_id else None,
            }
            | extra,
        )
        assert r.status_code == 201, r.text
        return int(r.json()["id"])


async def test_free_text_devices_are_refused_at_login(service: Service, agents: Any) -> None:
    a, b = agents(2)
    for role, agent_id in (("agent", a), ("supervisor", None)):
        async with service.client(role, agent_id) as c:
            # Each hostile string, and a colleague's (b's) or the agent's own phone as text.
            for dial in [*HOSTILE, f"PJSIP/{b}", f"PJSIP/{a}"]:
                r = await c.post(f"/api/v1/agents/{a}/login", json={"device": dial})
                assert r.status_code == 422, (dial, r.text)
                body = r.json()
                assert body["error_id"] == "invalid-device"
                assert body["errors"][0]["loc"] == ["body", "device"]
                assert "device_id" in body["errors"][0]["msg"]
    assert (await service.agent_state(a))["state"] == "logged_out"


async def test_devices_of_others_are_refused(service: Service, agents: Any) -> None:
    a, b = agents(2)
    b_desk = await _register(service, f"desk-{b}", b)
    spare = await _register(service, f"spare-{a}", None)
    off = await _register(service, f"off-{a}", a, active=False)
    for role, agent_id in (("agent", a), ("supervisor", None)):
        async with service.client(role, agent_id) as c:
            for device_id in (b_desk, spare, off):
                r = await c.post(f"/api/v1/agents/{a}/login", json={"device_id": device_id})
                assert r.status_code == 403, r.text
                assert r.json()["error_id"] == "device-not-allowed"
            r = await c.post(f"/api/v1/agents/{a}/login", json={"device_id": 2**31 - 1})
            assert (r.status_code, r.json()["resource"]) == (404, "device")
            r = await c.post(f"/api/v1/agents/{a}/login", json={"device_id": 2**40})
            assert r.status_code == 422
    assert (await service.agent_state(a))["state"] == "logged_out"
    # b's own agent may use it, and only b's token may (an agent acts only on itself).
    async with service.client("agent", a) as c:
        r = await c.post(f"/api/v1/agents/{b}/login", json={"device_id": b_desk})
        assert r.status_code == 403 and r.json()["error_id"] == "forbidden"
    async with service.client("agent", b) as c:
        r = await c.post(f"/api/v1/agents/{b}/login", json={"device_id": b_desk})
        assert r.status_code == 200, r.text
        assert r.json()["device"] == f"PJSIP/desk-{b}"


async def test_a_bad_own_device_is_never_dialled(service: Service, agents: Any) -> None:
    """An agent's own device stored before the rule existed is checked again at login."""
    (a,) = agents(1)
    async with service.db.sessionmaker() as s:
        await s.execute(
            sa.update(models.Agent)
            .where(models.Agent.id == int(a))
            .values(device=f"PJSIP/{a},1,U(evil^x)")
        )
        await s.commit()
    # The call center reads it as it would at its start (or a configuration reload).
    await service.callcenter.config_changed(agent_ids=[a])
    try:
        async with service.client() as c:
            r = await c.post(f"/api/v1/agents/{a}/login", json={})
            assert (r.status_code, r.json()["error_id"]) == (422, "invalid-device"), r.text
            assert r.json()["errors"][0]["loc"] == ["agent", "device"]
        assert (await service.agent_state(a))["state"] == "logged_out"
    finally:
        async with service.db.sessionmaker() as s:
            await s.execute(
                sa.update(models.Agent).where(models.Agent.id == int(a)).values(device=f"PJSIP/{a}")
            )
            await s.commit()
        await service.callcenter.config_changed(agent_ids=[a])


async def test_login_by_id_dials_the_registered_device(service: Service, agents: Any) -> None:
    (a,) = agents(1)
    sim = service.sims[0]
    desk = await _register(service, f"hotdesk-{a}", a, label="hot desk")
    sim.set_device(f"PJSIP/hotdesk-{a}", DeviceProfile(ring_s=0.2, talk_s=0.5))
    async with service.client("agent", a) as c:
        r = await c.get(f"/api/v1/agents/{a}/devices")
        assert r.status_code == 200, r.text
        assert r.json() == [
            {"id": None, "dial": f"PJSIP/{a}", "label": "own device"},
            {"id": desk, "dial": f"PJSIP/hotdesk-{a}", "label": "hot desk"},
        ]
        r = await c.post(f"/api/v1/agents/{a}/login", json={"device_id": desk})
        assert r.status_code == 200, r.text
        assert r.json()["device"] == f"PJSIP/hotdesk-{a}"
        assert (await c.post(f"/api/v1/agents/{a}/ready")).status_code == 200
    uid = sim.place_call(dnis="5000", caller_num=PLAIN_PHONE)
    row = await outcome(service, call_id_of(service, 0, uid), result="answered")
    assert row.answered_by == int(a)
    # What the service told the PBX to ring (ACD_AGENT_DEVICE in the offer's actions).
    assert sim.calls[uid].offered == [f"PJSIP/hotdesk-{a}"]


async def test_supervisor_logs_an_agent_in_on_its_own_device(service: Service, agents: Any) -> None:
    (a,) = agents(1)
    async with service.client() as c:
        r = await c.post(f"/api/v1/agents/{a}/login", json={})
        assert r.status_code == 200, r.text
        assert r.json()["device"] == f"PJSIP/{a}"
