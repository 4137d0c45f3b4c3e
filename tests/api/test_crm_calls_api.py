"""CRM lookup and call history over HTTP, with rows written straight into PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from app import models
from tests.api.conftest import Api
from tests.api.test_auth_api import make_agent, make_supervisor
from tests.api.test_config_api import assert_problem

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def insert(api: Api, *statements: sa.Executable) -> None:
    url = api.settings.database.url
    assert url is not None
    engine = create_async_engine(url.get_secret_value(), poolclass=sa.NullPool)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(statement)
    finally:
        await engine.dispose()


async def test_crm_lookup(api: Api) -> None:
    today = datetime.now(UTC).astimezone().date()
    await insert(
        api,
        sa.insert(models.Customer).values(id=1, name="Wang Fang", vip=True),
        sa.insert(models.CustomerPhone).values(phone="13800138000", customer_id=1),
        sa.insert(models.Product).values(
            customer_id=1, model="Washer X", sku="WX-1", purchase_date=today - timedelta(days=10)
        ),
        sa.insert(models.Case).values(
            customer_id=1, opened_at=T0, kind="repair", subject="Noisy drum"
        ),
    )
    _, agent = await make_agent(api, "crm-agent")
    r = await api.client.get(
        "/api/v1/crm/lookup", params={"phone": "+86 138-0013-8000"}, headers=api.auth(agent)
    )
    assert r.status_code == 200, r.text
    pop = r.json()
    assert pop["customer"]["name"] == "Wang Fang" and pop["customer"]["vip"] is True
    assert pop["entitled"] is True
    assert pop["products"][0]["entitlement"]["entitled"] is True
    assert [c["subject"] for c in pop["open_cases"]] == ["Noisy drum"]
    assert_problem(
        await api.client.get(
            "/api/v1/crm/lookup", params={"phone": "13900000000"}, headers=api.admin
        ),
        404,
        "not-found",
    )
    body = assert_problem(
        await api.client.get("/api/v1/crm/lookup", params={"phone": "call-me"}, headers=api.admin),
        422,
        "invalid-phone-number",
    )
    assert body["errors"][0]["loc"] == ["query", "phone"]
    assert date.fromisoformat(pop["entitled_until"]) >= today


def call_row(
    n: int, *, agent: int | None, result: str = "answered", queue: int = 1
) -> dict[str, object]:
    return {
        "call_id": f"pbx1/{1700000000 + n}.1",
        "server": "pbx1",
        "uniqueid": f"{1700000000 + n}.1",
        "caller": "13800138000",
        "queue_id": queue,
        "agents_offered": [agent] if agent else [],
        "answered_by": agent if result == "answered" else None,
        "arrived_at": T0 + timedelta(minutes=n),
        "result": result,
    }


async def test_call_history_pagination_filters_and_visibility(api: Api) -> None:
    me_id, me = await make_agent(api, "calls-agent")
    other_id, _ = await make_agent(api, "calls-other")
    supervisor = await make_supervisor(api, "calls-sup")
    rows = [call_row(n, agent=me_id if n % 2 else other_id) for n in range(10)]
    rows.append(call_row(10, agent=None, result="abandoned", queue=2))
    await insert(
        api,
        sa.insert(models.Call).values(rows),
        sa.insert(models.CallEvent).values(
            [
                {"call_id": rows[1]["call_id"], "at": T0, "kind": "queued"},
                {
                    "call_id": rows[1]["call_id"],
                    "at": T0 + timedelta(seconds=5),
                    "kind": "answered",
                    "agent_id": me_id,
                },
            ]
        ),
    )
    c = api.client
    # Supervisor: everything, newest first, in pages of 4 without gaps or repeats.
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        page = (await c.get("/api/v1/calls", params=params, headers=api.auth(supervisor))).json()
        seen += [item["call_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [r["call_id"] for r in reversed(rows)]
    # Filters.
    r = await c.get("/api/v1/calls", params={"result": "abandoned"}, headers=api.admin)
    assert [i["call_id"] for i in r.json()["items"]] == [rows[10]["call_id"]]
    r = await c.get(
        "/api/v1/calls",
        params={
            "from": (T0 + timedelta(minutes=2)).isoformat(),
            "to": (T0 + timedelta(minutes=4)).isoformat(),
            "queue_id": 1,
        },
        headers=api.admin,
    )
    assert [i["call_id"] for i in r.json()["items"]] == [rows[3]["call_id"], rows[2]["call_id"]]
    assert_problem(
        await c.get("/api/v1/calls", params={"from": "2026-03-02T09:00:00"}, headers=api.admin),
        422,
        "validation-failed",
    )
    assert_problem(
        await c.get("/api/v1/calls", params={"result": "maybe"}, headers=api.admin),
        422,
        "validation-failed",
    )
    # Caller filter (exact number); unknown parameters are refused, never ignored.
    rows_other_caller = call_row(11, agent=None, result="abandoned", queue=2)
    rows_other_caller["caller"] = "13900139000"
    await insert(api, sa.insert(models.Call).values([rows_other_caller]))
    r = await c.get("/api/v1/calls", params={"caller": "13900139000"}, headers=api.admin)
    assert [i["call_id"] for i in r.json()["items"]] == [rows_other_caller["call_id"]]
    r = await c.get(
        "/api/v1/calls", params={"caller": "13800138000", "limit": 100}, headers=api.admin
    )
    assert len(r.json()["items"]) == len(rows)
    for params in ({"caler": "13900139000"}, {"queue": "1"}, {"caller": "x;DROP"}):
        assert_problem(
            await c.get("/api/v1/calls", params=params, headers=api.admin),
            422,
            "validation-failed",
        )
    # Agent: only its own calls; another agent's are refused or hidden.
    r = await c.get("/api/v1/calls", headers=api.auth(me))
    assert {i["answered_by"] for i in r.json()["items"]} == {me_id}
    assert len(r.json()["items"]) == 5
    assert_problem(
        await c.get("/api/v1/calls", params={"agent_id": other_id}, headers=api.auth(me)),
        403,
        "forbidden",
    )
    detail = (await c.get(f"/api/v1/calls/{rows[1]['call_id']}", headers=api.auth(me))).json()
    assert [e["kind"] for e in detail["events"]] == ["queued", "answered"]
    assert_problem(
        await c.get(f"/api/v1/calls/{rows[0]['call_id']}", headers=api.auth(me)), 404, "not-found"
    )
    assert (
        await c.get(f"/api/v1/calls/{rows[0]['call_id']}", headers=api.auth(supervisor))
    ).status_code == 200
    assert_problem(await c.get("/api/v1/calls/pbx9/none", headers=api.admin), 404, "not-found")
