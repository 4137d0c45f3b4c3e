"""REST and the agent channel show one agent view (``app.live.protocol.AgentView``)."""

from __future__ import annotations

from typing import Any

from app.live.protocol import AgentView
from app.live.routes import AgentStateRead
from tests.live.conftest import Recorder, Service

VIEW_FIELDS = set(AgentView.__annotations__)


def test_rest_model_has_the_fields_of_the_view() -> None:
    assert set(AgentStateRead.model_fields) == VIEW_FIELDS


def _same(rest: dict[str, Any], frame: dict[str, Any]) -> None:
    """Equal field by field; ``time_in_state_s`` moves with the clock between the two reads."""
    assert set(rest) == set(frame) == VIEW_FIELDS
    for key in VIEW_FIELDS - {"time_in_state_s"}:
        assert rest[key] == frame[key], key


async def test_rest_and_websocket_carry_the_same_agent_view(service: Service, agents: Any) -> None:
    (a,) = agents(1)
    async with service.client("agent", a) as c:
        r = await c.post(f"/api/v1/agents/{a}/login", json={})
        assert r.status_code == 200, r.text
        login = r.json()
        r = await c.post(f"/api/v1/agents/{a}/pause", json={"reason": "lunch"})
        assert r.status_code == 200, r.text
    ws = Recorder(await service.ws(f"/ws/agents/{a}", role="agent", agent_id=a))
    try:
        hello = await ws.wait("hello")
    finally:
        await ws.close()
    rest = await service.agent_state(a)
    assert set(login) == VIEW_FIELDS
    assert rest["state"] == "paused" and rest["reason"] == "lunch" and rest["since"] is not None
    _same(rest, hello["state"])
    async with service.client() as c:
        r = await c.get("/api/v1/live/agents")
        assert r.status_code == 200, r.text
    (listed,) = [v for v in r.json() if v["agent_id"] == a]
    _same(listed, hello["state"])


async def test_logged_out_agent_view(service: Service, agents: Any) -> None:
    (a,) = agents(1)
    ws = Recorder(await service.ws(f"/ws/agents/{a}", role="agent", agent_id=a))
    try:
        hello = await ws.wait("hello")
    finally:
        await ws.close()
    rest = await service.agent_state(a)
    assert rest["state"] == "logged_out" and rest["since"] is None
    _same(rest, hello["state"])
