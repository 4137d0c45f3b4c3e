"""Pause codes are configuration, and every agent state change is in the state log
(real service, real PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from tests.live.conftest import Service
from tests.polling import wait_for


async def test_pause_refuses_unknown_codes_and_admins_configure_them(
    service: Service, agents: Any
) -> None:
    (a,) = agents(1)
    async with service.client("agent", a) as c, service.client("admin") as admin:
        codes = (await c.get("/api/v1/pause-codes")).json()
        assert [x["code"] for x in codes][:3] == ["break", "lunch", "meeting"]
        assert (await c.get("/api/v1/pause-codes", params={"bogus": 1})).status_code == 422
        r = await c.post(f"/api/v1/agents/{a}/login", json={})
        assert r.status_code == 200
        r = await c.post(f"/api/v1/agents/{a}/pause", json={"reason": "nap"})
        assert r.status_code == 422 and r.json()["error_id"] == "unknown-pause-code"
        assert r.headers["content-type"].startswith("application/problem+json")
        assert (await service.agent_state(a))["reason"] == "login"
        # An agent cannot make codes; an admin can.
        body = {"code": "nap", "label": "Power nap", "position": 5}
        assert (await c.post("/api/v1/pause-codes", json=body)).status_code == 403
        r = await admin.post("/api/v1/pause-codes", json=body)
        assert r.status_code == 201, r.text
        assert (await admin.post("/api/v1/pause-codes", json=body)).status_code == 409
        r = await c.post(f"/api/v1/agents/{a}/pause", json={"reason": "nap"})
        assert r.status_code == 200 and r.json()["reason"] == "nap"
        # Retired: refused again, for the agent and for a supervisor's forced pause.
        r = await admin.patch("/api/v1/pause-codes/nap", json={"active": False})
        assert r.status_code == 200 and r.json()["active"] is False
        assert "nap" not in [x["code"] for x in (await c.get("/api/v1/pause-codes")).json()]
        async with service.client("supervisor") as sup:
            r = await sup.post(
                f"/api/v1/agents/{a}/force", json={"state": "paused", "reason": "nap"}
            )
            assert r.status_code == 422 and r.json()["error_id"] == "unknown-pause-code"
            r = await sup.post(f"/api/v1/agents/{a}/force", json={"state": "paused"})
            assert r.status_code == 200 and r.json()["reason"] == "supervisor"
        assert (await admin.delete("/api/v1/pause-codes/nap")).status_code == 204
        assert (await admin.delete("/api/v1/pause-codes/nap")).status_code == 404
        r = await c.post(f"/api/v1/agents/{a}/ready")
        assert r.status_code == 200
        r = await c.post(f"/api/v1/agents/{a}/logout")
        assert r.status_code == 200

    async def logged() -> list[tuple[str, str | None]]:
        async with service.db.engine.connect() as conn:
            result = await conn.execute(
                sa.text(
                    "SELECT state, reason FROM agent_state_log WHERE agent_id = :a ORDER BY at"
                ),
                {"a": int(a)},
            )
            return [(r[0], r[1]) for r in result]

    want = [
        ("paused", "login"),
        ("paused", "nap"),
        ("paused", "supervisor"),
        ("ready", None),
        ("logged_out", "logout"),
    ]
    await wait_for(lambda: _equal(logged(), want), what="state log written")

    # The running service keeps the interval rollups: the agent's pause time by reason
    # reaches the reports API within a few seconds (settle + tick), without a rebuild.
    now = datetime.now(UTC)
    window = {
        "from": (now - timedelta(hours=1)).isoformat(),
        "to": (now + timedelta(hours=1)).isoformat(),
        "group": "hour",
        "id": a,
    }

    async def reported() -> bool:
        async with service.client("supervisor") as sup:
            r = await sup.get("/api/v1/reports/agents", params=window)
        assert r.status_code == 200, r.text
        rows = r.json()["rows"]
        reasons = {k for row in rows for k in row["paused_by_reason"]}
        return {"login", "nap", "supervisor"} <= reasons and sum(x["login_s"] for x in rows) > 0

    # Within settle + tick, or one min_gap_s (30 s) if a recompute fell between the actions.
    await wait_for(reported, timeout=60, what="the rollups to show the agent's pauses")


async def _equal(rows: Any, want: list[tuple[str, str | None]]) -> bool:
    return bool(await rows == want)
