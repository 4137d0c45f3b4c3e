"""Configuration CRUD over HTTP against a real PostgreSQL: round trips, 404/409/422, atomicity."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.api.conftest import Api

PROBLEM = "application/problem+json"


def assert_problem(r: Any, status: int, error_id: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["status"] == status
    assert body["error_id"] == error_id
    assert body["type"] == f"/errors/{error_id}"
    assert body["title"] and body["detail"]
    return dict(body)


async def count(api: Api, sql: str) -> int:
    url = api.settings.database.url
    assert url is not None
    engine = create_async_engine(url.get_secret_value(), poolclass=sa.NullPool)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(sa.text(sql))).scalar_one())
    finally:
        await engine.dispose()


async def test_skills_team_disposition_round_trip(api: Api) -> None:
    c, h = api.client, api.admin
    r = await c.post("/api/v1/skills", json={"name": "billing", "description": "Bills"}, headers=h)
    assert r.status_code == 201, r.text
    skill = r.json()
    assert skill["name"] == "billing"
    r = await c.get(f"/api/v1/skills/{skill['id']}", headers=h)
    assert r.json() == skill
    r = await c.patch(f"/api/v1/skills/{skill['id']}", json={"description": "Invoices"}, headers=h)
    assert r.json()["description"] == "Invoices"
    r = await c.get("/api/v1/skills", headers=h)
    assert skill["id"] in [s["id"] for s in r.json()["items"]]

    r = await c.post("/api/v1/teams", json={"name": "After-sales"}, headers=h)
    assert r.status_code == 201
    team = r.json()
    r = await c.patch(f"/api/v1/teams/{team['id']}", json={"name": "After-sales 2"}, headers=h)
    assert r.json()["name"] == "After-sales 2"
    r = await c.delete(f"/api/v1/teams/{team['id']}", headers=h)
    assert r.status_code == 204
    assert_problem(await c.get(f"/api/v1/teams/{team['id']}", headers=h), 404, "not-found")

    r = await c.post(
        "/api/v1/dispositions", json={"code": "resolved", "label": "Resolved"}, headers=h
    )
    assert r.status_code == 201
    disp = r.json()
    assert disp["active"] is True
    r = await c.patch(f"/api/v1/dispositions/{disp['id']}", json={"active": False}, headers=h)
    assert r.json()["active"] is False
    assert (await c.delete(f"/api/v1/dispositions/{disp['id']}", headers=h)).status_code == 204
    assert_problem(
        await c.delete(f"/api/v1/dispositions/{disp['id']}", headers=h), 404, "not-found"
    )


async def test_duplicates_are_409(api: Api) -> None:
    c, h = api.client, api.admin
    assert (
        await c.post("/api/v1/skills", json={"name": "dup-skill"}, headers=h)
    ).status_code == 201
    body = assert_problem(
        await c.post("/api/v1/skills", json={"name": "dup-skill"}, headers=h), 409, "conflict"
    )
    assert "already exists" in body["detail"]
    await c.post("/api/v1/dispositions", json={"code": "dup", "label": "x"}, headers=h)
    assert_problem(
        await c.post("/api/v1/dispositions", json={"code": "dup", "label": "y"}, headers=h),
        409,
        "conflict",
    )
    assert await count(api, "SELECT count(*) FROM skills WHERE name = 'dup-skill'") == 1


async def test_queue_round_trip_all_fields(api: Api) -> None:
    c, h = api.client, api.admin
    await c.post("/api/v1/skills", json={"name": "tech"}, headers=h)
    r = await c.post("/api/v1/queues", json={"name": "general"}, headers=h)
    assert r.status_code == 201, r.text
    general = r.json()
    assert general["queue_id"] == str(general["id"])
    body = {
        "name": "after-sales",
        "description": "Technical support",
        "priority": 5,
        "weight": 2,
        "sl_target_s": 20,
        "sl_target_pct": 0.9,
        "ring_timeout_s": 12,
        "wrapup_s": 30,
        "max_wait_s": 600,
        "max_len": 200,
        "overflow_queue_id": general["id"],
        "hours": {
            "timezone": "Asia/Shanghai",
            "weekly": {"mon": [["08:00", "12:00"], ["13:00", "20:00"]], "sun": []},
        },
        "escalation": [
            {"after_s": 30, "min_level": 2},
            {"after_s": 60, "add_queues": [str(general["id"])]},
            {"after_s": 120, "overflow": True},
        ],
        "vip_boost": 20,
        "entitled_boost": 7,
        "dnis": ["4008001000", "4008001001"],
        "skills": [{"skill": "tech", "min_level": 3}],
    }
    api.callcenter.changes.clear()
    r = await c.post("/api/v1/queues", json=body, headers=h)
    assert r.status_code == 201, r.text
    queue = r.json()
    for key in ("name", "priority", "weight", "sl_target_s", "max_len", "overflow_queue_id"):
        assert queue[key] == body[key]
    assert queue["dnis"] == ["4008001000", "4008001001"]
    assert queue["skills"] == [{"skill": "tech", "min_level": 3}]
    assert queue["hours"]["weekly"]["mon"] == [["08:00", "12:00"], ["13:00", "20:00"]]
    assert queue["escalation"][0] == {"after_s": 30, "min_level": 2}
    assert queue["escalation"][2]["overflow"] is True
    assert api.callcenter.changes == [([], [str(queue["id"])])]

    r = await c.patch(
        f"/api/v1/queues/{queue['id']}",
        json={"dnis": ["4008001001", "4008001002"], "priority": 6, "hours": None},
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert r.json()["dnis"] == ["4008001001", "4008001002"]
    assert r.json()["priority"] == 6 and r.json()["hours"] is None
    assert r.json()["skills"] == [{"skill": "tech", "min_level": 3}]  # untouched

    # A DNIS belongs to one queue.
    body = assert_problem(
        await c.post("/api/v1/queues", json={"name": "other", "dnis": ["4008001002"]}, headers=h),
        409,
        "conflict",
    )
    assert body["dnis"] == ["4008001002"]
    assert await count(api, "SELECT count(*) FROM queues WHERE name = 'other'") == 0

    r = await c.get("/api/v1/queues", params={"limit": 1}, headers=h)
    page = r.json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    r = await c.get("/api/v1/queues", params={"limit": 1, "cursor": page["next_cursor"]}, headers=h)
    assert r.json()["items"][0]["id"] > page["items"][0]["id"]


async def test_queue_bad_input_is_422(api: Api) -> None:
    c, h = api.client, api.admin
    cases: list[dict[str, Any]] = [
        {"name": "q", "skills": [{"skill": "tech", "min_level": 6}]},
        {"name": "q", "skills": [{"skill": "no-such-skill", "min_level": 1}]},
        {"name": "q", "hours": {"timezone": "Mars/Base", "weekly": {}}},
        {"name": "q", "hours": {"weekly": {"mon": [["12:00", "08:00"]]}}},
        {"name": "q", "escalation": [{"after_s": 60}, {"after_s": 30}]},
        {"name": "q", "overflow_target": "somewhere"},
        {"name": "q", "overflow_queue_id": 999999},
        {"name": "q", "sl_target_pct": 1.5},
        {"name": "q", "unknown_field": 1},
    ]
    for body in cases:
        assert_problem(
            await c.post("/api/v1/queues", json=body, headers=h), 422, "validation-failed"
        )
    assert await count(api, "SELECT count(*) FROM queues WHERE name = 'q'") == 0
    assert_problem(await c.get("/api/v1/queues/999999", headers=h), 404, "not-found")
    assert_problem(
        await c.patch("/api/v1/queues/999999", json={"priority": 1}, headers=h), 404, "not-found"
    )


async def test_agent_round_trip_with_login(api: Api) -> None:
    c, h = api.client, api.admin
    await c.post("/api/v1/skills", json={"name": "sales"}, headers=h)
    await c.post("/api/v1/skills", json={"name": "vip"}, headers=h)
    q = (await c.post("/api/v1/queues", json={"name": "sales-line"}, headers=h)).json()
    team = (await c.post("/api/v1/teams", json={"name": "VIP team"}, headers=h)).json()
    api.callcenter.changes.clear()
    r = await c.post(
        "/api/v1/agents",
        json={
            "name": "Li Na",
            "device": "PJSIP/1001",
            "team_id": team["id"],
            "max_missed": 2,
            "skills": [{"skill": "sales", "level": 4}, {"skill": "vip", "level": 2}],
            "queue_ids": [q["id"]],
            "login": {"username": "lina", "password": "lina-password"},
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    agent = r.json()
    assert agent["id"] >= 1001 and agent["agent_id"] == str(agent["id"])
    assert agent["skills"] == [{"skill": "sales", "level": 4}, {"skill": "vip", "level": 2}]
    assert agent["queue_ids"] == [q["id"]] and agent["usernames"] == ["lina"]
    assert api.callcenter.changes == [([str(agent["id"])], [])]

    # The login user works and carries the agent id.
    token = await api.token("lina", "lina-password")
    me = (await c.get("/api/v1/auth/me", headers=api.auth(token))).json()
    assert me == {
        "user_id": me["user_id"],
        "username": "lina",
        "role": "agent",
        "agent_id": str(agent["id"]),
    }

    r = await c.patch(
        f"/api/v1/agents/{agent['id']}",
        json={"skills": [{"skill": "sales", "level": 5}], "team_id": None},
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert r.json()["skills"] == [{"skill": "sales", "level": 5}]
    assert r.json()["team_id"] is None and r.json()["queue_ids"] == [q["id"]]

    r = await c.get("/api/v1/agents", params={"queue_id": q["id"]}, headers=h)
    assert [a["id"] for a in r.json()["items"]] == [agent["id"]]

    # A skill in use cannot be deleted.
    sales = [
        s
        for s in (await c.get("/api/v1/skills", headers=h)).json()["items"]
        if s["name"] == "sales"
    ]
    assert_problem(await c.delete(f"/api/v1/skills/{sales[0]['id']}", headers=h), 409, "conflict")

    # Deleting the queue changes the member agent too.
    api.callcenter.changes.clear()
    assert (await c.delete(f"/api/v1/queues/{q['id']}", headers=h)).status_code == 204
    assert api.callcenter.changes == [([str(agent["id"])], [str(q["id"])])]
    assert (await c.get(f"/api/v1/agents/{agent['id']}", headers=h)).json()["queue_ids"] == []

    assert (await c.delete(f"/api/v1/agents/{agent['id']}", headers=h)).status_code == 204
    assert_problem(await c.get(f"/api/v1/agents/{agent['id']}", headers=h), 404, "not-found")


async def test_agent_bad_levels_and_unknown_refs_write_nothing(api: Api) -> None:
    c, h = api.client, api.admin
    before = await count(api, "SELECT count(*) FROM agents")
    for level in (0, 6, "high"):
        assert_problem(
            await c.post(
                "/api/v1/agents",
                json={
                    "name": "X",
                    "device": "PJSIP/9",
                    "skills": [{"skill": "sales", "level": level}],
                },
                headers=h,
            ),
            422,
            "validation-failed",
        )
    body = assert_problem(
        await c.post(
            "/api/v1/agents",
            json={"name": "X", "device": "PJSIP/9", "skills": [{"skill": "nope", "level": 3}]},
            headers=h,
        ),
        422,
        "validation-failed",
    )
    assert body["errors"][0]["loc"] == ["body", "skills"]
    assert_problem(
        await c.post(
            "/api/v1/agents",
            json={"name": "X", "device": "PJSIP/9", "queue_ids": [999999]},
            headers=h,
        ),
        422,
        "validation-failed",
    )
    assert_problem(
        await c.post("/api/v1/agents", json={"name": "X", "device": "not a device"}, headers=h),
        422,
        "validation-failed",
    )
    assert await count(api, "SELECT count(*) FROM agents") == before


async def test_agent_with_taken_username_rolls_back_the_agent(api: Api) -> None:
    """The agent row is inserted before the user insert fails: the transaction must undo it."""
    c, h = api.client, api.admin
    agents = await count(api, "SELECT count(*) FROM agents")
    users = await count(api, "SELECT count(*) FROM users")
    body = assert_problem(
        await c.post(
            "/api/v1/agents",
            json={
                "name": "Dup",
                "device": "PJSIP/2000",
                "login": {"username": "admin", "password": "whatever-123"},
            },
            headers=h,
        ),
        409,
        "conflict",
    )
    assert "username" in body["detail"]
    assert await count(api, "SELECT count(*) FROM agents") == agents
    assert await count(api, "SELECT count(*) FROM users") == users
    assert await count(api, "SELECT count(*) FROM agents WHERE name = 'Dup'") == 0


async def test_users_crud(api: Api) -> None:
    c, h = api.client, api.admin
    r = await c.post(
        "/api/v1/users",
        json={"username": "sup1", "password": "sup1-password", "role": "supervisor"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    user = r.json()
    assert "password" not in user and "password_hash" not in user
    assert user["role"] == "supervisor" and user["agent_id"] is None
    assert_problem(
        await c.post(
            "/api/v1/users", json={"username": "sup1", "password": "another-pass"}, headers=h
        ),
        422,  # agent role without a seat
        "validation-failed",
    )
    assert_problem(
        await c.post(
            "/api/v1/users",
            json={"username": "sup1", "password": "another-pass", "role": "admin"},
            headers=h,
        ),
        409,
        "conflict",
    )
    r = await c.patch(f"/api/v1/users/{user['id']}", json={"password": "changed-pass-1"}, headers=h)
    assert r.status_code == 200
    await api.token("sup1", "changed-pass-1")
    r = await c.patch(f"/api/v1/users/{user['id']}", json={"active": False}, headers=h)
    assert r.json()["active"] is False
    r = await c.post("/api/v1/auth/token", json={"username": "sup1", "password": "changed-pass-1"})
    assert_problem(r, 401, "unauthorized")
    me = (await c.get("/api/v1/auth/me", headers=h)).json()
    assert_problem(await c.delete(f"/api/v1/users/{me['user_id']}", headers=h), 409, "conflict")
    assert (await c.delete(f"/api/v1/users/{user['id']}", headers=h)).status_code == 204
    assert_problem(await c.get(f"/api/v1/users/{user['id']}", headers=h), 404, "not-found")
