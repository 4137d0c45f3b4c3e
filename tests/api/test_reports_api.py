"""Reports API: queue / team / agent reports from the rollups, grouping and time zones,
CSV export, roles, and bad input as problems."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from app import models
from app.reports.rollup import RollupMaintainer
from tests.api.conftest import Api
from tests.api.test_auth_api import make_agent, make_supervisor
from tests.api.test_config_api import assert_problem

T0 = datetime(2026, 10, 1, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai: the day changes at 16:00


async def seed(api: Api) -> tuple[int, int, int]:
    db = api.app.state.db
    async with db.sessionmaker() as s:
        team = models.Team(name="report team")
        queue = models.Queue(name="report queue", sl_target_s=1.0)
        s.add_all([team, queue])
        await s.commit()
    agent_id, _ = await make_agent(api, "report-agent")
    async with db.sessionmaker() as s:
        await s.execute(
            sa.update(models.Agent).where(models.Agent.id == agent_id).values(team_id=team.id)
        )
        rows: list[dict[str, Any]] = []
        for n in range(8):  # one call every 10 minutes from 15:30 to 16:40 UTC
            arrived = T0 + timedelta(minutes=10 * n)
            wait = 0.5 if n % 2 == 0 else 2.5  # half within the queue's 1 s
            rows.append(
                {
                    "call_id": f"rep/{n}",
                    "server": "rep",
                    "uniqueid": str(n),
                    "caller": "1",
                    "queue_id": queue.id,
                    "arrived_at": arrived,
                    "answered_at": arrived + timedelta(seconds=wait),
                    "ended_at": arrived + timedelta(seconds=wait + 60),
                    "wait_s": wait,
                    "talk_s": 60.0,
                    "wrapup_s": 10.0,
                    "answered_by": agent_id,
                    "result": "answered",
                }
            )
        rows.append(
            rows[0]
            | {
                "call_id": "rep/ab",
                "uniqueid": "ab",
                "result": "abandoned",
                "answered_at": None,
                "answered_by": None,
                "wait_s": 30.0,
                "ended_at": T0 + timedelta(seconds=30),
                "talk_s": None,
                "wrapup_s": None,
            }
        )
        await s.execute(sa.insert(models.Call), rows)
        await s.commit()
    now = (T0 + timedelta(hours=3)).timestamp()
    await RollupMaintainer(db.sessionmaker, clock=lambda: now).rebuild(T0, T0 + timedelta(hours=2))
    return int(queue.id), int(team.id), agent_id


async def test_reports_by_day_and_hour_in_a_time_zone_and_as_csv(api: Api) -> None:
    queue_id, team_id, agent_id = await seed(api)
    c = api.client
    window = {"from": "2026-10-01T00:00:00Z", "to": "2026-10-03T00:00:00Z"}
    r = await c.get("/api/v1/reports/queues", params={**window, "id": queue_id}, headers=api.admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["group"] == "day" and body["timezone"] == "UTC"
    (day,) = body["rows"]
    assert (day["offered"], day["answered"], day["answered_in_sl"], day["abandoned"]) == (
        9,
        8,
        4,
        1,
    )
    assert day["service_level"] == round(4 / 9, 4)  # the queue's 1 s target, not 15 s
    assert day["aht_s"] == 70.0 and day["asa_s"] == 1.5 and day["name"] == "report queue"
    # In Shanghai the calls before 16:00 UTC belong to October 1st, the rest to the 2nd.
    r = await c.get(
        "/api/v1/reports/queues",
        params={**window, "id": queue_id, "tz": "Asia/Shanghai"},
        headers=api.admin,
    )
    assert [(x["period"][:10], x["offered"]) for x in r.json()["rows"]] == [
        ("2026-10-01", 4),
        ("2026-10-02", 5),
    ]
    r = await c.get(
        "/api/v1/reports/agents",
        params={**window, "id": agent_id, "group": "hour"},
        headers=api.admin,
    )
    assert [x["answered"] for x in r.json()["rows"]] == [3, 5]
    r = await c.get("/api/v1/reports/teams", params={**window, "id": team_id}, headers=api.admin)
    (team,) = r.json()["rows"]
    assert (team["answered"], team["talk_s"]) == (8, 480.0)
    # CSV: by Accept or by ?format=csv, one header line and one line per row.
    for extra, headers in (
        ({}, {**api.admin, "Accept": "text/csv"}),
        ({"format": "csv"}, api.admin),
    ):
        r = await c.get(
            "/api/v1/reports/queues", params={**window, "id": queue_id, **extra}, headers=headers
        )
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        table = list(csv.DictReader(io.StringIO(r.text)))
        assert len(table) == 1 and table[0]["answered"] == "8"
        assert table[0]["service_level"] == str(round(4 / 9, 4))


async def test_reports_roles_and_bad_input(api: Api) -> None:
    c = api.client
    window = {"from": "2026-10-01T00:00:00Z", "to": "2026-10-02T00:00:00Z"}
    _, agent_token = await make_agent(api, "report-nosy-agent")
    assert_problem(
        await c.get("/api/v1/reports/queues", params=window, headers=api.auth(agent_token)),
        403,
        "forbidden",
    )
    supervisor = await make_supervisor(api, "report-sup")
    r = await c.get("/api/v1/reports/agents", params=window, headers=api.auth(supervisor))
    assert r.status_code == 200
    for params in (
        {**window, "bogus": "1"},
        {**window, "group": "week"},
        {"from": "2026-10-01T00:00:00", "to": "2026-10-02T00:00:00Z"},
        {"from": "2026-10-02T00:00:00Z", "to": "2026-10-01T00:00:00Z"},
        {**window, "tz": "Mars/Olympus"},
        {"to": "2026-10-02T00:00:00Z"},
    ):
        assert_problem(
            await c.get("/api/v1/reports/queues", params=params, headers=api.admin),
            422,
            "validation-failed",
        )
    assert (await c.get("/api/v1/reports/queues", params=window)).status_code == 401
