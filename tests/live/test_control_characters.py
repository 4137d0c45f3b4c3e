"""An agent's own text (device, pause reason, disposition, notes) with NUL or other
control characters is refused with 422 at the edge, and the agent's state is unchanged."""

from __future__ import annotations

from typing import Any

from tests.live.conftest import Service


def assert_refused(r: Any, field: str) -> None:
    assert r.status_code == 422, r.text
    body = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert body["error_id"] == "validation-failed"
    assert any(e["loc"][-1] == field for e in body["errors"]), body
    assert "control characters" in r.text


async def test_agent_text_with_nul_is_422(service: Service, agents: Any) -> None:
    (a,) = agents(1)
    async with service.client("agent", a) as c:
        # A device is never text from the request (tests/live/test_devices.py), NUL or not.
        r = await c.post(f"/api/v1/agents/{a}/login", json={"device": f"PJSIP/{a}\x00"})
        assert r.status_code == 422 and r.json()["error_id"] == "invalid-device", r.text
        assert r.json()["errors"][0]["loc"] == ["body", "device"]
        assert (await service.agent_state(a))["state"] == "logged_out"

        r = await c.post(f"/api/v1/agents/{a}/login", json={})
        assert r.status_code == 200, r.text
        r = await c.post(f"/api/v1/agents/{a}/pause", json={"reason": "lunch\x00"})
        assert_refused(r, "reason")
        r = await c.post(f"/api/v1/agents/{a}/pause", json={"reason": "tea\x1b[2J"})
        assert_refused(r, "reason")
        view = await service.agent_state(a)
        assert view["state"] == "paused" and view["reason"] != "lunch\x00"

        r = await c.post(
            f"/api/v1/agents/{a}/wrapup",
            json={"disposition_code": "resolved", "notes": "called back\x00"},
        )
        assert_refused(r, "notes")
        r = await c.post(f"/api/v1/agents/{a}/wrapup", json={"disposition_code": "res\x00olved"})
        assert_refused(r, "disposition_code")
        r = await c.post(f"/api/v1/agents/{a}/logout", json={})
        assert r.status_code == 200, r.text
