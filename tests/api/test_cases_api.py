"""Cases over HTTP: roles and scopes, problem+json for bad input, and the scheduler the
service runs escalating a case when the (injected) clock passes its due time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from app import models
from tests.api.conftest import Api
from tests.api.test_auth_api import make_agent, make_supervisor
from tests.api.test_config_api import assert_problem
from tests.api.test_crm_calls_api import insert
from tests.polling import wait_for

T0 = datetime(2026, 12, 3, 10, tzinfo=UTC)  # Thursday, inside the default 09-18 UTC hours


async def test_cases_roles_errors_and_escalation(api: Api) -> None:
    now = [T0]
    api.app.state.case_clock = lambda: now[0]
    _, agent = await make_agent(api, "case-agent")
    _, other = await make_agent(api, "case-other")
    sup = await make_supervisor(api, "case-sup")
    a, o, s = api.auth(agent), api.auth(other), api.auth(sup)
    await insert(api, sa.insert(models.Customer).values(id=7001, name="Li Na"))
    assert (await api.client.get("/api/v1/cases")).status_code == 401
    cats = (await api.client.get("/api/v1/cases/categories", headers=a)).json()
    assert [c["code"] for c in cats][:2] == ["product-quality", "service-attitude"]

    r = await api.client.post(
        "/api/v1/cases",
        json={
            "customer_id": 7001,
            "subject": "late repair",
            "category": "delivery-repair",
            "call_id": "pbx1/99.1",
            "notes": "on the call",
        },
        headers=a,
    )
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["due_at"] == "2026-12-03T18:00:00Z" and case["escalated_to"] == "owner"
    cid = case["id"]

    assert_problem(
        await api.client.post(
            "/api/v1/cases",
            json={"customer_id": 7001, "subject": "x", "category": "nope"},
            headers=a,
        ),
        422,
        "unknown-category",
    )
    assert_problem(
        await api.client.post(
            "/api/v1/cases",
            json={"customer_id": 7001, "subject": "x", "due_at": "2026-12-03T09:00:00Z"},
            headers=a,
        ),
        422,
        "due-in-past",
    )
    assert_problem(
        await api.client.post(f"/api/v1/cases/{cid}/stage", json={"to": "replied"}, headers=a),
        409,
        "illegal-stage-change",
    )
    # Another agent neither sees nor changes it; agents do not assign.
    assert_problem(await api.client.get(f"/api/v1/cases/{cid}", headers=o), 404, "not-found")
    assert_problem(
        await api.client.post(f"/api/v1/cases/{cid}/assign", json={}, headers=a), 403, "forbidden"
    )
    mine = (await api.client.get("/api/v1/cases?mine=true", headers=a)).json()["items"]
    assert [c["id"] for c in mine] == [cid]
    assert (await api.client.get("/api/v1/cases", headers=o)).json()["items"] == []
    assert_problem(
        await api.client.get("/api/v1/cases?bogus=1", headers=a), 422, "validation-failed"
    )

    # The clock runs out: the scheduler (the lone process leads) raises it to the supervisor.
    now[0] = T0 + timedelta(hours=8, seconds=1)
    api.app.state.case_escalations.wake()

    async def escalated() -> bool:
        r = await api.client.get("/api/v1/cases?escalated_to_me=true", headers=s)
        return cid in [c["id"] for c in r.json()["items"]]

    await wait_for(escalated, what="the case escalated to the supervisor")
    detail = (await api.client.get(f"/api/v1/cases/{cid}", headers=s)).json()
    assert detail["overdue"] and [e["level"] for e in detail["ladder"]] == [1]
    board = (await api.client.get("/api/v1/cases?overdue=true", headers=s)).json()["items"]
    assert cid in [c["id"] for c in board]
    took = await api.client.post(
        f"/api/v1/cases/{cid}/assign", json={"reason": "mine now"}, headers=s
    )
    assert took.status_code == 200, took.text
    up = await api.client.post(f"/api/v1/cases/{cid}/escalate", json={}, headers=s)
    assert up.json()["escalated_to"] == "manager"
    queue = (await api.client.get("/api/v1/cases?escalated_to_me=true", headers=api.admin)).json()
    assert cid in [c["id"] for c in queue["items"]]
