"""Customer writes and look-ups over HTTP: roles, validation, phone-in-use, pagination,
and linking an unknown caller's number (with its call) to a customer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from app import models
from tests.api.conftest import Api
from tests.api.test_auth_api import make_agent, make_supervisor
from tests.api.test_config_api import assert_problem
from tests.api.test_crm_calls_api import insert

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def test_customer_writes_roles_and_errors(api: Api) -> None:
    _, agent = await make_agent(api, "cust-agent")
    sup = await make_supervisor(api, "cust-sup")
    a, s = api.auth(agent), api.auth(sup)
    assert (await api.client.post("/api/v1/customers", json={"name": "x"})).status_code == 401
    r = await api.client.post(
        "/api/v1/customers",
        json={
            "name": "Zhao Lei",
            "phones": [{"phone": "+86 137-1111-0001", "label": "mobile"}],
            "products": [
                {
                    "model": "Washer X",
                    "sku": "WX-1",
                    "serial": "SN-ZL-1",
                    "purchase_date": "2026-01-10",
                    "protection_plan_end": "2029-01-10",
                }
            ],
        },
        headers=a,
    )
    assert r.status_code == 201, r.text
    cust = r.json()
    cid = cust["id"]
    assert cust["phones"] == [{"phone": "13711110001", "label": "mobile"}]
    assert cust["products"][0]["serial"] == "SN-ZL-1"
    # The number is taken: 409 phone-in-use, and the second customer is not half-written.
    body = assert_problem(
        await api.client.post(
            "/api/v1/customers",
            json={"name": "Other", "phones": [{"phone": "13711110001"}]},
            headers=a,
        ),
        409,
        "phone-in-use",
    )
    assert body["customer_id"] == cid
    page = (await api.client.get("/api/v1/customers?name=other", headers=a)).json()
    assert page["items"] == []
    assert_problem(
        await api.client.post(
            "/api/v1/customers", json={"name": "Bad", "phones": [{"phone": "12x"}]}, headers=a
        ),
        422,
        "invalid-phone-number",
    )
    assert_problem(
        await api.client.post(
            f"/api/v1/customers/{cid}/products",
            json={
                "model": "M",
                "sku": "S",
                "purchase_date": "2026-02-01",
                "protection_plan_end": "2025-01-01",
            },
            headers=s,
        ),
        422,
        "validation-failed",
    )
    # Agents create and link; supervisors edit.
    for method, path, payload in [
        ("PATCH", f"/api/v1/customers/{cid}", {"vip": True}),
        (
            "POST",
            f"/api/v1/customers/{cid}/products",
            {"model": "M", "sku": "S", "purchase_date": "2026-02-01"},
        ),
        ("DELETE", f"/api/v1/customers/{cid}/phones/13711110001", None),
    ]:
        assert_problem(
            await api.client.request(method, path, json=payload, headers=a), 403, "forbidden"
        )
    r = await api.client.patch(f"/api/v1/customers/{cid}", json={"vip": True}, headers=s)
    assert r.status_code == 200 and r.json()["vip"] is True
    pid = cust["products"][0]["id"]
    r = await api.client.patch(
        f"/api/v1/customers/{cid}/products/{pid}",
        json={"protection_plan_end": "2030-01-10"},
        headers=s,
    )
    assert r.status_code == 200 and r.json()["products"][0]["protection_plan_end"] == "2030-01-10"
    r = await api.client.post(
        f"/api/v1/customers/{cid}/phones", json={"phone": "010-6552-0001"}, headers=a
    )
    assert r.status_code == 201 and len(r.json()["phones"]) == 2
    r = await api.client.delete(f"/api/v1/customers/{cid}/phones/01065520001", headers=s)
    assert r.status_code == 204
    assert_problem(await api.client.get("/api/v1/customers/999999", headers=a), 404, "not-found")
    # Look-ups: phone, serial, id.
    for query in ("phone=137 1111 0001", "serial=SN-ZL-1", f"id={cid}"):
        page = (await api.client.get(f"/api/v1/customers?{query}", headers=a)).json()
        assert [c["id"] for c in page["items"]] == [cid], query
    assert_problem(await api.client.get("/api/v1/customers", headers=a), 422, "validation-failed")


async def test_name_prefix_lookup_is_paginated(api: Api) -> None:
    _, agent = await make_agent(api, "cust-pager")
    a = api.auth(agent)
    for i in range(5):
        r = await api.client.post("/api/v1/customers", json={"name": f"Pager {i}"}, headers=a)
        assert r.status_code == 201
    await api.client.post("/api/v1/customers", json={"name": "Pagoda 100%"}, headers=a)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"name": "pager", "limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = (await api.client.get("/api/v1/customers", params=params, headers=a)).json()
        seen += [c["name"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"Pager {i}" for i in range(5)]
    page = (await api.client.get("/api/v1/customers?name=pag%25", headers=a)).json()
    assert page["items"] == []  # a '%' is a character, not a wildcard


async def test_agent_links_an_unknown_caller_and_the_interaction_follows(api: Api) -> None:
    await insert(
        api,
        sa.insert(models.Call).values(
            call_id="pbx1/link.1",
            server="pbx1",
            uniqueid="link.1",
            caller="+86 135 0000 7777",
            queue_id=1,
            answered_by=7,
            arrived_at=T0,
            ended_at=T0 + timedelta(minutes=2),
            result="answered",
        ),
    )
    _, agent = await make_agent(api, "cust-linker")
    a = api.auth(agent)
    r = await api.client.post("/api/v1/customers", json={"name": "New Caller"}, headers=a)
    cid = r.json()["id"]
    # A number that is not the call's caller is refused.
    assert_problem(
        await api.client.post(
            f"/api/v1/customers/{cid}/phones",
            json={"phone": "13500009999", "call_id": "pbx1/link.1"},
            headers=a,
        ),
        422,
        "validation-failed",
    )
    # A call not stored yet: the number is linked all the same (the interaction follows
    # when the call's row is written); linking it again with the stored call writes it.
    r = await api.client.post(
        f"/api/v1/customers/{cid}/phones",
        json={"phone": "13500007777", "call_id": "pbx1/not-yet"},
        headers=a,
    )
    assert r.status_code == 201, r.text
    r = await api.client.post(
        f"/api/v1/customers/{cid}/phones",
        json={"phone": "13500007777", "call_id": "pbx1/link.1"},
        headers=a,
    )
    assert r.status_code == 201, r.text
    pop = (
        await api.client.get("/api/v1/crm/lookup", params={"phone": "13500007777"}, headers=a)
    ).json()
    assert [i["call_id"] for i in pop["interactions"]] == ["pbx1/link.1"]
    assert pop["repeat"]["short_window_h"] == 24.0


async def test_call_pop_for_the_desktop_after_a_reload(api: Api) -> None:
    agent_id, agent = await make_agent(api, "cust-popper")
    _, other = await make_agent(api, "cust-other")
    sup = await make_supervisor(api, "cust-pop-sup")
    await insert(
        api,
        sa.insert(models.Customer).values(id=424242, name="Reload Customer"),
        sa.insert(models.CustomerPhone).values(phone="13500004242", customer_id=424242),
        sa.insert(models.LiveCall).values(
            call_id="pbx1/live.9",
            server="pbx1",
            uniqueid="live.9",
            caller="13500004242",
            queue_id="1",
            state="connected",
            agent_id=str(agent_id),
            arrived_at=T0,
            answered_at=T0 + timedelta(seconds=4),
        ),
    )
    r = await api.client.get(
        "/api/v1/customers/pop", params={"call_id": "pbx1/live.9"}, headers=api.auth(agent)
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["call"]["caller"] == "13500004242"
    assert body["pop"]["customer"]["name"] == "Reload Customer"
    assert body["pop"]["repeat"]["contacts_short"] == 0
    # Another agent may not see it; a supervisor may; an unknown call is a 404.
    assert_problem(
        await api.client.get(
            "/api/v1/customers/pop", params={"call_id": "pbx1/live.9"}, headers=api.auth(other)
        ),
        403,
        "forbidden",
    )
    r = await api.client.get(
        "/api/v1/customers/pop", params={"call_id": "pbx1/live.9"}, headers=api.auth(sup)
    )
    assert r.status_code == 200
    assert_problem(
        await api.client.get(
            "/api/v1/customers/pop", params={"call_id": "pbx1/none"}, headers=api.auth(sup)
        ),
        404,
        "not-found",
    )
