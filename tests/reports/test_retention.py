"""The retention job: purges what is older than the retention (dropping whole monthly
partitions of the state log), keeps the rollups, resumes safely; the archive export."""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest_asyncio
import sqlalchemy as sa

from app import models, partitions
from app.db import Database, open_database
from app.reports.archive import export_month
from app.reports.retention_job import RetentionJob
from app.settings import DatabaseSettings, OutcomeSettings, Settings
from tests.polling import wait_for

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
OLD = datetime(2024, 10, 15, 9, 0, tzinfo=UTC)  # more than 730 days before NOW
RECENT = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest_asyncio.fixture(loop_scope="session")
async def db_settings(fresh_database_settings: Any) -> DatabaseSettings:
    settings: DatabaseSettings = await fresh_database_settings()
    return settings


@pytest_asyncio.fixture(loop_scope="session")
async def db(db_settings: DatabaseSettings) -> AsyncIterator[Database]:
    database = await open_database(db_settings, migrate=False)
    yield database
    await database.close()


async def scalar(db: Database, sql: str) -> Any:
    async with db.engine.connect() as conn:
        return await conn.scalar(sa.text(sql))


async def seed(db: Database) -> None:
    def call(n: int, at: datetime) -> dict[str, Any]:
        return {
            "call_id": f"r/{n}",
            "server": "r",
            "uniqueid": str(n),
            "caller": "1",
            "queue_id": 1,
            "arrived_at": at,
            "ended_at": at + timedelta(seconds=30),
            "result": "abandoned",
        }

    async with db.engine.begin() as conn:
        await partitions.ensure_months(conn, "agent_state_log", "at", date(2024, 10, 1), 1)
        await conn.execute(
            sa.insert(models.Call), [call(n, OLD if n < 5 else RECENT) for n in range(8)]
        )
        await conn.execute(
            sa.insert(models.CallEvent),
            [
                {"at": OLD, "call_id": "r/0", "kind": "queued"},
                {"at": RECENT, "call_id": "r/6", "kind": "queued"},
            ],
        )
        await conn.execute(
            sa.text("INSERT INTO agent_state_log (agent_id, at, state) VALUES (:a, :at, 'ready')"),
            [
                {"a": 1001, "at": OLD},  # its month's partition
                {"a": 1001, "at": datetime(2023, 1, 5, tzinfo=UTC)},  # the default partition
                {"a": 1001, "at": RECENT},
            ],
        )
        await conn.execute(
            sa.text(
                "INSERT INTO interval_stats (kind, entity_id, interval_start, offered)"
                " VALUES ('queue', 1, :at, 5)"
            ),
            {"at": OLD},
        )
        customer = await conn.scalar(
            sa.text("INSERT INTO customers (name) VALUES ('c') RETURNING id")
        )
        await conn.execute(
            sa.text(
                "INSERT INTO interactions (customer_id, at, channel, summary)"
                " VALUES (:c, :old, 'phone', 'old'), (:c, :new, 'phone', 'new')"
            ),
            {"c": customer, "old": OLD, "new": RECENT},
        )
        await conn.execute(
            sa.text(
                "INSERT INTO cases (customer_id, opened_at, closed_at, status, kind, subject) VALUES"
                " (:c, :old, :old, 'closed', 'repair', 'old closed'),"
                " (:c, :old, NULL, 'open', 'repair', 'old but open')"
            ),
            {"c": customer, "old": OLD},
        )


async def test_export_then_purge_keeps_rollups_and_resumes(db: Database, tmp_path: Path) -> None:
    await seed(db)
    counts = await export_month(db.engine, date(2024, 10, 1), tmp_path)
    assert counts == {"calls": 5, "call_events": 1, "agent_state_log": 1}
    with (tmp_path / "calls-2024-10.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5 and rows[0]["call_id"].startswith("r/")
    copy = await export_month(db.engine, date(2024, 10, 1), tmp_path, fmt="copy")
    assert copy["calls"] == 5 and (tmp_path / "calls-2024-10.copy").read_text().count("\n") == 5
    assert not list(tmp_path.glob("*.partial"))

    job = RetentionJob(db.sessionmaker, retention_days=730, chunk=2)
    run = await job.run_once(NOW)
    assert run.cutoff == NOW - timedelta(days=730)
    assert run.partitions_dropped == ["agent_state_log_2024_10"]
    assert run.deleted["calls"] == 5 and run.deleted["call_events"] == 1
    assert run.deleted["agent_state_log_default"] == 1
    assert run.deleted["interactions"] == 1 and run.deleted["cases"] == 1
    assert await scalar(db, "SELECT count(*) FROM calls") == 3
    assert await scalar(db, "SELECT count(*) FROM agent_state_log") == 1
    assert await scalar(db, "SELECT count(*) FROM cases") == 1  # the open one stays
    assert await scalar(db, "SELECT sum(offered) FROM interval_stats") == 5  # rollups kept
    async with db.engine.connect() as conn:
        months = await partitions.months(conn, "agent_state_log")
    assert date(2027, 3, 1) in months  # three months ahead
    # A second run (or one resuming an interrupted run) finds nothing more to do.
    again = await job.run_once(NOW)
    assert again.partitions_dropped == [] and set(again.deleted.values()) == {0}


async def test_the_job_runs_when_started_and_stops(db: Database) -> None:
    job = RetentionJob(db.sessionmaker, retention_days=730, first_delay_s=0.0)
    await job.start()
    try:
        await wait_for(lambda: job.last is not None, what="a retention run")
    finally:
        await job.stop()
    assert job.next_run(NOW) == datetime(2026, 12, 4, 3, 0, tzinfo=UTC)


async def test_the_command_reads_the_retention_setting(
    db_settings: DatabaseSettings, capsys: Any
) -> None:
    from app.reports.__main__ import _main

    settings = Settings(database=db_settings, outcomes=OutcomeSettings(retention_days=1))
    assert await _main(argparse.Namespace(command="retention"), settings) == 0
    out = json.loads(capsys.readouterr().out)
    cutoff = datetime.fromisoformat(out["cutoff"])
    assert abs((datetime.now(UTC) - cutoff) - timedelta(days=1)) < timedelta(minutes=5)
