"""Interval rollups: correct figures, idempotent recomputes, and reconciliation
(sum over agents = queue totals = the calls table) on random days (real PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest_asyncio
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from app import models
from app.db import Database, open_database
from app.reports.reconcile import reconcile
from app.reports.rollup import RollupMaintainer
from app.settings import DatabaseSettings

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # an interval boundary
AGENTS = {1001: 1, 1002: 1, 1003: 2, 1004: None}  # agent -> team


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def db_settings(fresh_database_settings: Any) -> DatabaseSettings:
    settings: DatabaseSettings = await fresh_database_settings()
    async with open_database(settings, migrate=False) as db, db.sessionmaker() as s:
        s.add_all([models.Team(id=1, name="t1"), models.Team(id=2, name="t2")])
        s.add_all(
            [
                models.Queue(id=1, name="fast", sl_target_s=2.0),
                models.Queue(id=2, name="slow", sl_target_s=20.0),
            ]
        )
        await s.flush()
        for aid, team in AGENTS.items():
            s.add(models.Agent(id=aid, name=str(aid), device=f"PJSIP/{aid}", team_id=team))
        await s.commit()
    return settings


@pytest_asyncio.fixture(loop_scope="session")
async def db(db_settings: DatabaseSettings) -> AsyncIterator[Database]:
    database = await open_database(db_settings, migrate=False)
    yield database
    await database.close()


async def clear(db: Database) -> None:
    async with db.engine.begin() as conn:
        for table in (
            "calls",
            "call_events",
            "agent_state_log",
            "interval_stats",
            "pause_stats",
            "daily_stats",
            "daily_pause",
        ):
            await conn.execute(sa.text(f"DELETE FROM {table}"))  # noqa: S608


def call_row(n: int, spec: tuple[int, int, str, float, int, float, float]) -> dict[str, Any]:
    """A calls row from (minute, queue, result, wait, agent, talk, wrap)."""
    minute, queue, result, wait, agent, talk, wrap = spec
    arrived = T0 + timedelta(minutes=minute, seconds=n % 60)
    row: dict[str, Any] = {
        "call_id": f"pbx/{n}",
        "server": "pbx",
        "uniqueid": str(n),
        "caller": "1",
        "queue_id": queue,
        "arrived_at": arrived,
        "result": result,
        "wait_s": wait,
        "answered_at": None,
        "answered_by": None,
        "agents_offered": [],
        "talk_s": None,
        "wrapup_s": None,
        "wrapup_ended_at": None,
        "reason": None,
    }
    if result == "answered":
        answered = arrived + timedelta(seconds=wait)
        ended = answered + timedelta(seconds=talk)
        row |= {
            "answered_at": answered,
            "ended_at": ended,
            "answered_by": agent,
            "agents_offered": [agent],
            "talk_s": talk,
            "wrapup_s": wrap,
            "wrapup_ended_at": ended + timedelta(seconds=wrap),
            "reason": "transferred" if n % 7 == 0 else None,
        }
    else:
        row["ended_at"] = arrived + timedelta(seconds=wait)
    return row


CALLS = st.lists(
    st.tuples(
        st.integers(0, 119),  # minute of arrival: two hours, eight intervals
        st.sampled_from([1, 2]),
        st.sampled_from(
            ["answered"] * 4 + ["abandoned", "short_abandoned", "overflowed", "failed"]
        ),
        st.floats(0, 60, allow_nan=False).map(lambda x: round(x, 3)),
        st.sampled_from(list(AGENTS)),
        st.floats(1, 600, allow_nan=False).map(lambda x: round(x, 3)),
        st.floats(0, 60, allow_nan=False).map(lambda x: round(x, 3)),
    ),
    max_size=60,
)


async def _check_day(settings_: DatabaseSettings, specs: list[Any]) -> None:
    async with open_database(settings_, migrate=False) as db:
        await clear(db)
        rows = [call_row(n, spec) for n, spec in enumerate(specs)]
        async with db.engine.begin() as conn:
            if rows:
                await conn.execute(sa.insert(models.Call), rows)
        maintainer = RollupMaintainer(
            db.sessionmaker, clock=lambda: (T0 + timedelta(hours=3)).timestamp()
        )
        assert await maintainer.rebuild(T0, T0 + timedelta(hours=2)) == 8
        async with db.sessionmaker() as s:
            result = await reconcile(s, T0, T0 + timedelta(hours=2))
        assert result.ok, result.mismatches
        # The reference, straight from the generated calls.
        answered = [r for r in rows if r["result"] == "answered"]
        thresholds = {1: 2.0, 2: 20.0}
        assert result.totals["answered"] == len(answered)
        assert result.totals["answered_in_sl"] == sum(
            r["wait_s"] <= thresholds[r["queue_id"]] for r in answered
        )
        short = [
            r
            for r in rows
            if r["result"] == "short_abandoned"
            or (r["result"] == "abandoned" and r["wait_s"] < 5.0)
        ]
        assert result.totals["short_abandoned"] == len(short)
        # Recomputing changes nothing (idempotent).
        async with db.engine.connect() as conn:
            before = (
                await conn.execute(
                    sa.text(
                        "SELECT kind, entity_id, interval_start, offered, answered, talk_s, login_s"
                        " FROM interval_stats ORDER BY 1, 2, 3"
                    )
                )
            ).all()
        await maintainer.rebuild(T0, T0 + timedelta(hours=2))
        async with db.engine.connect() as conn:
            after = (
                await conn.execute(
                    sa.text(
                        "SELECT kind, entity_id, interval_start, offered, answered, talk_s, login_s"
                        " FROM interval_stats ORDER BY 1, 2, 3"
                    )
                )
            ).all()
        assert before == after
        # The daily rollups equal the sums of their intervals, after recomputes too.
        async with db.engine.connect() as conn:
            by_days = (
                await conn.execute(
                    sa.text(
                        "SELECT kind, entity_id, (interval_start AT TIME ZONE 'UTC')::date,"
                        " sum(answered), round(sum(talk_s)::numeric, 3),"
                        " round(sum(login_s)::numeric, 3), sum(offered)"
                        " FROM interval_stats GROUP BY 1, 2, 3"
                        " EXCEPT SELECT kind, entity_id, day, answered, round(talk_s::numeric, 3),"
                        " round(login_s::numeric, 3), offered"
                        " FROM daily_stats WHERE answered <> 0 OR talk_s <> 0 OR offered <> 0"
                        "  OR login_s <> 0"
                    )
                )
            ).all()
        assert by_days == []
        # Teams are the sums of their agents.
        async with db.engine.connect() as conn:
            teams: dict[int, int] = dict(
                (
                    await conn.execute(
                        sa.text(
                            "SELECT entity_id, sum(answered) FROM interval_stats WHERE kind = 'team'"
                            " GROUP BY 1"
                        )
                    )
                ).all()
            )
        for team in (1, 2):
            want = sum(1 for r in answered if AGENTS[r["answered_by"]] == team)
            assert teams.get(team, 0) == want


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],  # shrinking through the database takes minutes
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(specs=CALLS)
def test_rollups_reconcile_with_the_calls_table(db_settings: DatabaseSettings, specs: Any) -> None:
    asyncio.run(_check_day(db_settings, specs))


async def test_state_time_is_split_across_intervals(db: Database) -> None:
    await clear(db)
    log = [
        (1001, T0 - timedelta(hours=1), "paused", "login"),  # before the range: carried in
        (1001, T0, "ready", None),
        (1001, T0 + timedelta(minutes=5), "on_call", None),
        (1001, T0 + timedelta(minutes=20), "paused", "lunch"),
        (1001, T0 + timedelta(minutes=40), "logged_out", "logout"),
    ]
    async with db.engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO agent_state_log (agent_id, at, state, reason)"
                " VALUES (:a, :at, :state, :reason)"
            ),
            [{"a": a, "at": at, "state": s, "reason": r} for a, at, s, r in log],
        )
    now = (T0 + timedelta(hours=1)).timestamp()
    await RollupMaintainer(db.sessionmaker, clock=lambda: now).rebuild(
        T0, T0 + timedelta(minutes=45)
    )
    async with db.engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.text(
                    "SELECT kind, entity_id, login_s, ready_s, on_call_s, paused_s"
                    " FROM interval_stats WHERE entity_id IN (1001, 1) ORDER BY interval_start, kind"
                )
            )
        ).all()
        pauses = (
            await conn.execute(
                sa.text(
                    "SELECT kind, interval_start, reason, seconds FROM pause_stats"
                    " ORDER BY interval_start, kind"
                )
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("agent", 1001, 900.0, 300.0, 600.0, 0.0),
        ("team", 1, 900.0, 300.0, 600.0, 0.0),
        ("agent", 1001, 900.0, 0.0, 300.0, 600.0),
        ("team", 1, 900.0, 0.0, 300.0, 600.0),
        ("agent", 1001, 600.0, 0.0, 0.0, 600.0),
        ("team", 1, 600.0, 0.0, 0.0, 600.0),
    ]
    assert [(k, r, s) for k, _, r, s in pauses] == [
        ("agent", "lunch", 600.0),
        ("team", "lunch", 600.0),
        ("agent", "lunch", 600.0),
        ("team", "lunch", 600.0),
    ]


async def test_reconcile_command_reports_ok_and_a_stale_rollup(
    db: Database, db_settings: DatabaseSettings, capsys: Any
) -> None:
    import argparse
    import json

    from app.reports.__main__ import _main
    from app.settings import Settings

    await clear(db)
    async with db.engine.begin() as conn:
        await conn.execute(
            sa.insert(models.Call),
            [call_row(n, (n, 1, "answered", 1.0, 1001, 30.0, 5.0)) for n in range(20)],
        )
    settings_ = Settings(database=db_settings)
    window = {"start": T0, "end": T0 + timedelta(hours=1)}
    assert await _main(argparse.Namespace(command="rebuild", **window), settings_) == 0
    assert await _main(argparse.Namespace(command="reconcile", **window), settings_) == 0
    out = capsys.readouterr().out
    assert '"ok": true' in out and json.loads(out[out.index("{", 2) :])["totals"]["answered"] == 20
    # A call written after its interval was computed: the rollup is stale until rebuilt.
    async with db.engine.begin() as conn:
        await conn.execute(
            sa.insert(models.Call), [call_row(99, (3, 1, "answered", 1.0, 1002, 30.0, 5.0))]
        )
    assert await _main(argparse.Namespace(command="reconcile", **window), settings_) == 1
    assert '"figure": "answered"' in capsys.readouterr().out
