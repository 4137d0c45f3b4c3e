"""``GET /api/v1/cluster`` and ``/ready`` of a lone process: it took the free lease at
start and leads (``app.ha``); the view is for admins only."""

from __future__ import annotations

from tests.api.conftest import Api


async def test_a_lone_process_leads_and_is_ready(api: Api) -> None:
    r = await api.client.get("/ready")
    assert r.status_code == 200, r.text
    r = await api.client.get("/api/v1/cluster", headers=api.admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["leader"] == body["this_member"] is not None
    assert body["lease"]["holder"] == body["leader"] and body["lease"]["expires_in_s"] > 0
    (me,) = [m for m in body["members"] if m["member"] == body["this_member"]]
    assert me["leader"] and me["alive"] and me["role"] == "leader"
    assert body["takeovers"][-1]["reason"] == "free"  # the first process ever: lease free
    assert body["takeovers"][0]["routing_at"] is not None


async def test_cluster_view_is_for_admins(api: Api) -> None:
    r = await api.client.get("/api/v1/cluster")
    assert r.status_code == 401
    r = await api.client.post(
        "/api/v1/users",
        json={"username": "cluster-sup", "password": "cluster-sup-password", "role": "supervisor"},
        headers=api.admin,
    )
    assert r.status_code == 201, r.text
    sup = await api.token("cluster-sup", "cluster-sup-password")
    r = await api.client.get("/api/v1/cluster", headers=api.auth(sup))
    assert r.status_code == 403
    assert r.json()["error_id"] == "forbidden"
