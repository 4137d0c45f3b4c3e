"""Devices: the one rule for dial strings (``app.devices``), admin CRUD of registered
devices, and an agent's own device, all refusing what could make the PBX dial anything
but one of the site's phones (toll fraud, Dial option injection, call diversion)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from app.devices import parse_device
from app.settings import DeviceSettings
from tests.api.conftest import Api
from tests.api.test_config_api import assert_problem, count

# Each of these would make Asterisk dial more than, or other than, one of the site's phones.
HOSTILE = [
    "Local/x@any-context",  # a dialplan context agents are not reached through
    "PJSIP/+8613800138000@trunk",  # a number abroad through a trunk endpoint
    "PJSIP/sip:alice@203.0.113.5",  # a SIP URI to any host
    "PJSIP/1001,1,U(evil^x)",  # Dial options: a subroutine on answer
    "PJSIP/1001&PJSIP/1002",  # several devices at once
    "PJSIP/1001&Local/00861380@outbound",
    "SIP/203.0.113.5",  # chan_sip dials a host that is not a peer
    "IAX2/user:secret@203.0.113.5/100",
    "DAHDI/g1/13800138000",  # a trunk group and a number
    "Local/1001@agents/n",  # a Local channel option
    "Local/1001@agents,30,tT",
    "Console/dsp",  # not a phone technology
    "PJSIP/1001)",
    "PJSIP/a|b",
    "PJSIP/1001;x",
    "PJSIP/10 01",
    "PJSIP/",
    "1001",
]
FINE = {
    "PJSIP/1001": "PJSIP/1001",
    "pjsip/desk-12_a": "PJSIP/desk-12_a",
    "SIP/alice": "SIP/alice",
    "IAX2/branch2": "IAX2/branch2",
    "DAHDI/12": "DAHDI/12",
    "Local/1001@agents": "Local/1001@agents",
    "local/5551234@remote-agents": "Local/5551234@remote-agents",
}


@pytest.mark.parametrize("dial", HOSTILE)
def test_the_rule_refuses_each_hostile_string(dial: str) -> None:
    with pytest.raises(ValueError):
        parse_device(dial, DeviceSettings())


@pytest.mark.parametrize(("dial", "canonical"), FINE.items())
def test_the_rule_accepts_one_phone_in_canonical_form(dial: str, canonical: str) -> None:
    assert parse_device(dial, DeviceSettings()).dial == canonical


def test_site_patterns_and_contexts_narrow_the_rule() -> None:
    site = DeviceSettings(
        local_contexts=["remote-agents"],
        patterns=[r"PJSIP/[0-9]{4,6}", r"Local/[0-9]+@remote-agents"],
    )
    assert parse_device("PJSIP/10012", site).dial == "PJSIP/10012"
    assert parse_device("Local/5551234@remote-agents", site).dial == "Local/5551234@remote-agents"
    for dial in ("PJSIP/desk", "PJSIP/123", "PJSIP/1234567", "Local/1001@agents", "SIP/1001"):
        with pytest.raises(ValueError):
            parse_device(dial, site)
    with pytest.raises(ValueError, match="pattern"):
        DeviceSettings(patterns=["PJSIP/[0-9"])


async def _agent(api: Api, name: str, device: str) -> int:
    r = await api.client.post(
        "/api/v1/agents", json={"name": name, "device": device}, headers=api.admin
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def test_hostile_strings_are_refused_at_registration(api: Api) -> None:
    c, h = api.client, api.admin
    agent = await _agent(api, "Reg", "PJSIP/3001")
    before = await count(api, "SELECT count(*) FROM devices")
    for dial in HOSTILE:
        technology, _, endpoint = dial.partition("/")
        r = await c.post(
            "/api/v1/devices",
            json={"technology": technology, "endpoint": endpoint, "agent_id": agent},
            headers=h,
        )
        if technology and endpoint:
            body = assert_problem(r, 422, "invalid-device")
            assert body["errors"][0]["loc"] == ["body", "endpoint"], dial
        else:  # an empty part does not match the schema
            assert_problem(r, 422, "validation-failed")
        # As an agent's own device, on creation and on change, too.
        r = await c.post("/api/v1/agents", json={"name": "Bad", "device": dial}, headers=h)
        assert r.status_code == 422, (dial, r.text)
        r = await c.patch(f"/api/v1/agents/{agent}", json={"device": dial}, headers=h)
        assert r.status_code == 422, (dial, r.text)
    assert await count(api, "SELECT count(*) FROM devices") == before
    assert await count(api, "SELECT count(*) FROM agents WHERE name = 'Bad'") == 0
    r = await c.get(f"/api/v1/agents/{agent}", headers=h)
    assert r.json()["device"] == "PJSIP/3001"


async def test_the_table_refuses_separators_even_from_sql(api: Api) -> None:
    url = api.settings.database.url
    assert url is not None
    engine = create_async_engine(url.get_secret_value(), poolclass=sa.NullPool)
    try:
        for technology, endpoint in (
            ("PJSIP", "1001,1,U(evil^x)"),
            ("PJSIP", "1001&PJSIP/1002"),
            ("PJSIP", "sip:alice@203.0.113.5"),
            ("Console", "dsp"),
        ):
            with pytest.raises(IntegrityError):
                async with engine.begin() as conn:
                    await conn.execute(
                        sa.text("INSERT INTO devices (technology, endpoint) VALUES (:t, :e)"),
                        {"t": technology, "e": endpoint},
                    )
    finally:
        await engine.dispose()


async def test_device_round_trip(api: Api) -> None:
    c, h = api.client, api.admin
    agent = await _agent(api, "Home worker", "PJSIP/3101")
    r = await c.post(
        "/api/v1/devices",
        json={
            "technology": "local",
            "endpoint": "5551234@remote-agents",
            "label": "home",
            "agent_id": agent,
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    device = r.json()
    assert device["technology"] == "Local" and device["dial"] == "Local/5551234@remote-agents"
    assert device["agent_id"] == agent and device["active"] is True and device["created_at"]

    r = await c.get("/api/v1/devices", params={"agent_id": agent}, headers=h)
    assert [d["id"] for d in r.json()["items"]] == [device["id"]]
    r = await c.patch(
        f"/api/v1/devices/{device['id']}", json={"label": "desk", "active": False}, headers=h
    )
    assert r.status_code == 200 and r.json()["label"] == "desk" and not r.json()["active"]
    # Technology and endpoint are one dial string: a change is checked as a whole.
    r = await c.patch(f"/api/v1/devices/{device['id']}", json={"technology": "PJSIP"}, headers=h)
    assert_problem(r, 422, "invalid-device")
    r = await c.patch(
        f"/api/v1/devices/{device['id']}", json={"endpoint": "5551234@elsewhere"}, headers=h
    )
    assert_problem(r, 422, "invalid-device")
    r = await c.get(f"/api/v1/devices/{device['id']}", headers=h)
    assert r.json()["dial"] == "Local/5551234@remote-agents"

    # Registered twice: 409; unknown agent: 422; unknown device: 404.
    r = await c.post(
        "/api/v1/devices",
        json={"technology": "Local", "endpoint": "5551234@remote-agents"},
        headers=h,
    )
    assert_problem(r, 409, "conflict")
    r = await c.post(
        "/api/v1/devices",
        json={"technology": "PJSIP", "endpoint": "3102", "agent_id": 999999},
        headers=h,
    )
    assert_problem(r, 422, "validation-failed")
    assert_problem(await c.get("/api/v1/devices/999999", headers=h), 404, "not-found")

    assert (await c.delete(f"/api/v1/devices/{device['id']}", headers=h)).status_code == 204
    assert_problem(await c.get(f"/api/v1/devices/{device['id']}", headers=h), 404, "not-found")


async def test_a_colleagues_phone_is_refused(api: Api) -> None:
    c, h = api.client, api.admin
    a = await _agent(api, "A", "PJSIP/3201")
    b = await _agent(api, "B", "PJSIP/3202")
    # B's own phone registered for A, or set as A's own device: 409.
    r = await c.post(
        "/api/v1/devices",
        json={"technology": "PJSIP", "endpoint": "3202", "agent_id": a},
        headers=h,
    )
    body = assert_problem(r, 409, "device-in-use")
    assert body["agent_id"] == str(b) and body["device"] == "PJSIP/3202"
    assert_problem(
        await c.patch(f"/api/v1/agents/{a}", json={"device": "PJSIP/3202"}, headers=h),
        409,
        "device-in-use",
    )
    assert_problem(
        await c.post("/api/v1/agents", json={"name": "C", "device": "PJSIP/3202"}, headers=h),
        409,
        "device-in-use",
    )
    # A registered device of B: not A's own device, not reassigned to A while B has it.
    r = await c.post(
        "/api/v1/devices",
        json={"technology": "PJSIP", "endpoint": "desk-3202", "agent_id": b},
        headers=h,
    )
    assert r.status_code == 201, r.text
    desk = r.json()["id"]
    assert_problem(
        await c.patch(f"/api/v1/agents/{a}", json={"device": "PJSIP/desk-3202"}, headers=h),
        409,
        "device-in-use",
    )
    # Unassigned first, then it may go to A.
    r = await c.patch(f"/api/v1/devices/{desk}", json={"agent_id": None}, headers=h)
    assert r.status_code == 200 and r.json()["agent_id"] is None
    r = await c.patch(f"/api/v1/devices/{desk}", json={"agent_id": a}, headers=h)
    assert r.status_code == 200 and r.json()["agent_id"] == a
    # Its own label or state changes are not a clash with itself.
    r = await c.patch(f"/api/v1/devices/{desk}", json={"label": "desk 2"}, headers=h)
    assert r.status_code == 200, r.text


async def test_devices_need_admin_to_change_and_supervisor_to_read(api: Api) -> None:
    c, h = api.client, api.admin
    r = await c.post(
        "/api/v1/users",
        json={"username": "sup-devices", "password": "sup-password", "role": "supervisor"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    sup = api.auth(await api.token("sup-devices", "sup-password"))
    assert (await c.get("/api/v1/devices", headers=sup)).status_code == 200
    r = await c.post(
        "/api/v1/devices", json={"technology": "PJSIP", "endpoint": "3301"}, headers=sup
    )
    assert_problem(r, 403, "forbidden")
