"""Agent actions over REST and the wallboard / agent websockets (real service)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from typing import Any

from app.live.protocol import Close
from app.live.wallboard import apply_delta
from tests.live.conftest import Recorder, Service
from tests.polling import wait_for


async def test_illegal_transitions_are_409_and_change_nothing(
    service: Service, agents: Any
) -> None:
    (a,) = agents(1)
    async with service.client("agent", a) as c:
        r = await c.post(f"/api/v1/agents/{a}/ready")
        assert r.status_code == 409
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["error_id"] == "illegal-transition"
        assert (await service.agent_state(a))["state"] == "logged_out"

        r = await c.post(f"/api/v1/agents/{a}/pause", json={"reason": "lunch"})
        assert r.status_code == 409
        assert (await service.agent_state(a))["state"] == "logged_out"

        async with service.client("admin") as admin:
            r = await admin.post(
                "/api/v1/devices",
                json={"technology": "PJSIP", "endpoint": f"second-{a}", "agent_id": int(a)},
            )
            assert r.status_code == 201, r.text
            second = r.json()["id"]
        r = await c.post(f"/api/v1/agents/{a}/login", json={})
        assert r.status_code == 200 and r.json()["state"] == "paused"
        r = await c.post(f"/api/v1/agents/{a}/login", json={"device_id": second})
        assert r.status_code == 409  # already logged in on another device
        view = await service.agent_state(a)
        assert view["state"] == "paused" and view["device"] == "PJSIP/" + a

        # Wrap-up with no call to wrap: 409; an unknown disposition: 422.
        r = await c.post(f"/api/v1/agents/{a}/wrapup", json={"disposition_code": "resolved"})
        assert r.status_code == 409 and r.json()["error_id"] == "nothing-to-wrap-up"
        r = await c.post(f"/api/v1/agents/{a}/wrapup", json={"disposition_code": "nope"})
        assert r.status_code == 422 and r.json()["error_id"] == "unknown-disposition"
        assert (await service.agent_state(a))["state"] == "paused"

        r = await c.post(f"/api/v1/agents/{a}/pause", json={"reason": "lunch"})
        assert r.status_code == 200 and r.json()["reason"] == "lunch"
        r = await c.post(f"/api/v1/agents/{a}/ready")
        assert r.status_code == 200 and r.json()["state"] == "ready"
        assert r.json()["time_in_state_s"] is not None
        r = await c.post(f"/api/v1/agents/{a}/logout")
        assert r.status_code == 200 and r.json()["state"] == "logged_out"


async def test_permissions_and_unknown_agent(service: Service, agents: Any) -> None:
    a, b = agents(2)
    async with service.client("agent", a) as c:
        r = await c.post(f"/api/v1/agents/{b}/login", json={})
        assert r.status_code == 403
        r = await c.post(f"/api/v1/agents/{a}/force", json={"state": "ready"})
        assert r.status_code == 403
        assert (await c.get("/api/v1/live/agents")).status_code == 403
        assert (await c.get("/api/v1/live/queues")).status_code == 200
    async with service.client() as c:  # supervisor
        r = await c.post("/api/v1/agents/999999/login", json={})
        assert r.status_code == 404
        # The same id as the configuration routes give an unknown agent (docs/errors.md).
        assert (r.json()["error_id"], r.json()["resource"]) == ("not-found", "agent")
        r = await c.get("/api/v1/agents/999999/state")
        assert (r.status_code, r.json()["error_id"]) == (404, "not-found")
        r = await c.post(f"/api/v1/agents/{b}/login", json={"device": "bad device"})
        assert (r.status_code, r.json()["error_id"]) == (422, "invalid-device")
        assert (await service.agent_state(b))["state"] == "logged_out"
        r = await c.post(f"/api/v1/agents/{b}/login", json={})
        assert r.status_code == 200
        r = await c.post(f"/api/v1/agents/{b}/force", json={"state": "ready"})
        assert r.status_code == 200 and r.json()["state"] == "ready"
        r = await c.post(f"/api/v1/agents/{b}/force", json={"state": "paused", "reason": "meeting"})
        assert r.status_code == 200 and r.json()["reason"] == "meeting"
        r = await c.get("/api/v1/live/agents", params={"queue_id": "1"})
        assert r.status_code == 200
        states = {x["agent_id"]: x["state"] for x in r.json()}
        assert states[b] == "paused"
        r = await c.get("/api/v1/live/calls")
        assert r.status_code == 200 and set(r.json()) == {"waiting", "offered", "connected"}
        r = await c.get("/api/v1/live/queues")
        assert {q["queue_id"] for q in r.json()} == {"1", "2", "3"}


async def test_agent_socket_gets_state_changes(service: Service, agents: Any) -> None:
    (a,) = agents(1)
    ws = Recorder(await service.ws(f"/ws/agents/{a}", role="agent", agent_id=a))
    try:
        await ws.wait("hello")
        async with service.client("agent", a) as c:
            await c.post(f"/api/v1/agents/{a}/login", json={})
            await c.post(f"/api/v1/agents/{a}/ready")
        msg = await ws.wait("state", state="ready")
        assert msg["previous"] == "paused"
    finally:
        await ws.close()
    # Another agent's token may not watch this agent.
    other = await service.ws(f"/ws/agents/{a}", role="agent", agent_id="1")
    with contextlib.suppress(Exception):
        await asyncio.wait_for(other.recv(), 5)
    assert other.close_code == 4403


async def test_wallboard_snapshot_then_deltas(service: Service, agents: Any) -> None:
    (a,) = agents(1)
    ws = Recorder(await service.ws("/ws/wallboard"))
    try:
        snap = await ws.wait("snapshot")
        assert set(snap["queues"]) >= {"1", "2", "3"}
        assert "15m" in snap["overall"]["windows"] and "today" in snap["overall"]["windows"]
        state = {"overall": snap["overall"], "queues": snap["queues"]}
        cc = service.callcenter
        async with service.client("agent", a) as c:
            await c.post(f"/api/v1/agents/{a}/login", json={})
            want = cc.wallboard.state(cc.clock())["overall"]["agents"]

            def caught_up(w: dict[str, int]) -> bool:
                view = copy.deepcopy(state)
                for _, m in ws.of("delta"):
                    apply_delta(view, m)
                return bool(view["overall"]["agents"] == w)

            await wait_for(lambda: caught_up(want), what="paused agent on the wallboard")
            await c.post(f"/api/v1/agents/{a}/ready")
            want = cc.wallboard.state(cc.clock())["overall"]["agents"]
            await wait_for(lambda: caught_up(want), what="ready agent on the wallboard")
        seqs = [m["seq"] for _, m in ws.of("delta")]
        assert seqs[0] == snap["seq"] + 1
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    finally:
        await ws.close()


async def test_slow_wallboard_client_dropped_without_stalling_others(
    service: Service, agents: Any
) -> None:
    (a,) = agents(1)
    cc = service.callcenter
    # A subscriber that never reads (as the hub sees a stuck socket), with a tiny queue.
    stuck = cc.wallboard_hub.subscribe("*", queue_size=2)
    ws = Recorder(await service.ws("/ws/wallboard"))

    def client_view() -> dict[str, Any]:
        snap = ws.of("snapshot")[0][1]
        view = {"overall": copy.deepcopy(snap["overall"])}
        for _, m in ws.of("delta"):
            apply_delta(view, m)
        return view

    try:
        await ws.wait("snapshot")
        async with service.client() as c:
            await c.post(f"/api/v1/agents/{a}/login", json={})
            for i in range(6):  # each change of the agent's state yields a delta
                body = {"state": "ready"} if i % 2 == 0 else {"state": "paused", "reason": "break"}
                r = await c.post(f"/api/v1/agents/{a}/force", json=body)
                assert r.status_code == 200, r.text
                want = cc.wallboard.state(cc.clock())["overall"]["agents"]
                await wait_for(
                    lambda w=want: client_view()["overall"]["agents"] == w, what=f"change {i}"
                )
        assert stuck.closed.is_set() and stuck.close_code == Close.TOO_SLOW
        assert stuck not in cc.wallboard_hub.subscribers()
        assert cc.wallboard_hub.dropped_total >= 1
        assert ws.closed is None  # the healthy client is still connected and receiving
        seqs = [m["seq"] for _, m in ws.of("delta")]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) and len(seqs) >= 5
    finally:
        await ws.close()
